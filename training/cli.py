"""``d2nvideo train`` and ``d2nvideo export`` (also ``python -m d2nvideo.training``, which
torchrun launches once per process)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import click

from d2nvideo.choices import OfficialDomain
from d2nvideo.cli.options import DAY_IS
from d2nvideo.cli.shell import CONTEXT, OUTPUT, GuardedCommand


@click.command(
    cls=GuardedCommand,
    context_settings=CONTEXT,
    short_help="Train a UNIT or CycleGAN day<->night translator.",
)
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", type=OUTPUT, required=True, help="Run folder.")
@click.option("--day", multiple=True, help="Folder of day images (repeatable).")
@click.option("--night", multiple=True, help="Folder of night images (repeatable).")
@click.option(
    "--nexet",
    type=click.Path(path_type=Path),
    default=None,
    help="NEXET train.csv (image_filename,lighting,city); needs --images.",
)
@click.option(
    "--bdd",
    type=click.Path(path_type=Path),
    default=None,
    help="BDD100K label JSON (name, attributes.timeofday); needs --images.",
)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="Image folder for --nexet/--bdd.",
)
@click.option(
    "--relabeled",
    type=click.Path(path_type=Path),
    default=None,
    help="A 'd2nvideo relabel' output folder: trains on its cleaned lists.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its latest state (its saved config and data).",
)
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    default=None,
    help="Start a new run from this checkpoint's generator weights (fine-tuning; "
    "discriminators and optimisers start fresh).",
)
@click.option("--steps", type=click.IntRange(1), default=None, help="Override train.steps.")
@click.option(
    "--batch-size", type=click.IntRange(1), default=None, help="Override train.batch_size."
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Wall-clock budget: stop cleanly with a checkpoint when it is spent. Saved with the "
    "run: a --resume keeps it unless given again (--set train.max_minutes=null drops it).",
)
@click.option(
    "--device",
    default=None,
    help="auto, cpu, cuda or cuda:N (auto picks CUDA if present; under torchrun each process "
    "takes its own GPU). Default: train.device.",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Processes that load and augment images (0: in the training process). Default: "
    "data.workers.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override any config key, e.g. --set optim.lr=0.0002 (repeatable).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or console log.")
@click.pass_context
def train(
    ctx: click.Context, config: Path, out: Path, resume: bool, quiet: bool, **kw: Any
) -> None:
    """Train a UNIT (or CycleGAN) day<->night translator from a YAML CONFIG
    ('d2nvideo configs' lists and writes out the shipped ones).

    Data: --day/--night folders, --nexet/--bdd label files with --images, or --relabeled.
    Several GPUs: torchrun --nproc_per_node=N -m d2nvideo.training CONFIG ...
    Ctrl-C (or SIGTERM) stops after the current step, saves a checkpoint and exits with 130
    (143); --resume continues from it.
    """
    from d2nvideo.cli.progress import progress_bar
    from d2nvideo.cli.shell import interrupted_keeps

    from .config import load_config, with_changes
    from .train import Hooks, check_config_input, main, resolve_resume_config

    overrides, init = kw.pop("overrides"), kw.pop("init")
    config = _config_path(config)
    cfg = load_config(config, overrides)
    if resume:  # the run's saved config, with this command's --set changes on top
        cfg = resolve_resume_config(out, cfg, overrides, edited=_users_own(config, out))
    else:
        check_config_input(config, out)
    data = {
        "day": tuple(kw["day"]) or None,
        "night": tuple(kw["night"]) or None,
        "nexet_csv": _str(kw["nexet"]),
        "bdd_json": _str(kw["bdd"]),
        "images": _str(kw["images"]),
        "relabeled": _str(kw["relabeled"]),
        "workers": kw["workers"],
    }
    cfg = with_changes(cfg, "data", **data)
    cfg = with_changes(
        cfg,
        "train",
        steps=kw["steps"],
        batch_size=kw["batch_size"],
        max_minutes=kw["max_minutes"],
        device=kw["device"],
    )
    rank = int(os.environ.get("RANK", "0"))  # under torchrun only rank 0 draws
    interrupted_keeps(ctx, lambda: _kept(out / "state"))
    with progress_bar(cfg.train.steps, "train", quiet or rank > 0, "steps", lazy=True) as bar:
        hooks = Hooks(bar.to, bar.say)
        result = main(cfg, out, resume=resume, quiet=quiet, hooks=hooks, init=init)
    if not result.is_main:
        return
    losses = " ".join(f"{k} {v:.3f}" for k, v in result.last.items())
    # two lines: as one, the losses took it to 125 characters, wrapped in an 80-column terminal
    click.echo(f"step {result.step} ({result.stopped}) in {result.seconds:.0f} s -> {out}")
    click.echo(textwrap.fill(f"losses: {losses}", 79, subsequent_indent="  "))
    if result.stopped == "interrupted":  # scripts must tell a stopped run from a finished one
        _exit_interrupted(result.step, result.signal)


def _exit_interrupted(step: int, signum: int) -> None:
    from d2nvideo.cli.shell import Interrupted

    raise Interrupted(
        f"interrupted: stopped at step {step} with its state saved; continue with --resume",
        128 + signum if signum else 130,
    )


def _users_own(config: Path, out: Path) -> bool:
    """Whether CONFIG is a file of the user's: not a shipped config, nor the run's own."""
    from d2nvideo.cli.configs import config_folder

    if config.resolve().parent == config_folder().resolve():
        return False
    try:
        return not (out / "config.yaml").samefile(config)
    except OSError:  # the run has none (refused later), or CONFIG went meanwhile
        return True


def _config_path(config: Path) -> Path:
    """CONFIG as given, or the shipped config of that name ('d2nvideo configs'); a folder of
    that name where train runs (a run folder called ``tiny``) does not hide the shipped one."""
    from d2nvideo.cli.configs import shipped_config

    if config.exists() and not (config.is_dir() and shipped_config(str(config))):
        return config
    return shipped_config(str(config)) or config


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


@click.command(
    cls=GuardedCommand,
    context_settings=CONTEXT,
    short_help="Export a run's generator as a model file, or ONNX graphs.",
)
@click.argument("run", metavar="RUN|MODEL", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="The .safetensors file to write (needed for a RUN folder).",
)
@click.option("--fp32", is_flag=True, help="Keep float32 weights (default: float16, half size).")
@click.option(
    "--note",
    default="",
    show_default=False,
    help="A line of text stored in the checkpoint's metadata.",
)
@click.option(
    "--onnx",
    is_flag=True,
    help="Also write an ONNX graph per direction beside the output (OUTPUT.night.onnx, "
    "OUTPUT.day.onnx: dynamic batch, height and width); given a MODEL file, write its graphs "
    "beside it. Needs pip install 'd2nvideo[onnx]'.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="For a run trained with train.ema: export the generator's own latest weights, not "
    "their moving average.",
)
@click.option(
    "--step",
    type=click.IntRange(min=0),
    default=None,
    help="Export the state the run kept at this step (see its state folder) instead of the "
    "latest one.",
)
@DAY_IS
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.pass_context
def export(
    ctx: click.Context,
    run: Path,
    output: Path | None,
    fp32: bool,
    note: str,
    onnx: bool,
    raw: bool,
    step: int | None,
    official_day: OfficialDomain,
    overwrite: bool,
) -> None:
    """Export the latest generator of a training RUN folder (or the one it kept at --step) as
    the inference checkpoint that convert, preview and evaluate load; with --onnx, also (or,
    for a MODEL file: .safetensors, or an official UNIT gen_*.pt, only) its ONNX graphs for
    other runtimes."""
    from click.core import ParameterSource

    from d2nvideo.cli.shell import interrupted_keeps
    from d2nvideo.errors import UsageError

    from .export import check_export_output, check_onnx_outputs, export_run

    if run.is_file():
        _export_file_graphs(ctx, run, output, onnx, step, official_day, overwrite)
        return
    if not run.exists():  # a file's name, mistyped: not "needs -o"
        raise UsageError(f"'{run}' does not exist (a run folder, or a model file with --onnx)", run)
    if ctx.get_parameter_source("official_day") is ParameterSource.COMMANDLINE:
        raise UsageError(
            f"'{run}' is a run folder: --day-is chooses the day domain of an official UNIT "
            "gen_*.pt",
            run,
        )
    if output is None:
        raise UsageError("exporting a RUN folder needs -o/--output MODEL.safetensors")
    check_export_output(run, output, overwrite)
    if onnx:
        check_onnx_outputs(output, overwrite)
    meta = export_run(run, output, half=not fp32, note=note, average=not raw, step=step)
    average = f", weights averaged (ema {meta['ema']})" if meta["ema"] else ""
    counted = " (in all, with the --init checkpoint's)" if meta.get("init") else ""
    click.echo(f"step {meta['steps']}{counted} {meta['dtype']}{average} -> {output}")
    if onnx:
        interrupted_keeps(  # it said nothing was written, and a rerun found the model there
            ctx,
            f"interrupted: the model was written ({output}), not all its graphs: "
            f"'d2nvideo export {output} --onnx --overwrite' writes them",
        )
        _say_graphs(_graphs_of_written(output))


RUN_ONLY = {
    "raw": "chooses a RUN folder's own weights over their average",
    "fp32": "chooses the precision of the model file a RUN folder is exported to",
    "note": "goes into the model file a RUN folder is exported to",
}


def _export_file_graphs(
    ctx: click.Context,
    model: Path,
    output: Path | None,
    onnx: bool,
    step: int | None,
    official_day: OfficialDomain,
    overwrite: bool,
) -> None:
    """``export MODEL --onnx``: the graphs of a model file, beside it."""
    from click.core import ParameterSource

    from d2nvideo.cli.shell import interrupted_keeps
    from d2nvideo.errors import UsageError

    from .export import check_onnx_outputs, export_onnx

    if step is not None:
        raise UsageError(f"'{model}' is a model file: --step chooses a RUN folder's state", model)
    for name, does in RUN_ONLY.items():  # each was ignored without a word
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            raise UsageError(f"'{model}' is a model file: --{name} {does}", model)
    if not onnx:
        raise UsageError(
            f"'{model}' is a file, not a run folder: --onnx exports a model file's graphs", model
        )
    if output is not None:
        raise UsageError(f"a model file's graphs are written beside it ('{model}'): leave -o out")
    check_onnx_outputs(model, overwrite)
    interrupted_keeps(ctx, "interrupted: the graphs finished before were kept")
    _say_graphs(export_onnx(model, official_day))


def _graphs_of_written(model: Path) -> dict[str, Path]:
    """``export_onnx`` after the model was written: a failure says the model is there (the one
    line said only why the graphs failed, as if nothing had been written)."""
    from d2nvideo.cli.shell import Failure, os_error_line
    from d2nvideo.errors import first_line

    from .export import export_onnx

    try:
        return export_onnx(model)
    except Exception as exc:
        why = os_error_line(exc) if isinstance(exc, OSError) else first_line(exc)
        raise Failure(f"the model was written ({model}), not its ONNX graphs: {why}", 1) from exc


def _kept(state: Path) -> str:
    """What an interrupted train kept: set-up said it kept checkpoints where none was."""
    if state.is_dir() and any(state.iterdir()):
        return f"interrupted: checkpoints saved before were kept in {state}"
    if (state.parent / "log.jsonl").exists():  # a rerun is refused: its log and grids stay
        return (
            "interrupted: no checkpoint had been saved yet; delete "
            f"'{state.parent}' to start the run again"
        )
    return "interrupted: no checkpoint had been saved yet"


def _say_graphs(graphs: dict[str, Path]) -> None:
    for to, path in graphs.items():
        click.echo(f"{to} graph -> {path}")
