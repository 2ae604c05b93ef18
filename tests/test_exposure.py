"""Steady exposure: a translation's brightness follows its input's instead of wandering."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from conftest import frame_image

from d2nvideo.evaluation.evaluate import brightness_spread
from d2nvideo.video.decode import Frame
from d2nvideo.video.exposure import steady_exposure


def _clip(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> list[Frame]:
    return [
        Frame(o, i, Fraction(1, 30), i, source=s)
        for i, (s, o) in enumerate(zip(inputs, outputs, strict=True))
    ]


def test_a_drifting_output_is_held_steady() -> None:
    # The case: the input holds steady (a spread of about 1.5%) while the per-frame
    # translation falls by a third in three seconds.
    base = frame_image(0, 64, 48).astype(np.float32)
    inputs = [
        np.clip(np.roll(base, 2 * i, axis=1) * (1 + 0.02 * np.sin(i / 5)), 0, 255).astype(np.uint8)
        for i in range(90)
    ]
    drifting = [(im * 0.3 * (1.0 - 0.36 * i / 90)).astype(np.uint8) for i, im in enumerate(inputs)]
    steady = [f.image for f in steady_exposure(iter(_clip(inputs, drifting)))]
    assert brightness_spread(drifting) > 5 * brightness_spread(inputs)
    assert brightness_spread(steady) < 3 * brightness_spread(inputs)
    assert steady[0].shape == inputs[0].shape and steady[0].dtype == np.uint8


def test_input_brightness_changes_pass_through() -> None:
    base = frame_image(0, 64, 48).astype(np.float32)
    inputs = [
        np.clip(base * (1.0 - 0.5 * min(i, 30) / 30), 0, 255).astype(np.uint8) for i in range(60)
    ]
    outputs = [(im * 0.25).astype(np.uint8) for im in inputs]  # a model that follows exactly
    steady = [f.image for f in steady_exposure(iter(_clip(inputs, outputs)))]
    ratios = [s.mean() / max(o.mean(), 1e-3) for s, o in zip(steady, outputs, strict=True)]
    assert max(abs(r - 1) for r in ratios) < 0.06  # nothing to correct: left as it was
