"""``d2nvideo evaluate``: run the measurements, write report.json, report.md and plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..choices import Domain, values
from .options import (
    ModelSpec,
    SizeSpec,
    json_option,
    model_options,
    option_group,
    overwrite_option,
    quiet_option,
    size_options,
)
from .progress import Bar, progress_bar
from .shell import CONTEXT, INPUT, OUTPUT

if TYPE_CHECKING:
    from ..evaluation.evaluate import Tracker
    from ..evaluation.report import Report


def parse_video(spec: str) -> tuple[Path, Domain | None]:
    """``night=clip.mp4`` -> (clip.mp4, 'night'); a plain path -> (path, None). An empty
    path and an unknown domain before ``=`` (where no file of that whole name exists) are
    refused by name."""
    to, sep, path = spec.partition("=")
    if sep and to in values(Domain):
        if not path:
            raise click.BadParameter(f"'{spec}' names no clip after '='", param_hint="--video")
        return Path(path), to  # type: ignore[return-value]
    if sep and to.isidentifier() and not Path(spec).exists():
        domains = " or ".join(f"{d}=" for d in values(Domain))
        raise click.BadParameter(
            f"'{to}=' is not a domain: use {domains} before the clip, or the clip alone",
            param_hint="--video",
        )
    return Path(spec), None


@dataclass(frozen=True)
class RealismSpec:
    """The realism judge: its training steps and, optionally, its own real images."""

    steps: int
    day: Path | None
    night: Path | None

    def options(self) -> dict[str, Any]:
        """These as EvalOptions' keyword arguments."""
        return {"realism_steps": self.steps, "realism_day": self.day, "realism_night": self.night}


realism_options = option_group(
    [
        click.option(
            "--realism-steps",
            type=click.IntRange(0),
            default=400,
            help="Training steps of the realism classifier (0 skips the check).",
        ),
        click.option(
            "--realism-day",
            type=INPUT,
            default=None,
            help="Day images to train the realism classifier on (with --realism-night); then "
            "every --day/--night image is evaluated and --night is the held-out real check.",
        ),
        click.option("--realism-night", type=INPUT, default=None, help="See --realism-day."),
    ],
    ("realism_steps", "realism_day", "realism_night"),
    lambda realism_steps, realism_day, realism_night: RealismSpec(
        realism_steps, realism_day, realism_night
    ),
    "realism",
)


@click.command(
    context_settings=CONTEXT, short_help="Measure a model: quality, realism, steadiness and speed."
)
@model_options
@click.option("--day", type=INPUT, required=True, help="Folder of day images.")
@click.option("--night", type=INPUT, required=True, help="Folder of night images.")
@click.option(
    "--video",
    "videos",
    multiple=True,
    metavar="[night=|day=]PATH",
    callback=lambda ctx, param, value: tuple(map(parse_video, value)),
    help="A clip for temporal stability (E_warp), converted to the domain named before it, "
    "or to the other domain of what it looks like; repeatable.",
)
@click.option("-o", "--output", type=OUTPUT, required=True, help="Report folder.")
@click.option("--max-images", type=click.IntRange(2), default=40, help="Images per domain.")
@click.option(
    "--image-size",
    type=click.IntRange(32),
    default=640,
    help="Longer side the stills are evaluated at.",
)
@size_options
@realism_options
@click.option(
    "--allow-overlap",
    is_flag=True,
    help="Evaluate even when images match the model's training images (refused by default; "
    "the report then says which figures are not held out).",
)
@click.option(
    "--video-frames", type=click.IntRange(2), default=48, help="Frames per clip for E_warp."
)
@json_option
@overwrite_option
@quiet_option
def evaluate(
    model: ModelSpec,
    day: Path,
    night: Path,
    videos: tuple[tuple[Path, Domain | None], ...],
    output: Path,
    max_images: int,
    image_size: int,
    size: SizeSpec,
    realism: RealismSpec,
    allow_overlap: bool,
    video_frames: int,
    as_json: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Measure a model: reconstruction and cross-domain SSIM/PSNR, cycle SSIM, domain success
    (the relabeler's scorer), a download-free realism check, E_warp of clips with each
    smoothing mode, and the convert pipeline's frames/s against resolution. Writes
    report.json, report.md and plots. The realism classifier trains on --realism-day/night
    (best: images the model never saw), else on half of each folder; trivial baselines (x0.2
    darkening, x4 brightening) are scored beside the model."""
    from ..evaluation.evaluate import EvalOptions
    from ..evaluation.evaluate import evaluate as run
    from ..evaluation.report import check_report_folder, write_report

    check_report_folder(output, overwrite, (day, night, realism.day, realism.night))
    translator = model.load()
    opts = EvalOptions(
        max_images=max_images,
        image_max_side=image_size,
        resolution=size.resolve(translator.meta),
        video_frames=video_frames,
        allow_overlap=allow_overlap,
        **realism.options(),
    )
    with progress_bar(None, "evaluate", quiet, "items", lazy=True) as bar:
        report = run(translator, day, night, videos, opts, _tracker(bar))
    write_report(report, output)
    _print(report, as_json)


def _print(report: Report, as_json: bool) -> None:
    from ..evaluation.report import quality_table, report_json

    if as_json:  # what report.json holds
        click.echo(report_json(report))
        return
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo("\n".join(quality_table(report)))


def _tracker(bar: Bar) -> Tracker:
    """evaluate's progress on the bar: images, clip frames, judges and sizes as items."""
    from ..evaluation.evaluate import Tracker

    class BarTracker(Tracker):
        def start(self, total: int) -> None:
            bar.set_total(total)

        def done(self, n: int = 1) -> None:
            bar(n)

        def say(self, message: str) -> None:
            bar.say(message)

    return BarTracker()
