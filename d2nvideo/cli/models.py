"""``d2nvideo models``: the bundled model and any model files given, as a table or JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from .shell import CONTEXT, INPUT


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=INPUT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(paths: tuple[Path, ...], as_json: bool) -> None:
    """List the bundled default model and any model files given: architecture, size, training
    steps and the working size each was trained for."""
    from ..registry import describe_models

    rows = describe_models(list(paths))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "arch", "params", "MB", "steps", "work size", "note")
    for r in rows:
        params = f"{r.params / 1e6:.2f}M"
        table.add_row(r.path, r.arch, params, f"{r.mb:.1f}", str(r.steps), str(r.work_size), r.note)
    Console().print(table)
