"""How d2nvideo processes keep out of each other's way and stop cleanly: an exclusive ``flock``
on an output file or folder for a block (gone with the process, even on SIGKILL), Ctrl-C left
to the parent of worker processes, SIGTERM taken as an interrupt (every ``finally`` and
temporary-file cleanup runs), and SIGTERM's default action where a native wait must die of it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from .errors import OutputError
from .fileio import make_new_folders

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if needed; a folder is locked itself,
    leaving nothing in it) for the block; OutputError at once if another process holds it.
    The lock goes with the process, even on SIGKILL. Where the file system has no such locks
    (a folder on some network file systems), the block runs unlocked."""
    if fcntl is None:  # Windows: no flock (and a folder cannot be opened)
        yield
        return
    flags = os.O_RDONLY if lock_file.is_dir() else os.O_CREAT | os.O_RDWR
    fd = os.open(lock_file, flags, 0o666)
    in_use = OutputError(f"{what} is in use by another process", lock_file)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise in_use from None
        except OSError:  # EBADF/ENOLCK/ENOTSUP: no locks here
            pass
        if not _still_there(fd, lock_file):  # its holder removed it, another made it again
            raise in_use
        yield
    finally:
        os.close(fd)


def _still_there(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file or folder open as ``fd``."""
    try:
        now, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def folder_in_use(folder: Path, what: str) -> Iterator[None]:
    """:func:`exclusive` on ``folder``, made for the block if it is missing and, if still
    empty, removed after (with the parents this call made), under the lock: two runs writing
    one folder at once (two extracts' manifests, two relabels' lists) refuse each other, and
    a run that writes nothing leaves nothing. A refused run removes nothing (it removed the
    folder the other run held, which let a third run in)."""
    made = make_new_folders(folder)
    with exclusive(folder, what):
        try:
            yield
        finally:
            for path in reversed(made):  # the folder first, then its parents
                try:
                    path.rmdir()
                except OSError:  # not empty: kept
                    break


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored within the block (in the main thread; elsewhere nothing changes), so
    that processes started there ignore Ctrl-C from their first instruction, Python's start-up
    included (it keeps an ignored SIGINT ignored): their parent decides and stops them."""
    with _signal_set(signal.SIGINT, signal.SIG_IGN):
        yield


HANGUP = getattr(signal, "SIGHUP", None)  # none on Windows


def start_resource_tracker() -> None:
    """multiprocessing's resource tracker, started with SIGHUP ignored: it ignores SIGINT and
    SIGTERM itself, but a hang-up to the group killed it, and the one started in its place
    printed a KeyError traceback for each semaphore the workers gave back."""
    from multiprocessing import resource_tracker

    if HANGUP is None:  # Windows: no tracker process either
        return
    with _signal_set(HANGUP, signal.SIG_IGN):
        resource_tracker.ensure_running()


@contextlib.contextmanager
def sigterm_default() -> Iterator[None]:
    """SIGTERM's default action within the block: a native wait that never returns to Python
    (torch.distributed's rendezvous) must still die of it, as torchrun expects."""
    with _signal_set(signal.SIGTERM, signal.SIG_DFL):
        yield


@contextlib.contextmanager
def _signal_set(sig: int, action: Any) -> Iterator[None]:
    """``action`` for ``sig`` within the block, in the main thread (elsewhere signals cannot be
    set, and are left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(sig, action)
    try:
        yield
    finally:
        signal.signal(sig, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP: the terminal closed, an ssh session dropped), raised like Ctrl-C
    so every ``finally`` and temp-file cleanup runs. ``exit_code``: 128 + the signal."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.exit_code = 128 + signum


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (a
    hang-up killed a run at once, leaving its temporary file)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_signal_set(signal.SIGTERM, handler))
        if HANGUP is not None and signal.getsignal(HANGUP) is not signal.SIG_IGN:  # nohup
            stack.enter_context(_signal_set(HANGUP, handler))
        yield
