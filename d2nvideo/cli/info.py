"""``d2nvideo info``: what a video holds, and whether it looks like day or night."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from .shell import CONTEXT, INPUT


@click.command(context_settings=CONTEXT)
@click.argument("input_path", metavar="VIDEO", type=INPUT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(input_path: Path, as_json: bool) -> None:
    """Describe a video: streams, codec, size, fps, duration, frames, rotation, audio and a
    day/night guess from the brightness of a few frames."""
    from ..data.scoring import guess_file
    from ..video.probe import probe

    video = probe(input_path, salvage=True)  # a truncated file is described, not refused
    guessed = guess_file(input_path)
    data = {**video.to_json(), **dataclasses.asdict(guessed)}
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        print_table(data)


def print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(data["path"]), show_header=False)
    for key, value in _rows(data):
        table.add_row(key, value)
    Console().print(table)


def _rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("container", data["format"]),
        ("video", f"{data['codec']} {data['width']}x{data['height']} {data['pix_fmt']}"),
        ("fps", f"{data['fps']:.3f}"),
        ("duration", f"{data['duration']:.2f} s"),
        ("frames", f"{data['frames']}" + ("" if data["frames_exact"] else " (estimated)")),
        ("rotation", f"{data['rotation']} deg"),
        ("colour", "HDR (PQ/HLG or BT.2020)" if _hdr(data["color"]) else "SDR"),
        (
            "looks like",
            f"{data['looks_like']} (sky score {data['sky_score']}, mean "
            f"brightness {data['brightness']})",
        ),
    ]
    if data["index_end"] and data["index_end"] > data["size"]:
        missing = data["index_end"] - data["size"]
        rows.append(("truncated", f"yes: {missing:,} bytes its index lists are missing"))
    for s in data["streams"]:
        if s["type"] == "video":
            continue
        detail = s["codec"]
        if s["type"] == "audio":
            detail += f" {s['sample_rate']} Hz, {s['channels']} ch"
        if s["language"]:
            detail += f" [{s['language']}]"
        rows.append((f"{s['type']} #{s['index']}", detail))
    rows += [(f"tag {key}", str(value)) for key, value in data["metadata"].items()]
    return rows


def _hdr(color: dict[str, int]) -> bool:
    from ..video.probe import Color

    return Color(**color).hdr
