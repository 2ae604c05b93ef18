from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import frame_image
from helpers import read_video

from d2nvideo.cli import cli
from d2nvideo.images import read_image
from d2nvideo.preview import compose


def _run(*args: object):
    return CliRunner().invoke(cli, ["preview", *map(str, args), "-q"], catch_exceptions=False)


@pytest.mark.parametrize(
    "layout, size", [("side", (128, 48)), ("stack", (64, 96)), ("wipe", (64, 48))]
)
def test_preview_video_sizes_counts_and_audio(layout, size, media: dict[str, Path], tmp_path):
    out = tmp_path / "p.mp4"
    result = _run(
        media["audio"], "--to", "night", "-o", out, "--model", media["model"], "--layout", layout
    )
    assert result.exit_code == 0, result.output
    a, b = read_video(media["audio"]), read_video(out)
    assert (b.width, b.height) == size
    assert b.times == a.times and b.audio == a.audio


def test_preview_of_a_rotated_video_is_upright(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.mp4"
    assert (
        _run(media["rotated"], "--to", "day", "-o", out, "--model", media["model"]).exit_code == 0
    )
    b = read_video(out)
    assert (b.width, b.height, b.rotation) == (96, 64, 0)


def test_preview_still_and_gif(media: dict[str, Path], tmp_path: Path) -> None:
    still = tmp_path / "c.png"
    assert (
        _run(
            media["long"], "--to", "night", "-o", still, "--at", "2.5", "--model", media["model"]
        ).exit_code
        == 0
    )
    assert read_image(still).shape == (64, 192, 3)
    gif = tmp_path / "p.gif"
    result = _run(
        media["long"],
        "--to",
        "night",
        "-o",
        gif,
        "--duration",
        "2",
        "--model",
        media["model"],
        "--smooth",
        "flow",
    )
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 17 and im.size == (192, 64)  # 2 s at 25 fps, every 3rd frame


def test_a_gif_keeps_a_variable_rate_clips_timing(media, tmp_path: Path) -> None:
    """A phone's clip, 30 fps for 1 s, then 5 fps for 2 s: every GIF frame was shown for the
    same time, so the slow part played six times too fast (found by a helper)."""
    from fractions import Fraction

    from conftest import make_video
    from PIL import Image

    pts = [*range(30), *(30 + 6 * k for k in range(10))]  # in 1/30 s
    clip = make_video(tmp_path / "phone.mp4", pts=pts, time_base=Fraction(1, 30), fps=30)
    gif = tmp_path / "p.gif"
    assert _run(clip, "--to", "night", "-o", gif, "--model", media["model"]).exit_code == 0
    with Image.open(gif) as im:
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    # every 2nd frame (13.3 frames/s on average): 15 of the 30 fps part, 1/15 s apart (GIF
    # counts hundredths: 70, 60, 70...), then 5 of the 5 fps part, 0.4 s apart
    assert len(durations) == 20 and set(durations[:15]) == {60, 70}
    assert durations[15:19] == [400] * 4  # was 150 like every other frame
    assert abs(sum(durations[:15]) - 1000) <= 10


def test_preview_still_past_the_end_is_one_clear_error(media, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "preview",
            str(media["plain"]),
            "--to",
            "night",
            "-o",
            str(tmp_path / "x.png"),
            "--at",
            "99",
            "--model",
            str(media["model"]),
        ],
    )
    assert result.exit_code == 1 and "no frame at 99" in result.output
    assert not (tmp_path / "x.png").exists()


def test_compose_layouts() -> None:
    a = np.zeros((60, 90, 3), np.uint8)
    b = np.full((60, 90, 3), 200, np.uint8)
    assert compose(a, b, "side", "night").shape == (60, 180, 3)
    assert compose(a, b, "stack", "night").shape == (120, 90, 3)
    wipe = compose(a, b, "wipe", "night", phase=0.5)
    assert wipe.shape == (60, 90, 3) and wipe[50, 10].mean() == 200 and wipe[50, 80].mean() == 0


def test_a_still_where_the_header_runs_past_the_last_frame_is_the_last_frame(media, tmp_path):
    # 29.97-fps clips whose header lasts past their last frame: "no frame at 31.97 s (it
    # lasts 32.01 s)"; here 5 frames at 10 fps whose header says 1 s
    import av

    clip = tmp_path / "long_header.mp4"
    with av.open(str(clip), "w") as out:
        vs = out.add_stream("libx264", rate=10, options={"bf": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        packets = []
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(frame_image(i, 64, 48), format="rgb24")
            frame.pts = i
            packets += vs.encode(frame)
        for packet in [*packets, *vs.encode()]:
            if packet.pts == 4:
                packet.duration = round(0.6 / packet.time_base)  # the header: 1 s
            out.mux(packet)
    args = [clip, "--to", "night", "--model", media["model"], "-o", tmp_path / "end.png"]
    result = _run(*args, "--at", "0.85")
    assert result.exit_code == 0, result.output
    assert "frame at 0.40 s" in result.output


def test_a_still_between_the_last_frame_and_the_end_is_the_last_frame(media, tmp_path: Path):
    base = [media["plain"], "--to", "night", "--model", media["model"]]
    result = _run(*base, "-o", tmp_path / "end.tiff", "--at", "0.47")  # 12 frames at 25 fps
    assert result.exit_code == 0, result.output
    assert "frame at 0.44 s" in result.output  # the frame shown, not the time asked
    assert read_image(tmp_path / "end.tiff").shape[0] > 0


@pytest.mark.parametrize(
    "output, extra, message",
    [
        ("p.mp4", ["--at", "0.1"], "--at chooses the frame of an image output"),
        ("p.png", ["--start", "0.2"], "an image output shows one frame"),
        ("p.png", ["--duration", "1"], "choose it with --at, not --duration"),  # named --start
        # found after the model had loaded and a bar was drawn, naming convert's formats only
        ("p.txt", [], "preview writes a video (.mp4, .mkv, .mov, .webm, .ts), a still"),
        ("p.mpd", [], "preview writes a video"),
        ("p", [], "preview writes a video"),
    ],
)
def test_timing_options_of_the_other_output_kind_are_refused(
    media, tmp_path, output, extra, message
):
    from faults import refused

    src = tmp_path / "in.mp4"
    src.write_bytes(media["plain"].read_bytes())
    args = ["preview", src, "--to", "night", "-o", tmp_path / output, *extra, "-q"]
    refused(tmp_path, 2, message, *args)
