"""``d2nvideo relabel``: choose the source, run the relabeler with progress, print the table."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..choices import ScoreMethod
from ..errors import UsageError
from .options import choice, finite, json_option, quiet_option
from .progress import progress_bar
from .shell import CONTEXT, INPUT, OUTPUT, interrupted_keeps

if TYPE_CHECKING:
    from ..data.relabel import RelabelResult
    from ..data.scoring import Thresholds
    from ..data.sources import Sources


@click.command(
    context_settings=CONTEXT,
    short_help="Clean NEXET, BDD100K or folder day/night labels by brightness.",
)
@click.option(
    "--nexet",
    type=INPUT,
    default=None,
    help="NEXET train.csv (image_filename,lighting,city); needs --images.",
)
@click.option(
    "--bdd",
    type=INPUT,
    default=None,
    help="BDD100K label JSON (name, attributes.timeofday); needs --images.",
)
@click.option("--images", type=INPUT, default=None, help="Image folder for --nexet/--bdd.")
@click.option(
    "--folder",
    "folders",
    multiple=True,
    metavar="LABEL=DIR",
    help="A folder of images labelled LABEL (day, night, twilight...); repeatable.",
)
@click.option("-o", "--output", type=OUTPUT, required=True, help="Output folder.")
@click.option(
    "--method",
    type=choice(ScoreMethod),
    default="sky",
    help="sky: upper-half 75th percentile and mean (robust to lamps and tunnels); "
    "mean: the study's gamma, mean pixel value.",
)
@click.option(
    "--night-max",
    type=click.FloatRange(0, 255),
    default=None,
    callback=finite,
    help="Night if score <= this. Default: 60 (mean) or 93 (sky).",
)
@click.option(
    "--day-min",
    type=click.FloatRange(0, 255),
    default=None,
    callback=finite,
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
    callback=finite,
    help="Share of each class in the train list (the rest: test).",
)
@click.option("--seed", type=int, default=0, help="Seed of the train/test split.")
@click.option(
    "--workers", type=click.IntRange(1), default=os.cpu_count() or 1, help="Decoding processes."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the outputs of an earlier run (labels.csv, the lists, the histograms); "
    "an input is never replaced.",
)
@json_option
@quiet_option
@click.pass_context
def relabel(
    ctx: click.Context,
    nexet: Path | None,
    bdd: Path | None,
    images: Path | None,
    folders: tuple[str, ...],
    output: Path,
    method: ScoreMethod,
    night_max: float | None,
    day_min: float | None,
    auto_thresholds: bool,
    split: float,
    seed: int,
    workers: int,
    overwrite: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Clean day/night labels by image brightness: NEXET train.csv, BDD100K label JSON or
    labelled folders in; labels.csv, cleaned train/test lists (train_day.txt ...) and
    histograms out. An interrupted run resumes; existing outputs are replaced only with
    --overwrite."""
    from ..data.relabel import check_outputs
    from ..data.relabel import relabel as run

    sources = _sources(nexet, bdd, images, folders)
    thresholds = _thresholds(method, night_max, day_min)
    check_outputs(sources, output, method, overwrite)
    job = functools.partial(
        run, sources, output, method, thresholds, auto_thresholds, split, seed, workers
    )
    interrupted_keeps(ctx, "interrupted: the scores so far were saved; run again to resume")
    result = _with_progress(job, len(sources.items), quiet, overwrite)
    if as_json:
        click.echo(json.dumps(_summary(result, sources)))
    else:
        _print_summary(result, sources, method, auto_thresholds)


def _with_progress(
    job: Callable[..., RelabelResult], total: int, quiet: bool, overwrite: bool
) -> RelabelResult:
    """``job(on_item=..., overwrite=...)`` with a progress bar."""
    with progress_bar(total, "relabel", quiet, unit="images") as advance:
        return job(on_item=advance, overwrite=overwrite)


def _summary(result: RelabelResult, sources: Sources) -> dict[str, object]:
    t = result.thresholds
    return {
        "images": sum(result.statuses.values()),
        **{k: result.statuses.get(k, 0) for k in ("agree", "relabelled", "ambiguous")},
        "unreadable": result.statuses.get("unreadable", 0),
        "missing": result.missing,
        "skipped_rows": sources.skipped_rows,
        "repeated": sources.repeated,
        "thresholds": {"night_max": t.night_max, "day_min": t.day_min},
        "outputs": [str(p) for p in result.outputs],
    }


def _thresholds(method: ScoreMethod, night_max: float | None, day_min: float | None) -> Thresholds:
    from ..data.scoring import DEFAULT_THRESHOLDS, Thresholds

    default = DEFAULT_THRESHOLDS[method]
    thresholds = Thresholds(
        night_max if night_max is not None else default.night_max,
        day_min if day_min is not None else default.day_min,
    )
    if thresholds.day_min < thresholds.night_max:
        raise UsageError("--day-min must be at least --night-max")
    return thresholds


def _sources(
    nexet: Path | None, bdd: Path | None, images: Path | None, folders: tuple[str, ...]
) -> Sources:
    from ..data.sources import from_bdd, from_folders, from_nexet

    chosen = [x for x in (nexet, bdd, folders or None) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one source: --nexet CSV, --bdd JSON or --folder LABEL=DIR")
    if nexet or bdd:
        if images is None:
            raise UsageError("--nexet and --bdd need --images, the folder their names refer to")
        read = from_nexet if nexet else from_bdd
        sources = read(nexet or bdd, images)  # type: ignore[arg-type]
    else:
        sources = from_folders(_folders(folders))
    if not sources.items:
        raise UsageError("the source lists no images")
    return sources


def _folders(folders: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``LABEL=DIR`` specs as pairs, in order: a label may name several folders (a dict kept
    only the last of them)."""
    parsed = []
    for spec in folders:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise UsageError(f"--folder takes LABEL=DIR, not '{spec}'", spec)
        parsed.append((label, Path(folder)))
    return parsed


def _print_summary(
    result: RelabelResult, sources: Sources, method: ScoreMethod, auto: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    t = result.thresholds
    how = "auto (Otsu valley)" if auto else "set"
    table = Table(
        title=f"original x new ({method}: night <= {t.night_max:g} < ambiguous <= "
        f"{t.day_min:g} < day, {how})"
    )
    news = ["day", "night", "ambiguous", ""]
    table.add_column("original")
    for new in news:
        table.add_column(new or "unreadable", justify="right")
    for original in sorted({o for o, _ in result.table}):
        table.add_row(original, *(str(result.table.get((original, n), 0)) for n in news))
    Console().print(table)
    s = result.statuses
    click.echo(
        f"{sum(s.values())} images: {s['agree']} agree, {s['relabelled']} relabelled, "
        f"{s['ambiguous']} ambiguous, {s['unreadable']} unreadable ({result.missing} missing); "
        f"{sources.skipped_rows} label rows skipped"
    )
    click.echo(f"wrote {', '.join(p.name for p in result.outputs)} in {result.outputs[0].parent}")
