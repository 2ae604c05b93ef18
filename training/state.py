"""Training-state files: everything needed to resume exactly, the step stored inside.

Files are ``state/step_XXXXXXXX.pt`` written with torch.save and read back with
``weights_only=True`` (tensors and plain containers only); ``state/latest.json`` points at the
newest. The last ``keep`` are kept. A damaged pointer or newest file (power lost while saving)
falls back to the newest state that reads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from d2nvideo.checkpoint import load_reason
from d2nvideo.errors import CheckpointError
from d2nvideo.fileio import atomic_output, make_folder

FORMAT = "d2nvideo.training"
log = logging.getLogger(__name__)


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
    make_folder(folder)
    path = state_path(folder, step)
    payload = {"format": FORMAT, "step": step, "trainer": trainer_state, "rng": rng_state()}
    with atomic_output(path, overwrite=True) as tmp:
        torch.save(payload, tmp)
    history = _history(folder)
    history = [p for p in history if p != path.name] + [path.name]
    for old in history[:-keep]:
        if _is_state_name(old):  # never a path: only train's own files in its state folder
            (folder / old).unlink(missing_ok=True)
    pointer = {"latest": path.name, "step": step, "history": history[-keep:]}
    with atomic_output(folder / "latest.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(pointer, indent=1))
    return path


def _read_pointer(folder: Path) -> dict[str, Any] | None:
    """``latest.json`` if it is a readable JSON object naming a state file, else None (a
    truncated or foreign pointer is ignored; the state files themselves are the truth)."""
    try:
        pointer = json.loads((folder / "latest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(pointer, dict) or not isinstance(pointer.get("latest"), str):
        return None
    return pointer


def _history(folder: Path) -> list[str]:
    """State files kept so far, oldest first: the pointer's list, or the files found where it
    lists anything but the names train gives its states (``step_XXXXXXXX.pt``, no folder):
    save_state deletes the old ones, and a damaged or hostile pointer must never make it
    delete anything else ('../../notes.txt', an absolute path)."""
    pointer = _read_pointer(folder)
    history = pointer.get("history") if pointer else None
    if isinstance(history, list) and all(isinstance(h, str) for h in history):
        if all(_is_state_name(h) for h in history):
            return list(dict.fromkeys(history))
        log.warning("'%s' lists files that are not training states: ignored", folder)
    return [p.name for p in reversed(state_files(folder))]


STATE_NAME = re.compile(r"step_(\d{8})\.pt", re.ASCII)  # as state_path names them


def _is_state_name(name: str) -> bool:
    """Whether ``name`` is a bare state-file name as :func:`state_path` writes them."""
    return STATE_NAME.fullmatch(name) is not None


def state_files(folder: Path) -> list[Path]:
    """The training-state files in ``folder``, newest first."""
    return sorted(folder.glob("step_*.pt"), reverse=True) if folder.is_dir() else []


def holds_state(folder: Path) -> bool:
    """Whether ``folder`` holds any training state (even one a damaged pointer hides)."""
    return (folder / "latest.json").exists() or bool(state_files(folder))


def latest_state(folder: Path) -> Path | None:
    """The newest state file: the one ``latest.json`` names, else the newest present."""
    pointer = _read_pointer(folder)
    if pointer is not None:
        path = folder / Path(pointer["latest"]).name
        if path.is_file():
            return path
    found = state_files(folder)
    return found[0] if found else None


def load_latest(folder: Path, device: torch.device) -> tuple[Path, dict[str, Any]]:
    """The newest state that can be read, with its path: a damaged pointer or a damaged newest
    file (a machine that lost power while saving) falls back to the next newest, with a
    warning. CheckpointError when none can be read."""
    first = latest_state(folder)
    candidates = [first] if first is not None else []
    candidates += [p for p in state_files(folder) if p != first]
    problems = []
    for path in candidates:
        try:
            payload = load_state(path, device)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems:
            log.warning("%s; resuming from '%s' instead", problems[0], path.name)
        return path, payload
    why = f": {problems[0]}" if problems else ""
    raise CheckpointError(f"'{folder}' holds no readable training state{why}", folder)


def load_step(folder: Path, step: int, device: torch.device) -> dict[str, Any]:
    """The state saved at ``step``; CheckpointError naming the steps kept when it is not."""
    path = state_path(folder, step)
    if not path.is_file():
        kept = sorted(n for p in state_files(folder) if (n := _step_of(p)) is not None)
        listed = ", ".join(map(str, kept)) if kept else "none"
        raise CheckpointError(f"'{folder}' keeps no state of step {step} (kept: {listed})", folder)
    return load_state(path, device)


def state_path(folder: Path, step: int) -> Path:
    """Where the state of ``step`` is saved: ``step_`` and eight digits (:func:`_step_of`)."""
    return folder / f"step_{step:08d}.pt"


def _step_of(path: Path) -> int | None:
    """The step of a state file named as :func:`state_path` names them, else None."""
    found = STATE_NAME.fullmatch(path.name)
    return int(found[1]) if found and path.is_file() else None


def load_state(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        payload = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:
        reason = load_reason(path, exc)
        if "Weights only load failed" in reason:
            reason = "it holds more than tensors"
        raise CheckpointError(
            f"training state '{path}' could not be read ({reason})", path
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a d2nvideo training state", path)
    if not isinstance(payload.get("step"), int) or not isinstance(payload.get("rng"), dict):
        raise CheckpointError(f"training state '{path}' is incomplete", path)
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


def _same_weights(theirs: Any, ours: Any) -> bool:
    """Whether a checkpoint of config ``theirs`` loads into a generator of config ``ours``:
    the same config, or one that differs in ``antialias`` alone (its blur layers hold no
    saved weights, so a plain model can be fine-tuned into an anti-aliased one and back)."""
    if theirs == ours:
        return True
    if type(theirs) is not type(ours) or not hasattr(ours, "antialias"):
        return False
    return bool(dataclasses.replace(theirs, antialias=ours.antialias) == ours)


def warm_start(gen: torch.nn.Module, model: Any, path: Path) -> dict[str, Any]:
    """Load the generator weights of the checkpoint ``path`` (``d2nvideo export``'s file, or an
    official UNIT generator, read with its 'a' half as day) into ``gen``, whose config is
    ``model``: a new run that fine-tunes a trained model (``train --init``). The discriminators
    and optimisers start fresh. Returns what the run records of it in ``init.json``: the file,
    its steps and note, and its training data (None where it records none usable)."""
    from d2nvideo.checkpoint import load_checkpoint
    from d2nvideo.errors import ConfigError

    ckpt = load_checkpoint(path)
    if not _same_weights(ckpt.config, model):
        raise ConfigError(
            f"--init '{path}' holds another model ({ckpt.config}) than the config's ({model}); "
            "use a config whose model section matches the checkpoint's",
            path,
        )
    gen.load_state_dict({k: v.float() for k, v in ckpt.state_dict.items()})
    meta = ckpt.meta
    return {
        "checkpoint": path.name,  # the name and content hash, not a path on this machine
        "sha256": _sha256(path),
        "steps": step_count(meta.get("steps", 0), f"checkpoint '{path}'"),
        "note": str(meta.get("note", "")),
        "data": meta["data"] if _usable_data(meta.get("data")) else None,
        "phases": meta.get("phases"),  # its loss history (export checks it: phases.clean)
    }


def step_count(value: Any, where: str) -> int:
    """A recorded step count: a whole number >= 0 (None: 0), else one clear error."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{where} records {value!r} training steps: not a whole number")
    return value


def _usable_data(data: Any) -> bool:
    """A data summary whose fingerprints and earlier phases have the shapes training writes."""
    if not isinstance(data, dict) or not isinstance(data.get("fingerprints"), dict):
        return False
    prints = [data["fingerprints"], data.get("earlier_fingerprints", {})]
    if not all(isinstance(p, dict) for p in prints):
        return False
    lists = [v for p in prints for v in p.values()]
    if not all(isinstance(v, list) and all(isinstance(h, str) for h in v) for v in lists):
        return False
    earlier = data.get("earlier", [])
    return isinstance(earlier, list) and all(isinstance(e, dict) for e in earlier)


def _sha256(path: Path) -> str:
    import hashlib

    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


RECORDS = ("config.yaml", "data.json", "init.json", "phases.json")  # what a start rewrites


def write_json(path: Path, data: Any) -> None:
    """Write a run folder's JSON record (data.json, init.json, phases.json) through a temporary
    file (train checks first that none of them is something other than a file)."""
    from d2nvideo.fileio import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` (a run's data.json, init.json or phases.json), or None where
    the file is missing, unreadable or holds something else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: nesting json cannot read
        return None
    return data if isinstance(data, dict) else None


def read_record(path: Path) -> dict[str, Any] | None:
    """The JSON object in a run's record ``path`` (data.json, init.json), None
    where there is no such file; CheckpointError naming the file where one is there but does
    not read as a JSON object (cut short, garbage, not UTF-8): export and resume would
    otherwise drop what it records without a word."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CheckpointError(f"'{path}' could not be read ({why})", path) from exc
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CheckpointError(f"'{path}' is damaged: not readable JSON{_AWAY}", path) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"'{path}' is damaged: it holds no JSON object{_AWAY}", path)
    return data


_AWAY = " (restore it, or move it away to go on without what it records)"


def check_records(run: Path) -> None:
    """CheckpointError naming data.json or init.json where it is there but damaged: export and
    resume carry on what they record (the training images' fingerprints, the steps of the
    checkpoint a run started from). ``latest.json`` and ``phases.json`` have their own
    fallbacks (the state files; a history marked unrecorded)."""
    for name in ("data.json", "init.json"):
        read_record(run / name)
