"""The evaluation report: what was measured, as report.json, report.md and speed.png."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.plots import line_png
from ..fileio import atomic_output


@dataclass
class Report:
    model: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    temporal: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    overlap: dict[str, int] = field(default_factory=dict)  # images matching the training set


STUDY = {"recon_ssim": 0.954, "recon_psnr": 33.7, "night": 0.381, "day": 0.405}
QUALITY_COLUMNS = [
    ("n", "n", "{:.0f}"),
    ("recon_ssim", "recon SSIM", "{:.3f}"),
    ("recon_psnr", "recon PSNR", "{:.1f}"),
    ("ssim_gray", "SSIM gray", "{:.3f}"),
    ("ssim_color", "SSIM colour", "{:.3f}"),
    ("cycle_ssim", "cycle SSIM", "{:.3f}"),
    ("success_sky", "success (sky)", "{:.0%}"),
    ("success_mean", "success (mean)", "{:.0%}"),
    ("realism", "realism", "{:.0%}"),
    ("mean_brightness", "brightness", "{:.0f}"),
    ("dark_share", "black (<8)", "{:.0%}"),
]


def write_report(report: Report, out: Path) -> None:
    """report.json, report.md and (with speed rows) speed.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(dataclasses.asdict(report), indent=1, default=str))
    with atomic_output(out / "report.md") as tmp:
        tmp.write_text(markdown(report))
    if report.speed:
        xs = [r["height"] for r in report.speed]
        line_png(
            out / "speed.png",
            {"network": (xs, [r["fps"] for r in report.speed])},
            f"frames/s against frame height (16:9) on {report.model.get('device')}",
            "frame height (pixels)",
            "frames/s",
        )


def markdown(report: Report) -> str:
    """The whole report as Markdown tables."""
    notes = ["## Notes", "", *(f"- {n}" for n in report.notes), ""] if report.notes else []
    sections = [notes, quality_table(report), temporal_table(report), speed_table(report)]
    return "\n".join(line for section in sections for line in section) + "\n"


def quality_table(report: Report) -> list[str]:
    lines = [
        "## Image quality",
        "",
        "| | " + " | ".join(c[1] for c in QUALITY_COLUMNS) + " |",
        "|---" * (len(QUALITY_COLUMNS) + 1) + "|",
    ]
    for name, row in report.quality.items():
        cells = [fmt.format(row[key]) if key in row else "" for key, _, fmt in QUALITY_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [
        *lines,
        "",
        f"The study (140k training images): reconstruction SSIM {STUDY['recon_ssim']}, "
        f"PSNR {STUDY['recon_psnr']}; cross-domain grayscale SSIM {STUDY['night']} "
        f"(day->night) and {STUDY['day']} (night->day).",
        "",
    ]


def temporal_table(report: Report) -> list[str]:
    if not report.temporal:
        return []
    lines = [
        "## Temporal stability (E_warp, lower is steadier)",
        "",
        "| video | input | per-frame | ema | flow | flow vs per-frame | "
        "SSIM flow to per-frame | SSIM ema to per-frame | brightness drift: input | "
        "per-frame | ema | flow |",
        "|---" * 12 + "|",
    ]
    for name, t in report.temporal.items():
        cut = 1 - t["ewarp_flow"] / t["ewarp_per_frame"] if t["ewarp_per_frame"] else 0.0
        drift = [t.get(f"drift_{k}", 0.0) for k in ("input", "per_frame", "ema", "flow")]
        lines.append(
            f"| {name} | {t['ewarp_input']:.5f} | {t['ewarp_per_frame']:.5f} | "
            f"{t['ewarp_ema']:.5f} | {t['ewarp_flow']:.5f} | {-cut:+.0%} | "
            f"{t['ssim_flow_vs_per_frame']:.3f} | {t['ssim_ema_vs_per_frame']:.3f} | "
            + " | ".join(f"{d:.1%}" for d in drift)
            + " |"
        )
    return [
        *lines,
        "",
        "Brightness drift: the spread of the per-frame mean brightness "
        "(standard deviation over mean).",
        "",
    ]


def speed_table(report: Report) -> list[str]:
    if not report.speed:
        return []
    lines = [
        f"## Speed ({report.model.get('device')}, {report.model.get('precision')})",
        "",
        "| size | frames/s | peak MB |",
        "|---|---|---|",
    ]
    for r in report.speed:
        lines.append(
            f"| {r['width']:.0f}x{r['height']:.0f} | {r['fps']:.2f} | {r['peak_mb']:.0f} |"
        )
    return lines
