"""Where and how a network runs: device and precision choices, the autocast context that
inference and training share, and the process-wide torch settings that commands opt into."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..choices import Precision, require, require_device_name
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
    require(Precision, name, "precision")  # None was "not 'None'"
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise UsageError("fp16 needs a CUDA device; use fp32 (or bf16) on the CPU", name)
    if name == "bf16" and device.type == "cpu" and not _native_bf16():
        import logging

        logging.getLogger(__name__).warning(
            "bf16 on this CPU (no AVX-512 BF16 or AMX) is emulated: several times slower than "
            "fp32, which is the default here"
        )
    return name


def _native_bf16() -> bool:
    """Whether this CPU computes bf16 itself (AVX-512 BF16 or AMX), as far as can be told:
    torch's own capability, then Linux's CPU flags; True where neither says (no warning)."""
    if "AMX" in torch.backends.cpu.get_cpu_capability().upper():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return True
    return not flags or "avx512_bf16" in flags or "amx_bf16" in flags


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
