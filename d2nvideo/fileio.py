"""Safe outputs: never overwrite an input, refuse existing outputs unless asked, and write through
a temporary file that is renamed into place only when the work finished.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from .errors import OutputError, PathError


def require_file(path: Path, what: str = "input") -> Path:
    """Return ``path`` if it is an existing readable regular file, else raise PathError."""
    if not path.exists():
        raise PathError(f"{what} '{path}' does not exist", path)
    if path.is_dir():
        raise PathError(f"{what} '{path}' is a directory, expected a file", path)
    if not os.access(path, os.R_OK):
        raise PathError(f"{what} '{path}' is not readable", path)
    return path


def require_input(path: Path) -> Path:
    """Return ``path`` if it exists and can be read (a file or a folder), else PathError."""
    if not path.exists():
        raise PathError(f"input '{path}' does not exist", path)
    if not os.access(path, os.R_OK):
        raise PathError(f"input '{path}' is not readable", path)
    return path


def check_output(output: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse to write over an input, an existing file (unless ``overwrite``) or into a folder
    that does not exist or cannot be written."""
    resolved = output.resolve()
    for src in inputs:
        if src.exists() and resolved == src.resolve():
            raise PathError(f"output '{output}' is the input; choose another path", output)
    if output.is_dir():
        raise PathError(f"output '{output}' is a directory, expected a file path", output)
    if output.exists() and not overwrite:
        raise PathError(f"output '{output}' exists; pass --overwrite to replace it", output)
    parent = resolved.parent
    if not parent.is_dir():
        raise OutputError(f"output folder '{parent}' does not exist", parent)
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder '{parent}' is not writable", parent)


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (same suffix, so muxers pick the same format);
    rename it to ``final`` on success, delete it on any error or interrupt."""
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".part{final.suffix}", dir=final.resolve().parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``finally`` and temp-file cleanup runs."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
