"""``d2nvideo evaluate``: run the measurements, write report.json, report.md and plots."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from .errors import InputError
from .evaluate import EvalOptions, Report, image_quality, load_images, speed, temporal_quality
from .info import describe
from .plots import line_png
from .progress import stderr_console

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
]


def run_evaluate(
    translator: Any,
    day: Path,
    night: Path,
    videos: tuple[Path, ...],
    out: Path,
    opts: EvalOptions,
    quiet: bool,
) -> Report:
    for folder in (day, night):
        if not folder.is_dir():
            raise InputError(f"image folder '{folder}' does not exist", folder)
    console = stderr_console()

    def say(message: str) -> None:
        if not quiet:
            console.print(message, highlight=False)

    day_images = load_images(day, opts.max_images, opts.image_max_side, opts.seed)
    night_images = load_images(night, opts.max_images, opts.image_max_side, opts.seed)
    if len(day_images) < 2 or len(night_images) < 2:
        raise InputError("evaluate needs at least 2 day and 2 night images")
    report = Report(
        model={
            "meta": translator.meta,
            "config": dataclasses.asdict(translator.config),
            "device": str(translator.device),
            "precision": translator.precision,
            "resolution": dataclasses.asdict(opts.resolution),
        }
    )
    say(f"image quality and realism: {len(day_images)} day, {len(night_images)} night images")
    image_quality(translator, day_images, night_images, opts, report)
    for video in videos:
        to = "day" if describe(video)["looks_like"] == "night" else "night"
        say(f"temporal stability: {video.name} -> {to}")
        report.temporal[f"{video.name} -> {to}"] = temporal_quality(translator, video, to, opts)
    say(f"speed on {translator.device}")
    report.speed = speed(translator, opts.speed_heights)
    write_report(report, out)
    click.echo(markdown_tables(report).split("\n## Temporal")[0])
    return report


def write_report(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(dataclasses.asdict(report), indent=1, default=str))
    (out / "report.md").write_text(markdown_tables(report))
    if report.speed:
        xs = [r["height"] for r in report.speed]
        line_png(
            out / "speed.png",
            {"network": (xs, [r["fps"] for r in report.speed])},
            f"frames/s against frame height (16:9) on {report.model.get('device')}",
            "frame height (pixels)",
            "frames/s",
        )


def markdown_tables(report: Report) -> str:
    lines = [
        "## Image quality",
        "",
        "| | " + " | ".join(c[1] for c in QUALITY_COLUMNS) + " |",
        "|---" * (len(QUALITY_COLUMNS) + 1) + "|",
    ]
    for name, row in report.quality.items():
        cells = [fmt.format(row[key]) if key in row else "" for key, _, fmt in QUALITY_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"The study (140k training images): reconstruction SSIM {STUDY['recon_ssim']}, "
        f"PSNR {STUDY['recon_psnr']}; cross-domain grayscale SSIM {STUDY['night']} "
        f"(day->night) and {STUDY['day']} (night->day).",
        "",
    ]
    if report.temporal:
        lines += [
            "## Temporal stability (E_warp, lower is steadier)",
            "",
            "| video | input | per-frame | ema | flow | flow vs per-frame | "
            "SSIM flow to per-frame | SSIM ema to per-frame |",
            "|---" * 8 + "|",
        ]
        for name, t in report.temporal.items():
            cut = 1 - t["ewarp_flow"] / t["ewarp_per_frame"] if t["ewarp_per_frame"] else 0.0
            lines.append(
                f"| {name} | {t['ewarp_input']:.5f} | {t['ewarp_per_frame']:.5f} | "
                f"{t['ewarp_ema']:.5f} | {t['ewarp_flow']:.5f} | {-cut:+.0%} | "
                f"{t['ssim_flow_vs_per_frame']:.3f} | {t['ssim_ema_vs_per_frame']:.3f} |"
            )
        lines.append("")
    if report.speed:
        lines += [
            f"## Speed ({report.model.get('device')}, {report.model.get('precision')})",
            "",
            "| size | frames/s | peak MB |",
            "|---|---|---|",
        ]
        for r in report.speed:
            lines.append(
                f"| {r['width']:.0f}x{r['height']:.0f} | {r['fps']:.2f} | {r['peak_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"
