"""Every set of allowed values, defined once.

Each is a ``Literal`` type for mypy and, through :func:`values`, the tuple that click's
``Choice``, the config loader and the library's checks use. Nothing else spells these strings.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal, get_args

Domain = Literal["day", "night"]
Target = Literal["night", "day", "auto"]  # convert/preview --to: auto = the other domain
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Smoothing = Literal["none", "ema", "flow"]
Exposure = Literal["steady", "free"]  # a clip's output brightness follows its input's, or not
Upsampler = Literal["guided", "bicubic"]
BarsMode = Literal["keep", "translate"]  # black letterbox/pillarbox bars: kept black, or translated
Quality = Literal["auto", "fast", "balanced", "full"]
HwAccel = Literal["auto", "none", "cuda"]
Backend = Literal["auto", "torch", "onnxruntime", "openvino"]  # what runs the network
Layout = Literal["side", "stack", "wipe"]
ScoreMethod = Literal["sky", "mean"]
Label = Literal["day", "night", "ambiguous"]
OfficialDomain = Literal["a", "b"]
Norm = Literal["none", "batch", "layer", "instance"]
Activation = Literal["relu", "lrelu", "tanh", "none"]
Padding = Literal["reflect", "replicate", "zero"]
Arch = Literal["unit", "cyclegan"]
LRPolicy = Literal["step", "linear", "constant"]
Init = Literal["kaiming", "xavier", "gaussian", "default"]
Twilight = Literal["drop", "day", "night"]
Balance = Literal["image", "source"]
StructPolarity = Literal["keep", "free"]  # training: an inverted edge costs, or not
DisAugment = Literal["colour", "translation", "cutout"]  # training: DiffAugment policies
ImageFormat = Literal["jpg", "png"]


def values(kind: Any) -> tuple[str, ...]:
    """The allowed strings of a ``Literal`` type, in declaration order."""
    return tuple(get_args(kind))


def check(kind: Any, value: object, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` unless ``value`` is one of ``kind``'s values."""
    allowed = values(kind)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {'|'.join(allowed)}, got {value!r}")


def require(kind: Any, value: object, what: str) -> None:
    """As :func:`check`, for the public API: a UsageError naming ``what`` (the option's
    Python name) and the allowed values."""
    from .errors import UsageError

    try:
        check(kind, value, what)
    except ValueError as exc:
        raise UsageError(str(exc), value) from None


def require_number(
    value: object, what: str, ok: Callable[[float], bool], bounds: str, integer: bool = False
) -> None:
    """A UsageError unless ``value`` is a finite number (an int where ``integer``; a bool is
    neither) for which ``ok`` holds; ``bounds`` says which ("an integer >= 16")."""
    from .errors import UsageError

    kinds = numbers.Integral if integer else numbers.Real  # NumPy's numbers too
    real = isinstance(value, kinds) and not isinstance(value, bool) and _finite(value)
    if not real or not ok(value):  # type: ignore[arg-type]
        raise UsageError(f"{what} must be {bounds}, not {value!r}", value)


def _finite(value: Any) -> bool:
    """A finite number a float holds: an int past a float's range (10**400) was an
    OverflowError here, and would be one in every float sum after."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def require_flag(value: object, what: str) -> None:
    """A UsageError unless ``value`` is True or False ("yes" is not a flag)."""
    from .errors import UsageError

    if not isinstance(value, bool):
        raise UsageError(f"{what} must be True or False, not {value!r}", value)


def require_device_name(value: object) -> None:
    """A UsageError unless the device is given by name (which resolve_device then checks)."""
    from .errors import UsageError

    if not isinstance(value, str):
        raise UsageError(f"device must be a name (auto, cpu, cuda or cuda:N), not {value!r}", value)


DOMAINS: tuple[Domain, Domain] = ("day", "night")


def normalise_domain(name: object) -> Domain:
    """'Night', ' day ' -> 'night', 'day': the public API takes either case; anything else is
    a UsageError naming the allowed values."""
    from .errors import UsageError

    if isinstance(name, str) and name.strip().lower() in DOMAINS:
        return "day" if name.strip().lower() == "day" else "night"
    raise UsageError(f"target domain must be 'night' or 'day', not {name!r}", name)


def other_domain(domain: str) -> Domain:
    """'day' <-> 'night'."""
    check(Domain, domain, "domain")
    return "night" if domain == "day" else "day"
