"""Peak memory of `convert` against video length: it must not grow with the video.

Each conversion runs in a fresh process and reports its own peak RSS (ru_maxrss).

    python benchmarks/bench_memory.py [--seconds 10 60] [--size 640x360] [--fps 30] [--model M]

A large, fast clip (``--size 2880x1620 --fps 60 --seconds 3 10``: a 2.8K dashcam) shows what
the pipeline holds per frame: the frames in its queues, the encoder's lookahead and the
first second of each shot, which steady exposure holds back (at most WARM_UP_BYTES of it).

Without --model a tiny random-weight UNIT (width 4) is used: the network's own memory is
constant per frame whatever its weights, and what this measures is the pipeline. The network
runs at --work-size (180, the bundled model's, as convert runs it; 0: native size).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _clip import Parser, at_least, child, description, entry, frame_size, positive, synthetic_clip

from d2nvideo.fileio import require_file

CHILD = """
import json, resource, sys, time
from pathlib import Path
from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video
from d2nvideo.translator import Translator
src, dst, model = map(Path, sys.argv[1:4])
work = WorkingSize(int(sys.argv[4]) or None)
tr = Translator.from_checkpoint(model, "cpu")
t0 = time.perf_counter()
res = convert_video(src, dst, tr, ConvertOptions("night", batch_size=4, resolution=work))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"frames": res.frames, "seconds": time.perf_counter() - t0, "peak_mb": peak}))
"""


def make_model(path: Path) -> None:
    import torch

    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.model import UNITConfig, build_generator

    torch.manual_seed(0)
    cfg = UNITConfig(width=4, n_res=1, n_shared=1)
    save_checkpoint(path, build_generator(cfg), cfg, {"note": "random weights (benchmark)"})


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("--seconds", type=positive, nargs="+", default=[10, 60])
    parser.add_argument("--size", type=frame_size, default="640x360")
    parser.add_argument("--fps", type=at_least(1), default=30)
    parser.add_argument(
        "--work-size", type=at_least(0), default=180, help="the network's shorter side (0: native)"
    )
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    if args.model is not None:
        require_file(args.model, "--model")
    if min(args.seconds) * args.fps < 1:
        parser.error("--seconds and --fps must make at least one frame")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model = args.model or d / "bench.safetensors"
        if args.model is None:
            make_model(model)
        rows = [
            (seconds, measure(d, i, seconds, model, args)) for i, seconds in enumerate(args.seconds)
        ]
    report(rows, args)


def measure(d: Path, i: int, seconds: float, model: Path, args: argparse.Namespace) -> dict:
    """Write a clip of ``seconds`` and convert it in a fresh process: its frames, time, peak."""
    src = d / f"clip{i}_{seconds:g}s.mp4"  # the index: --seconds 10 10 measures twice
    synthetic_clip(src, seconds, args.size, args.fps)
    cmd = [sys.executable, "-c", CHILD, str(src), str(d / f"out{i}.mp4"), str(model)]
    out = child([*cmd, str(args.work_size)], "the convert child")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def report(rows: list[tuple[float, dict]], args: argparse.Namespace) -> None:
    work = f"work size {args.work_size}" if args.work_size else "native work size"
    print(f"convert peak RSS, {args.size} at {args.fps} fps, {work}, CPU, batch 4")
    print(f"{'clip s':>7} {'frames':>7} {'fps':>7} {'peak MB':>9}")
    for seconds, r in rows:
        print(
            f"{seconds:7g} {r['frames']:7d} {r['frames'] / r['seconds']:7.1f} {r['peak_mb']:9.1f}"
        )
    base = rows[0][1]["peak_mb"]
    for seconds, r in rows[1:]:
        ratio = r["peak_mb"] / base
        change = (ratio - 1) * 100
        print(f"peak({seconds:g} s) / peak({rows[0][0]:g} s) = {ratio:.3f} ({change:+.1f}%)")


if __name__ == "__main__":
    entry(main)
