"""Write a short synthetic driving clip (a road with moving lane marks, sky, and a tone as
audio) so the tool can be tried without footage of your own.

    python examples/make_test_clip.py clip.mp4 [--seconds 4] [--size 640x360] [--overwrite]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import av
import numpy as np
from _script import Parser, entry

from d2nvideo.errors import D2NError
from d2nvideo.fileio import atomic_output, check_output


def road_frame(t: float, width: int, height: int) -> np.ndarray:
    """A daylight road scene at time ``t`` seconds: (H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = height * 0.45
    img = np.empty((height, width, 3), np.float32)
    sky = y < horizon
    img[sky] = np.stack(
        [110 + 60 * y[sky] / horizon, 160 + 40 * y[sky] / horizon, 235 - 10 * y[sky] / horizon], -1
    )
    ground = ~sky
    img[ground] = np.stack([90 + 0 * y[ground], 110 + 0 * y[ground], 70 + 0 * y[ground]], -1)
    depth = np.clip((y - horizon) / (height - horizon), 1e-3, 1)
    road = ground & (np.abs(x - width / 2) < width * 0.45 * depth)
    img[road] = 95
    dash = road & (np.abs(x - width / 2) < 3 + 6 * depth) & (np.sin(1 / depth * 6 - t * 12) > 0.3)
    img[dash] = 235
    return img.clip(0, 255).astype(np.uint8)


def parse_size(parser: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """'640x360' -> (640, 360); anything else is a usage error."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        parser.error(f"--size takes WIDTHxHEIGHT like 640x360, not '{text}'")
    return int(width), int(height)


def parse() -> argparse.Namespace:
    """The command line, refused in one line (exit 2) before any work where it cannot work."""
    parser = Parser(
        description="Write a short synthetic driving clip (a road with moving lane marks, sky, "
        "and a tone as audio) so that d2nvideo can be tried without footage of your own."
    )
    parser.add_argument("output", type=Path, help="the clip to write: .mp4, .mkv or .mov")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="its length, above 0 (default 4)"
    )
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    parser.add_argument("--fps", type=int, default=30, help="frames a second (default 30)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args()
    args.width, args.height = parse_size(parser, args.size)
    if not math.isfinite(args.seconds):
        parser.error(f"--seconds takes a finite number, not '{args.seconds}'")
    if not (args.fps > 0 and args.seconds * args.fps >= 1):
        parser.error("--fps and --seconds must make at least one frame")
    if args.output.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        parser.error(f"write a .mp4, .mkv or .mov, not '{args.output.name}'")
    if not args.output.absolute().parent.is_dir():  # resolved, a dangling link named its target's
        parser.error(f"the folder of '{args.output}' does not exist: make it first")
    try:  # taken (without --overwrite), a folder, a FIFO, a folder that cannot be written
        check_output(args.output, [], args.overwrite)
    except D2NError as exc:
        parser.error(str(exc))
    return args


def write_clip(path: Path, seconds: float, fps: int, width: int, height: int) -> None:
    """The clip, with a 220 Hz tone as its sound, written to ``path``."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        # 4:2:0 needs even sides; an odd size (321x179) is kept exactly in 4:4:4 instead.
        video.width, video.height = width, height
        video.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(road_frame(i / fps, width, height), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        n = 1024
        for k in range(math.ceil(seconds * 44100 / n)):
            tone = 0.1 * np.sin(2 * math.pi * 220 * (np.arange(n) + k * n) / 44100)
            chunk = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], "fltp", "mono")
            chunk.sample_rate, chunk.pts = 44100, k * n
            out.mux(audio.encode(chunk))
        out.mux(audio.encode())


def main() -> None:
    args = parse()
    # a temporary file beside the output, renamed when whole: an interrupted or failed run
    # leaves no half-written clip under the name (nor a replaced one's remains)
    with atomic_output(args.output) as tmp:
        write_clip(tmp, args.seconds, args.fps, args.width, args.height)
    print(args.output)


if __name__ == "__main__":
    entry(main)
