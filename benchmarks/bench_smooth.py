"""`--smooth flow`'s cost per frame at 720p and 1080p: the stage as it was (flow enlarged to
full size, the occlusion test and the blend weight there) against today's (flow and occlusion
at the flow's working size), in one run, with how close their outputs are.

    python benchmarks/bench_smooth.py [--clip CLIP] [--frames 24] [--heights 720 1080]

The outputs smoothed are the bundled model's translations (to night) of a real clip's frames,
resized to each height; without --clip the synthetic driving clip. Only the smoothing stage is
timed: the translations are made once, before.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _clip import Parser, at_least, description, entry, synthetic_clip

from d2nvideo.errors import InputError
from d2nvideo.evaluation.metrics import ssim
from d2nvideo.fileio import require_file
from d2nvideo.video.decode import Frame, decode_frames
from d2nvideo.video.flow import FlowEstimator, gray, occlusion, warp
from d2nvideo.video.smooth import AGREE_SIGMA, Previous, Step, _flow_step, _run


def before_step(strength: float = 0.6) -> Step:
    """The flow step as it was (d2nvideo 430976b): two full-size flows, the occlusion test,
    the agreement and the blend all at full size, in NumPy."""
    estimate = FlowEstimator()

    def step(out: np.ndarray, grey: np.ndarray, prev: Previous | None) -> tuple[np.ndarray, ...]:
        if prev is not None:
            prev_grey, prev_out = prev
            back = estimate(grey, prev_grey)
            fore = estimate(prev_grey, grey)
            carried, _ = warp(prev_out, back)
            valid = ~occlusion(back, fore)
            agree = np.exp(-0.5 * (np.abs(carried - out).mean(-1) / AGREE_SIGMA) ** 2)
            weight = strength * cv2.GaussianBlur((valid * agree).astype(np.float32), (0, 0), 2.0)
            out = out + weight[..., None] * (carried - out)
        return out, out

    return step  # type: ignore[return-value]


def translated(clip: Path, frames: int, height: int) -> list[Frame]:
    """The clip's first ``frames`` frames at ``height`` (16:9), each translated to night as
    convert does, carrying its input."""
    from d2nvideo.translator import Translator

    tr = Translator.default("cpu")
    size = (round(height * 16 / 9) // 2 * 2, height)
    out = []
    for frame in decode_frames(clip):
        image = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
        night = tr.translate(image, "night")
        out.append(Frame(night, frame.pts, frame.time_base, frame.index, source=image))
        if len(out) >= frames:
            break
    return out


def timed(step: Step, frames: list[Frame]) -> tuple[float, list[np.ndarray]]:
    """Seconds a frame (the first, which has nothing to carry, left out) and the outputs."""
    results, stamps = [], []
    for frame in _run(iter(frames), step):
        stamps.append(time.perf_counter())
        results.append(frame.image)
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1), results


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--frames", type=at_least(2), default=24, help="at least 2 (default 24)")
    parser.add_argument("--heights", type=at_least(16), nargs="+", default=[720, 1080])
    args = parser.parse_args()
    if args.clip is not None:
        require_file(args.clip, "--clip")
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip or synthetic_clip(Path(tmp) / "clip.mp4", 3.0)
        print(f"clip: {clip}, up to {args.frames} frames, translated to night by the bundled model")
        print(
            "| size | frames | before ms/frame | now ms/frame | speed-up "
            "| SSIM now vs before (min) |"
        )
        print("|---|---|---|---|---|---|")
        for height in args.heights:
            frames = translated(clip, args.frames, height)
            if len(frames) < 2:
                raise InputError(f"'{clip}' has {len(frames)} frame(s): timing needs 2")
            before, old = timed(before_step(), frames)
            now, new = timed(_flow_step(0.6), frames)
            worst = min(ssim(gray(a), gray(b)) for a, b in zip(old, new, strict=True))
            w, h = frames[0].image.shape[1], frames[0].image.shape[0]
            print(
                f"| {w}x{h} | {len(frames)} | {before * 1e3:.1f} | {now * 1e3:.1f} "
                f"| {before / now:.2f}x | {worst:.4f} |"
            )


if __name__ == "__main__":
    entry(main)
