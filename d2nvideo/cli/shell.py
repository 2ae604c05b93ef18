"""What every command shares: click settings, and errors turned into one line.

User-input errors (:class:`~d2nvideo.errors.D2NError`), click's own usage errors and OS errors
end as one ``error: ...`` line on stderr and a non-zero exit status, never a traceback;
Ctrl-C and SIGTERM end with 130 and 143.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import D2NError
from ..processes import Terminated, sigterm_as_interrupt

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}
# Paths are checked by the library, which names the problem in its own words (missing, a
# folder, unreadable, the input itself...); click only converts them.


class PathType(click.Path):
    """A path argument or option; an empty string, which pathlib reads as '.' (the whole
    current folder, for an input), is refused."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("an empty path ('') names nothing", param, ctx)
        return super().convert(value, param, ctx)


INPUT = PathType(path_type=Path)
OUTPUT = PathType(path_type=Path)
OUTPUT_NAMED = PathType()  # as typed, a trailing '/' kept (pathlib drops it)
INTERRUPTED = "interrupted: nothing was written under the output name"


class Failure(click.ClickException):
    """A handled error: printed as one line, exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {one_line(self.format_message())}", err=True)


def one_line(message: str) -> str:
    """A message that spans lines (a library's multi-line text quoted in ours, click's list of
    choices) as one line: lines joined by '; ', or by a space after a line that ends in ',' or
    ':' (a list going on)."""
    text = ""
    for line in (line.strip() for line in message.strip().splitlines()):
        if line:
            text += ("" if not text else " " if text.endswith((",", ":")) else "; ") + line
    return text


class Interrupted(click.ClickException):
    """Ctrl-C or SIGTERM, after whatever cleanup the command did; ``message`` says what was
    kept (a folder run keeps the files it finished, a single output keeps nothing)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


LINK_LOOP = "Symlink loop from "  # Path.resolve()'s RuntimeError on Python 3.11 and 3.12


def guarded_invoke(invoke: Callable[[click.Context], Any], ctx: click.Context) -> Any:
    """Run ``invoke(ctx)``, turning user-input errors into one line and an exit code, and
    SIGTERM into an interrupt like Ctrl-C for every command (evaluate, and train's and
    convert's set-up, ended silently)."""
    try:
        with sigterm_as_interrupt():
            return invoke(ctx)
    except D2NError as exc:
        raise Failure(str(exc), exc.exit_code) from exc
    except KeyboardInterrupt as exc:
        message = ctx.meta.get("interrupted", INTERRUPTED)
        message = message() if callable(message) else message
        raise Interrupted(message, exc.exit_code if isinstance(exc, Terminated) else 130) from exc
    except BrokenPipeError as exc:
        if not _stdout_gone():
            raise Failure(os_error_line(exc), 1) from exc
        _quiet_stdout()  # `d2nvideo configs | head -1`: the reader left, as a pipe's do
        raise click.exceptions.Exit(1) from exc
    except OSError as exc:
        raise Failure(os_error_line(exc), 1) from exc
    except Exception as exc:  # ONNX Runtime's errors are plain Exceptions
        if isinstance(exc, MemoryError) or _out_of_memory(exc):
            raise Failure(OUT_OF_MEMORY, 1) from exc
        # Path.resolve() on a link loop (an OSError from Python 3.13)
        if not (isinstance(exc, RuntimeError) and str(exc).startswith(LINK_LOOP)):
            raise
        raise Failure(f"a link loop on the way to {str(exc).removeprefix(LINK_LOOP)}", 1) from exc


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll (Windows), no real stdout
        return False


def _quiet_stdout() -> None:
    """Standard output to the null device, so that the exit's flush says nothing more."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


OUT_OF_MEMORY = (
    "out of memory: use smaller frames (--max-size or --work-size, not --quality full), a "
    "smaller --batch-size, or close other programs"
)
# What torch's CPU allocator and ONNX Runtime's arena say when the machine's memory runs out
# (a 4K frame at --quality full takes 4.6 GB); the CUDA kind is split on in batching.py.
_OOM_TEXT = ("can't allocate memory", "DefaultCPUAllocator", "BFCArena", "bad_alloc")


def _out_of_memory(exc: BaseException) -> bool:
    return any(text in str(exc) for text in _OOM_TEXT)


def os_error_line(exc: OSError) -> str:
    """An OS error in our words: its reason and the file it names (a folder to be made where
    a file is: 'File exists' said nothing of what was wrong)."""
    if isinstance(exc, FileExistsError) and exc.filename and os.path.isfile(exc.filename):
        return f"'{exc.filename}' is a file where a folder is needed"
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _exit_on(exc: Exception) -> NoReturn:
    """Print a click exception the project's way and exit."""
    if isinstance(exc, click.UsageError) and not isinstance(exc, Failure):
        path = exc.ctx.command_path if exc.ctx is not None else "d2nvideo"
        click.echo(f"error: {one_line(exc.format_message())} (see '{path} --help')", err=True)
        sys.exit(exc.exit_code)
    if isinstance(exc, click.ClickException):
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(exc, click.exceptions.Exit):
        sys.exit(exc.exit_code)
    click.echo("interrupted", err=True)  # click.Abort: Ctrl-C while parsing or prompting
    sys.exit(130)


class OneLineErrors:
    """Mixin for click commands and groups: handled errors and click's usage errors print one
    line (click's default prints usage and a multi-line box)."""

    def invoke(self, ctx: click.Context) -> Any:
        return guarded_invoke(super().invoke, ctx)  # type: ignore[misc]

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except (click.ClickException, click.exceptions.Exit, click.Abort) as exc:
            _exit_on(exc)
        sys.exit(code if isinstance(code, int) else 0)  # click returns ctx.exit's code


class GuardedCommand(OneLineErrors, click.Command):
    """A standalone command (``python -m d2nvideo.training``) with the group's handling."""


@contextlib.contextmanager
def interrupts_leave_at_once() -> Iterator[None]:
    """For a program's entry point: after Ctrl-C, SIGTERM or SIGHUP (exit 130, 143 or 129)
    leave at once, without the interpreter's teardown. The command has cleaned up and said
    what it kept by then, and a native thread pool that a worker started just before the
    signal can abort the teardown (seen with torch on a loaded machine: "terminate called
    without an active exception", killed by SIGABRT instead of exiting 130). Not for
    in-process callers."""
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (129, 130, 143):
            raise
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        logging.shutdown()
        _release_semaphores()
        os._exit(exc.code)


def _release_semaphores() -> None:
    """Unlink the named semaphores of a worker pool that this process made (what
    multiprocessing does at a normal exit), so that its resource tracker does not warn of
    'leaked semaphore objects' after our one line."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        with contextlib.suppress(Exception):
            util._run_finalizers(0)  # those of priority >= 0: the semaphores' unlinking


def interrupted_keeps(ctx: click.Context, message: str | Callable[[], str]) -> None:
    """Say, if the command is interrupted, what it kept (default: nothing); a callable says
    it as things stand at the interrupt."""
    ctx.meta["interrupted"] = message
