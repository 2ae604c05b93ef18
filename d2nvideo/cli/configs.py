"""``d2nvideo configs``: the training configs shipped with d2nvideo, listed or written out.

They are the files of the checkout's ``configs/`` folder, installed as ``d2nvideo/configs``
(pyproject's package-data), so ``d2nvideo train`` works from an installed package too.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import click

from .options import overwrite_option
from .shell import CONTEXT, OUTPUT

PACKAGE = Path(__file__).resolve().parents[1]


def config_folder() -> Path:
    """``d2nvideo/configs`` when installed, else the checkout's ``configs/``."""
    installed = PACKAGE / "configs"
    return installed if installed.is_dir() else PACKAGE.parent / "configs"


def shipped_configs() -> dict[str, Path]:
    """Name (the file's stem) -> path of every shipped config."""
    return {p.stem: p for p in sorted(config_folder().glob("*.yaml"))}


def shipped_config(name: str) -> Path | None:
    """The shipped config called ``name`` (with or without ``.yaml``), or None."""
    return shipped_configs().get(name.removesuffix(".yaml"))


def summary(path: Path) -> str:
    """A config's first sentence, from the comment at its top: what it is for (the first
    comment line alone was cut mid-phrase)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    return re.split(r"(?<=\.)\s+(?=[A-Z])", text, maxsplit=1)[0]


def listing(paths: dict[str, Path], width: int) -> list[str]:
    """Each config's name and first sentence, wrapped to ``width`` columns under the names."""
    column = max(map(len, paths), default=0) + 2
    return [
        textwrap.fill(
            f"{stem:<{column}}{summary(path)}",
            width=max(width, column + 20),
            subsequent_indent=" " * column,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for stem, path in paths.items()
    ]


@click.command(
    context_settings=CONTEXT,
    short_help="List the shipped training configs, or write one out to edit.",
)
@click.option("--dump", "name", default=None, metavar="NAME", help="Print (or -o write) NAME.")
@click.option("-o", "--output", type=OUTPUT, default=None, help="With --dump: write it here.")
@overwrite_option
def configs(name: str | None, output: Path | None, overwrite: bool) -> None:
    """List the training configs shipped with d2nvideo, or write one out to edit and pass to
    'd2nvideo train' (which also takes a shipped config by NAME)."""
    from ..errors import UsageError

    if name is None:
        if output is not None:
            raise UsageError("-o needs --dump NAME")
        width = shutil.get_terminal_size().columns - 1
        click.echo("\n".join(listing(shipped_configs(), min(width, 100))))
        return
    shipped = shipped_config(name)
    if shipped is None:
        known = ", ".join(shipped_configs())
        raise UsageError(f"no shipped config '{name}'; the shipped ones are: {known}", name)
    if output is None:
        click.echo(shipped.read_text(), nl=False)
        return
    _write(shipped, output, overwrite)


def _write(path: Path, output: Path, overwrite: bool) -> None:
    from ..fileio import atomic_output, check_output

    check_output(output, [path], overwrite)
    with atomic_output(output) as tmp:
        tmp.write_text(path.read_text())
    click.echo(f"{path.stem} -> {output}")
