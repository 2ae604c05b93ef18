"""``d2nvideo convert``: pick what the input is (video, image, folder), where the output goes,
run it with progress, and print a one-line summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .errors import InputError, PathError, UsageError
from .fileio import check_output, require_file, sigterm_as_interrupt
from .images import convert_images, image_pairs, is_image
from .pipeline import (
    CPU_BATCH_SIZE,
    ConvertOptions,
    build_resolution,
    convert_video,
    translate_images,
)
from .progress import progress_bar
from .video.encode import EncodeSettings, check_codec, codec_for


def default_output(src: Path, to: str) -> Path:
    """``drive.mp4`` -> ``drive_night.mp4``; ``frames/`` -> ``frames_night/``."""
    if src.is_dir():
        return src.with_name(f"{src.resolve().name}_{to}")
    return src.with_name(f"{src.stem}_{to}{src.suffix}")


def resolve_hwaccel(choice: str, translator: Any) -> str | None:
    """auto: NVDEC when the network runs on CUDA."""
    if choice == "auto":
        return "cuda" if translator.device.type == "cuda" else None
    return None if choice == "none" else choice


def convert_path(
    src: Path,
    to: str,
    output: Path | None,
    *,
    model: Path | None,
    day_is: str,
    device: str,
    precision: str,
    compile_model: bool,
    hwaccel: str,
    batch_size: int,
    quality: str,
    work_size: int | None,
    max_size: int | None,
    upsample: str,
    start: float,
    duration: float | None,
    smooth: str,
    smooth_strength: float,
    codec: str | None,
    crf: int,
    preset: str,
    pix_fmt: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    from .models import load_translator

    if not src.exists():
        raise PathError(f"input '{src}' does not exist", src)
    dst = output or default_output(src, to)
    settings = EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)
    if src.is_dir() or is_image(src):
        _check_image_output(src, dst, overwrite)
    else:
        check_codec(codec_for(dst, settings))
        check_output(dst, [src], overwrite)
    translator = load_translator(model, day_is, device, precision, compile_model)
    resolution = build_resolution(quality, work_size, max_size, upsample, translator.meta)
    opts = ConvertOptions(
        to=to,
        batch_size=batch_size,
        resolution=resolution,
        start=start,
        duration=duration,
        smooth=smooth,
        smooth_strength=smooth_strength,
        hwaccel=resolve_hwaccel(hwaccel, translator),
        encode=settings,
    )
    with sigterm_as_interrupt():
        if src.is_dir() or is_image(src):
            _convert_images(src, dst, translator, opts, overwrite, quiet)
        else:
            _convert_video(src, dst, translator, opts, quiet)


def _convert_video(
    src: Path, dst: Path, translator: Any, opts: ConvertOptions, quiet: bool
) -> None:
    from .video.probe import probe

    info = probe(src)
    total = info.frames
    if opts.start or opts.duration:
        span = opts.duration or max(0.0, info.duration - opts.start)
        total = max(1, round(min(span, max(0.0, info.duration - opts.start)) * float(info.fps)))
    with progress_bar(total, f"{src.name} -> {opts.to}", quiet) as advance:
        result = convert_video(src, dst, translator, opts, advance, info)
    seconds = f"{result.seconds:.1f} s ({result.fps:.2f} fps)"
    click.echo(f"{result.frames} frames in {seconds} -> {result.output}")


def _check_image_output(src: Path, dst: Path, overwrite: bool) -> None:
    if src.is_dir():
        if dst.suffix and not dst.is_dir():
            raise UsageError(f"input '{src}' is a folder of images, so -o must name a folder", dst)
        if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
            raise UsageError(f"output folder '{dst}' must lie outside the input folder", dst)
    else:
        require_file(src)
        if not is_image(dst):
            raise UsageError(f"output '{dst}' must be an image file for an image input", dst)
        check_output(dst, [src], overwrite)


def _convert_images(
    src: Path, dst: Path, translator: Any, opts: ConvertOptions, overwrite: bool, quiet: bool
) -> None:
    import time

    pairs = list(image_pairs(src, dst)) if src.is_dir() else [(src, dst)]
    if not pairs:
        raise InputError(f"no images found under '{src}'", src)

    def translate(images: list[Any]) -> list[Any]:
        return translate_images(images, translator, opts.to, opts.resolution)

    t0 = time.perf_counter()
    with progress_bar(len(pairs), f"{src.name} -> {opts.to}", quiet, unit="images") as advance:
        result = convert_images(
            pairs, translate, overwrite, opts.batch_size or CPU_BATCH_SIZE, advance
        )
    for _path, reason in result.failed:
        click.echo(f"error: {reason}", err=True)
    seconds = time.perf_counter() - t0
    skipped = f", {result.skipped} already there (--overwrite to redo)" if result.skipped else ""
    click.echo(f"{result.written} images in {seconds:.1f} s{skipped} -> {dst}")
    if result.failed:
        raise InputError(f"{len(result.failed)} of {len(pairs)} images could not be read")
