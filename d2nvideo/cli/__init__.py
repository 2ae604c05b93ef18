"""The ``d2nvideo`` command line: a thin click shell. Each command lives in its own module and
is imported only when it runs (or when help lists it); commands import torch and PyAV inside
their bodies, so ``d2nvideo --help`` is instant and extract, relabel and info never load torch.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import ClassVar, TextIO

import click

from .shell import CONTEXT, OneLineErrors, interrupts_leave_at_once


class D2NGroup(OneLineErrors, click.Group):
    """Subcommands loaded lazily by name; the library never imports the training package,
    whose commands are looked up here by string only."""

    commands_by_name: ClassVar[dict[str, str]] = {
        "configs": "d2nvideo.cli.configs:configs",
        "convert": "d2nvideo.cli.convert:convert",
        "evaluate": "d2nvideo.cli.evaluate:evaluate",
        "export": "d2nvideo.training.cli:export",
        "extract": "d2nvideo.cli.extract:extract",
        "info": "d2nvideo.cli.info:info",
        "models": "d2nvideo.cli.models:models",
        "preview": "d2nvideo.cli.preview:preview",
        "relabel": "d2nvideo.cli.relabel:relabel",
        "train": "d2nvideo.training.cli:train",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands_by_name)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands_by_name:
            return None
        module, attr = self.commands_by_name[name].split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=D2NGroup, context_settings=CONTEXT, invoke_without_command=True)
@click.version_option(package_name="d2nvideo")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Turn dashcam video from day to night and back, and train the model that does it."""
    handler = CurrentStderr()
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    # --compile on a machine without CUDA: inductor's C++ build says it found no CUDA runtime
    logging.getLogger("torch.utils.cpp_extension").addFilter(_no_cuda_runtime_line)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


class CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes a record to what ``sys.stderr`` is when it comes: a progress bar on a terminal
    puts a proxy there that prints above the bar (a handler bound to the stream it started
    with wrote warnings onto the bar's line)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def _no_cuda_runtime_line(record: logging.LogRecord) -> bool:
    return "No CUDA runtime is found" not in record.getMessage()


def main(args: list[str] | None = None) -> None:
    """The program (``d2nvideo``, ``python -m d2nvideo``)."""
    with interrupts_leave_at_once():
        cli.main(args=args, prog_name="d2nvideo")
