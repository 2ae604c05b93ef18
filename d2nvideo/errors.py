"""Typed errors for user input. The CLI turns each into one line on stderr and an exit code."""

from __future__ import annotations


class D2NError(Exception):
    """Base class for errors caused by the user's input rather than a bug.

    ``exit_code`` follows click: 2 for usage errors found before any work, 1 at run time.
    """

    exit_code = 1

    def __init__(self, message: str, value: object | None = None) -> None:
        super().__init__(message)
        self.value = value


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message in one short line ('' when it has none): library errors that
    run to paragraphs are quoted by their first line."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else ""


class UsageError(D2NError):
    """An option or argument that cannot work, found before any work starts."""

    exit_code = 2


class PathError(UsageError):
    """A path on the command line that is missing, of the wrong kind, or already taken."""


class InputError(D2NError):
    """An input file that is missing, unreadable, corrupt or of the wrong kind."""


class OutputError(D2NError):
    """An output path that cannot be written, or exists and may not be overwritten."""


class CheckpointError(D2NError):
    """A checkpoint that is missing, corrupt, unsafe or not of a kind d2nvideo reads."""


class ConfigError(UsageError):
    """A configuration file or value that is invalid; the message names the key."""
