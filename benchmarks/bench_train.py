"""Training speed and memory: iterations/s and peak memory at 128x128, 256x256 and 512x288.

    python benchmarks/bench_train.py [--config configs/unit_day2night_256.yaml] [--device cpu]
        [--steps 2] [--sizes 128x128 256x256 512x288]

Each size runs in a fresh process (one D and one G update per iteration, batch 1 unless the
config says otherwise, random images) and reports its own peak: RSS on the CPU,
torch.cuda.max_memory_allocated on a GPU. The study's table 2 (GTX 1080 Ti, UNIT) is printed
beside: 4.4 GB at 256x256 and 7.7 GB at 512x288.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY_GB = {"256x256": 4.4, "512x288": 7.7}

CHILD = """
import json, resource, sys, time, dataclasses, torch
from pathlib import Path
from d2nvideo.training.config import load_config, with_changes
from d2nvideo.training.trainers import build_trainer
from d2nvideo.model.runtime import resolve_device, resolve_precision
cfg = load_config(Path(sys.argv[1]))
w, h = map(int, sys.argv[2].split("x"))
steps = int(sys.argv[3])
device = resolve_device(sys.argv[4])
torch.set_flush_denormal(True)
prec = resolve_precision(cfg.train.precision, device)
tr = build_trainer(cfg, device, prec, False)
b = cfg.train.batch_size
batch = {d: torch.rand(b, 3, h, w, device=device) * 2 - 1 for d in ("day", "night")}
tr.dis_step(batch); tr.gen_step(batch)
if device.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for _ in range(steps):
    tr.dis_step(batch); tr.gen_step(batch); tr.end_step()
if device.type == "cuda":
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"it_s": steps / (time.perf_counter() - t0), "peak_gb": peak, "batch": b,
                  "precision": prec}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "unit_day2night_256.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--sizes", nargs="+", default=["128x128", "256x256", "512x288"])
    args = parser.parse_args()
    print(f"{args.config.name} on {args.device}, {args.steps} timed iterations after a warm-up")
    print(f"{'size':>8} {'it/s':>8} {'s/it':>7} {'peak GB':>8} {'study GB (1080 Ti)':>19}")
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.config), size, str(args.steps), args.device],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        study = STUDY_GB.get(size)
        print(
            f"{size:>8} {r['it_s']:8.3f} {1 / r['it_s']:7.1f} {r['peak_gb']:8.2f} "
            f"{'' if study is None else f'{study:.1f}':>19}"
        )
    print("(CPU peaks are the whole process's RSS, including PyTorch itself, about 0.6 GB)")


if __name__ == "__main__":
    main()
