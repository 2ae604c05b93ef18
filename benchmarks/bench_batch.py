"""Many small files: ``convert --jobs N`` against one process, on this machine's cores.

    python benchmarks/bench_batch.py [--clips 12] [--seconds 1.5] [--size 640x360]
        [--jobs 1 2] [--model M]

Writes a folder of short synthetic driving clips, converts it once per --jobs value with the
bundled model (or --model) in one ``d2nvideo convert`` command each, and prints wall time,
files/s and frames/s, and each speed-up against the first --jobs value (1 by default),
measured in one run. Small files are where extra processes pay: per file, probing, opening
the encoder and filling the pipeline leave cores idle that another file's work can use.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _clip import Parser, at_least, child, description, entry, frame_size, positive, synthetic_clip

from d2nvideo.fileio import require_file


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("--clips", type=at_least(1), default=12)
    parser.add_argument("--seconds", type=positive, default=1.5)
    parser.add_argument("--size", type=frame_size, default="640x360")
    parser.add_argument("--jobs", type=at_least(1), nargs="+", default=[1, 2])
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    if args.model is not None:
        require_file(args.model, "--model")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "drive"
        src.mkdir()
        first = synthetic_clip(src / "clip00.mp4", args.seconds, args.size)
        for i in range(1, args.clips):
            (src / f"clip{i:02d}.mp4").write_bytes(first.read_bytes())
        print(f"{args.clips} clips of {args.seconds} s at {args.size}, {os.cpu_count()} cores")
        print(f"{'jobs':>4} {'seconds':>8} {'files/s':>8} {'frames/s':>9} {'speed-up':>9}")
        base = None
        for i, jobs in enumerate(args.jobs):
            row = run(src, Path(tmp) / f"out{i}", jobs, args.model)
            base = base or row["seconds"]
            print(
                f"{jobs:>4} {row['seconds']:8.1f} {args.clips / row['seconds']:8.2f} "
                f"{row['frames'] / row['seconds']:9.1f} {base / row['seconds']:8.2f}x"
            )


def run(src: Path, out: Path, jobs: int, model: Path | None) -> dict[str, float]:
    cmd = [sys.executable, "-m", "d2nvideo", "convert", str(src), "--to", "night"]
    cmd += ["-o", str(out), "--jobs", str(jobs), "--json", "-q"]
    if model is not None:
        cmd += ["--model", str(model)]
    t0 = time.perf_counter()
    proc = child(cmd, f"d2nvideo convert --jobs {jobs}")
    seconds = time.perf_counter() - t0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "frames": float(summary["frames"])}


if __name__ == "__main__":
    entry(main)
