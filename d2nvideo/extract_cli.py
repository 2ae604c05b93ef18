"""``d2nvideo extract``: parse durations and sizes, run with progress, report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .errors import InputError, UsageError
from .fileio import sigterm_as_interrupt
from .frames import ExtractOptions, Sampling, extract, find_videos, plan, planned_frames
from .progress import progress_bar


def parse_duration(text: str) -> float:
    """'2s', '500ms', '1.5', '1m' -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|min)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--every takes a positive duration like 2s or 500ms, not '{text}'")
    scale = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise UsageError(f"--size takes WIDTHxHEIGHT like 512x288, not '{text}'")
    return int(m.group(1)), int(m.group(2))


def run_extract(inputs: list[Path], output: Path, quiet: bool, **kw: Any) -> None:
    chosen = [k for k in ("every", "fps", "count") if kw[k] is not None]
    if len(chosen) > 1:
        raise UsageError("give one of --every, --fps and --frames")
    if kw["size"] and kw["max_side"]:
        raise UsageError("give --size or --max-side, not both")
    if kw["end"] is not None and kw["end"] <= kw["start"]:
        raise UsageError("--end must be after --start")
    every = parse_duration(kw["every"]) if kw["every"] else (None if chosen else 1.0)
    sampling = Sampling(every, kw["fps"], kw["count"], kw["start"], kw["end"], kw["max_frames"])
    opts = ExtractOptions(
        sampling=sampling,
        size=parse_size(kw["size"]) if kw["size"] else None,
        max_side=kw["max_side"],
        fmt=kw["fmt"],
        quality=kw["quality"],
        dedupe=kw["dedupe_threshold"] if kw["dedupe"] else None,
        classify=kw["classify"],
        method=kw["method"],
    )
    videos = find_videos(inputs)
    if not videos:
        raise InputError("no video files found in the inputs")
    plans = plan(videos)
    total = planned_frames(plans, sampling)
    with sigterm_as_interrupt(), progress_bar(total, "extract", quiet) as advance:
        result = extract(
            plans, output, opts, advance, lambda video, why: click.echo(f"error: {why}", err=True)
        )
    failed = result.failed or []
    extra = f", {result.duplicates} near-duplicates dropped" if opts.dedupe is not None else ""
    click.echo(
        f"{result.written} frames written, {result.existing} already there{extra} from "
        f"{len(videos) - len(failed)} of {len(videos)} videos -> {output}"
    )
    if failed:
        raise InputError(f"{len(failed)} of {len(videos)} videos could not be read")
