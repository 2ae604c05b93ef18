"""The ``d2nvideo`` command line: a thin click shell that parses, builds options and calls the
library. Heavy imports (torch, av) happen inside commands, so ``--help`` is instant."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from .errors import D2NError
from .fileio import Terminated

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}
EXISTING = click.Path(path_type=Path)  # existence is checked by the library, with our messages


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def guarded_invoke(invoke: Any, ctx: click.Context) -> Any:
    """Run ``invoke(ctx)`` turning user-input errors into one line on stderr and an exit code;
    no tracebacks."""
    try:
        return invoke(ctx)
    except D2NError as exc:
        raise _Failure(str(exc), exc.exit_code) from exc
    except KeyboardInterrupt as exc:
        click.echo("interrupted: nothing was written under the output name", err=True)
        ctx.exit(143 if isinstance(exc, Terminated) else 130)
    except OSError as exc:
        raise _Failure(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1) from exc


class GuardedCommand(click.Command):
    """A standalone command (``python -m d2nvideo.training``) with the group's error handling."""

    def invoke(self, ctx: click.Context) -> Any:
        return guarded_invoke(super().invoke, ctx)


class D2NGroup(click.Group):
    """Subcommands with user-input errors turned into one line; the training commands load
    lazily from ``d2nvideo.training.cli`` so the library never imports training code."""

    lazy: ClassVar[dict[str, str]] = {
        "train": "d2nvideo.training.cli:train",
        "export": "d2nvideo.training.cli:export",
    }

    def invoke(self, ctx: click.Context) -> Any:
        return guarded_invoke(super().invoke, ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)


@click.group(cls=D2NGroup, context_settings=CONTEXT)
@click.version_option(package_name="d2nvideo")
def cli() -> None:
    """Turn dashcam video from day to night and back, and train the model that does it."""
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr)


def _stack(*decorators: Any) -> Any:
    """One decorator applying several click options, in the order listed."""

    def apply(func: Any) -> Any:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


model_options = _stack(
    click.option(
        "--model",
        type=EXISTING,
        default=None,
        help="Model file (.safetensors from 'd2nvideo export', or an official UNIT gen_*.pt). "
        "Default: the bundled model.",
    ),
    click.option(
        "--day-is",
        type=click.Choice(["a", "b"]),
        default="a",
        help="For an official UNIT gen_*.pt: which of its domains a/b is day.",
    ),
    click.option(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (auto picks CUDA if present)."
    ),
    click.option(
        "--compile",
        "compile_model",
        is_flag=True,
        help="torch.compile the network (worth it on a GPU for long videos; the first frames "
        "pay the compilation).",
    ),
    click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        default="auto",
        help="Network precision: auto is bf16/fp16 on CUDA, fp32 on the CPU.",
    ),
)

resolution_options = _stack(
    click.option(
        "--quality",
        type=click.Choice(["auto", "fast", "balanced", "full"]),
        default="auto",
        help="Network working size: fast 180 px, balanced 288 px (shorter side), full native; "
        "auto uses the size the model was trained for (full if it does not say).",
    ),
    click.option(
        "--work-size",
        type=click.IntRange(16),
        default=None,
        help="Run the network with the shorter side at this many pixels (overrides --quality).",
    ),
    click.option(
        "--max-size",
        type=click.IntRange(16),
        default=None,
        help="Also cap the network's longer side at this many pixels.",
    ),
    click.option(
        "--upsample",
        type=click.Choice(["guided", "bicubic"]),
        default="guided",
        help="Back to native size: guided transfers the input's detail through a local colour "
        "transform fitted on the small input/output pair; bicubic just resizes.",
    ),
)

pipeline_options = _stack(
    click.option(
        "--batch-size",
        type=click.IntRange(0, 256),
        default=0,
        help="Frames per network call; 0 chooses (2 on the CPU, from free memory on a GPU).",
    ),
    click.option(
        "--hwaccel",
        type=click.Choice(["auto", "none", "cuda"]),
        default="auto",
        help="Decode on the GPU (NVDEC) when available; auto does so when --device is CUDA. "
        "Falls back to software decoding.",
    ),
    resolution_options,
    click.option("--start", type=click.FloatRange(0), default=0.0, help="Start at this second."),
    click.option(
        "--duration",
        type=click.FloatRange(0, min_open=True),
        default=None,
        help="Seconds to process. Default: to the end (5 s for a GIF preview).",
    ),
    click.option(
        "--smooth",
        type=click.Choice(["none", "ema", "flow"]),
        default="none",
        help="Temporal smoothing against flicker. flow: motion-compensated blend with the "
        "previous output (optical flow on the input, occlusion-checked, reset at cuts). "
        "ema: running average of the output's overall brightness and colour only; cheap, "
        "but it ghosts on fast motion and leaves fine flicker.",
    ),
    click.option(
        "--smooth-strength",
        type=click.FloatRange(0, 1, max_open=True),
        default=0.6,
        help="How much of the (motion-compensated) past is kept.",
    ),
)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=EXISTING)
@click.option(
    "--to", "to", type=click.Choice(["night", "day"]), required=True, help="Target domain."
)
@click.option(
    "-o",
    "--output",
    type=EXISTING,
    default=None,
    help="Output file or folder. Default: INPUT_<to> beside the input.",
)
@model_options
@pipeline_options
@click.option(
    "--codec",
    default=None,
    help="Video encoder: libx264 (default), libx265, libvpx-vp9 (default for .webm), "
    "libsvtav1, h264_nvenc, hevc_nvenc.",
)
@click.option(
    "--crf",
    type=click.IntRange(0, 63),
    default=18,
    help="Quality: lower is better and larger (x264 scale; mapped for VP9/AV1).",
)
@click.option("--preset", default="fast", help="Encoder speed preset (x264/x265 names).")
@click.option(
    "--pix-fmt",
    default=None,
    help="Output pixel format. Default: yuv420p, or yuv444p for odd sizes.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def convert(input_path: Path, to: str, output: Path | None, **kw: Any) -> None:
    """Translate a video, an image or a folder of images to night or day.

    Videos keep their frame count, timestamps (variable frame rate too), rotation, metadata,
    audio and subtitles. Folders are searched recursively and their layout is mirrored, so
    dataset labels keep matching file names.
    """
    from .convert import convert_path

    convert_path(input_path, to, output, **kw)


@cli.command()
@click.argument("input_path", metavar="VIDEO", type=EXISTING)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(input_path: Path, as_json: bool) -> None:
    """Describe a video: streams, codec, size, fps, duration, frames, rotation, audio and a
    day/night guess from the brightness of a few frames."""
    from .info import describe, print_table

    data = describe(input_path)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        print_table(data)


@cli.command()
@click.option(
    "--nexet",
    type=EXISTING,
    default=None,
    help="NEXET train.csv (image_filename,lighting,city); needs --images.",
)
@click.option(
    "--bdd",
    type=EXISTING,
    default=None,
    help="BDD100K label JSON (name, attributes.timeofday); needs --images.",
)
@click.option("--images", type=EXISTING, default=None, help="Image folder for --nexet/--bdd.")
@click.option(
    "--folder",
    "folders",
    multiple=True,
    metavar="LABEL=DIR",
    help="A folder of images labelled LABEL (day, night, twilight...); repeatable.",
)
@click.option("-o", "--output", type=EXISTING, required=True, help="Output folder.")
@click.option(
    "--method",
    type=click.Choice(["sky", "mean"]),
    default="sky",
    help="sky: upper-half 75th percentile and mean (robust to lamps and tunnels); "
    "mean: the study's gamma, mean pixel value.",
)
@click.option(
    "--night-max",
    type=float,
    default=None,
    help="Night if score <= this. Default: 60 (mean) or 93 (sky).",
)
@click.option(
    "--day-min",
    type=float,
    default=None,
    help="Day if score > this; in between is ambiguous. Default: 68 (mean), 103 (sky).",
)
@click.option(
    "--auto-thresholds",
    is_flag=True,
    help="Put the thresholds around the valley of the score histogram (Otsu).",
)
@click.option(
    "--split",
    type=click.FloatRange(0, 1),
    default=0.9,
    help="Share of each class in the train list (the rest: test).",
)
@click.option("--seed", type=int, default=0, help="Seed of the train/test split.")
@click.option(
    "--workers", type=click.IntRange(1), default=os.cpu_count() or 1, help="Decoding processes."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def relabel(folders: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Clean day/night labels by image brightness: NEXET train.csv, BDD100K label JSON or
    labelled folders in; labels.csv, cleaned train/test lists (train_day.txt ...) and
    histogram.png out. An interrupted run resumes."""
    from .relabel_cli import run_relabel

    run_relabel(folders, quiet, **kw)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=EXISTING)
@click.option("-o", "--output", type=EXISTING, required=True, help="Output folder.")
@click.option(
    "--every",
    default=None,
    metavar="DURATION",
    help="Time between frames: 2s, 500ms, 1.5 (seconds). Default: 1s.",
)
@click.option(
    "--fps",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Frames per second instead of --every.",
)
@click.option(
    "--frames",
    "count",
    type=click.IntRange(1),
    default=None,
    help="This many frames spread evenly over the range instead of --every.",
)
@click.option("--start", type=click.FloatRange(0), default=0.0, help="Start at this second.")
@click.option("--end", type=click.FloatRange(0), default=None, help="Stop at this second.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="At most N per video.")
@click.option("--size", default=None, metavar="WxH", help="Resize frames exactly, e.g. 512x288.")
@click.option(
    "--max-side",
    type=click.IntRange(16),
    default=None,
    help="Shrink so the longer side is at most this (aspect kept).",
)
@click.option("--format", "fmt", type=click.Choice(["jpg", "png"]), default="jpg")
@click.option("--quality", type=click.IntRange(1, 100), default=95, help="JPEG quality.")
@click.option(
    "--dedupe",
    is_flag=True,
    help="Drop near-duplicates of the previous kept frame (a car stopped at a light): "
    "compares 64x36 grayscale thumbnails and drops a frame whose mean absolute "
    "difference is below --dedupe-threshold.",
)
@click.option(
    "--dedupe-threshold",
    type=click.FloatRange(0),
    default=3.0,
    help="Mean absolute thumbnail difference (0-255) under which a frame is a duplicate.",
)
@click.option(
    "--classify",
    is_flag=True,
    help="Sort frames into day/, night/ and ambiguous/ by the relabeler's scorer.",
)
@click.option(
    "--method",
    type=click.Choice(["sky", "mean"]),
    default="sky",
    help="Scorer for the manifest's brightness and label (see 'relabel').",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def extract(inputs: tuple[Path, ...], output: Path, quiet: bool, **kw: Any) -> None:
    """Extract frames from videos and folders of videos (searched recursively) to build
    datasets. Frames are named <video>_<seconds>.jpg from their presentation time and listed in
    manifest.csv; a second run skips frames already written; a broken video is reported and
    the others go on (exit 1 at the end)."""
    from .extract_cli import run_extract

    run_extract(list(inputs), output, quiet, **kw)


@cli.command()
@click.argument("input_path", metavar="VIDEO", type=EXISTING)
@click.option(
    "--to", "to", type=click.Choice(["night", "day"]), required=True, help="Target domain."
)
@click.option(
    "-o",
    "--output",
    type=EXISTING,
    required=True,
    help="A video (.mp4, .mkv...: the whole comparison, audio kept), an image (.png, "
    ".jpg: one frame, see --at) or a .gif.",
)
@model_options
@click.option(
    "--layout",
    type=click.Choice(["side", "stack", "wipe"]),
    default="side",
    help="side by side, stacked, or a moving divider between output and input.",
)
@click.option(
    "--at",
    type=click.FloatRange(0),
    default=None,
    help="For an image output: the second to compare. Default: the middle.",
)
@pipeline_options
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def preview(input_path: Path, to: str, output: Path, **kw: Any) -> None:
    """Show input and translation together: a side-by-side video with the audio, a still
    comparison at a time, or a GIF."""
    from .preview_cli import run_preview

    run_preview(input_path, to, output, **kw)


@cli.command()
@model_options
@click.option("--day", type=EXISTING, required=True, help="Folder of day images.")
@click.option("--night", type=EXISTING, required=True, help="Folder of night images.")
@click.option(
    "--video",
    "videos",
    type=EXISTING,
    multiple=True,
    help="A clip for temporal stability (E_warp); repeatable.",
)
@click.option("-o", "--output", type=EXISTING, required=True, help="Report folder.")
@click.option("--max-images", type=click.IntRange(2), default=40, help="Images per domain.")
@click.option(
    "--image-size",
    type=click.IntRange(32),
    default=640,
    help="Longer side the stills are evaluated at.",
)
@resolution_options
@click.option(
    "--realism-steps",
    type=click.IntRange(0),
    default=400,
    help="Training steps of the realism classifier (0 skips the check).",
)
@click.option(
    "--realism-day",
    type=EXISTING,
    default=None,
    help="Day images to train the realism classifier on (with --realism-night); then every "
    "--day/--night image is evaluated and --night is the held-out real check.",
)
@click.option("--realism-night", type=EXISTING, default=None, help="See --realism-day.")
@click.option(
    "--video-frames", type=click.IntRange(2), default=48, help="Frames per clip for E_warp."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def evaluate(output: Path, quiet: bool, **kw: Any) -> None:
    """Measure a model: reconstruction and cross-domain SSIM/PSNR, cycle SSIM, domain success
    (the relabeler's scorer), a download-free realism check, E_warp of clips with each
    smoothing mode, and frames/s against resolution. Writes report.json, report.md and plots.

    Half of each folder trains the realism classifier and half is evaluated; trivial
    baselines (x0.2 darkening, x4 brightening) are scored beside the model."""
    from .evaluate import EvalOptions
    from .evaluate_cli import run_evaluate
    from .models import load_translator

    translator = load_translator(
        kw["model"], kw["day_is"], kw["device"], kw["precision"], kw["compile_model"]
    )
    from .pipeline import build_resolution

    resolution = build_resolution(
        kw["quality"], kw["work_size"], kw["max_size"], kw["upsample"], translator.meta
    )
    opts = EvalOptions(
        max_images=kw["max_images"],
        image_max_side=kw["image_size"],
        resolution=resolution,
        realism_steps=kw["realism_steps"],
        realism_day=kw["realism_day"],
        realism_night=kw["realism_night"],
        videos=kw["videos"],
        video_frames=kw["video_frames"],
    )
    run_evaluate(translator, kw["day"], kw["night"], kw["videos"], output, opts, quiet)


@cli.command()
@click.argument("paths", nargs=-1, type=EXISTING)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(paths: tuple[Path, ...], as_json: bool) -> None:
    """List the bundled default model and any model files given: architecture, size, training
    steps and the working size each was trained for."""
    from .models import describe_models

    rows = describe_models(list(paths))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "arch", "params", "MB", "steps", "work size", "note")
    for r in rows:
        table.add_row(
            r["path"],
            r["arch"],
            f"{r['params'] / 1e6:.2f}M",
            f"{r['mb']:.1f}",
            str(r["steps"]),
            str(r["work_size"]),
            r["note"],
        )
    Console().print(table)


def main() -> None:
    cli(prog_name="d2nvideo")
