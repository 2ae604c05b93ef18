"""The evaluation report: what was measured, as report.json, report.md and speed.png."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.plots import line_png
from ..fileio import atomic_output, make_folder, refuse_dangling_links, within


@dataclass
class Report:
    model: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    temporal: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    overlap: dict[str, int] = field(default_factory=dict)  # images matching the training set
    inputs: dict[str, Any] = field(default_factory=dict)  # what was measured, with what options


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


def report_json(report: Report, indent: int | None = None) -> str:
    """The report as strict JSON: a non-finite figure (the PSNR of identical images) is null."""
    return json.dumps(_finite(dataclasses.asdict(report)), indent=indent, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


REPORT_FILES = ("report.json", "report.md", "speed.png")


def check_report_folder(out: Path, overwrite: bool, inputs: Sequence[Path | None] = ()) -> None:
    """Refuse, before any measuring, a report folder that is a file, that is or lies inside
    one of the ``inputs`` folders (its files would replace the images measured, and be read as
    images the next time), that holds a report already (unless ``overwrite``), or that cannot
    be made or written."""
    from ..errors import OutputError, PathError, UsageError

    refuse_dangling_links(out)  # resolved, it passed the tests below and failed at the end
    if out.exists() and not out.is_dir():
        raise PathError(f"report folder '{out}' is a file; choose a folder", out)
    for folder in filter(None, inputs):
        if within(out, folder):
            raise UsageError(
                f"report folder '{out}' must lie outside the image folder '{folder}'", out
            )
    taken = [name for name in REPORT_FILES if (out / name).exists()]
    if taken and not overwrite:
        raise PathError(
            f"'{out}' holds a report already ({taken[0]}); pass --overwrite to replace it", out
        )
    nearest = next(p for p in (out.resolve(), *out.resolve().parents) if p.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise OutputError(f"report folder '{out}' cannot be written there ('{nearest}')", out)


def write_report(report: Report, out: Path) -> None:
    """report.json, report.md and (with speed rows) speed.png in ``out``, all or none: each is
    written to a temporary file and none is renamed into place until all are written (a full
    disk at speed.png left a new report.json beside an old plot, or a report a rerun refused).
    A report without speed rows removes an earlier report's speed.png; a folder made for a
    report that failed is removed again (an empty one was left)."""
    made = not out.exists()
    make_folder(out)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(atomic_output(out / "report.json")).write_text(
                report_json(report, indent=1)
            )
            stack.enter_context(atomic_output(out / "report.md")).write_text(markdown(report))
            if report.speed:
                _speed_plot(report, stack.enter_context(atomic_output(out / "speed.png")))
    except BaseException:
        if made:
            with contextlib.suppress(OSError):  # only if empty: never what another put there
                out.rmdir()
        raise
    if not report.speed:  # the replaced report's plot would pass for this one's
        (out / "speed.png").unlink(missing_ok=True)


def _speed_plot(report: Report, path: Path) -> None:
    xs = [r["height"] for r in report.speed]
    line_png(
        path,
        {
            "convert pipeline": (xs, [r.get("pipeline_fps", 0.0) for r in report.speed]),
            "network alone (native size)": (xs, [r["fps"] for r in report.speed]),
        },
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
        "Reconstruction runs the network alone at the evaluated size, not at the working "
        "size; the other columns translate as convert does. Percentages are of n images.",
        "",
        f"The study (140k training images): reconstruction SSIM {STUDY['recon_ssim']}, "
        f"PSNR {STUDY['recon_psnr']}; cross-domain grayscale SSIM {STUDY['night']} "
        f"(day->night) and {STUDY['day']} (night->day).",
        "",
    ]


TEMPORAL_MODES = ("per_frame", "ema", "flow", "steady", "flow_steady")


def temporal_table(report: Report) -> list[str]:
    """Per clip: E_warp (Lai et al. 2018) and brightness drift of the input, the per-frame
    output and each temporal stage; ``steady`` is convert's default path."""
    if not report.temporal:
        return []
    modes = [m for m in TEMPORAL_MODES if all(f"ewarp_{m}" in t for t in report.temporal.values())]
    names = " | ".join(m.replace("_", " ") for m in modes)
    lines = [
        "## Temporal stability",
        "",
        "E_warp (lower is steadier; summed over the three channels, about three times Lai et "
        "al.'s per-channel figure, and pixels whose flow leaves the frame left out: it "
        "compares between rows and modes here, not with published values) and brightness "
        "drift (the standard deviation of the per-frame mean brightness over its mean, across "
        "the measured frames: a slow fall counts as much as flicker) of the input and of each "
        "way of producing the output; steady is convert's default (steady exposure, no "
        "smoothing). Both are measured within shots (frame pairs across a scene cut are left "
        f"out) on each clip's first frames at up to {_clip_side(report)} pixels.",
        "",
        f"| clip | measure | input | {names} | darkest frame: input / output |",
        "|---" * (len(modes) + 4) + "|",
    ]
    for name, t in report.temporal.items():
        dark = f"{t.get('darkest_input', 0):.0f} / {t.get('darkest_output', 0):.0f}"
        ewarp = " | ".join(f"{t[f'ewarp_{m}']:.5f}" for m in modes)
        drift = " | ".join(f"{t.get(f'drift_{m}', 0.0):.1%}" for m in modes)
        cuts = int(t.get("cut_pairs", 0))
        label = f"{name} ({cuts} cut{'s' * (cuts != 1)} left out)" if cuts else name
        lines.append(f"| {label} | E_warp | {t['ewarp_input']:.5f} | {ewarp} | {dark} |")
        lines.append(f"| | drift | {t.get('drift_input', 0.0):.1%} | {drift} | |")
    return [*lines, ""]


def _clip_side(report: Report) -> str:
    return str(report.inputs.get("video_max_side", "480"))


def speed_table(report: Report) -> list[str]:
    """The convert pipeline's frames/s at each size and what limits it; the network alone at
    native size beside it."""
    if not report.speed:
        return []
    lines = [
        f"## Speed ({report.model.get('device')}, {report.model.get('precision')})",
        "",
        "| size | network at | convert frames/s | limited by | stage ms/frame |"
        " network alone, native size: frames/s | process peak MB so far |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.speed:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r.get("stages_ms", {}).items())
        work = "x".join(str(v) for v in reversed(r.get("work", [])))
        lines.append(
            f"| {r['width']:.0f}x{r['height']:.0f} | {work} | {r.get('pipeline_fps', 0):.2f} "
            f"| {r.get('limit', '')} | {stages} | {r['fps']:.2f} | {r['peak_mb']:.0f} |"
        )
    return [
        *lines,
        "",
        "Each row is one run: the convert pipeline on a short synthetic clip (its start-up "
        "included; a long clip runs faster), stage times from that run. On a CPU the memory "
        "column is the whole process's high-water mark so far, which only rises down the "
        "table; on a GPU it is the network's peak at that size.",
        "",
    ]
