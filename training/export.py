"""Export a run's latest training state as the self-describing inference checkpoint."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import torch
import yaml

from d2nvideo import __version__
from d2nvideo.checkpoint import save_checkpoint
from d2nvideo.errors import CheckpointError, PathError
from d2nvideo.model import build_generator

from .config import config_from_data
from .state import latest_state, load_state


def export_run(run: Path, output: Path, half: bool = True, note: str = "") -> dict[str, object]:
    """Write ``run``'s newest generator weights to ``output``; return the metadata written."""
    if not run.is_dir():
        raise PathError(f"run folder '{run}' does not exist", run)
    config_path = run / "config.yaml"
    state_path = latest_state(run / "state")
    if not config_path.is_file() or state_path is None:
        raise CheckpointError(f"'{run}' is not a training run folder (no config.yaml/state)", run)
    cfg = config_from_data(yaml.safe_load(config_path.read_text()))
    payload = load_state(state_path, torch.device("cpu"))
    gen = build_generator(cfg.model)
    gen.load_state_dict(payload["trainer"]["gen"])
    data_path = run / "data.json"
    meta: dict[str, object] = {
        "steps": int(payload["step"]),
        "crop": list(cfg.data.crop),
        "resize": cfg.data.resize,
        "batch_size": cfg.train.batch_size,
        "loss": {k: v for k, v in vars(cfg.loss).items() if k != "vgg_weights"},
        "data": json.loads(data_path.read_text()) if data_path.is_file() else {},
        "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "d2nvideo": __version__,
        "dtype": "float16" if half else "float32",
        "note": note,
    }
    if cfg.data.resize:  # the scale it learned at: convert's --quality auto runs there
        meta["work_size"] = cfg.data.resize
    save_checkpoint(output, gen, cfg.model, meta, torch.float16 if half else None)
    return meta
