"""``d2nvideo models``: the bundled model and any model files given, as text or JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .shell import CONTEXT, INPUT, one_line, os_error_line

if TYPE_CHECKING:
    from ..registry import ModelRow


@click.command(
    context_settings=CONTEXT,
    short_help="List the bundled model and model files, with what they are.",
)
@click.argument("paths", nargs=-1, type=INPUT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def models(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """List the bundled default model and any model files given: architecture, size, training
    steps and the working size each was trained for. A file that is not a model is reported
    and the others go on (exit status 1)."""
    from ..errors import D2NError
    from ..registry import bundled_models, describe_model

    rows, failed = [], 0
    for path in [*bundled_models(), *paths]:
        try:
            rows.append(describe_model(path))
        except (D2NError, OSError) as exc:
            if len(paths) == 1 and path == paths[0]:
                raise
            why = os_error_line(exc) if isinstance(exc, OSError) else str(exc)
            click.echo(f"error: {one_line(why)}", err=True)
            failed += 1
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    else:
        for r in rows:
            click.echo(_describe(r))
    if failed:
        ctx.exit(1)


def _describe(row: ModelRow) -> str:
    """A model as a block: its path whole on the first line (a path is its name, never cut),
    then what it is, then its note wrapped to the terminal."""
    import shutil
    import textwrap

    width = max(40, shutil.get_terminal_size().columns) - 2
    facts = (
        f"{row.arch}, {row.params / 1e6:.2f}M parameters, {row.mb:.1f} MB, "
        f"{row.steps} step{'' if row.steps == 1 else 's'}, work size {row.work_size}"
    )
    head = f"{row.path} (bundled)" if row.bundled else row.path
    lines = [head, *textwrap.wrap(facts, width), *textwrap.wrap(row.note, width)]
    return "\n  ".join(lines) + "\n"
