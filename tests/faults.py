"""What every fault-injection test checks (issue 14): the exit code, exactly one stderr line
that starts with ``error:`` and names the problem, no traceback, the inputs unchanged and
nothing left under the output name (no file, no folder, no temporary file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from d2nvideo.cli import cli


def invoke(*args: object, input: str | None = None) -> Result:
    """The command line in this process; an uncaught exception fails the test."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def run_cli(*args: object, cwd: Path, timeout: float = 120, **kw: Any) -> Any:
    """The command line in a fresh process (for signals, pipes and warnings)."""
    return subprocess.run(
        [sys.executable, "-m", "d2nvideo", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        **kw,
    )


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``root``."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def one_error(stderr: str, message: str) -> None:
    lines = stderr.rstrip("\n").split("\n")  # a blank line before it is a second line
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr


def fails(result: Result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    one_error(result.stderr, message)


def refused(root: Path, code: int, message: str, *args: object) -> Result:
    """``args`` fail with ``code`` and one line naming ``message``; nothing under ``root``
    (inputs and outputs alike) changes."""
    before = snapshot(root)
    result = invoke(*args)
    fails(result, code, message)
    assert snapshot(root) == before
    return result
