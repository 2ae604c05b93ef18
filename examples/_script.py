"""What the example scripts (and the benchmarks, through benchmarks/_clip.py) share: an
argparse parser that reports a usage error in one line, --help's description from a
docstring, and the entry that turns d2nvideo's errors into one line on stderr and an exit
code, as the ``d2nvideo`` commands do. Nothing here imports d2nvideo at module level."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


def description(doc: str | None) -> str:
    """A docstring's first paragraph in one line: --help's description."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (``prog: error: ...``) and exits 2,
    rather than the usage text and then the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def entry(main: Callable[[], None]) -> None:
    """Run ``main``; d2nvideo's errors (bad input, a child that failed) end as one line on
    stderr and the error's exit code, Ctrl-C as one line and 130, never as a traceback."""
    from d2nvideo.errors import D2NError

    try:
        main()
    except D2NError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
