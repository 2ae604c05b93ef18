"""Sparse frame extraction against decoding every frame, on a 1280x720 H.264 clip.

    python benchmarks/bench_extract.py [--seconds 60] [--every 1]

Both take the same frames (one per --every seconds); "decode all" decodes every frame and
keeps the ones it needs, "d2nvideo" seeks to the keyframe before each sample when that skips
decoding (frames_at). The clip is synthetic (examples/make_test_clip.py), libx264 defaults
(keyframe at most every 250 frames, scene-cut keyframes).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _clip import Parser, description, entry, positive, synthetic_clip

from d2nvideo.data.extract import Sampling, sample_times
from d2nvideo.fileio import require_file
from d2nvideo.video.decode import decode_frames, frames_at, keyframe_times
from d2nvideo.video.probe import open_input, probe, video_stream


def decode_all(path: Path, times: list[float]) -> int:
    wanted, kept = list(times), 0
    for frame in decode_frames(path):
        if wanted and frame.time >= wanted[0] - 1e-6:
            frame.image.copy()
            kept += 1
            while wanted and wanted[0] <= frame.time + 1e-6:
                wanted.pop(0)
    return kept


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("--seconds", type=positive, default=60)
    parser.add_argument("--every", type=positive, default=1.0)
    parser.add_argument("--clip", type=Path, default=None, help="Use this video instead.")
    args = parser.parse_args()
    if args.clip is not None:
        require_file(args.clip, "--clip")
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip or Path(tmp) / "clip720.mp4"
        if args.clip is None:
            synthetic_clip(clip, args.seconds)
        info = probe(clip)
        times = sample_times(info, Sampling(every=args.every))
        with open_input(clip) as c:
            vs = video_stream(c, clip)
            keys = keyframe_times(vs, vs.time_base) or []
        print(
            f"{clip.name}: {info.width}x{info.height}, {info.frames} frames, "
            f"{info.duration:.1f} s, {len(keys)} keyframes; sampling every {args.every:g} s "
            f"-> {len(times)} frames"
        )
        rows = []
        for name, fn in (
            ("decode all", lambda: decode_all(clip, times)),
            ("d2nvideo (seek)", lambda: sum(1 for _ in frames_at(clip, times))),
        ):
            t0 = time.perf_counter()
            n = fn()
            rows.append((name, n, time.perf_counter() - t0))
        print(f"{'mode':16} {'frames':>6} {'seconds':>8} {'frames/s':>9}")
        for name, n, s in rows:
            print(f"{name:16} {n:6d} {s:8.2f} {n / s:9.1f}")
        print(f"speed-up: {rows[0][2] / rows[1][2]:.2f}x")


if __name__ == "__main__":
    entry(main)
