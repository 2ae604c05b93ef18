"""Spend a lent GPU's minutes on training: a run of the bundled model's config sized to a time
budget, then its exports. Prepared to run in one device call after benchmarks/device_check.py.

    python examples/gpu_train.py DATA OUT SECONDS [--batch 3] [--precision bf16|fp32] [--cpu]

DATA holds ``day/`` and ``night/`` (folders of source folders, as examples/prepare_shared_data.py
writes ``train/``); the run folder is ``$GPU_RUN`` (default OUT/run: keep it out of a device
call's OUT, whose files come back). The recipe is the bundled weights' final losses from step 0
(MODEL.md's v18). Phase A: 150 steps at a constant rate, timed; phase B: resumed with the linear
policy and as many steps as the measured rate fits in what is left; then ``export`` of the
moving average and of the raw generator to OUT. ``--cpu`` rehearses it here (10 steps first).
d2nvideo need not be installed: the training package is aliased from the checkout.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _script import Parser, description

ROOT = Path(__file__).resolve().parents[1]
RECIPE = [
    "loss.struct_to_day=8", "loss.hist=5", "loss.colour=100", "loss.colour_to_day=0",
    "loss.gan_to_day=3", "loss.shift=10", "loss.shift_to_day=0", "train.ema=0.999",
    "train.checkpoint_every=500", "train.image_every=100000", "train.keep_checkpoints=2",
    "train.log_every=250",
]  # fmt: skip


STOPPED: list[int] = []  # the signal that asked this run to stop (the training child got it too)


def train(args: list[str]) -> None:
    """``d2nvideo train ARGS`` in a fresh process (each phase starts clean). A SIGTERM (the
    device call's ``timeout``) reaches the child as well, which saves a state and stops; this
    waits for that rather than killing it."""
    code = subprocess.Popen([sys.executable, __file__, "--phase", *args]).wait()
    if code and not STOPPED:
        raise SystemExit(f"train failed ({code})")


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--cpu", action="store_true")
    a = parser.parse_args()
    if not 0 < a.seconds < float("inf"):
        parser.error(f"SECONDS takes a finite number above 0, not {a.seconds}")
    signal.signal(signal.SIGTERM, lambda signum, frame: STOPPED.append(signum))
    start = time.perf_counter()
    run = Path(os.environ.get("GPU_RUN", str(a.out / "run")))
    a.out.mkdir(parents=True, exist_ok=True)
    try:
        phases(a, run, start)
    finally:  # whatever stopped the run, its last state is exported
        if (run / "state").is_dir():
            export(run, a.out)
        stopped = " (stopped by a signal)" if STOPPED else ""
        print(f"done in {time.perf_counter() - start:.0f} s{stopped}", flush=True)


def phases(a: argparse.Namespace, run: Path, start: float) -> None:
    sets = [x for s in [*RECIPE, f"train.batch_size={a.batch}"] for x in ("--set", s)]
    sets += ["--set", f"train.precision={'fp32' if a.cpu else a.precision}"]
    common = ["--workers", "0" if a.cpu else "6", "--device", "cpu" if a.cpu else "cuda", "-q"]
    first = 10 if a.cpu else 150
    config = str(ROOT / "configs" / "unit_d2n_default.yaml")
    folders = ["--day", str(a.data / "day"), "--night", str(a.data / "night")]
    t0 = time.perf_counter()
    phase_a = [config, *folders, "--out", str(run), "--steps", str(first)]
    train([*phase_a, "--set", "optim.lr_policy=constant", *sets, *common])
    took = time.perf_counter() - t0
    rate = first / max(took - (3 if a.cpu else 12), 1.0)  # less the process's start, roughly
    left = a.seconds - (time.perf_counter() - start) - 40  # 40 s kept for the exports
    steps = first + max(int(rate * (left - 15)), 0)  # 15 s for phase B's own start
    print(f"phase A: {first} steps in {took:.0f} s, ~{rate:.1f} steps/s; on to {steps}", flush=True)
    if steps > first and not STOPPED:
        phase_b = [str(run / "config.yaml"), "--out", str(run), "--resume", "--set"]
        budget = ["--set", f"train.max_minutes={max(left, 1.0) / 60:.3f}"]  # ends on time
        train(
            [*phase_b, "optim.lr_policy=linear", "--set", f"train.steps={steps}", *budget, *common]
        )


def export(run: Path, out: Path) -> None:
    from d2nvideo.cli import main as cli

    for extra, name in (([], "gpu_ema.safetensors"), (["--raw"], "gpu_raw.safetensors")):
        try:
            cli(["export", str(run), *extra, "-o", str(out / name), "--overwrite"])
        except SystemExit as exc:
            if exc.code:
                print(f"export {name} failed: {exc.code}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from device_check import importable  # the same aliasing for a bare checkout

    importable()
    if sys.argv[1:2] == ["--phase"]:
        from d2nvideo.training.cli import train as cli_train

        cli_train(sys.argv[2:], prog_name="train")
    else:
        main()
