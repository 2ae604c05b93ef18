"""Generator architectures, one file each, and the one place a config picks between them."""

from __future__ import annotations

import dataclasses
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
    """Rebuild a model config from plain data; raises ValueError naming a bad key or value."""
    arch = data.get("arch")
    if arch not in _ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(_ARCHS)}")
    cls = _ARCHS[arch][0]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {arch} model key(s): {', '.join(unknown)}")
    return cls(**data)  # type: ignore[no-any-return]


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
    "other_domain",
]
