"""The inference checkpoint: one self-describing safetensors file.

Tensors are the generator's weights; the header's string metadata holds the format version, the
model config and free-form meta (training steps, data, notes) as JSON. Nothing is unpickled on
load. Official UNIT/MUNIT generator files (``gen_XXXXXXXX.pt``, a pickled ``{'a': state_dict,
'b': state_dict}``) are imported with ``torch.load(weights_only=True)``, which refuses code.
"""

from __future__ import annotations

import json
import logging
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .choices import OfficialDomain, require
from .errors import CheckpointError, first_line
from .fileio import atomic_output, require_file
from .model import ModelConfig, UNITConfig, build_generator, config_from_dict, config_to_dict

log = logging.getLogger(__name__)
FORMAT = "d2nvideo.generator"
FORMAT_VERSION = 1
# what a weight may be stored as: float8 has no isfinite kernel (a traceback), and integers,
# booleans or complex numbers where a network keeps floats were never written by a trainer
LOADABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
INTEGER_DTYPES = (torch.int64, torch.int32)
_PREFIXES = ("_orig_mod.", "module.")  # torch.compile and DDP wrappers


@dataclass
class Checkpoint:
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the prefixes that torch.compile (``_orig_mod.``) and DDP (``module.``) add."""
    out = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            key = key.replace(prefix, "")
        out[key] = value
    return out


def save_checkpoint(
    path: Path,
    model: nn.Module,
    config: ModelConfig,
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write ``model``'s weights (cast to ``dtype`` if given, e.g. fp16 to halve the size)."""
    from safetensors.torch import save_file

    state = {}
    for key, value in clean_state_dict(model.state_dict()).items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        state[key] = value.contiguous()
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": json.dumps(config_to_dict(config)),
        "meta": json.dumps(meta or {}),
    }
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=header)


def load_checkpoint(path: Path, official_day: str = "a") -> Checkpoint:
    """Load ``path``: a d2nvideo ``.safetensors`` file, or an official UNIT ``.pt`` generator
    file whose ``official_day`` half ('a' or 'b') is the day domain.

    Refused with CheckpointError, before any frame is translated: weights that do not fit the
    stored config (names or shapes), non-finite weights (they translate to black) and metadata
    that cannot work (a ``work_size`` that is not a positive number)."""
    require(OfficialDomain, official_day, "official_day")  # for every format, not only .pt
    require_file(path, "checkpoint")
    with path.open("rb") as fh:
        head = fh.read(16)
    if _looks_like_safetensors(head):
        ckpt = _load_safetensors(path)
        if official_day != "a":  # its domains are named: nothing to choose
            log.warning("--day-is applies to official UNIT .pt files only: ignored for '%s'", path)
    elif head.startswith(b"PK") or head[:1] == b"\x80":
        ckpt = import_official_unit(path, official_day)
    else:
        raise CheckpointError(
            f"'{path}' is not a d2nvideo checkpoint (neither safetensors nor a PyTorch file)", path
        )
    check_weights(path, ckpt)
    check_meta(path, ckpt.meta)
    return ckpt


def check_weights(path: Path, ckpt: Checkpoint) -> None:
    """Every weight the config's generator needs, of its shape, finite; nothing else."""
    try:
        with torch.device("meta"):  # the structure only: no memory, no initialisation work
            model = build_generator(ckpt.config)
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        first = first_line(exc) or type(exc).__name__
        raise CheckpointError(
            f"'{path}': its {ckpt.config.arch} config describes no network that can be built "
            f"({first[:120]})",
            path,
        ) from None
    wanted = model.state_dict()
    expected = {k: tuple(v.shape) for k, v in wanted.items()}
    missing = sorted(set(expected) - set(ckpt.state_dict))
    unexpected = sorted(set(ckpt.state_dict) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"'{path}' does not match its {ckpt.config.arch} config: {len(missing)} weights "
            f"missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})",
            path,
        )
    for key, tensor in ckpt.state_dict.items():
        if tuple(tensor.shape) != expected[key]:
            raise CheckpointError(
                f"'{path}': weight '{key}' has shape {list(tensor.shape)}, its config needs "
                f"{list(expected[key])}",
                path,
            )
        _check_dtype(path, key, tensor, wanted[key])
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"'{path}' holds non-finite weights (NaN or infinity) in '{key}': it would "
                "translate every frame to black; export it again from a healthy training state",
                path,
            )


def _check_dtype(path: Path, key: str, tensor: torch.Tensor, wanted: torch.Tensor) -> None:
    """A weight is stored as float32, float16, bfloat16 or float64 (float8 has no isfinite
    kernel: a traceback); a buffer the network keeps as an integer (BatchNorm's count of
    batches) as an integer."""
    ok = LOADABLE_DTYPES if wanted.is_floating_point() else INTEGER_DTYPES
    if tensor.dtype not in ok:
        names = ", ".join(str(t).removeprefix("torch.") for t in ok)
        raise CheckpointError(
            f"'{path}': weight '{key}' is stored as {str(tensor.dtype).removeprefix('torch.')}, "
            f"which d2nvideo does not load there ({names})",
            path,
        )


def check_meta(path: Path, meta: dict[str, Any]) -> None:
    """Metadata that steers conversion must make sense (``work_size``: whole pixels, > 0)."""
    size = meta.get("work_size")
    if size is None:
        return
    # 0.5 ran the network at native size (int() gives 0), 2.5 at 2
    number = isinstance(size, int | float) and not isinstance(size, bool)
    if not number or not 1 <= size < 1e6 or not float(size).is_integer():
        raise CheckpointError(
            f"'{path}' has metadata work_size {size!r}; it must be a whole number of pixels",
            path,
        )


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < 100_000_000 and head[8:9] == b"{"


def _load_safetensors(path: Path) -> Checkpoint:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:
        raise CheckpointError(f"'{path}' is a damaged safetensors file ({exc})", path) from exc
    if header.get("format") != FORMAT:
        kind = header.get("format")
        if kind == "d2nvideo.training":
            raise CheckpointError(
                f"'{path}' is a training state; run 'd2nvideo export' on its run folder", path
            )
        raise CheckpointError(f"'{path}' is a safetensors file but not a d2nvideo model", path)
    version = _format_version(path, header.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has format version {version}; this d2nvideo reads up to "
            f"{FORMAT_VERSION}: upgrade d2nvideo",
            path,
        )
    try:
        config = config_from_dict(json.loads(header["model"]))
    except (KeyError, ValueError, TypeError, RecursionError) as exc:  # JSON nested 1e5 deep
        raise CheckpointError(f"'{path}' has an invalid model config: {exc}", path) from exc
    try:
        meta = json.loads(header.get("meta", "{}"))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"'{path}' has invalid metadata: {exc}", path) from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"'{path}' has invalid metadata: not a JSON object", path)
    return Checkpoint(config, clean_state_dict(state), meta)


def _format_version(path: Path, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CheckpointError(
            f"'{path}' has format_version {text!r}, not a number: it was not written by d2nvideo",
            path,
        ) from None


# --- official UNIT/MUNIT import -------------------------------------------------------------
# Official key layout (mingyuliutw/UNIT networks.py, VAEGen): enc.model.{i}... and
# dec.model.{i}..., where a ResBlocks module at index i holds .model.{j}.model.{k}.
_RESBLOCKS = re.compile(r"^(enc|dec)\.model\.(\d+)\.model\.(\d+)\.(.*)$")
_PLAIN = re.compile(r"^(enc|dec)\.model\.(\d+)\.(.*)$")


def import_official_unit(path: Path, official_day: str = "a") -> Checkpoint:
    """Read an official UNIT ``gen_*.pt`` file into the d2nvideo layout (``n_shared=0``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(_unloadable(path, exc), path) from exc
    halves = _official_halves(path, data, official_day)
    if any(str(k).startswith("enc_style.") for k in halves["day"]):
        raise CheckpointError(
            f"'{path}' is a MUNIT generator (it needs a style code); only UNIT files import", path
        )
    try:
        config = _infer_official_config(clean_state_dict(halves["day"]))
        state = {}
        for domain, half in halves.items():
            for key, value in clean_state_dict(half).items():
                state[_official_key(key, domain)] = value
    except (KeyError, ValueError, AttributeError, IndexError) as exc:  # IndexError: a 0-d weight
        raise CheckpointError(f"'{path}' does not look like a UNIT generator: {exc}", path) from exc
    meta = {"imported_from": str(path), "official_day": official_day}
    return Checkpoint(config, state, meta)


def _official_halves(path: Path, data: Any, official_day: str) -> dict[str, dict[str, Any]]:
    """The day and night state dicts of an official ``{'a': ..., 'b': ...}`` file."""
    if isinstance(data, dict) and data.get("format") == "d2nvideo.training":
        raise CheckpointError(
            f"'{path}' is a training state, not a model: run 'd2nvideo export RUN -o "
            "model.safetensors' on its run folder",
            path,
        )
    if not (isinstance(data, dict) and {"a", "b"} <= set(data)):
        raise CheckpointError(
            f"'{path}' is not an official UNIT generator file ({{'a': ..., 'b': ...}})", path
        )
    for half in ("a", "b"):
        if not isinstance(data[half], dict) or not all(
            isinstance(v, torch.Tensor) for v in data[half].values()
        ):
            raise CheckpointError(
                f"'{path}' is not an official UNIT generator file: its '{half}' is not a "
                "state dict of tensors",
                path,
            )
    return {"day": data[official_day], "night": data["b" if official_day == "a" else "a"]}


def _official_key(key: str, domain: str) -> str:
    m = _RESBLOCKS.match(key)
    if m and m.group(4).startswith("model."):
        part, i, j, rest = m.groups()
        return f"{part}.{domain}.{i}.{j}.{rest}"
    m = _PLAIN.match(key)
    if not m:
        raise ValueError(f"unexpected key {key!r}")
    part, i, rest = m.groups()
    return f"{part}.{domain}.{i}.{rest}"


def _infer_official_config(state: dict[str, torch.Tensor]) -> UNITConfig:
    width = int(state["enc.model.0.conv.weight"].shape[0])
    n_down = 0
    while f"enc.model.{n_down + 1}.conv.weight" in state:
        n_down += 1
    blocks = {k.split(".")[4] for k in state if k.startswith(f"enc.model.{n_down + 1}.model.")}
    return UNITConfig(width=width, n_downsample=n_down, n_res=len(blocks), n_shared=0)


def _unloadable(path: Path, exc: Exception) -> str:
    """Why a PyTorch file was refused: it names Python code to run (a class or a function: a
    GLOBAL), or it is no readable pickle at all (garbage that starts with a pickle's first
    byte was said to hold "more than weights")."""
    named = "GLOBAL" in str(exc)
    if named or _names_code(path):
        why = _unpickle_reason(path, exc) if named else "it names Python code to run"
        return (
            f"'{path}' could not be loaded safely: it holds more than weights ({why}); "
            "d2nvideo never runs code from a checkpoint"
        )
    reason = _unpickle_reason(path, exc)
    if reason.startswith("the file is cut short"):
        return f"'{path}' could not be read: {reason}"
    return (
        f"'{path}' is not a d2nvideo checkpoint: not safetensors, and not a PyTorch file that "
        f"reads ({reason})"
    )


# What torch.load says of a legacy file whose end is missing; of a cut zip it says several
# things, and of a cut plain pickle whatever struct's reader met, so those are read instead.
_CUT_SHORT = ("unexpected EOF", "pickle data was truncated", "Ran out of input")
# What pickletools says of a pickle that stops before its STOP opcode.
_PICKLE_CUT = ("exhausted before seeing STOP", "not enough data in stream", "but only")


def load_reason(path: Path, exc: Exception) -> str:
    """Why ``torch.load`` could not read ``path``, in one short line: a file cut short is said
    so (of a cut zip torch said "[Errno 22] Invalid argument", or a paragraph that the
    one-line limit stopped mid-sentence), else torch's own words."""
    return _cut_reason(path, exc) or _torch_words(exc)


def _cut_reason(path: Path, exc: Exception) -> str | None:
    if any(mark in str(exc) for mark in _CUT_SHORT):
        return CUT_SHORT
    return _cut_short(path)


def _torch_words(exc: Exception) -> str:
    """torch's message as far as whole sentences fit in about 160 characters."""
    sentences = first_line(exc, 400).split(". ")
    told = sentences[0]
    for more in sentences[1:]:
        if len(told) + len(more) > 160:
            break
        told = f"{told}. {more}"
    return told.strip().rstrip(".") or type(exc).__name__


CUT_SHORT = "the file is cut short: an interrupted copy, download or save?"


def _cut_short(path: Path) -> str | None:
    """Why a file lacks its end, or None: a zip without the end record every zip file closes
    with (cut short, or with something after its end), or a pickle (of protocol 2 to 5:
    garbage that begins with a pickle's first byte rarely names one) that stops before its
    STOP opcode."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
            if head == b"PK":
                return None if zipfile.is_zipfile(path) else ZIP_CUT
            if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
                return None
            fh.seek(0)
            for _ in pickletools.genops(fh):
                pass
    except ValueError as exc:
        return CUT_SHORT if any(mark in str(exc) for mark in _PICKLE_CUT) else None
    except OSError:
        return None
    return None


ZIP_CUT = (
    "the file is cut short or damaged: its zip index, at the end, is missing (an interrupted "
    "copy, download or save?)"
)


def _names_code(path: Path) -> bool:
    """Whether a plain pickle names a class or a function to call, read by pickletools's
    opcode walk, which runs nothing (a pickle of protocol 4 or 5 fails torch's reader at its
    FRAME opcode, before any name)."""
    try:
        with path.open("rb") as fh:
            return any(op.name in _CODE_OPS for op, _, _ in pickletools.genops(fh))
    except Exception:  # not a pickle: garbage that began with a pickle's first byte
        return False


_CODE_OPS = ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ")


def _unpickle_reason(path: Path, exc: Exception) -> str:
    """The informative part of torch's weights-only refusal (e.g. 'Unsupported global: ...'),
    without its advice to load with ``weights_only=False``, which would run the file's code."""
    cut = _cut_reason(path, exc)  # a cut pickle was "Unsupported operand 149"
    if cut:
        return cut
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "nsupported" in line and "weights_only" not in line:
            return re.split(r"\.\s|;\s", line, maxsplit=1)[0].rstrip(".")
    return _torch_words(exc)
