"""Training speed and memory.

    python benchmarks/bench_train.py recipes [--steps 6] [--compile]
        steps per hour of the bundled model's training, before and after issue 10, in one run
    python benchmarks/bench_train.py split [--steps 6]
        where a step of the bundled recipe goes: the generator update against the discriminators'
    python benchmarks/bench_train.py sizes [--config configs/unit_day2night_256.yaml]
        [--device cpu] [--steps 2] [--sizes 128x128 256x256 512x288]
        iterations/s and peak memory per crop size, beside the study's table 2

Every measurement runs in a fresh process (one D and one G update per iteration on random
images, after a warm-up) and reports its own peak: RSS on the CPU, torch.cuda.max_memory_allocated
on a GPU. ``recipes`` compares, on this machine:

1. the recipe the 2,400-step model was trained with (width 16, 3 downsamplings, 3 residual
   blocks, 5x5 upsampling and 7x7 output convs, 3-layer discriminators, 128x128 crops, batch 4),
   as the code ran it then (every convolution NCHW, the discriminator step making its own
   translations);
2. the same maths with this code's CPU layout (thin convolutions channels-last in training);
3. the new recipe (configs/unit_d2n_default.yaml: 4 residual blocks, 3x3 upsampling and output
   convs, 4-layer discriminators, 160x160 crops, batch 3), as the bundled model trained;
4. the discriminators learning from the generator step's translations instead of a generator
   pass of their own;
5. the same as ``Trainer.step`` runs it today: the generator step's encoder and decoder calls
   batched over both domains (``UNITForward`` in training/forward.py; the same maths in fewer,
   larger calls);
6. today's with ``OMP_WAIT_POLICY=PASSIVE``;
7. today's code at the old recipe's 128x128 crops, with two residual blocks per encoder and
   decoder (``FAST_RECIPE``; MODEL.md compares what it learns in an hour with the old recipe);
8. the same with ``model.antialias`` (a fixed blur at each resampling; MODEL.md measures what it
   does to flicker);
9. (``--compile``) today's recipe with ``torch.compile`` on the forward passes (the warm-up, not
   timed, includes several minutes of compiling).

Steps per hour alone flatters a recipe that does less per step, so crop megapixels per hour
(both domains) are printed beside.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from _clip import Parser, at_least, child, description, entry, frame_size

ROOT = Path(__file__).resolve().parents[1]
STUDY_GB = {"256x256": 4.4, "512x288": 7.7}
NEW = ROOT / "configs" / "unit_d2n_default.yaml"
OLD_RECIPE = [
    "model.n_res=3",
    "model.up_kernel=5",
    "model.out_kernel=7",
    "dis.n_layers=3",
    "data.crop=[128, 128]",
    "train.batch_size=4",
]

# the cheaper recipe of MODEL.md's A/B from scratch (work_local/train_ab.sh): today's recipe at the
# 2,400-step model's crop size, with two residual blocks per encoder and decoder instead of four
FAST_RECIPE = ["data.crop=[128, 128]", "model.n_res=2"]

CHILD = """
import json, resource, sys, time, torch
from pathlib import Path
import d2nvideo.model.layers as layers
from d2nvideo.training.config import load_config
from d2nvideo.training.trainers import build_trainer
from d2nvideo.model.runtime import resolve_device, resolve_precision, set_fast_flags
args = json.loads(sys.argv[1])
cfg = load_config(Path(args["config"]), args["overrides"])
if not args["thin"]:
    layers.THIN = 0  # every convolution NCHW, as before the channels-last change
h, w = args["size"] or cfg.data.crop
device = resolve_device(args["device"])
set_fast_flags(device)
prec = resolve_precision(cfg.train.precision, device)
tr = build_trainer(cfg, device, prec, False)
if args["per_domain"]:  # the generator step's encode/decode calls per domain, as before
    tr.gen_forward.batched = False
if args["compile"]:  # inductor on the generator's and the discriminators' forward passes
    tr.gen_forward = torch.compile(tr.gen_forward)
    tr.dis_forward = torch.compile(tr.dis_forward)
b = cfg.train.batch_size
batch = {d: torch.rand(b, 3, h, w, device=device) * 2 - 1 for d in ("day", "night")}
def step():
    if args["own_fakes"]:  # the discriminator step makes its own translations, as before
        tr.dis_step(batch); tr.gen_step(batch); tr.end_step()
    else:
        tr.step(batch)
for _ in range(2):
    step()
if device.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for _ in range(args["steps"]):
    step()
if device.type == "cuda":
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
seconds = (time.perf_counter() - t0) / args["steps"]
print(json.dumps({"s_step": seconds, "peak_gb": peak, "batch": b, "h": h, "w": w,
                  "precision": prec}))
"""


def measure(
    config: Path,
    overrides: list[str],
    steps: int,
    device: str = "cpu",
    size: tuple[int, int] | None = None,
    thin: bool = True,
    env: dict[str, str] | None = None,
    own_fakes: bool = False,
    compile: bool = False,
    per_domain: bool = False,
) -> dict[str, float]:
    spec = {"config": str(config), "overrides": overrides, "steps": steps, "device": device}
    spec |= {"size": size, "thin": thin, "own_fakes": own_fakes, "compile": compile}
    spec |= {"per_domain": per_domain}
    what = f"the {'x'.join(map(str, size[::-1])) if size else 'default-size'} run"
    out = child(
        [sys.executable, "-c", CHILD, json.dumps(spec)], what, env={**os.environ, **(env or {})}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def recipes(args: argparse.Namespace) -> None:
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}  # OpenMP threads sleep instead of spinning
    # name, config overrides, how it runs where it differs from today's ``measure`` defaults
    before = {"own_fakes": True, "per_domain": True}  # D's own generator pass, per-domain calls
    rows: list[tuple[str, list[str], dict[str, Any]]] = [
        ("2,400-step recipe, as it ran", OLD_RECIPE, {**before, "thin": False}),
        ("same maths, channels-last thin convs", OLD_RECIPE, before),
        ("new recipe, D makes its own fakes", [], before),
        ("new recipe, D on G's fakes", [], {"per_domain": True}),
        ("same, G's calls batched (today)", [], {}),
        ("today, OMP_WAIT_POLICY=PASSIVE", [], {"env": passive}),
        ("today's code, 128 crops, 2 res blocks", FAST_RECIPE, {}),
        ("same, anti-aliased (model.antialias)", [*FAST_RECIPE, "model.antialias=true"], {}),
    ]
    if args.compile:
        rows.append(("today, torch.compile", [], {"compile": True}))
    print(f"CPU training steps, {args.steps} timed after a warm-up, one process each")
    print(f"{'recipe':38} {'s/step':>7} {'steps/h':>8} {'Mpx/h':>7} {'vs 1':>6} {'Mpx vs 1':>9}")
    base: dict[str, float] | None = None
    for name, overrides, how in rows:
        r = measure(NEW, overrides, args.steps, **how)
        per_hour = 3600 / r["s_step"]
        mpx = per_hour * 2 * r["batch"] * r["h"] * r["w"] / 1e6
        base = base or {"steps": per_hour, "mpx": mpx}
        print(
            f"{name:38} {r['s_step']:7.2f} {per_hour:8.0f} {mpx:7.0f} "
            f"{per_hour / base['steps']:5.2f}x {mpx / base['mpx']:8.2f}x"
        )


SPLIT = """
import sys, time, torch
from pathlib import Path
from d2nvideo.training.config import load_config
from d2nvideo.training.trainers import build_trainer
cfg = load_config(Path(sys.argv[1]))
tr = build_trainer(cfg, torch.device("cpu"), "fp32", False)
b, (h, w) = cfg.train.batch_size, cfg.data.crop
batch = {d: torch.rand(b, 3, h, w) * 2 - 1 for d in ("day", "night")}
for _ in range(2):
    tr.step(batch)
g = d = 0.0
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); _, fakes = tr._gen_update(batch); g += time.perf_counter() - t
    t = time.perf_counter(); tr.dis_step(batch, fakes); d += time.perf_counter() - t
n = int(sys.argv[2])
print(f"generator update {g / n:.2f} s, discriminator update {d / n:.2f} s a step")
"""


def split(args: argparse.Namespace) -> None:
    """Where the bundled recipe's step goes: the generator update against the
    discriminators' (the generator's losses include its pass through the discriminators)."""
    out = child([sys.executable, "-c", SPLIT, str(NEW), str(args.steps)], "the split run")
    print(out.stdout.strip())


def sizes(args: argparse.Namespace) -> None:
    from d2nvideo.model.runtime import resolve_device

    resolve_device(args.device)  # a bad --device: a usage error (2), not a child's failure (1)
    print(f"{args.config.name} on {args.device}, {args.steps} timed iterations after a warm-up")
    print(f"{'size':>8} {'it/s':>8} {'s/it':>7} {'peak GB':>8} {'study GB (1080 Ti)':>19}")
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        r = measure(args.config, [], args.steps, args.device, (h, w))
        study = STUDY_GB.get(size)
        print(
            f"{size:>8} {1 / r['s_step']:8.3f} {r['s_step']:7.1f} {r['peak_gb']:8.2f} "
            f"{'' if study is None else f'{study:.1f}':>19}"
        )
    print("(CPU peaks are the whole process's RSS, including PyTorch itself, about 0.6 GB)")


def config_file(text: str) -> Path:
    """An argparse type: a config file, or a shipped config's name (``tiny``)."""
    path = Path(text)
    if path.is_file():
        return path
    shipped = ROOT / "configs" / f"{text}.yaml"
    if not path.exists() and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")))
    raise argparse.ArgumentTypeError(f"'{text}' is neither a config file nor one of {names}")


def main() -> None:
    parser = Parser(description=description(__doc__))
    sub = parser.add_subparsers(dest="what", required=True, parser_class=Parser)
    r = sub.add_parser("recipes", help="the bundled model's recipe, before and after")
    r.add_argument("--steps", type=at_least(1), default=6)
    r.add_argument(
        "--compile", action="store_true", help="also today's recipe under torch.compile (minutes)"
    )
    s = sub.add_parser("sizes", help="one config at several crop sizes")
    s.add_argument(
        "--config", type=config_file, default=ROOT / "configs" / "unit_day2night_256.yaml"
    )
    s.add_argument("--device", default="cpu")
    s.add_argument("--steps", type=at_least(1), default=2)
    s.add_argument("--sizes", type=frame_size, nargs="+", default=["128x128", "256x256", "512x288"])
    p = sub.add_parser("split", help="the bundled recipe's step: generator vs discriminators")
    p.add_argument("--steps", type=at_least(1), default=6)
    args = parser.parse_args()
    {"recipes": recipes, "sizes": sizes, "split": split}[args.what](args)


if __name__ == "__main__":
    entry(main)
