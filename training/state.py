"""Training-state files: everything needed to resume exactly, the step stored inside.

Files are ``state/step_XXXXXXXX.pt`` written with torch.save and read back with
``weights_only=True`` (tensors and plain containers only); ``state/latest.json`` points at the
newest. The last ``keep`` are kept.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from d2nvideo.errors import CheckpointError
from d2nvideo.fileio import atomic_output

FORMAT = "d2nvideo.training"


def rng_state() -> dict[str, Any]:
    np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(folder: Path, step: int, trainer_state: dict[str, Any], keep: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    payload = {"format": FORMAT, "step": step, "trainer": trainer_state, "rng": rng_state()}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    history = _history(folder)
    history = [p for p in history if p != path.name] + [path.name]
    for old in history[:-keep]:
        (folder / old).unlink(missing_ok=True)
    pointer = {"latest": path.name, "step": step, "history": history[-keep:]}
    with atomic_output(folder / "latest.json") as tmp:
        tmp.write_text(json.dumps(pointer, indent=1))
    return path


def _history(folder: Path) -> list[str]:
    pointer = folder / "latest.json"
    if not pointer.is_file():
        return []
    return list(json.loads(pointer.read_text()).get("history", []))


def latest_state(folder: Path) -> Path | None:
    pointer = folder / "latest.json"
    if not pointer.is_file():
        return None
    path = folder / json.loads(pointer.read_text())["latest"]
    return path if path.is_file() else None


def load_state(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        payload = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"training state '{path}' could not be read: {exc}", path) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a d2nvideo training state", path)
    payload["rng"] = {k: _to_cpu(v) for k, v in payload["rng"].items()}
    return payload  # type: ignore[no-any-return]


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value
