"""Fault injection for the dataset commands (issue 14): extract and relabel refuse bad numbers,
never replace an input or an earlier run's outputs unasked, cope with file names that are not
UTF-8 and with malformed label files, and say when a folder cannot be listed."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import frame_image, make_video
from faults import fails, invoke, refused, snapshot

from d2nvideo.data import relabel as rl
from d2nvideo.data.extract import MAX_TIMES, Sampling, read_manifest, sample_times
from d2nvideo.data.sources import Item, from_bdd, from_nexet
from d2nvideo.errors import InputError
from d2nvideo.fileio import files_under
from d2nvideo.images import write_image
from d2nvideo.video.probe import probe


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    """A 160x96 clip of 10 frames at 10 fps."""
    return make_video(tmp_path / "tiny.mp4", frames=10, size=(160, 96), fps=10)


def _stills(folder: Path, n: int = 4) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{chr(97 + i)}.png" for i in range(n)]
    for i, path in enumerate(paths):
        write_image(path, frame_image(i, 40, 24))
    return paths


def _relabel(*args: object) -> list[object]:
    return ["relabel", *args, "-q", "--workers", "1"]


# --- relabel: inputs and earlier outputs are never replaced unasked -----------------------


def test_relabel_refuses_an_output_that_is_an_input_image(tmp_path: Path) -> None:
    folder = tmp_path / "rlin"
    first = _stills(folder)[0]
    (folder / "histogram.png").write_bytes(first.read_bytes())
    argv = _relabel("--folder", f"day={folder}", "-o", folder)
    refused(tmp_path, 2, "lies inside the input folder", *argv)
    refused(tmp_path, 2, "lies inside the input folder", *argv, "--overwrite")


def test_relabel_refuses_an_output_inside_an_input_folder(tmp_path: Path) -> None:
    # accepted: its histograms were then read as images of the folder's label, and a
    # relabel of that folder listed histogram.png in train_day.txt
    folder, night = tmp_path / "day", tmp_path / "night"
    _stills(folder), _stills(night)
    argv = _relabel("--folder", f"day={folder}", "--folder", f"night={night}")
    refused(tmp_path, 2, "lies inside the input folder", *argv, "-o", night / "out")
    assert not (night / "out").exists()
    assert invoke(*argv, "-o", tmp_path / "out").exit_code == 0


def test_relabel_refuses_to_replace_its_label_file(tmp_path: Path) -> None:
    _stills(tmp_path / "img")
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels.csv").write_text("image_filename,lighting\na.png,Day\n")
    argv = _relabel("--nexet", out / "labels.csv", "--images", tmp_path / "img", "-o", out)
    refused(tmp_path, 2, "would replace the input", *argv, "--overwrite")


def test_relabel_refuses_existing_outputs_unless_overwrite(tmp_path: Path) -> None:
    _stills(tmp_path / "img")
    out = tmp_path / "out"
    argv = _relabel("--folder", f"day={tmp_path / 'img'}", "-o", out)
    assert invoke(*argv).exit_code == 0
    (out / "labels.csv").write_text("mine")
    refused(tmp_path, 2, "exists; pass --overwrite", *argv)
    result = invoke(*argv, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "labels.csv").read_text().startswith("path,original")
    assert not [p for p in out.iterdir() if ".part" in p.name]


def test_relabel_resumes_without_overwrite(tmp_path: Path) -> None:
    paths = _stills(tmp_path / "img")
    out = tmp_path / "out"
    out.mkdir()
    (out / rl.PARTIAL).write_text(f"path,mean,upper_p75,median,dark\n{paths[0]},100,150,90,0.1\n")
    (out / "labels.csv").write_text("written before the run stopped\n")  # its own output
    result = invoke(*_relabel("--folder", f"day={tmp_path / 'img'}", "-o", out))
    assert result.exit_code == 0, result.output
    assert (out / "labels.csv").read_text().startswith("path,")
    assert not (out / rl.PARTIAL).exists()


@pytest.mark.parametrize(
    "option, value",
    [
        ("--split", "nan"),
        ("--night-max", "nan"),
        ("--day-min", "nan"),
        ("--night-max", "inf"),
        ("--split", "-inf"),
    ],
)
def test_relabel_refuses_non_finite_numbers(option: str, value: str, tmp_path: Path) -> None:
    _stills(tmp_path / "img")
    argv = _relabel("--folder", f"day={tmp_path / 'img'}", "-o", tmp_path / "o", option, value)
    refused(tmp_path, 2, option, *argv)


# --- label files with fields of the wrong type ---------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "a.png", "attributes": {"timeofday": 5}},
        {"name": "a.png", "attributes": {"timeofday": None}},
        {"name": "a.png", "attributes": {"timeofday": ["day"]}},
        {"name": "a.png", "attributes": {"timeofday": " "}},
        {"name": "a.png", "attributes": ["day"]},
        {"name": 5, "attributes": {"timeofday": "day"}},
        {"name": None, "attributes": {"timeofday": "day"}},
        {"name": "", "attributes": {"timeofday": "day"}},
        "a.png",
        None,
        # a lone surrogate: no file is named so, and writing labels.csv raised at the end
        {"name": "\ud800.png", "attributes": {"timeofday": "day"}},
        {"name": "a.png", "attributes": {"timeofday": "\udfff"}},
    ],
)
def test_bdd_fields_of_the_wrong_type_are_skipped_rows(entry: object, tmp_path: Path) -> None:
    _stills(tmp_path / "img")
    good = {"name": "b.png", "attributes": {"timeofday": "daytime"}}
    (tmp_path / "b1.json").write_text(json.dumps([entry, good]))
    sources = from_bdd(tmp_path / "b1.json", tmp_path / "img")
    assert sources.skipped_rows == 1
    assert [i.normal for i in sources.items] == ["day"]
    argv = ["--bdd", tmp_path / "b1.json", "--images", tmp_path / "img", "-o", tmp_path / "o1"]
    result = invoke(*_relabel(*argv, "--json"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped_rows"] == 1


def test_nexet_short_rows_are_skipped_and_items_of_any_label_are_safe(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("image_filename,lighting,city\na.png\n,Day\nb.png,Day,x\n")
    sources = from_nexet(tmp_path / "t.csv", tmp_path)
    assert sources.skipped_rows == 2 and len(sources.items) == 1
    assert Item(tmp_path / "a.png", 5).normal == "other"  # type: ignore[arg-type]


# --- extract: numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fps", "nan"], "--fps"),
        (["--fps", "inf"], "--fps"),
        (["--every", "1" + "0" * 400], "--every"),
    ],
)
def test_extract_refuses_non_finite_rates(
    args: list[str], message: str, tiny: Path, tmp_path: Path
) -> None:
    refused(tmp_path, 2, message, "extract", tiny, "-o", tmp_path / "ex", "-q", *args)


def test_extract_refuses_a_still(tiny: Path, tmp_path: Path) -> None:
    # FFmpeg reads a JPEG as a clip of one frame: "2 of 2 videos", and a copy of the still
    still = tmp_path / "day.jpg"
    write_image(still, frame_image(0, 40, 24))
    refused(tmp_path, 2, "is an image: extract takes", "extract", tiny, still, "-o", tmp_path / "e")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    "sampling, expected",
    [
        (Sampling(every=None, fps=1e8, max_frames=2), 2),
        (Sampling(every=None, count=100_000_000, max_frames=2), 2),
        (Sampling(every=None, fps=1e8), MAX_TIMES),
        (Sampling(every=None, count=100_000_000), 10),  # no more than the clip's frames
        (Sampling(every=1e-12), MAX_TIMES),
        (Sampling(every=1e12), 1),
    ],
)
def test_sample_times_stay_bounded(sampling: Sampling, expected: int, tiny: Path) -> None:
    times = sample_times(probe(tiny), sampling)
    assert len(times) == expected and times == sorted(times)


def test_a_rate_above_a_variable_rate_clips_takes_every_frame(tmp_path: Path) -> None:
    from fractions import Fraction

    # 30 frames: 25 in the first half second (50 fps), 5 over the next 2.5 s (2 fps)
    pts = [20 * i for i in range(25)] + [500 + 500 * i for i in range(5)]
    clip = make_video(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 1000))
    result = invoke("extract", clip, "-o", tmp_path / "ex", "-q", "--json", "--fps", "1000")
    assert result.exit_code == 0, result.output
    # all 25 of the burst (a grid thinned to the clip's average rate kept about 10), and the
    # slow part's frames up to the container's duration
    assert json.loads(result.stdout)["written"] >= 28


@pytest.mark.parametrize("args", [["--fps", "1e8"], ["--frames", "100000000"]])
def test_extract_far_above_the_frame_rate_takes_every_frame(
    args: list[str], tiny: Path, tmp_path: Path
) -> None:
    result = invoke("extract", tiny, "-o", tmp_path / "ex", "-q", "--json", *args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] >= 9
    capped = invoke("extract", tiny, "-o", tmp_path / "ex2", "-q", *args, "--max-frames", "2")
    assert capped.exit_code == 0 and len(list((tmp_path / "ex2").glob("*.jpg"))) == 2


# --- file names that are not UTF-8 ------------------------------------------------------------


def _odd_name(folder: Path, name: bytes, data: bytes) -> Path:
    folder.mkdir()
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    try:
        path.write_bytes(data)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    return path


def test_extract_lists_a_name_that_is_not_utf8(tiny: Path, tmp_path: Path) -> None:
    _odd_name(tmp_path / "uni", b"\xff.mp4", tiny.read_bytes())
    out = tmp_path / "uniex"
    result = invoke("extract", tmp_path / "uni", "-o", out, "-q", "--fps", "10")
    assert result.exit_code == 0, result.output
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 10 and all(os.fsencode(f).startswith(b"\xff_") for f in rows)
    assert all((out / f).is_file() for f in rows)
    again = invoke("extract", tmp_path / "uni", "-o", out, "--fps", "10")
    assert "0 frames written, 10 already there" in again.output


def test_relabel_lists_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    folder = tmp_path / "day"
    _odd_name(folder, b"\xfe.png", _stills(tmp_path / "src")[0].read_bytes())
    out = tmp_path / "o"
    result = invoke(*_relabel("--folder", f"day={folder}", "-o", out))
    assert result.exit_code == 0, result.output
    assert not (out / rl.PARTIAL).exists()
    assert b"\xfe.png" in (out / "labels.csv").read_bytes()
    with (out / "labels.csv").open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        (row,) = csv.DictReader(fh)
    assert Path(row["path"]).is_file()
    from d2nvideo.training.data import DomainLists, _read_relabeled

    (out / "train_night.txt").write_text("")
    (out / "train_day.txt").write_bytes(str(folder).encode() + b"/\xfe.png\n")
    lists = DomainLists()
    _read_relabeled(out, lists)  # train --relabeled reads the names back as relabel wrote them
    assert [p.is_file() for p in lists.day] == [True]


# --- folders that cannot be listed ------------------------------------------------------------


def _unlistable(monkeypatch: pytest.MonkeyPatch, locked: Path) -> None:
    """``locked`` fails to list as it would with mode 000 for a user who is not root (the
    tests run as root, whom permissions do not stop)."""
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if os.path.realpath(path) == os.path.realpath(locked):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unlistable_subfolder_is_named_in_a_warning(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "np"
    (root / "sub").mkdir(parents=True)
    (root / "a.mp4").write_bytes(tiny.read_bytes())
    (root / "sub" / "b.mp4").write_bytes(tiny.read_bytes())
    _unlistable(monkeypatch, root / "sub")
    with caplog.at_level(logging.WARNING):
        assert list(files_under(root)) == [root / "a.mp4"]
    assert any(str(root / "sub") in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = invoke("extract", root, "-o", tmp_path / "ex", "-q")
    assert result.exit_code == 0, result.output
    assert any("cannot be listed" in r.getMessage() for r in caplog.records)


def test_an_unlistable_root_is_an_input_error(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "np"
    root.mkdir()
    (root / "a.mp4").write_bytes(tiny.read_bytes())
    _unlistable(monkeypatch, root)
    with pytest.raises(InputError, match="cannot be listed"):
        list(files_under(root))
    before = snapshot(tmp_path)
    fails(invoke("extract", root, "-o", tmp_path / "ex", "-q"), 1, "cannot be listed")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("sampling", [Sampling(every=None, fps=1000), Sampling(every=0.5)])
def test_extracts_progress_counts_frames_not_sample_times(
    sampling: Sampling, tiny: Path, tmp_path: Path
) -> None:
    # a rate finer than the clip's planned a time per millisecond: the bar counted times (100
    # for 10 frames), its rate read ten times too high and it jumped to the end of each clip
    from d2nvideo.data.extract import ExtractOptions, ExtractResult, extract_video, planned_frames

    info = probe(tiny)
    steps: list[int] = []
    result = ExtractResult()
    extract_video(
        tiny, info, tmp_path / "a", ExtractOptions(sampling=sampling), {}, result, steps.append
    )
    assert sum(steps) == planned_frames([(tiny, info)], sampling) == result.written
    assert set(steps) <= {0, 1}


def test_extract_at_a_matroska_clips_own_rate_takes_every_frame(tmp_path: Path) -> None:
    # Matroska stores milliseconds: the 30-fps clip's second frame sits at 0.033 s, under the
    # 1/30 s asked for, so the third frame was taken for it and a third of the frames were lost
    clip = make_video(tmp_path / "c.mkv", frames=15, fps=30)
    result = invoke("extract", clip, "-o", tmp_path / "ex", "-q", "--json", "--fps", "30")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == 15


def test_a_segment_of_a_matroska_clip_starts_at_the_frame_asked_for(tmp_path: Path) -> None:
    # --start 1/30 s skipped the frame stored at 0.033 s (milliseconds) and took one too many
    # at the end: adjacent segments still share no frame and lose none
    from d2nvideo.video.decode import decode_frames

    clip = make_video(tmp_path / "c.mkv", frames=12, fps=30)
    every = [f.pts for f in decode_frames(clip)]
    first = [f.pts for f in decode_frames(clip, 1 / 30, 3 / 30)]
    second = [f.pts for f in decode_frames(clip, 4 / 30, 3 / 30)]
    assert first + second == every[1:7]


def test_a_frame_counting_time_base_keeps_the_first_frame_at_or_after(tmp_path: Path) -> None:
    # a time base of 1/30 counts frames: half a tick early would be half a frame early
    from fractions import Fraction

    from d2nvideo.video.decode import frames_at

    clip = make_video(
        tmp_path / "c.avi", pts=list(range(10)), time_base=Fraction(1, 30), codec="mpeg4"
    )
    assert probe(clip).time_base == Fraction(1, 30)
    got = [f.time for f in frames_at(clip, [(3 + 0.4) / 30])]
    assert got == [pytest.approx(4 / 30, abs=1e-3)]


def test_an_avi_with_b_frames_decodes_in_order_with_increasing_times(tmp_path: Path) -> None:
    # AVI stores no presentation times: with B-frames, the frames decoded in display order
    # carry the times of others (1, 3, 2, 5, ...), and convert's encoder refused them with a
    # traceback ("Invalid argument")
    import av

    from d2nvideo.video.decode import decode_frames

    clip = make_video(tmp_path / "b.avi", frames=30)
    with av.open(str(clip)) as container:
        raw = [f.pts for f in container.decode(video=0)]
    assert raw != sorted(raw), "x264 wrote no B-frames: the premise of this test is gone"
    frames = list(decode_frames(clip))
    pts = [f.pts for f in frames]
    assert len(frames) == 30 and pts == sorted(set(pts))
    for i, frame in enumerate(frames):
        error = np.abs(frame.image.astype(int) - frame_image(i, 64, 48)).mean()
        assert error < 8, f"frame {i} is another frame's picture"


def test_convert_keeps_every_frame_of_an_avi_with_b_frames(media, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "b.avi", frames=30)
    out = tmp_path / "o.mp4"
    args = ["convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert probe(out).frames == 30


def test_sample_times_stay_bounded_whatever_length_a_header_claims(tiny: Path) -> None:
    # a header's length of 10^9 s gave an estimate of 25e9 frames, ten times that in planned
    # times, and extract filled 24 GB
    import dataclasses

    from d2nvideo.data.extract import MAX_PLANNED

    claimed = dataclasses.replace(probe(tiny), duration=1e9, frames=25 * 10**9, frames_exact=False)
    assert len(sample_times(claimed, Sampling(every=None, fps=1000))) == MAX_PLANNED


def _late(path: Path) -> Path:
    """2 s at 25 fps whose clock starts at 100 s (an MPEG-TS clip's rarely starts at 0)."""
    from fractions import Fraction

    return make_video(path, frames=50, pts=list(range(2500, 2550)), time_base=Fraction(1, 25))


@pytest.mark.parametrize("suffix", [".ts", ".mkv"])
def test_start_counts_from_the_first_frame_everywhere(suffix: str, media, tmp_path: Path) -> None:
    # convert --start and preview's GIF counted from 0 on the file's clock (no frames there),
    # extract and preview --at from the first frame; a Matroska clip's length was 102 s
    from d2nvideo.pipeline import ConvertOptions, segment
    from d2nvideo.video.decode import decode_frames

    clip = _late(tmp_path / f"late{suffix}")
    info = probe(clip)
    assert (info.start_time, info.duration, info.frames) == (100.0, 2.0, 50)
    start, end = segment(ConvertOptions("night", start=1.0, duration=0.4), info)
    assert next(f.time for f in decode_frames(clip, start, 0.4)) == 101.0 and end == 101.4
    model = ["--model", media["model"], "-q"]
    gif = invoke("preview", clip, "--to", "night", "-o", tmp_path / "p.gif", *model)
    assert gif.exit_code == 0, gif.output
    out = tmp_path / "seg.mp4"
    cut = ["--start", "1", "--duration", "0.4"]
    result = invoke("convert", clip, "--to", "night", "-o", out, *cut, *model)
    assert result.exit_code == 0, result.output
    frames = list(decode_frames(out))
    assert len(frames) == 10 and frames[0].time == 0
    ex = invoke("extract", clip, "-o", tmp_path / "ex", "-q", "--json", "--frames", "3")
    assert ex.exit_code == 0 and json.loads(ex.stdout)["written"] == 3, ex.output


def test_a_copied_cut_of_an_mp4_converts_the_frames_it_shows(media, tmp_path: Path) -> None:
    # `ffmpeg -ss 0.6 -c copy` keeps the GOP before the cut, hidden by an edit list: the
    # container counts 10 frames, 5 play, and convert refused the file as truncated
    from fractions import Fraction

    clip = make_video(tmp_path / "cut.mp4", pts=list(range(-5, 5)), time_base=Fraction(1, 25))
    assert probe(clip).frames == 5
    out = tmp_path / "o.mp4"
    result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q")
    assert result.exit_code == 0, result.output
    assert probe(out).frames == 5


def test_the_last_stretch_of_a_late_clock_decodes(tmp_path: Path) -> None:
    # a seek into a late-starting MPEG-TS landed past its last frame and was not retried: the
    # end of the file was taken for 2 s on its own clock, not 102
    from d2nvideo.video.decode import decode_frames, frames_at

    clip = _late(tmp_path / "late.ts")
    pieces = [len(list(decode_frames(clip, 100 + 0.4 * k, 0.4))) for k in range(5)]
    assert pieces == [10] * 5
    assert [round(f.time, 2) for f in frames_at(clip, [101.7])] == [101.72]


def test_an_edit_list_hiding_under_one_percent_is_not_called_truncated(tmp_path: Path) -> None:
    # the edit-list test allowed 1% where the truncation check allowed 0.5%: a real clip
    # (968 stored, 959 shown) was still refused as truncated
    from fractions import Fraction

    clip = make_video(tmp_path / "cut.mp4", pts=list(range(-3, 397)), time_base=Fraction(1, 25))
    info = probe(clip)
    assert (info.frames, info.frames_exact) == (397, False)
