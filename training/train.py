"""The loop that drives a trainer: data, steps, logs, sample grids, checkpoints, resume,
SIGINT/SIGTERM and a wall-clock budget. ``main(cfg, out, dataset=None)`` takes an injected
dataset so tests can use a tiny one."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

from d2nvideo.errors import CheckpointError, ConfigError, D2NError, PathError, first_line
from d2nvideo.fileio import make_folder
from d2nvideo.model.runtime import resolve_precision, set_fast_flags
from d2nvideo.processes import HANGUP, exclusive

from . import distributed
from .config import TrainConfig, absolute_paths, load_config, save_config
from .config_checks import temporal_weights
from .data import DomainLists, collect, unpaired_batches
from .logger import RunLogger, trim_log
from .phases import record_phase
from .records import write_data_summary, write_init
from .state import (
    RECORDS,
    check_records,
    holds_state,
    load_latest,
    save_state,
    set_rng_state,
    warm_start,
)
from .trainers import Trainer, build_trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    out: Path
    step: int
    stopped: str  # finished|interrupted|time budget
    seconds: float
    last: dict[str, float]
    is_main: bool = True  # rank 0 (the process that writes and reports)
    signal: int = 0  # the signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), or 0


@dataclass(frozen=True)
class Hooks:
    """What the caller hears: ``on_step(step)`` after every step (a progress bar) and
    ``say(line)`` for log lines (printed above that bar); both silent by default."""

    on_step: Callable[[int], None] = lambda step: None
    say: Callable[[str], None] = lambda line: None


def main(
    cfg: TrainConfig,
    out: Path,
    dataset: DomainLists | None = None,
    resume: bool = False,
    quiet: bool = False,
    hooks: Hooks | None = None,
    init: Path | None = None,
) -> TrainResult:
    """Train (or with ``resume`` continue) the run in ``out``. ``dataset`` replaces the
    configured data (tests inject a tiny one); ``quiet`` silences the log lines; ``init``, a
    checkpoint whose generator weights a new run starts from (fine-tuning)."""
    if init is not None and resume:
        raise ConfigError("--init starts a new run from a checkpoint and --resume continues one")
    ctx, device = distributed.init(cfg.train.device)
    hooks = hooks or Hooks()
    if quiet or not ctx.is_main:
        hooks = dataclasses.replace(hooks, say=lambda line: None)
    try:
        return _run(cfg, out, dataset, _Start(resume, init), hooks, ctx, device)
    finally:
        distributed.shutdown(ctx)


@dataclass(frozen=True)
class _Start:
    resume: bool = False  # continue the run's latest state
    init: Path | None = None  # or start a new run from this checkpoint's generator


def _run(
    cfg: TrainConfig,
    out: Path,
    dataset: DomainLists | None,
    start: _Start,
    hooks: Hooks,
    ctx: distributed.DistContext,
    device: torch.device,
) -> TrainResult:
    precision = resolve_precision(cfg.train.precision, device)
    set_fast_flags(device)  # on a CPU, denormals slowed GAN training 12x
    _seed(cfg.train.seed + ctx.rank)
    cfg = absolute_paths(cfg)  # config.yaml resumes from any working directory
    _check_outside_data(out, cfg)
    lists = dataset or collect(cfg.data)
    lists = _without_unused_pairs(cfg, lists)
    trainer = build_trainer(cfg, device, precision, ctx.enabled)
    base = warm_start(trainer.gen, cfg.model, start.init) if start.init else None
    trainer.restart_average()  # train.ema averages from the weights the run starts with
    _check_folder(out, start.resume)  # before anything is written; again under the lock
    distributed.barrier(ctx)  # every rank has looked before rank 0 writes its records
    if ctx.is_main:
        make_folder(out)
    # Two trainings in one run folder would interleave states, logs and config (issue 14).
    lock = exclusive(out / ".lock", f"run folder '{out}'") if ctx.is_main else nullcontext()
    with lock:
        step = _restore(trainer, out, start.resume, device, ctx, cfg.train.seed)
        if start.resume and step >= cfg.train.steps:  # it "finished", rewriting the records
            raise ConfigError(
                f"the run in '{out}' is at step {step} already: give --steps above {step} "
                "to train it on"
            )
        if ctx.is_main:
            _check_records(out, step)  # before any is rewritten: a refused resume leaves them
            save_config(cfg, out / "config.yaml")
            write_init(out, base, step)
            record_phase(out, cfg, step)
            write_data_summary(out, lists, step, base)
            trim_log(out, step)  # a run killed after its last checkpoint logged steps past it
        return _train(cfg, out, lists, trainer, step, hooks, ctx, device, precision)


def _train(
    cfg: TrainConfig,
    out: Path,
    lists: DomainLists,
    trainer: Trainer,
    step: int,
    hooks: Hooks,
    ctx: distributed.DistContext,
    device: torch.device,
    precision: str,
) -> TrainResult:
    logger = RunLogger(out, hooks.say, files=ctx.is_main)
    logger.info(
        f"{cfg.model.arch}: {len(lists.day)} day / {len(lists.night)} night images, "
        f"{device} {precision}, {ctx.world} process{'es' if ctx.world > 1 else ''}, "
        f"from step {step}"
    )
    batches = unpaired_batches(
        lists, cfg.data, cfg.train.batch_size, cfg.train.seed, step, ctx.rank, ctx.world
    )
    t0 = time.perf_counter()
    with _stop_on_signals() as stop, logger:
        step, stopped, last, batch = _loop(
            cfg, trainer, batches, step, stop, t0, logger, ctx, device, out, hooks
        )
        if ctx.is_main:
            save_state(out / "state", step, trainer.state_dict(), cfg.train.keep_checkpoints)
            if batch is not None and step % cfg.train.image_every:  # else drawn, or none run
                logger.images(step, *trainer.samples(batch))
    distributed.barrier(ctx)
    logger.info(f"stopped at step {step} ({stopped}); state in {out / 'state'}")
    seconds = time.perf_counter() - t0
    return TrainResult(out, step, stopped, seconds, last, ctx.is_main, stop["signal"])


def _loop(
    cfg: TrainConfig,
    trainer: Trainer,
    batches: Iterator[dict[str, torch.Tensor]],
    step: int,
    stop: dict[str, int],
    t0: float,
    logger: RunLogger,
    ctx: distributed.DistContext,
    device: torch.device,
    out: Path,
    hooks: Hooks,
) -> tuple[int, str, dict[str, float], dict[str, torch.Tensor] | None]:
    """Steps to ``cfg.train.steps``, a signal or the time budget: the step reached, why it
    stopped, the last step's losses and the last batch trained on (None if none was)."""
    t = cfg.train
    budget = t.max_minutes * 60 if t.max_minutes else None
    last: dict[str, float] = {}
    batch = None
    while step < t.steps:
        batch = _to(_next_batch(batches), device)
        last = trainer.step(batch)
        step += 1
        hooks.on_step(step)
        over = budget is not None and step < t.steps and time.perf_counter() - t0 > budget
        stopping = distributed.any_rank(bool(stop["signal"]) or over, ctx, device)
        if step % t.log_every == 0 or step in (1, t.steps) or stopping:  # the last: left out
            logger.scalars(step, {**last, "lr": trainer.opt_g.param_groups[0]["lr"]})
        if step % t.image_every == 0 and ctx.is_main:
            logger.images(step, *trainer.samples(batch))
        if step % t.checkpoint_every == 0 and ctx.is_main and step < t.steps:
            save_state(out / "state", step, trainer.state_dict(), t.keep_checkpoints)
        if stopping:
            return step, "interrupted" if stop["signal"] else "time budget", last, batch
    return step, "finished", last, batch


def _next_batch(batches: Iterator[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The next batch; a user-input error raised in a DataLoader worker comes back wrapped in
    the worker's traceback ("Caught ... Original Traceback ..."): its own line is the last."""
    try:
        return next(batches)
    except D2NError as exc:
        text = str(exc).strip()
        if not text.startswith("Caught ") or "Original Traceback" not in text:
            raise
        last = text.splitlines()[-1]
        raise type(exc)(last.split(": ", 1)[-1]) from None


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _restore(
    trainer: Trainer,
    out: Path,
    resume: bool,
    device: torch.device,
    ctx: distributed.DistContext,
    seed: int,
) -> int:
    _check_folder(out, resume, trained=ctx.is_main)  # the others see rank 0's records now
    if not resume:
        return 0
    path, payload = load_latest(out / "state", device)
    try:
        trainer.load_state_dict(payload["trainer"])
        set_rng_state(payload["rng"])
    except torch.OutOfMemoryError:
        raise  # the device's limit, not the file's fault
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        reason = first_line(exc)
        raise CheckpointError(
            f"training state '{path}' cannot be resumed: its contents are not what train "
            f"saves ({type(exc).__name__}{': ' + reason if reason else ''})",
            path,
        ) from exc
    step = int(payload["step"])
    if ctx.rank:  # only rank 0's random state is stored; the others restart theirs by step
        _seed(seed * 1000 + ctx.rank + step)
    return step


def _check_folder(out: Path, resume: bool, trained: bool = True) -> None:
    """A fresh run never writes into a folder that holds training state (even state that a
    damaged pointer hides), nor (``trained``) what a run trained without it; a resumed one
    needs some."""
    held = holds_state(out / "state")
    if resume and not held:
        raise ConfigError(f"nothing to resume: '{out}' holds no training state", out)
    if not resume and held:
        raise ConfigError(
            f"run folder '{out}' already holds training state: pass --resume to continue it, "
            "or choose a new --out",
            out,
        )
    there = _trained_outputs(out) if trained and not resume else []
    if there:  # a new run replaced another's log and records and mixed its grids with them
        raise ConfigError(
            f"run folder '{out}' holds what a run trained ({', '.join(there)}) but no state to "
            "resume: choose a new --out, or delete them to start afresh there",
            out,
        )


def _trained_outputs(out: Path) -> list[str]:
    """What a run that trained leaves beside its state: its log, sample grids and TensorBoard
    events. Records alone (config.yaml, data.json...) are what a start that failed wrote, and
    are replaced; a folder merely called samples/ is no run's."""
    found = ["log.jsonl"] if os.path.lexists(out / "log.jsonl") else []
    for folder, pattern in (("samples", "step_*.jpg"), ("tensorboard", "events.out.tfevents*")):
        if (out / folder).is_dir() and any((out / folder).glob(pattern)):
            found.append(f"{folder}/")
    return found


RUN_FILES = (*RECORDS, "log.jsonl")  # what a run writes in its folder, beside ...
RUN_FOLDERS = ("samples", "state", "tensorboard")  # ... these folders


def _check_outside_data(out: Path, cfg: TrainConfig) -> None:
    """A run folder inside a data folder: its sample grids became training images of the next
    resume (and of another run on that data)."""
    data = cfg.data  # not data.images: a label file names the images taken from there
    folders = [*data.day, *data.night, *data.pairs_day, *data.pairs_night]
    where = Path(os.path.realpath(out))
    for folder in folders:
        if where.is_relative_to(os.path.realpath(folder)):
            raise ConfigError(
                f"--out '{out}' lies inside the data folder '{folder}': the run's sample grids "
                "would be trained on; choose an --out outside it",
                out,
            )


def check_config_input(config: Path, out: Path) -> None:
    """A new run writes its resolved config to ``out/config.yaml``: refuse one whose CONFIG is
    that very file (or a link to it), which the run would replace, comments and all. (A resumed
    run's config.yaml is the run's own, and rewritten by design.)"""
    written = out / "config.yaml"
    try:
        same = written.exists() and config.exists() and written.samefile(config)
    except OSError:
        same = False
    if same:
        raise PathError(
            f"config '{config}' is the file this run would write its resolved config to "
            f"('{written}'): choose another --out, or copy the config elsewhere first",
            config,
        )


def resolve_resume_config(
    out: Path, given: TrainConfig, overrides: Sequence[str] = (), edited: bool = False
) -> TrainConfig:
    """On --resume the run's own saved config is the base (it holds the data sources), with
    ``overrides`` (--set) applied on top: a run may continue with, say, another loss weight.
    The given config must describe the same model; --set may not change what the state holds
    (the networks' shapes would not fit it, the optimiser's settings would be restored over);
    ``dis.augment`` changes what the discriminators see, not what they are, so it may change,
    and so may ``optim.lr_policy`` between ``constant`` and ``linear``, whose rates the resumed
    run recomputes from its step (``trainers._rates_from_schedule``). ``edited``: CONFIG is
    the user's own file, not a shipped one nor the run's: settings of it that differ from the
    run's are named in a warning (they were ignored without a word)."""
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"nothing to resume: '{out}' has no config.yaml", out)
    base, saved = load_config(saved_path), load_config(saved_path, overrides)
    pinned = [s for s in ("model", "dis", "optim") if _held(saved, s) != _held(base, s)]
    if pinned:
        raise ConfigError(
            f"--set cannot change {'/'.join(pinned)} of a resumed run: its saved state holds "
            "them (but for optim.lr_policy between constant and linear, and dis.augment); "
            "start a new --out to change them"
        )
    if saved.model != given.model:
        differ = ", ".join(_differences(given.model, saved.model))
        raise ConfigError(
            f"the config's model differs from the run's ({differ}); "
            f"resume with the run's own config ('d2nvideo train {saved_path} --out {out} "
            "--resume') or start a new --out"
        )
    if edited and (changed := _setting_differences(given, saved)):
        log.warning(
            "the config's settings differ from the run's (%s): a resumed run goes on with its "
            "own config.yaml; --set KEY=VALUE changes a setting",
            changed,
        )
    return saved


def _setting_differences(given: TrainConfig, saved: TrainConfig, limit: int = 3) -> str:
    """``"loss.struct 9.0 here, 4.0 in the run"`` for the loss, dis and optim keys that differ
    (train and data take the command's flags, so they differ by design)."""
    found = [
        line
        for section in ("loss", "dis", "optim")
        for line in _differences(getattr(given, section), getattr(saved, section), f"{section}.")
    ]
    return "; ".join(found[:limit]) + ("; ..." if len(found) > limit else "")


def _differences(here: object, run: object, prefix: str = "") -> list[str]:
    """The fields of two config sections whose values differ, ``"n_res 4 here, 2 in the
    run"``; only the architecture where the two are not the same kind of model."""
    mine, theirs = vars(here), vars(run)
    keys = [k for k in mine if mine[k] != theirs[k]] if mine.keys() == theirs.keys() else ["arch"]
    return [f"{prefix}{k} {mine[k]} here, {theirs[k]} in the run" for k in keys]


# Schedules whose rate is a function of the step alone, rebuilt from the config on resume: a
# run may switch between them (a constant-rate run finished with a linear decay to zero)
_STATELESS_POLICIES = ("constant", "linear")


def _held(cfg: TrainConfig, section: str) -> Any:
    """What a training state holds of a config section: all of it but ``dis.augment`` and a
    learning-rate policy that is a function of the step alone."""
    value = getattr(cfg, section)
    if section == "dis":
        return dataclasses.replace(value, augment=())
    if section == "optim" and value.lr_policy in _STATELESS_POLICIES:
        return dataclasses.replace(value, lr_policy="constant")
    return value


def _check_records(out: Path, step: int) -> None:
    """Refuse a run folder where one of the records a start rewrites is not a file, or (a
    resumed run, which carries them on) is a damaged JSON record."""
    for name in (*RUN_FILES, *RUN_FOLDERS):  # found after hours of steps otherwise
        path, kind = out / name, "file" if name in RUN_FILES else "folder"
        if path.exists() and not (path.is_file() if kind == "file" else path.is_dir()):
            raise PathError(f"'{path}' is not a {kind}: move it away to run in this folder", path)
    if step > 0:
        check_records(out)


def _without_unused_pairs(cfg: TrainConfig, lists: DomainLists) -> DomainLists:
    """``lists`` less the frame pairs a zero ``loss.temporal`` weight would never use: they are
    not loaded (their flow costs) nor counted as training images, and a warning says they were
    given for nothing."""
    pairs = dict(lists.pairs)
    for domain, (weight, key) in temporal_weights(cfg.loss).items():
        if pairs[domain] and weight == 0:
            log.warning(
                "data.pairs_%s is given but loss.%s is 0: the pairs are not used", domain, key
            )
            pairs[domain] = []
    return dataclasses.replace(lists, pairs=pairs)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[dict[str, int]]:
    """The first SIGINT/SIGTERM (or SIGHUP: a closed terminal, which killed the run with its
    steps since the last checkpoint) asks the loop to stop after this step and checkpoint (the
    signal is kept in ``["signal"]``); a second SIGINT interrupts at once."""
    stop = {"signal": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop["signal"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop["signal"] = signum
        log.warning("stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        if HANGUP is not None and signal.getsignal(HANGUP) is not signal.SIG_IGN:  # nohup
            previous[HANGUP] = signal.signal(HANGUP, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
