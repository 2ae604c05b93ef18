"""Many small files: ``convert --jobs N`` against one process, on this machine's cores.

    python benchmarks/bench_batch.py [--clips 12] [--seconds 1.5] [--size 640x360]
        [--jobs 1 2] [--model M]

Writes a folder of short synthetic driving clips, converts it once per --jobs value with the
bundled model (or --model) in one ``d2nvideo convert`` command each, and prints wall time,
files/s and frames/s, and each speed-up against --jobs 1, measured in one run. Small files
are where extra processes pay: per file, probing, opening the encoder and filling the
pipeline leave cores idle that another file's work can use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _clip import synthetic_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "drive"
        src.mkdir()
        first = synthetic_clip(src / "clip00.mp4", args.seconds, args.size)
        for i in range(1, args.clips):
            (src / f"clip{i:02d}.mp4").write_bytes(first.read_bytes())
        print(f"{args.clips} clips of {args.seconds} s at {args.size}, {os.cpu_count()} cores")
        print(f"{'jobs':>4} {'seconds':>8} {'files/s':>8} {'frames/s':>9} {'speed-up':>9}")
        base = None
        for jobs in args.jobs:
            row = run(src, Path(tmp) / f"out{jobs}", jobs, args.model)
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
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "frames": float(summary["frames"])}


if __name__ == "__main__":
    main()
