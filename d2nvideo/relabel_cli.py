"""``d2nvideo relabel``: choose the source, run the relabeler with progress, print the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .errors import UsageError
from .labels import DEFAULT_THRESHOLDS, Thresholds
from .progress import progress_bar
from .relabel import RelabelResult, Sources, from_bdd, from_folders, from_nexet, relabel


def _sources(
    nexet: Path | None, bdd: Path | None, images: Path | None, folders: tuple[str, ...]
) -> Sources:
    chosen = [x for x in (nexet, bdd, folders or None) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one source: --nexet CSV, --bdd JSON or --folder LABEL=DIR")
    if (nexet or bdd) and images is None:
        raise UsageError("--nexet and --bdd need --images, the folder their file names refer to")
    if nexet:
        return from_nexet(nexet, images)  # type: ignore[arg-type]
    if bdd:
        return from_bdd(bdd, images)  # type: ignore[arg-type]
    parsed = {}
    for spec in folders:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise UsageError(f"--folder takes LABEL=DIR, not '{spec}'", spec)
        parsed[label] = Path(folder)
    return from_folders(parsed)


def run_relabel(folders: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    sources = _sources(kw["nexet"], kw["bdd"], kw["images"], folders)
    if not sources.items:
        raise UsageError("the source lists no images")
    default = DEFAULT_THRESHOLDS[kw["method"]]
    thresholds = Thresholds(
        kw["night_max"] if kw["night_max"] is not None else default.night_max,
        kw["day_min"] if kw["day_min"] is not None else default.day_min,
    )
    if thresholds.day_min < thresholds.night_max:
        raise UsageError("--day-min must be at least --night-max")
    with progress_bar(len(sources.items), "relabel", quiet, unit="images") as advance:
        result = relabel(
            sources,
            kw["output"],
            kw["method"],
            thresholds,
            kw["auto_thresholds"],
            kw["split"],
            kw["seed"],
            kw["workers"],
            advance,
        )
    _print_summary(result, sources, kw["method"], kw["auto_thresholds"])


def _print_summary(result: RelabelResult, sources: Sources, method: str, auto: bool) -> None:
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
