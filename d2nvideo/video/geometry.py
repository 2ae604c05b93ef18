"""Frame geometry shared by every stage: display rotation, fitting within a size, and the
small grey thumbnails used to compare consecutive frames. NumPy and OpenCV only."""

from __future__ import annotations

import cv2
import numpy as np

COMPARE_THUMB = (64, 36)  # (width, height) of the thumbnails compared for cuts and duplicates


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a stored frame as a player would show it (``rotation`` degrees CCW)."""
    k = round(rotation / 90) % 4
    return np.rot90(image, k) if k else image


def restore(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo :func:`upright`."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink ``(H, W, ...)`` so its longer side is at most ``max_side`` (area filter, aspect
    kept, sides at least 1); smaller images come back unchanged."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def compare_thumb(image: np.ndarray) -> np.ndarray:
    """A 64x36 float32 thumbnail of ``(H, W, 3) uint8`` RGB or ``(H, W) uint8`` grey."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, COMPARE_THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def thumb_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0-255) of two :func:`compare_thumb` thumbnails."""
    return float(np.abs(a - b).mean())


MIN_CONTRAST = 4.0  # grey levels: the contrast floor, so noise on a black frame is not motion


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`thumb_difference` as a share of the thumbnails' contrast (their larger standard
    deviation): 0.1 is a change of a tenth of what the picture spans, whether it is a bright
    day or a dim night (where an oncoming car moves few grey levels)."""
    contrast = max(float(a.std()), float(b.std()), MIN_CONTRAST)
    return thumb_difference(a, b) / contrast
