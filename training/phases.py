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
import json
from pathlib import Path
from typing import Any

from d2nvideo.fileio import atomic_output

from .config import TrainConfig
from .state import read_json_object

FILE = "phases.json"


def settings(cfg: TrainConfig) -> dict[str, Any]:
    """What a phase records: the loss weights (as the checkpoint's ``meta.loss``) and the
    learning-rate settings that decide each step's rate (``train.steps`` only under the
    linear policy, whose decay it sets)."""
    loss = {k: v for k, v in vars(cfg.loss).items() if k != "vgg_weights"}
    o = cfg.optim
    optim: dict[str, Any] = {"lr": o.lr, "lr_policy": o.lr_policy}
    if o.lr_policy == "linear":  # its rate at a step depends on the run's length
        optim["steps"] = cfg.train.steps
    return {"loss": json.loads(json.dumps(loss)), "optim": optim}


def read_phases(run: Path) -> list[dict[str, Any]] | None:
    """The run's recorded phases, or None where the folder has none (or none that reads back as
    a list of phases)."""
    data = read_json_object(run / FILE)
    phases = data.get("phases") if data else None
    return phases if valid(phases) else None


def valid(phases: Any) -> bool:
    """A non-empty list of ``{"step": int >= 0, ...}`` objects, steps rising from 0."""
    if not isinstance(phases, list) or not phases:
        return False
    steps = [p.get("step") if isinstance(p, dict) else None for p in phases]
    counts = [s for s in steps if isinstance(s, int) and not isinstance(s, bool) and s >= 0]
    if len(counts) != len(steps):
        return False
    return counts[0] == 0 and all(a < b for a, b in itertools.pairwise(counts))


UNRECORDED: dict[str, Any] = {"step": 0, "loss": None, "optim": None}


def record_phase(run: Path, cfg: TrainConfig, step: int) -> list[dict[str, Any]]:
    """Add the phase that starts at ``step`` (the run's own count) with ``cfg``'s settings to
    the run's history, unless the last phase has the same settings. Phases at or after
    ``step`` are dropped: a run resumed from an earlier state than the one it last began a
    phase at never ran them. A fresh run (``step`` 0) starts a new history."""
    now = settings(cfg)
    phases = [] if step == 0 else (read_phases(run) or [dict(UNRECORDED)])
    phases = [p for p in phases if p["step"] < step]
    if not phases or {"loss": phases[-1].get("loss"), "optim": phases[-1].get("optim")} != now:
        phases.append({"step": step, **now})
    with atomic_output(run / FILE) as tmp:
        tmp.write_text(json.dumps({"phases": phases}, indent=1))
    return phases


def checkpoint_phases(run: Path, init: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The phases an exported checkpoint records, in its whole step count: a run started from
    a checkpoint (``init.json``) continues that checkpoint's phases (unrecorded where it has
    none), its own steps counted after the checkpoint's. None where the run records none."""
    phases = read_phases(run)
    if phases is None or not init:
        return phases
    before = int(init.get("steps") or 0)
    recorded = init.get("phases")
    head: list[dict[str, Any]] = [dict(UNRECORDED)]
    if isinstance(recorded, list) and valid(recorded):
        head = recorded
    head = [p for p in head if p["step"] < before]
    return head + [{**p, "step": p["step"] + before} for p in phases]
