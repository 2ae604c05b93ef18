"""Progress on stderr (count, rate, elapsed, ETA) that ``--quiet`` turns off.

Laid out to fit an 80-column terminal: a short description and a fixed-width bar, so the
rate and ETA are never squeezed out. Rate and ETA count only the work done in this run, from
its first second on: items skipped because an earlier run finished them (a resumed folder, a
resumed training) would otherwise show rates of tens of thousands per second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

DESCRIPTION_WIDTH = 18
BAR_WIDTH = 14
WARM_UP_S = 1.0  # no rate or ETA before this much of this run's time


class Advance(Protocol):
    def __call__(self, n: int = 1) -> None: ...


class Bar:
    """``bar(n)`` advances; ``bar.say(text)`` prints a line above the bar (not through it).
    A lazy bar is drawn from its first report on (so errors before any work print alone)."""

    def __init__(self, progress: Progress | None, task: TaskID | None, lazy: bool = False) -> None:
        self.progress = progress
        self.task = task
        self.lazy = lazy

    def _show(self) -> None:
        if self.lazy and self.progress is not None:
            self.lazy = False
            self.progress.start()

    def __call__(self, n: int = 1) -> None:
        if self.progress is None or self.task is None:
            return
        self._show()
        fields = self.progress.tasks[self.task].fields
        if fields["started_at"] is None:  # rates count from the first report on
            fields["started_at"] = time.monotonic()
            fields["base"] = self.progress.tasks[self.task].completed + n
        self.progress.advance(self.task, n)

    def to(self, count: int) -> None:
        """Advance to an absolute ``count`` (a training step)."""
        if self.progress is not None and self.task is not None:
            self(count - int(self.progress.tasks[self.task].completed))

    def set_total(self, total: int) -> None:
        """The amount of work, once it is known."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=total)

    def skip(self, n: int) -> None:
        """Take ``n`` items off the total (found done by an earlier run), without drawing."""
        if self.progress is not None and self.task is not None:
            total = self.progress.tasks[self.task].total
            if total is not None:
                self.progress.update(self.task, total=max(0, total - n))

    def describe(self, text: str) -> None:
        """Change the bar's description (e.g. files done)."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=plain(short(text)))

    def say(self, text: str) -> None:
        if self.progress is not None:
            self._show()
            self.progress.console.print(text, highlight=False, markup=False)


def _own_rate(task: Task) -> float | None:
    """Items per second done in this run (after the warm-up), or None."""
    started = task.fields.get("started_at")
    elapsed = time.monotonic() - started if started is not None else 0.0
    done = task.completed - task.fields.get("base", 0)
    if elapsed < WARM_UP_S or done <= 0:
        return None
    return float(done / elapsed)


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        rate = _own_rate(task)
        text = "" if rate is None else f"{rate:.{1 if rate >= 1 else 2}f} {self.unit}"
        return Text(text, style="cyan")


class _TimesColumn(ProgressColumn):
    """``1:02 eta 0:40``: elapsed this run, and the time left at this run's rate."""

    def render(self, task: Task) -> Text:
        started = task.fields.get("started_at")
        elapsed = time.monotonic() - started if started is not None else 0.0
        rate = _own_rate(task)
        left = "?"
        if task.finished:
            left = "0:00"
        elif rate and task.total is not None:
            left = _clock((task.total - task.completed) / rate)
        return Text(f"{_clock(elapsed)} eta {left}", style="yellow")


def _clock(seconds: float) -> str:
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def stderr_console() -> Console:
    return Console(stderr=True)


def short(text: str, width: int = DESCRIPTION_WIDTH) -> str:
    """``text`` cut to ``width`` characters with an ellipsis in the middle."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep - keep // 2] + "…" + text[-(keep // 2) :]


def plain(text: str) -> str:
    """``text`` shown as it is in the bar's description, which Rich reads as markup: a file
    named 'trip[b].mp4' showed as 'trip.mp4' in bold."""
    from rich.markup import escape

    return escape(text)


@contextlib.contextmanager
def progress_bar(
    total: int | None,
    description: str,
    quiet: bool = False,
    unit: str = "frames",
    start: int = 0,
    lazy: bool = False,
) -> Iterator[Bar]:
    """Yield a :class:`Bar` drawn on stderr, or a silent one if ``quiet``. ``start`` items are
    already done (a resumed run) and do not count towards the rate; a ``lazy`` bar appears at
    its first report."""
    if quiet:
        yield Bar(None, None)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=BAR_WIDTH),
        MofNCompleteColumn(),
        _RateColumn("fps" if unit == "frames" else f"{unit}/s"),
        _TimesColumn(),
    )
    progress = Progress(*columns, console=stderr_console(), transient=False)
    task = progress.add_task(
        plain(short(description)), total=total, completed=start, base=start, started_at=None
    )
    if not lazy:
        progress.start()
    bar = Bar(progress, task, lazy)
    try:
        yield bar
    finally:
        if not bar.lazy:  # drawn (rich's stop writes a blank line even for a bar never drawn)
            progress.stop()
