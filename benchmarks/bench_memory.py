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
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument(
        "--work-size", type=int, default=180, help="the network's shorter side (0: native)"
    )
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model = args.model or d / "bench.safetensors"
        if args.model is None:
            make_model(model)
        rows = []
        for seconds in args.seconds:
            src = d / f"clip_{seconds:g}s.mp4"
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "examples" / "make_test_clip.py"),
                    str(src),
                    "--seconds",
                    str(seconds),
                    "--size",
                    args.size,
                    "--fps",
                    str(args.fps),
                ],
                check=True,
                capture_output=True,
            )
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(src),
                    str(d / f"out_{seconds:g}.mp4"),
                    str(model),
                    str(args.work_size),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append((seconds, json.loads(out.stdout.strip().splitlines()[-1])))
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
    main()
