"""``d2nvideo preview``: pick the kind of output from its suffix and run it with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .convert import resolve_hwaccel
from .errors import UsageError
from .fileio import check_output, sigterm_as_interrupt
from .models import load_translator
from .pipeline import ConvertOptions, build_resolution
from .preview import STILL_SUFFIXES, preview_gif, preview_still, preview_video
from .progress import progress_bar
from .video.encode import EncodeSettings
from .video.probe import probe

GIF_DEFAULT_S = 5.0


def run_preview(src: Path, to: str, dst: Path, **kw: Any) -> None:
    suffix = dst.suffix.lower()
    check_output(dst, [src], kw["overwrite"])
    if not suffix:
        raise UsageError(f"output '{dst}' needs a suffix: .mp4/.mkv, .png/.jpg or .gif", dst)
    info = probe(src)
    duration = kw["duration"] or (GIF_DEFAULT_S if suffix == ".gif" else None)
    translator = load_translator(
        kw["model"], kw["day_is"], kw["device"], kw["precision"], kw["compile_model"]
    )
    resolution = build_resolution(
        kw["quality"], kw["work_size"], kw["max_size"], kw["upsample"], translator.meta
    )
    opts = ConvertOptions(
        to=to,
        batch_size=kw["batch_size"],
        resolution=resolution,
        start=kw["start"],
        duration=duration,
        smooth=kw["smooth"],
        smooth_strength=kw["smooth_strength"],
        hwaccel=resolve_hwaccel(kw["hwaccel"], translator),
        encode=EncodeSettings(),
    )
    quiet = kw["quiet"]
    with sigterm_as_interrupt():
        if suffix in STILL_SUFFIXES:
            at = kw["at"] if kw["at"] is not None else info.duration / 2
            preview_still(src, dst, translator, opts, at, kw["layout"])
            click.echo(f"frame at {at:.2f} s -> {dst}")
            return
        span = min(duration or info.duration, max(0.0, info.duration - opts.start))
        total = max(1, round(span * float(info.fps)))
        with progress_bar(total, f"preview {src.name}", quiet) as advance:
            if suffix == ".gif":
                n = preview_gif(src, dst, translator, opts, kw["layout"], advance)
                click.echo(f"{n} GIF frames -> {dst}")
                return
            result = preview_video(src, dst, translator, opts, kw["layout"], advance)
        click.echo(f"{result.frames} frames in {result.seconds:.1f} s -> {dst}")
