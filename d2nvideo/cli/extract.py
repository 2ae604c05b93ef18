"""``d2nvideo extract``: parse durations and sizes, run with progress, report."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..choices import ImageFormat, ScoreMethod
from ..errors import UsageError
from .options import choice, finite, json_option, option_group, quiet_option
from .progress import progress_bar
from .shell import CONTEXT, INPUT, OUTPUT, interrupted_keeps

if TYPE_CHECKING:
    from ..data.extract import ExtractOptions, Sampling

MAX_SIDE = 16384  # the largest frame side extract writes (cv2 and JPEG limits)


def parse_duration(text: str) -> float:
    """'2s', '500ms', '1.5', '1m' -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|min)?\s*", text)
    if not m or not 0 < float(m.group(1)) < math.inf:
        raise UsageError(f"--every takes a positive duration like 2s or 500ms, not '{text}'")
    scale = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= MAX_SIDE or not 1 <= int(m.group(2)) <= MAX_SIDE:
        raise UsageError(
            f"--size takes WIDTHxHEIGHT like 512x288 (sides 1-{MAX_SIDE}), not '{text}'"
        )
    return int(m.group(1)), int(m.group(2))


def _sampling(
    every: str | None,
    fps: float | None,
    count: int | None,
    start: float,
    end: float | None,
    max_frames: int | None,
) -> Sampling:
    from ..data.extract import Sampling

    if len([k for k in (every, fps, count) if k is not None]) > 1:
        raise UsageError("give one of --every, --fps and --frames")
    if end is not None and end <= start:
        raise UsageError("--end must be after --start")
    step = parse_duration(every) if every else (None if fps or count else 1.0)
    return Sampling(step, fps, count, start, end, max_frames)


sampling_options = option_group(
    [
        click.option(
            "--every",
            default=None,
            metavar="DURATION",
            help="Time between frames: 2s, 500ms, 1.5 (seconds). Default: 1s.",
        ),
        click.option(
            "--fps",
            type=click.FloatRange(0, min_open=True),
            default=None,
            callback=finite,
            help="Frames per second instead of --every; above the video's rate: every frame.",
        ),
        click.option(
            "--frames",
            "count",
            type=click.IntRange(1),
            default=None,
            help="This many frames spread evenly over the range instead of --every.",
        ),
        click.option(
            "--start", type=click.FloatRange(0), default=0.0, callback=finite, help="From (s)."
        ),
        click.option(
            "--end", type=click.FloatRange(0), default=None, callback=finite, help="Until (s)."
        ),
        click.option(
            "--max-frames", type=click.IntRange(1), default=None, help="At most N per video."
        ),
    ],
    ("every", "fps", "count", "start", "end", "max_frames"),
    _sampling,
    "sampling",
)


@dataclass(frozen=True)
class FrameFiles:
    """How extracted frames are written: size and format."""

    size: tuple[int, int] | None
    max_side: int | None
    fmt: ImageFormat
    jpeg_quality: int


def _frame_files(
    size: str | None, max_side: int | None, fmt: ImageFormat, jpeg_quality: int
) -> FrameFiles:
    if size and max_side:
        raise UsageError("give --size or --max-side, not both")
    return FrameFiles(parse_size(size) if size else None, max_side, fmt, jpeg_quality)


frame_file_options = option_group(
    [
        click.option(
            "--size", default=None, metavar="WxH", help="Resize frames exactly, e.g. 512x288."
        ),
        click.option(
            "--max-side",
            type=click.IntRange(16, MAX_SIDE),
            default=None,
            help="Shrink so the longer side is at most this (aspect kept).",
        ),
        click.option(
            "--format", "fmt", type=choice(ImageFormat), default="jpg", help="Image format."
        ),
        click.option(
            "--jpeg-quality", type=click.IntRange(1, 100), default=95, help="JPEG quality."
        ),
    ],
    ("size", "max_side", "fmt", "jpeg_quality"),
    _frame_files,
    "files",
)


def _dedupe(dedupe: bool, dedupe_threshold: float) -> float | None:
    return dedupe_threshold / 100 if dedupe else None


dedupe_options = option_group(
    [
        click.option(
            "--dedupe",
            is_flag=True,
            help="Drop near-duplicates of the previous kept frame (a car stopped at a light): "
            "compares 64x36 grayscale thumbnails and drops a frame whose mean absolute "
            "difference, relative to the picture's contrast, is below --dedupe-threshold.",
        ),
        click.option(
            "--dedupe-threshold",
            type=click.FloatRange(0, 1000),
            default=6.0,
            callback=finite,
            help="Mean absolute thumbnail difference, in percent of the thumbnail's contrast "
            "(its standard deviation), under which a frame is a duplicate; relative, so dim "
            "night footage is judged like day footage.",
        ),
    ],
    ("dedupe", "dedupe_threshold"),
    _dedupe,
    "dedupe",
)


@click.command(context_settings=CONTEXT, short_help="Extract frames from videos to build datasets.")
@click.argument("inputs", nargs=-1, required=True, type=INPUT)
@click.option("-o", "--output", type=OUTPUT, required=True, help="Output folder.")
@sampling_options
@frame_file_options
@dedupe_options
@click.option(
    "--classify",
    is_flag=True,
    help="Sort frames into day/, night/ and ambiguous/ by the relabeler's scorer.",
)
@click.option(
    "--method",
    type=choice(ScoreMethod),
    default="sky",
    help="Scorer for the manifest's brightness and label (see 'relabel').",
)
@json_option
@quiet_option
@click.pass_context
def extract(
    ctx: click.Context,
    inputs: tuple[Path, ...],
    output: Path,
    sampling: Sampling,
    files: FrameFiles,
    dedupe: float | None,
    classify: bool,
    method: ScoreMethod,
    as_json: bool,
    quiet: bool,
) -> None:
    """Extract frames from videos and folders of videos (searched recursively) to build
    datasets. Frames are named <video>_<seconds>.jpg from their presentation time and listed in
    manifest.csv; a second run skips frames already written; a broken video is reported and
    the others go on (exit 1 at the end)."""
    from ..data.extract import ExtractOptions

    opts = ExtractOptions(
        sampling=sampling,
        size=files.size,
        max_side=files.max_side,
        fmt=files.fmt,
        quality=files.jpeg_quality,
        dedupe=dedupe,
        classify=classify,
        method=method,
    )
    interrupted_keeps(ctx, "interrupted: the frames written so far and their manifest were kept")
    _run(list(inputs), output, opts, quiet, as_json)


def _run(
    inputs: list[Path], output: Path, opts: ExtractOptions, quiet: bool, as_json: bool
) -> None:
    from ..data import extract as ex
    from ..errors import InputError

    videos = ex.find_videos(inputs)
    if not videos:
        raise InputError("no video files found in the inputs")
    # a foreign manifest, or frames of the other layout, refused before any work
    ex.check_layout(ex.read_manifest(output / "manifest.csv"), opts.classify, output)
    plans = ex.plan(videos)
    total = ex.planned_frames(plans, opts.sampling)
    several = len(videos) > 1  # one video's failure is the final error line itself

    def on_error(video: Path, why: str) -> None:
        if several:
            click.echo(f"error: {why}", err=True)

    with progress_bar(total, "extract", quiet) as advance:
        result = ex.extract_all(plans, output, opts, advance, on_error)
    failed = result.failed or []
    extra = f", {result.duplicates} near-duplicates dropped" if opts.dedupe is not None else ""
    summary = {"written": result.written, "existing": result.existing}
    summary |= {"duplicates": result.duplicates, "videos": len(videos), "failed": len(failed)}
    click.echo(
        json.dumps({**summary, "output": str(output)})
        if as_json
        else f"{result.written} frame{'s' * (result.written != 1)} written, {result.existing} "
        f"already there{extra} from {len(videos) - len(failed)} of {len(videos)} "
        f"video{'s' * (len(videos) != 1)} -> {output}"
    )
    if failed:
        raise InputError(failed[0][1] if not several else _failed(len(failed), len(videos)))


def _failed(failed: int, videos: int) -> str:
    return f"{failed} of {videos} videos could not be read"
