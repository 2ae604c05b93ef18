"""What the benchmarks share: the synthetic clip they run on when no --clip is given, argument
types that refuse a bad value before any work, child processes whose failure is told in one
line, and (from examples/_script.py) the one-line parser and the entry that turns the
project's errors into one line on stderr and an exit code.

Nothing here imports d2nvideo at module level: device_check.py imports this before it makes
a bare checkout's d2nvideo importable.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from _script import Parser, description, entry  # noqa: E402  (one definition, re-exported)

__all__ = ["Parser", "at_least", "child", "description", "entry", "frame_size", "positive"]
__all__ += ["synthetic_clip"]


def synthetic_clip(path: Path, seconds: float, size: str = "1280x720", fps: int = 30) -> Path:
    """Write examples/make_test_clip.py's driving clip (with audio) to ``path``."""
    cmd = [sys.executable, str(ROOT / "examples" / "make_test_clip.py"), str(path)]
    child([*cmd, "--seconds", str(seconds), "--size", size, "--fps", str(fps)])
    return path


def child(cmd: list[str], what: str | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``cmd`` (output captured as text); a failure raises the project's D2NError with the
    child's last line on stderr (its error, or its traceback's last line), not the command."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        from d2nvideo.errors import D2NError

        said = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        reason = said[-1].removeprefix("error: ") if said else "nothing on stderr"
        name = what or Path(cmd[1]).name
        raise D2NError(f"{name} failed (exit {proc.returncode}): {reason}")
    return proc


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"takes a whole number >= {low}, not '{text}'")
        return value

    return parse


def positive(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"takes a finite number above 0, not '{text}'")
    return value


def frame_size(text: str) -> str:
    """An argparse type: WIDTHxHEIGHT of whole numbers from 16 (the text, as given)."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and min(int(width), int(height)) >= 16):
        raise argparse.ArgumentTypeError(
            f"takes WIDTHxHEIGHT like 640x360 (each side at least 16), not '{text}'"
        )
    return f"{int(width)}x{int(height)}"
