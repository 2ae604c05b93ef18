"""Every GPU-only check in one go (issue 11), within about 8 minutes on one GPU; writes
results.json and results.md to --out.

    python benchmarks/device_check.py --out DIR [--dry-run] [--budget-s 480]

Checks, each on its own (a failure is recorded and the others go on):

1. the gpu-marked tests (``pytest -m gpu``);
2. convert at 1280x720 and 1920x1080 with the bundled model and with a full-size UNIT
   (configs/unit_day2night_256.yaml shapes, random weights: speed does not depend on them),
   in eager fp32, bf16 and bf16 + torch.compile: each stage's ms/frame and the pipeline's
   frames/s (``d2nvideo.pipeline.time_stages``);
3. NVDEC decoding and NVENC encoding in a convert at 1080p (whether FFmpeg opened them);
4. the automatic batch size at both sizes;
5. the out-of-memory back-off (the memory fraction capped so a large batch must split);
6. training iterations/s at 256x256 and 512x288 in bf16 (configs/unit_day2night_*.yaml), and
   whether bf16 training learns as fp32 does (the bundled recipe, synthetic scenes);
7. a 1-GPU torchrun run: a few training steps of configs/tiny.yaml, and an NCCL all-reduce
   with a DDP step.

``--dry-run`` runs the same on the CPU with tiny sizes (a test runs it). On a lent GPU machine
without PyAV, carry the av wheel (see the device README) and run from the repository root;
d2nvideo need not be installed (the training package is aliased as d2nvideo.training).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _clip import Parser, at_least, description

ROOT = Path(__file__).resolve().parents[1]
# the checks, in the order they run; --skip takes these names
CHECKS = (
    "gpu-marked tests",
    "training learns in bf16",
    "convert speed",
    "NVDEC/NVENC",
    "auto batch size",
    "OOM back-off",
    "training speed",
    "torchrun 1 GPU",
)


def importable() -> None:
    """Make ``d2nvideo`` and ``d2nvideo.training`` importable from a bare checkout."""
    sys.path.insert(0, str(ROOT))
    try:
        importlib.import_module("d2nvideo.training")
    except ImportError:
        sys.modules["d2nvideo.training"] = importlib.import_module("training")


@dataclass(frozen=True)
class Plan:
    """What a run measures: the real sizes on CUDA, or tiny ones on the CPU (--dry-run)."""

    device: str
    sizes: tuple[tuple[int, int], ...]
    frames: int
    modes: tuple[str, ...]
    train_sizes: tuple[tuple[int, int], ...]
    train_steps: int
    dry: bool

    @classmethod
    def make(cls, dry: bool) -> Plan:
        if dry:
            return cls("cpu", ((128, 72),), 4, ("eager", "bf16"), ((32, 32),), 1, True)
        modes = ("eager", "bf16", "compile")
        return cls(
            "cuda", ((1280, 720), (1920, 1080)), 240, modes, ((256, 256), (512, 288)), 10, False
        )


@dataclass
class Results:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def run(self, name: str, check: Callable[[], dict[str, Any]]) -> None:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            row = {"check": name, "status": "ok", **check()}
        except Exception as exc:
            traceback.print_exc()
            row = {"check": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row, default=str)[:2000], flush=True)
        self.rows.append(row)


# --- the checks ---------------------------------------------------------------------------


def gpu_tests(plan: Plan) -> dict[str, Any]:
    # through this script, so that a bare checkout's tests import d2nvideo.training too
    cmd = [sys.executable, __file__, "--pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
    cmd.append("tests")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    # pytest exits 5 when every selected test was skipped (no CUDA in a dry run)
    if proc.returncode not in (0, 5):
        raise RuntimeError(f"pytest -m gpu: {tail}\n{proc.stdout[-3000:]}")
    return {"summary": tail}


def full_size_model(folder: Path, dry: bool) -> Path:
    """A random-weight UNIT of configs/unit_day2night_256.yaml's shapes (tiny in a dry run)."""
    import torch
    from d2nvideo.training.config import load_config

    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.model import UNITConfig, build_generator

    cfg = load_config(ROOT / "configs" / "unit_day2night_256.yaml").model
    if dry:
        cfg = UNITConfig(width=4, n_downsample=2, n_res=1, n_shared=1)
    torch.manual_seed(0)
    path = folder / "full_unit.safetensors"
    save_checkpoint(path, build_generator(cfg), cfg, {"note": "random weights (device check)"})
    return path


def load(model: Path, plan: Plan, mode: str) -> Any:
    from d2nvideo.model.runtime import set_fast_flags
    from d2nvideo.translator import Translator

    precision = "fp32" if mode == "eager" else "bf16"
    tr = Translator.from_checkpoint(model, plan.device, precision, backend="torch")
    set_fast_flags(tr.device)
    return tr.compile() if mode == "compile" else tr


def convert_speed(plan: Plan, models: dict[str, Path]) -> dict[str, Any]:
    from d2nvideo.pipeline import time_stages, working_size

    table = []
    for name, model in models.items():
        for mode in plan.modes:
            tr = load(model, plan, mode)
            res = working_size("auto", None, None, "guided", tr.meta)
            for w, h in plan.sizes:
                t = time_stages(tr, "night", res, w, h, frames=plan.frames)
                row = {"model": name, "mode": mode, "size": f"{w}x{h}", "work": t.work}
                row |= {"fps": round(t.pipeline_fps, 1), "batch": t.batch_size}
                row |= {"busiest": t.busiest[0], "ms": {k: round(v, 2) for k, v in t.ms.items()}}
                table.append(row)
                print(row, flush=True)
    return {"table": table}


def codecs(plan: Plan, models: dict[str, Path], folder: Path) -> dict[str, Any]:
    """A convert with NVDEC decoding and NVENC encoding; which of them really opened."""
    from d2nvideo.infer.timing import synthetic_clip
    from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video
    from d2nvideo.video.codecs import EncodeSettings, usable_codec

    w, h = plan.sizes[-1]
    src = synthetic_clip(folder / "nv.mp4", plan.frames, w, h)
    opened = usable_codec("h264_nvenc", w, h)
    tr = load(models["bundled"], plan, "bf16")
    opts = ConvertOptions(
        "night",
        resolution=WorkingSize(work_size=180),
        hwaccel="cuda",
        encode=EncodeSettings(codec="h264_nvenc", preset=None),
    )
    result = convert_video(src, folder / "nv_out.mp4", tr, opts)
    return {
        "nvenc_opened": opened == "h264_nvenc",
        "encoder": opened,
        "fps": round(result.fps, 1),
        "driver video libraries": video_libraries() or "none (no NVENC/NVDEC driver library)",
    }


def video_libraries() -> list[str]:
    """The NVIDIA driver's encode and decode libraries the loader knows (NVENC needs them)."""
    try:
        libs = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return sorted(
        {x.split()[0] for x in libs.splitlines() if "nvidia-encode" in x or "nvcuvid" in x}
    )


def auto_batch(plan: Plan, models: dict[str, Path]) -> dict[str, Any]:
    from d2nvideo.infer.batching import auto_batch_size
    from d2nvideo.pipeline import working_size

    out = {}
    for name, model in models.items():
        tr = load(model, plan, "bf16")
        res = working_size("auto", None, None, "guided", tr.meta)
        for w, h in plan.sizes:
            out[f"{name} {w}x{h}"] = auto_batch_size(tr, h, w, res)
    return {"batch": out}


def oom_backoff(plan: Plan, models: dict[str, Path]) -> dict[str, Any]:
    """A batch of 16 native-size frames with memory capped at a quarter of the card: the
    pipeline must split it and still translate every frame (or say one frame cannot fit)."""
    import numpy as np
    import torch

    from d2nvideo.errors import D2NError
    from d2nvideo.infer.batching import run_network, split_on_oom

    w, h = plan.sizes[-1]
    images = [np.full((h, w, 3), 90, np.uint8) for _ in range(16)]
    if plan.dry:  # no GPU memory to exhaust: a stand-in that fails above 4 frames
        state = {"calls": []}

        def fake(batch: list[np.ndarray], to: str) -> list[np.ndarray]:
            state["calls"].append(len(batch))
            if len(batch) > 4:
                raise torch.OutOfMemoryError("simulated")
            return batch

        return {"frames": len(split_on_oom(fake, images, "night")), "calls": state["calls"]}
    tr = load(models["full-size UNIT"], plan, "bf16")
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(0.25)
    heard = _Heard()
    logging.getLogger("d2nvideo.pipeline").addHandler(heard)
    try:  # which limit split the batch: memory, or (first, at this size) 32-bit indexing
        return {"frames": len(run_network(tr, images, "night")), "back-offs": heard.lines}
    except D2NError as exc:
        return {"frames": 0, "message": str(exc), "back-offs": heard.lines}
    finally:
        logging.getLogger("d2nvideo.pipeline").removeHandler(heard)
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


class _Heard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def training_speed(plan: Plan) -> dict[str, Any]:
    import torch
    from d2nvideo.training.config import load_config, with_changes
    from d2nvideo.training.trainers import build_trainer

    from d2nvideo.model.runtime import resolve_device

    out = {}
    for w, h in plan.train_sizes:
        name = "tiny.yaml" if plan.dry else f"unit_day2night_{'256' if w == h else '512x288'}.yaml"
        precision = "fp32" if plan.dry else "bf16"  # bf16 autocast on a CPU is merely slow
        cfg = with_changes(load_config(ROOT / "configs" / name), "train", precision=precision)
        device = resolve_device(plan.device)
        tr = build_trainer(cfg, device, precision, False)
        batch = {
            d: torch.rand(cfg.train.batch_size, 3, h, w, device=device) * 2 - 1
            for d in ("day", "night")
        }
        tr.step(batch)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(plan.train_steps):
            tr.step(batch)
        _sync(device)
        out[f"{w}x{h}"] = round(plan.train_steps / (time.perf_counter() - t0), 2)
    return {"it_s": out, "precision": "fp32" if plan.dry else "bf16"}


def training_learns(plan: Plan) -> dict[str, Any]:
    """The bundled model's recipe (every loss term on) from the same start in fp32 and in bf16
    on the same synthetic scenes: does bf16 learn as fp32 does? (A bf16 run on an H200 once
    never learned to reconstruct: the SSIM structure term's variances had cancelled in bf16.)
    Reconstruction L1 and the structure term, each the mean of the last fifth of the steps."""
    import torch
    from d2nvideo.training.config import load_config, with_changes
    from d2nvideo.training.trainers import build_trainer

    from d2nvideo.model.runtime import resolve_device

    device = resolve_device(plan.device)
    name = "tiny.yaml" if plan.dry else "unit_d2n_default.yaml"
    cfg = load_config(ROOT / "configs" / name)
    cfg = with_changes(cfg, "loss", struct=4.0, struct_to_day=8.0, hist=5.0, colour=100.0)
    cfg = with_changes(cfg, "loss", colour_to_day=0.0, gan_to_day=3.0, shift=10.0, shift_to_day=0.0)
    steps, side = (4, 32) if plan.dry else (200, 96)
    scenes = _scenes(16, side)
    out: dict[str, Any] = {"steps": steps, "crop": side}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        tr = build_trainer(
            with_changes(cfg, "train", precision=precision), device, precision, False
        )
        g = torch.Generator().manual_seed(1)
        logs = []
        for _ in range(steps):
            pick = torch.randint(0, len(scenes), (2, cfg.train.batch_size), generator=g)
            batch = {"day": scenes[pick[0]], "night": scenes[pick[1]] * 0.25 - 0.7}
            logs.append(tr.step({d: x.to(device) for d, x in batch.items()}))
        fifth = max(1, steps // 5)
        out[precision] = {
            f"{k} {part}": round(sum(log[k] for log in logs_) / len(logs_), 4)
            for k in ("recon_x", "struct")
            for part, logs_ in (("first", logs[:fifth]), ("last", logs[-fifth:]))
        }
    fp32, bf16 = out["fp32"]["recon_x last"], out["bf16"]["recon_x last"]
    learned = plan.dry or fp32 < 0.7 * out["fp32"]["recon_x first"]  # 4 dry steps learn little
    out["fp32 learns"] = learned
    out["bf16 learns as fp32"] = learned and bf16 < 1.5 * fp32 + 0.02
    return out


def _scenes(n: int, side: int) -> Any:
    """``n`` day-like frames on [-1, 1]: a sky gradient over a textured road, moved sideways."""
    import torch

    g = torch.Generator().manual_seed(0)
    sky = torch.linspace(0.9, -0.4, side).view(1, 1, side, 1).expand(n, 3, side, side)
    tint = torch.rand(n, 3, 1, 1, generator=g) * 0.3
    blobs = torch.nn.functional.interpolate(
        torch.rand(n, 3, side // 8, side // 8, generator=g), size=(side, side), mode="bilinear"
    )
    return (sky + tint + blobs * 0.8 - 0.5).clamp(-1, 1)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def torchrun_smoke(plan: Plan, folder: Path) -> dict[str, Any]:
    """Under torchrun (one process): an NCCL (gloo on the CPU) all-reduce with a DDP step, then
    a few training steps of configs/tiny.yaml: what a multi-GPU run needs, on one GPU."""
    import cv2
    import numpy as np

    for domain, level in (("day", 200), ("night", 30)):
        (folder / domain).mkdir(exist_ok=True)
        for i in range(4):
            image = np.full((48, 64, 3), level + 5 * i, np.uint8)
            cv2.imwrite(str(folder / domain / f"{i}.png"), image)
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    steps = "1" if plan.dry else "3"
    probe = [str(Path(__file__).resolve()), "--probe", plan.device, str(ROOT / "configs/tiny.yaml")]
    probe += ["--day", str(folder / "day"), "--night", str(folder / "night")]
    probe += ["--out", str(folder / "run"), "--steps", steps, "--device", plan.device, "-q"]
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]  # what was set, after
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run(run + probe, capture_output=True, text=True, timeout=240, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun (exit {proc.returncode}): {child_said(proc.stderr)}")
    return {"output": proc.stdout.strip()[-400:]}


def child_said(stderr: str, keep: int = 1500) -> str:
    """The end of what torchrun's child wrote to stderr, before torchrun's own report of its
    failure (its log line, its traceback and the ChildFailedError banner, which say only that
    the child failed): the child's error, or its traceback's last lines."""
    lines = stderr.rstrip().splitlines()
    banner = next((i for i, x in enumerate(lines) if "ChildFailedError" in x), None)
    if banner is not None:
        tracebacks = [i for i, x in enumerate(lines[:banner]) if x.startswith("Traceback")]
        end = tracebacks[-1] if tracebacks else banner
        while end and "torch/distributed/elastic" in lines[end - 1]:  # its log lines
            end -= 1
        lines = lines[:end] or lines
    return "\n".join(lines)[-keep:]


def nccl_probe(device_name: str) -> None:
    """Under torchrun: join the process group, all-reduce, and one DDP step of a small UNIT."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from d2nvideo.model import UNITConfig, build_generator

    cuda = device_name == "cuda"
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else None
    t = torch.ones(4, device=device)
    dist.all_reduce(t)
    gen = build_generator(UNITConfig(width=8, n_downsample=2, n_res=1)).to(device)
    model = DDP(gen, device_ids=[device.index] if cuda else None)
    x = torch.rand(2, 3, 32, 32, device=device) * 2 - 1
    model(x, "night").mean().backward()
    dist.destroy_process_group()
    print(f"{backend} all-reduce {t.tolist()} and a DDP step on {device or 'cpu'}: ok")


# --- the report ---------------------------------------------------------------------------


def environment(plan: Plan) -> dict[str, Any]:
    import torch

    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return {
        "device": plan.device,
        "gpu": card,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "dry_run": plan.dry,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def markdown(env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"# Device check: {env['gpu']} ({'dry run, CPU' if env['dry_run'] else 'CUDA'})", ""]
    lines += [f"torch {env['torch']}, CUDA {env['cuda']}, {env['cpus']} CPUs, {env['date']}", ""]
    lines += ["| check | status | seconds | result |", "|---|---|---|---|"]
    for row in rows:
        rest = {k: v for k, v in row.items() if k not in ("check", "status", "seconds", "table")}
        lines.append(f"| {row['check']} | {row['status']} | {row['seconds']} | {_short(rest)} |")
    for row in rows:
        if "table" in row:
            lines += ["", "## Convert: frames/s end to end, and ms/frame by stage", ""]
            lines += ["| model | mode | size | work | batch | fps | busiest | stages ms |"]
            lines += ["|---|---|---|---|---|---|---|---|"]
            for r in row["table"]:
                stages = ", ".join(f"{k} {v}" for k, v in r["ms"].items())
                work = "x".join(map(str, r["work"][::-1]))
                lines.append(
                    f"| {r['model']} | {r['mode']} | {r['size']} | {work} | {r['batch']} | "
                    f"{r['fps']} | {r['busiest']} | {stages} |"
                )
    return "\n".join(lines) + "\n"


def _short(values: dict[str, Any]) -> str:
    return json.dumps(values, default=str).replace("|", "/")[:300]


def main() -> None:
    if sys.argv[1:2] == ["--pytest"]:  # launched by gpu_tests
        importable()
        import pytest

        raise SystemExit(pytest.main(sys.argv[2:]))
    if sys.argv[1:2] == ["--probe"]:  # under torchrun, launched by torchrun_smoke
        importable()
        nccl_probe(sys.argv[2])
        from d2nvideo.training.cli import train

        return train(sys.argv[3:], prog_name="train-probe")
    parser = Parser(description=description(__doc__))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--budget-s", type=seconds, default=480.0)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=CHECKS,
        metavar="NAME",
        help="Checks to leave out, by name (quote them): " + ", ".join(f"'{c}'" for c in CHECKS),
    )
    parser.add_argument(
        "--frames", type=at_least(1), help="Frames per convert timing (clip length)."
    )
    parser.add_argument(
        "--modes", nargs="*", choices=("eager", "bf16", "compile"), help="Default: all three."
    )
    args = parser.parse_args()
    importable()
    plan = Plan.make(args.dry_run)
    plan = dataclasses.replace(plan, frames=args.frames or plan.frames)
    plan = dataclasses.replace(plan, modes=tuple(args.modes or plan.modes))
    run_checks(plan, args.out, args.budget_s, set(args.skip))


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"takes seconds, 0 or more, not '{text}'")
    return value


def run_checks(plan: Plan, out: Path, budget_s: float, skip: set[str]) -> None:
    import torch

    if not plan.dry and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --dry-run for the CPU rehearsal")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="device-check-") as d:
        folder = Path(d)
        os.environ.setdefault("D2NVIDEO_CACHE", str(folder / "cache"))
        from d2nvideo.registry import DEFAULT_MODEL

        models = {"bundled": DEFAULT_MODEL, "full-size UNIT": full_size_model(folder, plan.dry)}
        checks: dict[str, Callable[[], dict[str, Any]]] = {
            "gpu-marked tests": lambda: gpu_tests(plan),
            "training learns in bf16": lambda: training_learns(plan),
            "convert speed": lambda: convert_speed(plan, models),
            "NVDEC/NVENC": lambda: codecs(plan, models, folder),
            "auto batch size": lambda: auto_batch(plan, models),
            "OOM back-off": lambda: oom_backoff(plan, models),
            "training speed": lambda: training_speed(plan),
            "torchrun 1 GPU": lambda: torchrun_smoke(plan, folder),
        }
        assert tuple(checks) == CHECKS  # --skip's names
        env = environment(plan)
        for name, check in checks.items():
            if name in skip or time.perf_counter() - start > budget_s:
                results.rows.append({"check": name, "status": "skipped", "seconds": 0})
            else:
                results.run(name, check)
            write_results(out, env, results.rows)  # after each: a killed run keeps what it had
    print(f"results.json and results.md in {out} ({time.perf_counter() - start:.0f} s)")


def write_results(out: Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    for name, text in (("results.json", json.dumps({"env": env, "checks": rows}, indent=1)),
                       ("results.md", markdown(env, rows))):  # fmt: skip
        part = out / f".{name}.part"
        part.write_text(text)
        part.replace(out / name)


if __name__ == "__main__":
    main()
