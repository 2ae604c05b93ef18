"""``d2nvideo info``: what a video holds, and whether it looks like day or night."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .labels import DEFAULT_THRESHOLDS, score_image
from .video.decode import frames_at
from .video.probe import probe

GUESS_SAMPLES = 8


def describe(path: Path) -> dict[str, Any]:
    """Probe ``path`` and add a day/night guess from frames sampled across it."""
    info = probe(path)
    span = max(info.duration, 0.0)
    times = [info.start_time + span * (i + 0.5) / GUESS_SAMPLES for i in range(GUESS_SAMPLES)]
    scores = [score_image(f.image) for f in frames_at(path, times)]
    sky = sum(s.sky for s in scores) / max(1, len(scores))
    data = info.to_json()
    data["brightness"] = round(sum(s.mean for s in scores) / max(1, len(scores)), 1)
    data["sky_score"] = round(sky, 1)
    data["looks_like"] = DEFAULT_THRESHOLDS["sky"].label(sky)  # the relabeler's default scorer
    return data


def print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(data["path"]), show_header=False)
    rows = [
        ("container", data["format"]),
        ("video", f"{data['codec']} {data['width']}x{data['height']} {data['pix_fmt']}"),
        ("fps", f"{data['fps']:.3f}"),
        ("duration", f"{data['duration']:.2f} s"),
        ("frames", f"{data['frames']}" + ("" if data["frames_exact"] else " (estimated)")),
        ("rotation", f"{data['rotation']} deg"),
        (
            "looks like",
            f"{data['looks_like']} (sky score {data['sky_score']}, mean "
            f"brightness {data['brightness']})",
        ),
    ]
    for s in data["streams"]:
        if s["type"] == "video":
            continue
        detail = s["codec"]
        if s["type"] == "audio":
            detail += f" {s['sample_rate']} Hz, {s['channels']} ch"
        if s["language"]:
            detail += f" [{s['language']}]"
        rows.append((f"{s['type']} #{s['index']}", detail))
    for key, value in data["metadata"].items():
        rows.append((f"tag {key}", str(value)))
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
