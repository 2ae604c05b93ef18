"""A run's loss history: ``phases.json`` in the run folder holds, for each stretch of steps
that ran with one set of loss weights and learning-rate settings, the step it began at and
those settings. A resume with ``--set loss.shift=10`` starts a new phase; one that changes
nothing does not. ``config.yaml`` holds only the latest settings, so without this an exported
checkpoint would claim that its last phase's weights held for the whole run; ``export`` copies
the history into the checkpoint's ``meta.phases``.

A run folder begun before phases were recorded gets a first phase at step 0 whose settings are
``null`` (not recorded). The checkpoint of a run started from another (``train --init``)
records that one's phases first, then the run's, counted in the checkpoints' whole steps."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .state import read_json_object, write_json

FILE = "phases.json"


def loss_weights(cfg: TrainConfig) -> dict[str, Any]:
    """The loss section as a checkpoint records it (``meta.loss``, each phase's ``loss``): the
    weights and their options, without the path of the VGG weights."""
    return {k: v for k, v in vars(cfg.loss).items() if k != "vgg_weights"}


def settings(cfg: TrainConfig) -> dict[str, Any]:
    """What a phase records: the loss weights and the learning-rate settings that decide each
    step's rate (``train.steps`` under the linear policy, whose decay it sets; the decay's
    interval and factor under the step policy)."""
    o = cfg.optim
    optim: dict[str, Any] = {"lr": o.lr, "lr_policy": o.lr_policy}
    if o.lr_policy == "linear":  # its rate at a step depends on the run's length
        optim["steps"] = cfg.train.steps
    if o.lr_policy == "step":
        optim |= {"lr_step": o.lr_step, "lr_gamma": o.lr_gamma}
    return {"loss": loss_weights(cfg), "optim": optim}


def read_phases(run: Path) -> list[dict[str, Any]] | None:
    """The run's recorded phases, or None where the folder has none (or none that reads back as
    a list of phases)."""
    data = read_json_object(run / FILE)
    return clean(data.get("phases")) if data else None


MAX_PHASES = 1000  # far more than any run's resumes; a bigger list is not one training wrote


def clean(phases: Any) -> list[dict[str, Any]] | None:
    """``phases`` rebuilt as a list of ``{"step", "loss", "optim"}`` objects, steps whole and
    rising from 0, each setting a flat object of names to finite numbers, strings, booleans or
    null (or null as a whole: not recorded); None where it is anything else (a file training did
    not write, or a checkpoint's metadata that says nothing usable)."""
    if not isinstance(phases, list) or not 0 < len(phases) <= MAX_PHASES:
        return None
    out = []
    for p in phases:
        if not isinstance(p, dict) or not _count(p.get("step")):
            return None
        loss, optim = _flat(p.get("loss")), _flat(p.get("optim"))
        if loss is False or optim is False:
            return None
        out.append({"step": p["step"], "loss": loss, "optim": optim})
    steps = [p["step"] for p in out]
    return out if steps[0] == 0 and all(a < b for a, b in itertools.pairwise(steps)) else None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _flat(value: Any) -> dict[str, Any] | bool | None:
    """A setting as recorded (a copy), None for null, False for anything else."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return False
    ok = (str, bool, type(None))
    for v in value.values():
        if not isinstance(v, ok) and not (isinstance(v, int | float) and math.isfinite(v)):
            return False
    return dict(value)


UNRECORDED: dict[str, Any] = {"step": 0, "loss": None, "optim": None}


def record_phase(run: Path, cfg: TrainConfig, step: int) -> list[dict[str, Any]]:
    """Add the phase that starts at ``step`` (the run's own count) with ``cfg``'s settings to
    the run's history, unless the last phase has the same settings. Phases at or after
    ``step`` are dropped: a run resumed from an earlier state than the one it last began a
    phase at never ran them. A fresh run (``step`` 0) starts a new history."""
    now = settings(cfg)
    phases = [] if step == 0 else (read_phases(run) or [dict(UNRECORDED)])
    phases = [p for p in phases if p["step"] < step]
    if not phases or {k: phases[-1][k] for k in now} != now:
        phases.append({"step": step, **now})
    write_json(run / FILE, {"phases": phases})
    return phases


def checkpoint_phases(
    run: Path, step: int, init: dict[str, Any] | None
) -> list[dict[str, Any]] | None:
    """The phases the run's state at ``step`` records, in its checkpoint's whole step count:
    a run started from a checkpoint (``init.json``) continues that checkpoint's phases
    (unrecorded where it has none), its own steps counted after the checkpoint's. A phase
    that began at or after ``step`` (a resume killed before its first state) trained none of
    these weights. None where the run records none."""
    phases = read_phases(run)
    if phases is None:
        return None
    phases = [p for p in phases if p["step"] < step or p["step"] == 0]
    if not init:
        return phases
    before = int(init.get("steps") or 0)
    head = clean(init.get("phases")) or [dict(UNRECORDED)]
    head = [p for p in head if p["step"] < before]
    return head + [{**p, "step": p["step"] + before} for p in phases]
