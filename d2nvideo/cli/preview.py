"""``d2nvideo preview``: pick the kind of output from its suffix and run it with progress."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..choices import Layout, Target
from .options import (
    ModelSpec,
    PipelineSpec,
    choice,
    finite,
    model_options,
    overwrite_option,
    pipeline_options,
    quiet_option,
)
from .progress import progress_bar
from .shell import CONTEXT, INPUT, OUTPUT

if TYPE_CHECKING:
    from ..pipeline import ConvertOptions
    from ..translator import Translator
    from ..video.probe import VideoInfo

GIF_DEFAULT_S = 5.0


@click.command(
    context_settings=CONTEXT,
    short_help="Show input and translation side by side: video, GIF or still.",
)
@click.argument("input_path", metavar="VIDEO", type=INPUT)
@click.option(
    "--to",
    type=choice(Target),
    required=True,
    help="Target domain; auto converts to the other domain of what the input looks like.",
)
@click.option(
    "-o",
    "--output",
    type=OUTPUT,
    required=True,
    help="A video (.mp4, .mkv...: the whole comparison, audio kept), an image (.png, "
    ".jpg: one frame, see --at) or a .gif.",
)
@model_options
@click.option(
    "--layout",
    type=choice(Layout),
    default="side",
    help="side by side, stacked, or a moving divider between output and input.",
)
@click.option(
    "--at",
    type=click.FloatRange(0),
    default=None,
    callback=finite,
    help="For an image output: the second to compare. Default: the middle.",
)
@pipeline_options
@overwrite_option
@quiet_option
def preview(
    input_path: Path,
    to: Target,
    output: Path,
    model: ModelSpec,
    layout: Layout,
    at: float | None,
    pipeline: PipelineSpec,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Show input and translation together: a side-by-side video with the audio, a still
    comparison at a time, or a GIF."""
    from ..data.scoring import resolve_target
    from ..fileio import check_output, require_file
    from ..preview import STILL_SUFFIXES, preview_still
    from ..video.probe import probe

    suffix = output.suffix.lower()
    _check_kind(output)
    _check_timing(suffix in STILL_SUFFIXES, at, pipeline)
    require_file(input_path)
    check_output(output, [input_path], overwrite)
    info = probe(input_path, salvage=pipeline.salvage)
    domain = resolve_target(input_path, to)
    translator = model.load()
    opts = pipeline.options(translator, domain)
    if suffix in STILL_SUFFIXES:
        shown = preview_still(input_path, output, translator, opts, at, layout)
        click.echo(f"frame at {shown:.2f} s -> {output}")
    else:
        _moving(input_path, output, translator, opts, info, layout, quiet)


def _check_kind(output: Path) -> None:
    """A suffix preview writes, before any work (it was found after the model had loaded and
    a bar was drawn, and named convert's formats only)."""
    from ..errors import UsageError
    from ..preview import STILL_SUFFIXES
    from ..video.codecs import output_format

    if output.suffix.lower() in (*STILL_SUFFIXES, ".gif"):
        return
    try:
        output_format(output)
    except UsageError:
        raise UsageError(
            f"output '{output}': preview writes a video (.mp4, .mkv, .mov, .webm, .ts), a still "
            "(.png, .jpg) or a GIF (.gif)",
            output,
        ) from None


def _check_timing(still: bool, at: float | None, pipeline: PipelineSpec) -> None:
    """A still shows one frame, chosen with --at; a video or GIF a stretch, --start and
    --duration: refuse the other kind's options rather than ignore them."""
    from ..errors import UsageError

    if still and (pipeline.start or pipeline.duration is not None):
        given = "--start" if pipeline.start else "--duration"
        raise UsageError(f"an image output shows one frame: choose it with --at, not {given}")
    if not still and at is not None:
        raise UsageError("--at chooses the frame of an image output; a video or GIF takes --start")


def _moving(
    src: Path,
    dst: Path,
    translator: Translator,
    opts: ConvertOptions,
    info: VideoInfo,
    layout: Layout,
    quiet: bool,
) -> None:
    import dataclasses

    from ..preview import preview_gif, preview_video

    gif = dst.suffix.lower() == ".gif"
    if gif and opts.duration is None:
        opts = dataclasses.replace(opts, duration=GIF_DEFAULT_S)
    total = info.frames_in(opts.start, opts.duration)
    with progress_bar(total, f"preview {src.name}", quiet) as advance:
        if gif:
            result = preview_gif(src, dst, translator, opts, layout, advance)
        else:
            result = preview_video(src, dst, translator, opts, layout, advance)
    result.warn_lost(src)
    kind = ("GIF " if gif else "") + "frame" + "s" * (result.frames != 1)
    click.echo(f"{result.frames} {kind} in {result.seconds:.1f} s -> {dst}")
