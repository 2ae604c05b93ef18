from __future__ import annotations

import cv2
import numpy as np

from d2nvideo.evaluation.metrics import ssim
from d2nvideo.upsample import bicubic_upsample, guided_upsample


def _detailed(h: int = 180, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (h // 10, w // 10, 3)).astype(np.float32), (w, h))
    fine = rng.normal(0, 18, (h, w, 3))
    return np.clip(base + fine, 0, 255).astype(np.uint8)


def _night_look(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return np.clip((x**1.8) * np.array([0.35, 0.4, 0.6]) * 255, 0, 255).astype(np.uint8)


def test_guided_upsampling_keeps_detail_that_bicubic_loses() -> None:
    full = _detailed()
    small = cv2.resize(full, (80, 45), interpolation=cv2.INTER_AREA)
    target = _night_look(full)
    guided = guided_upsample(small, _night_look(small), full)
    bicubic = bicubic_upsample(_night_look(small), (320, 180))
    assert guided.shape == full.shape and guided.dtype == np.uint8
    assert ssim(guided, target) > 0.9 > ssim(bicubic, target) + 0.1


def test_guided_upsampling_of_an_identity_is_close_to_the_input() -> None:
    full = _detailed()
    small = cv2.resize(full, (160, 90), interpolation=cv2.INTER_AREA)
    assert ssim(guided_upsample(small, small, full), full) > 0.95


def test_fingerprints_survive_resizing_and_tell_pictures_apart() -> None:
    import cv2
    from conftest import frame_image

    from d2nvideo.images import fingerprint, fingerprint_distance

    a = frame_image(3, 320, 180)
    smaller = cv2.resize(a, (160, 90), interpolation=cv2.INTER_AREA)
    other = frame_image(40, 320, 180)[::-1].copy()
    assert fingerprint_distance(fingerprint(a), fingerprint(smaller)) <= 4
    assert fingerprint_distance(fingerprint(a), fingerprint(other)) > 12
