from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import frame_image
from helpers import read_video

from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video, working_size
from d2nvideo.translator import Translator
from d2nvideo.video.geometry import restore, upright


@pytest.fixture(scope="module")
def translator(media: dict[str, Path]) -> Translator:
    return Translator.from_checkpoint(media["model"], "cpu")


@pytest.mark.parametrize("name", ["plain", "audio", "odd", "odder", "rotated", "vfr", "one"])
def test_output_keeps_frames_timing_size_rotation_and_audio(
    name: str, media: dict[str, Path], translator: Translator, tmp_path: Path
) -> None:
    src = media[name]
    dst = tmp_path / f"out{src.suffix}"
    result = convert_video(src, dst, translator, ConvertOptions("night", batch_size=3))
    a, b = read_video(src), read_video(dst)
    assert result.frames == len(a.times) == len(b.times)
    assert b.times == a.times
    assert (b.width, b.height) == (a.width, a.height)
    assert b.rotation == a.rotation
    if name == "vfr":  # an average over a variable rate; it depends on the muxer's last-frame
        assert b.fps == pytest.approx(a.fps, rel=0.01)  # duration, while every pts is exact
    else:
        assert b.fps == a.fps
    assert b.audio == a.audio and b.audio_times == a.audio_times
    assert b.metadata.get("title") == a.metadata.get("title")
    # The output is a translation, not a copy of the input.
    assert not np.array_equal(a.images[0], b.images[0])
    assert list(tmp_path.iterdir()) == [dst]


def test_segment_starts_at_zero_and_cuts_audio(
    media: dict[str, Path], translator: Translator, tmp_path: Path
) -> None:
    src, dst = media["long"], tmp_path / "seg.mp4"
    opts = ConvertOptions("night", batch_size=4, start=2.0, duration=3.0)
    result = convert_video(src, dst, translator, opts)
    out = read_video(dst)
    assert result.frames == len(out.times) == 75  # 3 s at 25 fps
    assert out.times[0] == 0 and out.times[-1] == Fraction(74, 25)
    assert out.audio and 0 <= float(out.audio_times[0]) < 0.1
    assert float(out.audio_times[-1]) < 3.0
    src_audio = read_video(src).audio
    start = src_audio.index(out.audio[0])
    assert out.audio == src_audio[start : start + len(out.audio)]


def _with_subtitles(path: Path, lines: int) -> Path:
    """A 25-fps MKV whose SubRip track shows one line a second (a dashcam's GPS track)."""
    import av

    srt = path.with_suffix(".srt")
    srt.write_text(
        "".join(
            f"{k + 1}\n00:00:0{k},000 --> 00:00:0{k + 1},000\nGPS {k}\n\n" for k in range(lines)
        )
    )
    with av.open(str(srt)) as text, av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"bf": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        ss = out.add_stream_from_template(text.streams[0])
        subtitles = [p for p in text.demux() if p.dts is not None]
        for i in range(25 * lines):
            if i % 25 == 0:
                subtitles[i // 25].stream = ss
                out.mux(subtitles[i // 25])
            frame = av.VideoFrame.from_ndarray(frame_image(i, 64, 48), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    return path


def test_a_segment_keeps_the_subtitles_shown_across_its_edges(
    translator: Translator, tmp_path: Path
) -> None:
    # a GPS line begun before --start was left out, and one that outlasted the segment made
    # the file last longer than its picture: each is cut to the segment
    import av

    src, dst = _with_subtitles(tmp_path / "gps.mkv", 3), tmp_path / "seg.mkv"
    convert_video(src, dst, translator, ConvertOptions("night", start=1.5, duration=1.0))
    with av.open(str(dst)) as out:
        lines = [
            (bytes(p).decode(), float(p.pts * p.time_base), float(p.duration * p.time_base))
            for p in out.demux(out.streams.subtitles[0])
            if p.pts is not None
        ]
        assert float(out.duration) / 1e6 == pytest.approx(1.0, abs=0.02)
    assert [line[0] for line in lines] == ["GPS 1", "GPS 2"]
    assert lines[0][1] == 0 and lines[0][2] == pytest.approx(0.48, abs=0.002)
    assert lines[1][1] == pytest.approx(0.48) and lines[1][2] == pytest.approx(0.5, abs=0.002)


def test_max_size_runs_smaller_and_returns_native_size(
    media: dict[str, Path], translator: Translator, tmp_path: Path
) -> None:
    dst = tmp_path / "small.mp4"
    for upsample in ("guided", "bicubic"):
        opts = ConvertOptions("day", resolution=WorkingSize(max_size=64, upsample=upsample))
        convert_video(media["odd"], dst, translator, opts)
        out = read_video(dst)
        assert (out.width, out.height) == (322, 178)
        dst.unlink()
    assert WorkingSize(max_size=64).shape(178, 322) == (35, 64)
    assert WorkingSize(work_size=89).shape(178, 322) == (89, 161)
    assert WorkingSize(work_size=400).shape(178, 322) == (178, 322)  # never upscales


def test_quality_auto_follows_the_model() -> None:
    assert working_size("auto", None, None, "guided", {"work_size": 180}).work_size == 180
    assert working_size("auto", None, None, "guided", {}).work_size is None
    assert working_size("fast", None, None, "guided", {}).work_size == 180
    assert working_size("full", None, None, "guided", {"work_size": 180}).work_size is None
    assert working_size("fast", 222, None, "bicubic", {}).work_size == 222


def test_rotation_helpers_round_trip() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for rot in (0, 90, 180, -90, 270):
        assert np.array_equal(restore(upright(img, rot), rot), img)
    assert upright(img, 90).shape == (3, 2, 3)


def test_truncated_video_is_an_error_and_leaves_nothing(
    media: dict[str, Path], translator: Translator, tmp_path: Path
) -> None:
    from d2nvideo.errors import InputError

    data = media["long"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    dst = tmp_path / "out.mp4"
    with pytest.raises(InputError):
        convert_video(cut, dst, translator, ConvertOptions("night"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


@pytest.mark.parametrize(
    "suffix, codec", [(".mkv", "libx265"), (".webm", None), (".mp4", "libsvtav1")]
)
def test_other_codecs_keep_frames_and_timing(
    suffix: str, codec: str | None, media: dict[str, Path], translator: Translator, tmp_path: Path
) -> None:
    from d2nvideo.video.codecs import EncodeSettings

    dst = tmp_path / f"out{suffix}"
    opts = ConvertOptions("night", encode=EncodeSettings(codec=codec, preset=None))
    convert_video(media["audio"], dst, translator, opts)
    a, b = read_video(media["audio"]), read_video(dst)
    # Matroska cannot store the AAC priming packet's negative time: the muxer shifts every
    # stream by it (46 ms here), so compare timing relative to the first frame.
    assert [t - b.times[0] for t in b.times] == [t - a.times[0] for t in a.times]
    assert (b.width, b.height) == (a.width, a.height)
    assert b.audio  # AAC cannot go into WebM: re-encoded to Opus there (issue 14)


@pytest.mark.parametrize(
    "name, codec, pix_fmt",
    [("a.mp4", "mjpeg", "yuvj420p"), ("b.mp4", "png", "rgb24"), ("c.mov", "prores", "yuv422p10le")],
)
def test_a_codec_that_cannot_take_yuv420p_gets_a_pixel_format_it_takes(
    name: str, codec: str, pix_fmt: str, media, translator: Translator, tmp_path: Path
) -> None:
    import av

    from d2nvideo.video.codecs import EncodeSettings

    dst = tmp_path / name
    opts = ConvertOptions("night", encode=EncodeSettings(codec=codec, preset=None))
    convert_video(media["plain"], dst, translator, opts)
    with av.open(str(dst)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == pix_fmt
        assert len(list(container.decode(stream))) == len(read_video(media["plain"]).times)


def test_a_codec_with_no_pixel_format_for_the_frames_is_one_usage_error(
    media, translator: Translator, tmp_path: Path
) -> None:
    from d2nvideo.errors import UsageError
    from d2nvideo.video.codecs import EncodeSettings

    opts = ConvertOptions("night", encode=EncodeSettings(codec="prores", preset=None))
    with pytest.raises(UsageError, match="cannot encode 37x23 frames"):
        convert_video(media["odder"], tmp_path / "odd.mov", translator, opts)
    assert list(tmp_path.iterdir()) == []


def test_dark_output_watch_warns_once_and_passes_images_through(caplog) -> None:
    from d2nvideo.pipeline import DarkOutputWatch

    watch = DarkOutputWatch("night")
    bright = [np.full((8, 8, 3), 40, np.uint8)]
    black = [np.full((8, 8, 3), 3, np.uint8), np.full((8, 8, 3), 5, np.uint8)]
    with caplog.at_level("WARNING"):
        assert watch(bright, bright) is bright
        assert watch(black, black) is black  # a black input's black output: not the model's
        assert not caplog.records
        assert watch(black, bright * 2) is black and watch(black, bright * 2) is black
    (record,) = caplog.records
    assert "nearly black (mean brightness 4.0 of 255)" in record.getMessage()


def test_resolve_target_auto_and_the_already_there_warning(tmp_path: Path, caplog) -> None:
    from d2nvideo.data.scoring import resolve_target
    from d2nvideo.errors import UsageError
    from d2nvideo.images import write_image

    for name, value in (("day", 190), ("night", 12), ("dusk", 100)):
        write_image(tmp_path / f"{name}.png", np.full((60, 80, 3), value, np.uint8))
    assert resolve_target(tmp_path / "day.png", "auto") == "night"
    assert resolve_target(tmp_path / "night.png", "auto") == "day"
    with pytest.raises(UsageError, match="neither clearly day nor night"):
        resolve_target(tmp_path / "dusk.png", "auto")
    with caplog.at_level("WARNING"):
        assert resolve_target(tmp_path / "day.png", "night") == "night"
        assert not caplog.records
        assert resolve_target(tmp_path / "night.png", "night") == "night"
    assert "already looks like night" in caplog.records[0].getMessage()
    assert resolve_target(tmp_path / "missing.png", "day") == "day"  # reported by convert


@pytest.mark.parametrize("size", [(64, 48), (66, 50), (65, 49)])  # 4:2:0 twice, odd: 4:4:4
def test_encoded_colours_come_back(size: tuple[int, int], tmp_path: Path) -> None:
    """Flat colour blocks survive encode -> decode within a few levels (a swapped channel,
    a wrong matrix or range would not)."""
    import dataclasses

    import av
    from conftest import make_video

    from d2nvideo.video.codecs import EncodeSettings
    from d2nvideo.video.decode import decode_frames
    from d2nvideo.video.encode import encode_frames
    from d2nvideo.video.probe import probe

    colours = [(220, 30, 30), (30, 200, 40), (40, 50, 210), (230, 220, 40), (128, 128, 128)]
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    for k, c in enumerate(colours):  # vertical stripes, 12 px wide, even-aligned
        image[:, k * 12 : (k + 1) * 12] = c
    src = make_video(tmp_path / "src.mp4", frames=3, size=size)
    frames = [dataclasses.replace(f, image=image) for f in decode_frames(src)]
    dst = tmp_path / "out.mp4"
    encode_frames(frames, dst, probe(src), EncodeSettings(crf=0))
    with av.open(str(dst)) as c:
        back = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(back) == 3
    for k, c in enumerate(colours):  # inner columns: away from chroma edges
        got = back[1][:, k * 12 + 3 : (k + 1) * 12 - 3].reshape(-1, 3).mean(0)
        assert np.abs(got - np.array(c)).max() <= 4, (k, got)


@pytest.mark.parametrize("where", ["watch", "written"])
def test_an_error_midway_stops_and_joins_every_worker_thread(
    where: str, media: dict[str, Path], translator: Translator, tmp_path: Path
) -> None:
    import threading

    before = set(threading.enumerate())
    calls = {"n": 0}

    def fail_on_second(n: int | list[np.ndarray], *_: object) -> list[np.ndarray] | None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        return n if isinstance(n, list) else None

    kwargs: dict = {"watch": fail_on_second} if where == "watch" else {"on_frames": fail_on_second}
    with pytest.raises(KeyboardInterrupt) as caught:
        convert_video(
            media["plain"],
            tmp_path / "o.mp4",
            translator,
            ConvertOptions("night", batch_size=1),
            **kwargs,
        )
    # The traceback (held here) keeps the pipeline's generators alive; their threads must be
    # gone all the same, not left to the interpreter's exit.
    assert caught.value.__traceback__ is not None
    assert set(threading.enumerate()) <= before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".mp4"])
def test_seeking_lands_on_the_frames_asked_for_in_every_container(suffix: str, tmp_path: Path):
    """MPEG-TS seeks by byte position and landed after the time asked (a dashcam's .ts clip
    then had 'no frames in the requested range', and a preview showed a later frame)."""
    from conftest import make_video

    from d2nvideo.video.decode import decode_frames, frames_at

    clip = make_video(tmp_path / f"c{suffix}", frames=50)  # 25 fps, one keyframe
    times = [round(f.time, 2) for f in decode_frames(clip, 1.0, 0.2)]
    assert times == [1.0, 1.04, 1.08, 1.12, 1.16]
    assert [round(f.time, 2) for f in frames_at(clip, [0.6, 1.08, 1.92])] == [0.6, 1.08, 1.92]


def test_a_container_that_drops_the_metadata_says_so(media, translator, tmp_path, caplog) -> None:
    # an MPEG-TS dropped the title and comment without a word (first-use review)
    with caplog.at_level("WARNING"):
        convert_video(media["audio"], tmp_path / "a.ts", translator, ConvertOptions("night"))
    said = [r.message for r in caplog.records if "could not keep the clip's metadata" in r.message]
    assert len(said) == 1 and "metadata title: .mkv keeps every tag" in said[0]
    caplog.clear()
    from conftest import make_video

    avi = make_video(tmp_path / "c.avi", frames=3)  # its "software" is its writer's, not a tag
    with caplog.at_level("WARNING"):  # nothing to drop, or a container that keeps it
        convert_video(media["plain"], tmp_path / "p.ts", translator, ConvertOptions("night"))
        convert_video(media["audio"], tmp_path / "a.mkv", translator, ConvertOptions("night"))
        convert_video(avi, tmp_path / "c.mp4", translator, ConvertOptions("night"))
    assert not [r for r in caplog.records if "metadata" in r.message]


def test_the_recording_time_and_the_streams_languages_are_kept(
    media, translator, tmp_path, caplog
) -> None:
    # a dashcam's creation_time was left out of every output (taken for one the muxer writes),
    # an audio stream's language became "und", and an .mp4 dropped make and model unsaid
    import av
    from conftest import make_video

    tagged = {"creation_time": "2021-06-01T06:52:00.000000Z", "make": "Acme", "model": "DC-1"}
    plain = make_video(tmp_path / "plain.mov", frames=3, audio=True, metadata=tagged)
    clip = tmp_path / "clip.mov"
    with av.open(str(plain)) as src, av.open(str(clip), "w") as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        streams[1].metadata["language"] = "fra"
        dst.metadata.update(src.metadata)
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    for suffix in (".mov", ".mkv", ".mp4"):
        out = tmp_path / f"o{suffix}"
        with caplog.at_level("WARNING"):
            convert_video(clip, out, translator, ConvertOptions("night"))
        with av.open(str(out)) as written:
            assert written.metadata["creation_time"].startswith("2021-06-01T06:52:00")
            assert written.streams.audio[0].metadata.get("language") == "fra"
    said = [r.message for r in caplog.records if "could not keep" in r.message]
    assert said == [
        "the .mp4 file could not keep the clip's metadata make, model: .mkv keeps every tag"
    ]


def test_tags_kept_under_another_name_or_language_are_not_called_dropped(
    media, translator, tmp_path, caplog
) -> None:
    # an .mp4 holds 'location' and 'location-eng': converting one of d2nvideo's own outputs
    # again warned that 'location-eng' was lost; a raw .yuv, which cannot be read back, was a
    # traceback after it was written, and the output deleted
    from types import SimpleNamespace

    from conftest import make_video

    from d2nvideo.video.codecs import EncodeSettings
    from d2nvideo.video.streams import stream_tags

    tagged = {"location": "+52.5200+013.4050/", "creation_time": "2024-05-01T10:00:00Z"}
    clip = make_video(tmp_path / "a.mp4", frames=3, metadata=tagged)
    once, twice = tmp_path / "once.mp4", tmp_path / "twice.mp4"
    with caplog.at_level("WARNING"):
        convert_video(clip, once, translator, ConvertOptions("night"))
        convert_video(once, twice, translator, ConvertOptions("night"))
    assert not [r for r in caplog.records if "could not keep" in r.message]
    raw = ConvertOptions("night", encode=EncodeSettings(codec="rawvideo", crf=None))
    convert_video(clip, tmp_path / "o.yuv", translator, raw)
    assert (tmp_path / "o.yuv").stat().st_size == 3 * 64 * 48 * 3 // 2
    mkvmerge = {"language": "deu", "BPS-eng": "128000", "DURATION-eng": "00:00:10.0"}
    assert stream_tags(SimpleNamespace(metadata=mkvmerge)) == {"language": "deu"}


def test_a_container_that_drops_the_rotation_says_so(media, translator, tmp_path, caplog) -> None:
    with caplog.at_level("WARNING"):
        convert_video(media["rotated"], tmp_path / "r.avi", translator, ConvertOptions("night"))
    assert any("cannot store the clip's rotation (90 degrees)" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        convert_video(media["rotated"], tmp_path / "r.mkv", translator, ConvertOptions("night"))
    assert not any("rotation" in r.message for r in caplog.records)


def test_frames_reach_the_encoder_without_their_inputs(
    media: dict[str, Path], translator: Translator, tmp_path: Path, monkeypatch
) -> None:
    # each queued frame carried its input to the encoder, which never reads it: on a GPU the
    # queue holds 64 frames, 1.6 GB of inputs at 4K
    import d2nvideo.pipeline as pipeline

    real, seen = pipeline.encode_frames, []

    def encode(frames, *args):  # type: ignore[no-untyped-def]
        def watched():  # type: ignore[no-untyped-def]
            for frame in frames:
                seen.append(frame.source)
                yield frame

        return real(watched(), *args)

    monkeypatch.setattr(pipeline, "encode_frames", encode)
    opts = ConvertOptions("night", batch_size=2, resolution=WorkingSize(32))
    convert_video(media["plain"], tmp_path / "o.mp4", translator, opts)
    assert len(seen) == 12 and all(s is None for s in seen)
