"""Day/night scoring of images by brightness (the study's rule and better ones)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    night_max: float = 60.0  # score <= night_max: night (the study's gamma <= 60)
    day_min: float = 68.0  # score > day_min: day; in between: ambiguous

    def label(self, score: float) -> str:
        if score <= self.night_max:
            return "night"
        if score > self.day_min:
            return "day"
        return "ambiguous"


def mean_brightness(image: np.ndarray) -> float:
    """The study's gamma: the mean pixel value over H x W x C of ``(H, W, 3) uint8``, 0-255."""
    return float(image.mean())
