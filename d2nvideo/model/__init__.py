"""Generator architectures, one file each, and the one place a config picks between them."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from .cyclegan import CycleGANConfig, CycleGANGenerator
from .unit import DOMAINS, UNITConfig, UNITGenerator, other_domain

ModelConfig = UNITConfig | CycleGANConfig
Generator = UNITGenerator | CycleGANGenerator
_ARCHS: dict[str, tuple[type, type]] = {
    "unit": (UNITConfig, UNITGenerator),
    "cyclegan": (CycleGANConfig, CycleGANGenerator),
}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config from plain data; raises ValueError naming a bad key or value
    (of the wrong type too: ``width: "four"`` is refused here, before any comparison)."""
    if not isinstance(data, dict):
        raise ValueError(f"a model config must be a mapping of keys, not {data!r:.60}")
    arch = data.get("arch")
    if not isinstance(arch, str) or arch not in _ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(_ARCHS)}")
    cls = _ARCHS[arch][0]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {arch} model key(s): {', '.join(map(str, unknown))}")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        _check_type(key, value, hints[key])
    return cls(**data)  # type: ignore[no-any-return]


def _check_type(key: str, value: object, kind: Any) -> None:
    """``value`` is of the field's type: an int (not a bool) for int fields, a bool for bool
    fields, else a string."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    elif not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")


# keys added after checkpoints were first written: a file records one only where it differs from
# this default, so a plain model's header (and its graph cache key) is what it was before the key
# existed, and older versions read every file that does not use the newer layer
_LATER_KEYS: dict[str, object] = {"antialias": False}


def config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """Plain data for a checkpoint header: :func:`config_from_dict`'s inverse."""
    data = dataclasses.asdict(cfg)
    for key, default in _LATER_KEYS.items():
        if key in data and data[key] == default:
            del data[key]
    return data


def build_generator(cfg: ModelConfig) -> Generator:
    return _ARCHS[cfg.arch][1](cfg)  # type: ignore[no-any-return]


__all__ = [
    "DOMAINS",
    "CycleGANConfig",
    "CycleGANGenerator",
    "Generator",
    "ModelConfig",
    "UNITConfig",
    "UNITGenerator",
    "build_generator",
    "config_from_dict",
    "config_to_dict",
    "other_domain",
]
