"""Temporal smoothing of translated frames. Only 'none' exists until the smoothing issue lands."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

from ..errors import UsageError
from .decode import Frame

SMOOTHERS = ("none",)
Smoother = Callable[[Iterator[Frame]], Generator[Frame, None, None]]


def _identity(frames: Iterator[Frame]) -> Generator[Frame, None, None]:
    yield from frames


def make_smoother(mode: str) -> Smoother:
    if mode == "none":
        return _identity
    raise UsageError(f"smoothing must be one of {SMOOTHERS}, not '{mode}'", mode)
