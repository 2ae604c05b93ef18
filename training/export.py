"""Export a run's latest (or a chosen) training state as the inference checkpoint."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import torch

from d2nvideo import __version__
from d2nvideo.checkpoint import save_checkpoint
from d2nvideo.choices import OfficialDomain
from d2nvideo.errors import CheckpointError, PathError, UsageError
from d2nvideo.fileio import check_output, not_a_folder
from d2nvideo.model import build_generator

from .config import TrainConfig, load_config
from .phases import checkpoint_phases, loss_weights, read_phases
from .state import (
    RECORDS,
    check_records,
    holds_state,
    load_latest,
    load_step,
    read_record,
    step_count,
)

log = logging.getLogger(__name__)


def check_export_output(run: Path, output: Path, overwrite: bool) -> None:
    """Refuse an output that is one of the run's own files or lies in its state folder, with
    or without ``overwrite``: export never replaces what it reads."""
    state = run / "state"
    inputs = [run / name for name in (*RECORDS, "log.jsonl")]
    inputs += _files(state)
    if output.resolve().parent == state.resolve():
        raise PathError(f"output '{output}' lies in the run's state folder; choose another", output)
    check_output(output, inputs, overwrite)
    if output.suffix.lower() != ".safetensors":  # 'model.onnx' got safetensors bytes
        hint = ": add --onnx for the graphs, which go beside it" if output.suffix == ".onnx" else ""
        raise UsageError(
            f"output '{output}' must be named *.safetensors (the model's format){hint}"
        )


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


def export_run(
    run: Path,
    output: Path,
    half: bool = True,
    note: str = "",
    average: bool = True,
    step: int | None = None,
) -> dict[str, object]:
    """Write ``run``'s newest generator weights (or those of its state kept at ``step``) to
    ``output``; return the metadata written. A run trained with ``train.ema`` gives its
    averaged generator unless ``average`` is off."""
    if not run.is_dir():
        raise PathError(f"run folder '{run}' {not_a_folder(run)}", run)
    config_path = run / "config.yaml"
    if not config_path.is_file() or not holds_state(run / "state"):
        raise CheckpointError(f"'{run}' is not a training run folder (no config.yaml/state)", run)
    cfg = load_config(config_path)
    check_records(run)  # a damaged data.json or init.json: one line, not a guess
    gen, payload, decay = _generator(run, cfg, average, step)
    meta: dict[str, object] = {
        "steps": int(payload["step"]),
        "crop": list(cfg.data.crop),
        "resize": cfg.data.resize,
        "batch_size": cfg.train.batch_size,
        "loss": loss_weights(cfg),
        "data": read_record(run / "data.json") or {},
        "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "d2nvideo": __version__,
        "dtype": "float16" if half else "float32",
        "ema": decay,  # the decay of the average's last update; 0: the raw generator
        "note": note,
    }
    if cfg.data.resize:  # the scale it learned at: convert's --quality auto runs there
        meta["work_size"] = cfg.data.resize
    init = read_record(run / "init.json")
    if init:  # fine-tuned from a checkpoint (train --init): its steps count too
        meta["init"] = {k: v for k, v in init.items() if k != "phases"}  # in meta.phases
        steps = step_count(init.get("steps"), f"'{run / 'init.json'}'")
        meta["steps"] = int(payload["step"]) + steps
    phases = checkpoint_phases(run, int(payload["step"]), init)
    if phases is not None:  # the whole history
        meta["phases"] = phases
    meta["loss"] = _loss_at(run, cfg, int(payload["step"]), phases)
    save_checkpoint(output, gen, cfg.model, meta, torch.float16 if half else None)
    return meta


def _loss_at(
    run: Path, cfg: TrainConfig, step: int, phases: list[dict[str, Any]] | None
) -> dict[str, Any] | None:
    """The loss weights that trained the state at ``step``: its last phase's. config.yaml holds
    the newest resume's, so it answers only where the run records no phases, or where the last
    phase is unrecorded (a folder older than phases) and no phase began after it; else None."""
    if phases is None:
        return loss_weights(cfg)
    if phases[-1].get("loss") is not None:
        return dict(phases[-1]["loss"])
    later = any(p["step"] > 0 and p["step"] >= step for p in read_phases(run) or [])
    return None if later else loss_weights(cfg)


def _generator(
    run: Path, cfg: TrainConfig, average: bool, step: int | None
) -> tuple[torch.nn.Module, dict[str, Any], float]:
    """The generator of ``run``'s newest state (or the one kept at ``step``), that state, and
    the decay of the average it holds (0.0 for the raw generator)."""
    cpu = torch.device("cpu")
    if step is None:
        _, payload = load_latest(run / "state", cpu)
    else:
        payload = load_step(run / "state", step, cpu)
    gen = build_generator(cfg.model)
    try:
        weights = _weights(payload["trainer"], average)
        gen.load_state_dict(payload["trainer"][weights])
        if not average and "gen_ema" not in payload["trainer"]:  # not silently a no-op
            log.warning(
                "--raw changes nothing: the state of step %s in '%s' holds no moving average "
                "of the weights (train.ema was 0)",
                payload["step"],
                run,
            )
        decay = 0.0
        if weights == "gen_ema":  # states saved before the decay was stored: the config's
            decay = float(payload["trainer"].get("ema_decay", cfg.train.ema))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(
            f"the state in '{run}' does not fit the run's config.yaml ({str(exc)[:200]})", run
        ) from exc
    return gen, payload, decay


def _weights(trainer_state: dict[str, object], average: bool) -> str:
    """Which generator of a training state to export: its moving average where it holds one
    (``train.ema``; the state, not config.yaml, says: a resumed run rewrites config.yaml before
    it saves a state) unless ``average`` is off."""
    return "gen_ema" if average and "gen_ema" in trainer_state else "gen"


def onnx_outputs(model: Path) -> list[Path]:
    """Where ``--onnx`` writes ``model``'s graphs: ``MODEL.night.onnx``, ``MODEL.day.onnx``."""
    from d2nvideo.choices import DOMAINS

    return [model.with_suffix(f".{to}.onnx") for to in DOMAINS]


def check_onnx_outputs(model: Path, overwrite: bool) -> None:
    """Refuse graph outputs that exist (unless ``overwrite``), and a missing onnx package,
    before any work."""
    from d2nvideo.infer.graphs import require_onnx

    require_onnx()
    for path in onnx_outputs(model):
        check_output(path, [model], overwrite)


def export_onnx(model: Path, official_day: OfficialDomain = "a") -> dict[str, Path]:
    """Write the ONNX graph of each direction of the checkpoint ``model`` beside it (see
    ``d2nvideo.infer.graphs`` for the graphs' inputs and outputs); for an official UNIT
    ``.pt`` file, ``official_day`` is its day half ('a' or 'b')."""
    from d2nvideo.infer.graphs import export_graphs
    from d2nvideo.translator import Translator

    translator = Translator.from_checkpoint(model, "cpu", "fp32", official_day)
    graphs = export_graphs(translator.model, translator.multiple, model)
    return {str(to): path for to, path in graphs.items()}
