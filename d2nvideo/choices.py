"""Every set of allowed values, defined once.

Each is a ``Literal`` type for mypy and, through :func:`values`, the tuple that click's
``Choice``, the config loader and the library's checks use. Nothing else spells these strings.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

Domain = Literal["day", "night"]
Target = Literal["night", "day", "auto"]  # convert/preview --to: auto = the other domain
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Smoothing = Literal["none", "ema", "flow"]
Upsampler = Literal["guided", "bicubic"]
Quality = Literal["auto", "fast", "balanced", "full"]
HwAccel = Literal["auto", "none", "cuda"]
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
ImageFormat = Literal["jpg", "png"]


def values(kind: Any) -> tuple[str, ...]:
    """The allowed strings of a ``Literal`` type, in declaration order."""
    return tuple(get_args(kind))


def check(kind: Any, value: object, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` unless ``value`` is one of ``kind``'s values."""
    allowed = values(kind)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {'|'.join(allowed)}, got {value!r}")


DOMAINS: tuple[Domain, Domain] = ("day", "night")


def other_domain(domain: str) -> Domain:
    """'day' <-> 'night'."""
    check(Domain, domain, "domain")
    return "night" if domain == "day" else "day"
