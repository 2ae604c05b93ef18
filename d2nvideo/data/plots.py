"""Small PNG charts drawn with OpenCV (no plotting library needed): histograms with marked
thresholds, and line plots. Images are (H, W, 3) uint8 RGB, written with images.write_image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..images import write_image

COLORS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
]
_W, _H, _L, _R, _T, _B = 900, 500, 70, 20, 40, 60  # size and margins


def _canvas(title: str) -> np.ndarray:
    img = np.full((_H, _W, 3), 255, np.uint8)
    cv2.putText(img, title, (_L, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _axes(img: np.ndarray, x0: float, x1: float, y1: float, xlabel: str, ylabel: str) -> None:
    left, right, top, bottom = _L, _W - _R, _T, _H - _B
    cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
    for i in range(6):
        x = x0 + (x1 - x0) * i / 5
        px = int(left + (right - left) * i / 5)
        cv2.putText(
            img,
            f"{x:g}",
            (px - 12, bottom + 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        y = y1 * i / 5
        py = int(bottom - (bottom - top) * i / 5)
        cv2.putText(
            img, f"{y:.3g}", (4, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
    cv2.putText(
        img,
        xlabel,
        (left + (right - left) // 2 - 60, _H - 18),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    cv2.putText(
        img, ylabel, (4, top - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
    )


def _legend(img: np.ndarray, names: list[str]) -> None:
    for i, name in enumerate(names):
        y = _T + 18 + 18 * i
        cv2.rectangle(img, (_W - 190, y - 10), (_W - 178, y), COLORS[i % len(COLORS)], -1)
        cv2.putText(
            img, name, (_W - 172, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )


def histogram_png(
    path: Path,
    series: dict[str, np.ndarray],
    title: str,
    xlabel: str,
    value_range: tuple[float, float] = (0, 256),
    bins: int = 64,
    marks: dict[str, float] | None = None,
) -> None:
    """Overlaid step histograms of each series, with vertical lines at ``marks``."""
    img = _canvas(title)
    x0, x1 = value_range
    hists = {k: np.histogram(v, bins=bins, range=value_range)[0] for k, v in series.items()}
    peak = max([1, *(int(h.max()) for h in hists.values() if h.size)])
    _axes(img, x0, x1, peak, xlabel, "images")
    left, right, top, bottom = _L, _W - _R, _T, _H - _B

    def px(x: float) -> int:
        return int(left + (right - left) * (x - x0) / (x1 - x0))

    for i, hist in enumerate(hists.values()):
        pts = []
        for b, count in enumerate(hist):
            y = int(bottom - (bottom - top) * count / peak)
            pts += [(px(x0 + (x1 - x0) * b / bins), y), (px(x0 + (x1 - x0) * (b + 1) / bins), y)]
        cv2.polylines(img, [np.array(pts, np.int32)], False, COLORS[i % len(COLORS)], 2)
    for i, (name, x) in enumerate((marks or {}).items()):
        cv2.line(img, (px(x), top), (px(x), bottom), (90, 90, 90), 1, cv2.LINE_AA)
        cv2.putText(
            img,
            f"{name} {x:g}",
            (px(x) + 3, top + 16 + 16 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (60, 60, 60),
            1,
            cv2.LINE_AA,
        )
    _legend(img, list(series))
    write_image(path, img)


def line_png(
    path: Path,
    series: dict[str, tuple[list[float], list[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    """One polyline with point markers per series."""
    img = _canvas(title)
    xs = [x for v in series.values() for x in v[0]] or [0.0, 1.0]
    ys = [y for v in series.values() for y in v[1]] or [1.0]
    x0, x1 = 0.0, max(xs) * 1.05 or 1.0
    y1 = max(ys) * 1.1 or 1.0
    _axes(img, x0, x1, y1, xlabel, ylabel)
    left, right, top, bottom = _L, _W - _R, _T, _H - _B
    for i, (vx, vy) in enumerate(series.values()):
        pts = [
            (
                int(left + (right - left) * (x - x0) / (x1 - x0)),
                int(bottom - (bottom - top) * y / y1),
            )
            for x, y in zip(vx, vy, strict=True)
        ]
        color = COLORS[i % len(COLORS)]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 4, color, -1, cv2.LINE_AA)
    _legend(img, list(series))
    write_image(path, img)
