"""Progress on stderr (frames, fps, ETA) that ``--quiet`` turns off."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class Advance(Protocol):
    def __call__(self, n: int = 1) -> None: ...


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}", style="cyan")


def stderr_console() -> Console:
    return Console(stderr=True)


@contextlib.contextmanager
def progress_bar(
    total: int | None, description: str, quiet: bool = False, unit: str = "frames", start: int = 0
) -> Iterator[Advance]:
    """Yield ``advance(n)``; draws a bar on stderr unless ``quiet``."""
    if quiet:
        yield lambda n=1: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        _RateColumn("fps" if unit == "frames" else f"{unit}/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr_console(), transient=False) as progress:
        task = progress.add_task(description, total=total, completed=start)
        yield lambda n=1: progress.advance(task, n)
