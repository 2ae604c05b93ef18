"""``d2nvideo info``: what a video holds, and whether it looks like day or night."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from .shell import CONTEXT, INPUT, one_line, os_error_line


@click.command(
    context_settings=CONTEXT,
    short_help="Describe videos and images, with a day/night guess for each.",
)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...", type=INPUT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def info(ctx: click.Context, inputs: tuple[Path, ...], as_json: bool) -> None:
    """Describe videos and still images: for a video its streams, codec, size, fps, duration,
    frames, rotation, colour and audio; for each input a day/night guess from the brightness
    of a few frames. An input that cannot be read is reported and the others go on."""
    from ..errors import D2NError

    described, failed = [], 0
    for path in inputs:
        try:
            described.append(describe(path))
        except (D2NError, OSError) as exc:  # OSError: a name too long, a card's bad sector
            if len(inputs) == 1:
                raise
            why = os_error_line(exc) if isinstance(exc, OSError) else str(exc)
            click.echo(f"error: {one_line(why)}", err=True)
            failed += 1
    if as_json:
        click.echo(json.dumps(described[0] if len(inputs) == 1 else described, indent=2))
    else:
        for data in described:
            print_table(data)
    if failed:
        ctx.exit(1)


def describe(path: Path) -> dict[str, Any]:
    """The probe of a video, or the size of an image, with the day/night guess."""
    from ..data.scoring import guess_file
    from ..fileio import require_file
    from ..images import is_image, read_image

    require_file(path)
    if is_image(path):
        height, width = read_image(path).shape[:2]
        data: dict[str, Any] = {"path": str(path), "kind": "image", "width": width}
        data["height"] = height
    else:
        from ..video.probe import probe

        data = {"kind": "video", **probe(path, salvage=True).to_json()}  # truncated: described
    return {**data, **dataclasses.asdict(guess_file(path))}


def print_table(data: dict[str, Any]) -> None:
    """The rows as plain text, not Rich markup: a language shown as '[eng]' vanished (a style
    tag), and a tag or file name holding '[/x]' was a traceback (MarkupError)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(str(data["path"])), show_header=False)
    for key, value in _rows(data):
        table.add_row(Text(key), Text(value))
    Console().print(table)


def _rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    looks = (
        f"{data['looks_like']} (sky score {data['sky_score']}, mean "
        f"brightness {data['brightness']})"
    )
    if data["kind"] == "image":
        return [("image", f"{data['width']}x{data['height']}"), ("looks like", looks)]
    rows = [
        ("container", data["format"]),
        ("video", f"{data['codec']} {data['width']}x{data['height']} {data['pix_fmt']}"),
        *_pixels(data.get("sar"), data["width"], data["height"]),
        ("fps", f"{data['fps']:.3f}"),
        ("duration", f"{data['duration']:.2f} s" + _clock(data["start_time"])),
        ("frames", f"{data['frames']}" + ("" if data["frames_exact"] else " (estimated)")),
        ("rotation", f"{data['rotation']} deg"),
        *([("scan", "interlaced")] if data.get("interlaced") else []),
        ("colour", "HDR (PQ/HLG or BT.2020)" if _hdr(data["color"]) else "SDR"),
        ("looks like", looks),
    ]
    if data["index_end"] and data["index_end"] > data["size"]:
        missing = data["index_end"] - data["size"]
        rows.append(("truncated", f"yes: {missing:,} bytes its index lists are missing"))
    rows += [_stream_row(s) for s in data["streams"] if s["index"] != data["video_index"]]
    rows += [(f"tag {key}", str(value)) for key, value in data["metadata"].items()]
    return rows


def _stream_row(s: dict[str, Any]) -> tuple[str, str]:
    """A stream besides the video converted; a second video (a rear camera's) and a cover
    image were not listed at all."""
    detail = s["codec"]
    if s["type"] == "audio":
        detail += f" {s['sample_rate']} Hz, {s['channels']} ch"
    if s["type"] == "video":
        detail += " (cover image, not converted)" if s.get("cover") else " (not converted)"
    if s["language"]:
        detail += f" [{s['language']}]"
    return f"{s['type']} #{s['index']}", detail


def _pixels(sar: str | None, width: int, height: int) -> list[tuple[str, str]]:
    """Non-square pixels (anamorphic, DV): the picture plays wider or narrower than stored."""
    if not sar:
        return []
    shown = round(width * Fraction(sar))
    return [("pixels", f"not square ({sar.replace('/', ':')}): plays as {shown}x{height}")]


def _clock(start: float) -> str:
    """Where the file's clock starts, when not at 0 (--start and --at count from there)."""
    return f" (its clock starts at {start:.2f} s)" if abs(start) >= 0.005 else ""


def _hdr(color: dict[str, int]) -> bool:
    from ..video.probe import Color

    return Color(**color).hdr
