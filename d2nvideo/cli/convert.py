"""``d2nvideo convert``: pick what the input is (video, image, folder), where the output goes,
run it with progress, and print a one-line summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..choices import Target
from .options import (
    ModelSpec,
    PipelineSpec,
    choice,
    encode_options,
    model_options,
    overwrite_option,
    pipeline_options,
    quiet_option,
)
from .progress import progress_bar, short, video_total
from .shell import CONTEXT, INPUT, OUTPUT, interrupted_keeps

if TYPE_CHECKING:
    import numpy as np

    from ..pipeline import ConvertOptions
    from ..translator import Translator
    from ..video.encode import EncodeSettings


@click.command(context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=INPUT)
@click.option(
    "--to",
    type=choice(Target),
    required=True,
    help="Target domain; auto converts to the other domain of what the input looks like.",
)
@click.option(
    "-o", "--output", type=OUTPUT, default=None, help="Output file or folder. Default: INPUT_<to>."
)
@model_options
@pipeline_options
@encode_options
@overwrite_option
@quiet_option
@click.pass_context
def convert(
    ctx: click.Context,
    input_path: Path,
    to: Target,
    output: Path | None,
    model: ModelSpec,
    pipeline: PipelineSpec,
    encode: EncodeSettings,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Translate a video, an image or a folder of images to night or day.

    Videos keep their frame count, timestamps (variable frame rate too), rotation, metadata,
    audio and subtitles. Folders are searched recursively and their layout is mirrored, so
    dataset labels keep matching file names.
    """
    from ..data.scoring import resolve_target
    from ..fileio import sigterm_as_interrupt
    from ..images import is_image

    domain = resolve_target(input_path, to)
    dst = output or default_output(input_path, domain)
    images = input_path.is_dir() or is_image(input_path)
    _check_output(input_path, dst, encode, overwrite, images)
    translator = model.load()
    opts = pipeline.options(translator, domain, encode)
    with sigterm_as_interrupt():
        if images:
            interrupted_keeps(ctx, "interrupted: images already converted were kept")
            _convert_images(input_path, dst, translator, opts, overwrite, quiet)
        else:
            _convert_video(input_path, dst, translator, opts, quiet)


def default_output(src: Path, to: str) -> Path:
    """``drive.mp4`` -> ``drive_night.mp4``; ``frames/`` -> ``frames_night/``."""
    if src.is_dir():
        return src.with_name(f"{src.resolve().name}_{to}")
    return src.with_name(f"{src.stem}_{to}{src.suffix}")


def _check_output(
    src: Path, dst: Path, encode: EncodeSettings, overwrite: bool, images: bool
) -> None:
    from ..fileio import check_output, require_input
    from ..video.encode import check_codec, codec_for

    require_input(src)
    if images:
        _check_image_output(src, dst, overwrite)
    else:
        check_codec(codec_for(dst, encode))
        check_output(dst, [src], overwrite)


def _check_image_output(src: Path, dst: Path, overwrite: bool) -> None:
    from ..errors import UsageError
    from ..fileio import check_output
    from ..images import is_image

    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise UsageError(f"input '{src}' is a folder of images, so -o must name a folder", dst)
        if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
            raise UsageError(f"output folder '{dst}' must lie outside the input folder", dst)
        return
    if not is_image(dst):
        raise UsageError(f"output '{dst}' must be an image file for an image input", dst)
    check_output(dst, [src], overwrite)


def _convert_video(
    src: Path, dst: Path, translator: Translator, opts: ConvertOptions, quiet: bool
) -> None:
    from ..pipeline import DarkOutputWatch, convert_video
    from ..video.probe import probe

    info = probe(src)
    total = video_total(info.frames, float(info.fps), info.duration, opts.start, opts.duration)
    watch = DarkOutputWatch(opts.to)
    with progress_bar(total, f"{src.name} -> {opts.to}", quiet) as advance:
        result = convert_video(src, dst, translator, opts, advance, info, watch=watch)
    seconds = f"{result.seconds:.1f} s ({result.fps:.2f} fps)"
    click.echo(f"{result.frames} frames in {seconds} -> {result.output}")


def _convert_images(
    src: Path, dst: Path, translator: Translator, opts: ConvertOptions, overwrite: bool, quiet: bool
) -> None:
    from ..errors import InputError
    from ..images import convert_images, image_pairs
    from ..pipeline import CPU_BATCH_SIZE, DarkOutputWatch, translate_images

    pairs = list(image_pairs(src, dst)) if src.is_dir() else [(src, dst)]
    if not pairs:
        raise InputError(f"no images found under '{src}'", src)
    watch = DarkOutputWatch(opts.to)

    def translate(images: list[np.ndarray]) -> list[np.ndarray]:
        return watch(translate_images(images, translator, opts.to, opts.resolution))

    t0 = time.perf_counter()
    with progress_bar(len(pairs), short(f"{src.name} -> {opts.to}"), quiet, "images") as advance:
        result = convert_images(
            pairs, translate, overwrite, opts.batch_size or CPU_BATCH_SIZE, advance
        )
    for _path, reason in result.failed:
        click.echo(f"error: {reason}", err=True)
    skipped = f", {result.skipped} already there (--overwrite to redo)" if result.skipped else ""
    noun = "image" if result.written == 1 else "images"
    took = time.perf_counter() - t0
    click.echo(f"{result.written} {noun} in {took:.1f} s{skipped} -> {dst}")
    if result.failed:
        raise InputError(f"{len(result.failed)} of {len(pairs)} images could not be read")
