"""Where and how a network runs: device and precision choices, the autocast context that
inference and training share, and the process-wide torch settings that commands opt into."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..choices import Precision, require_device_name, values
from ..errors import UsageError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; anything but cpu/cuda[:N] is a usage error."""
    require_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N", name) from exc
    if device.type not in _DEVICE_TYPES or (device.type == "cpu" and device.index):
        raise UsageError(f"device '{name}' is not supported: use auto, cpu, cuda or cuda:N", name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{name}' asked for, but CUDA is not available here", name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(
            f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s)", name
        )
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' -> bf16 (or fp16 on pre-Ampere cards) on CUDA, fp32 on CPU."""
    if name not in values(Precision):
        raise UsageError(f"precision must be one of {values(Precision)}, not '{name}'", name)
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise UsageError("fp16 needs a CUDA device; use fp32 (or bf16) on the CPU", name)
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for ``precision`` bf16/fp16; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def set_fast_flags(device: torch.device) -> None:
    """Process-wide settings the commands ask for (the library never sets them itself):

    - on the CPU, flush denormal floats to zero: they make x86 convolutions an order of
      magnitude slower (measured 12x in training here) and change no visible output;
    - on CUDA, let cuDNN autotune once per frame size (sizes repeat in a video).
    """
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
