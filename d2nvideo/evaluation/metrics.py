"""Image and video quality metrics as pure functions of arrays.

SSIM follows scikit-image's ``structural_similarity`` defaults (7x7 uniform window, sample
covariance, K1 = 0.01, K2 = 0.03, borders cropped), the way the study computed it; grayscale
uses ITU-R 601 luma. The warping error is Lai et al.'s E_warp ("Learning Blind Video Temporal
Consistency", ECCV 2018) with DIS flow in place of FlowNet2.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from ..video.flow import FlowEstimator, gray, occlusion, warp
from ..video.smooth import is_cut


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, win: int = 7) -> float:
    """Mean SSIM of two ``(H, W)`` or ``(H, W, C)`` images of equal shape (any dtype, values on
    a scale of ``data_range``); colour images average their channels, as scikit-image's
    ``channel_axis=-1``."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        return float(
            np.mean([ssim(a[..., c], b[..., c], data_range, win) for c in range(a.shape[2])])
        )
    x, y = a.astype(np.float64), b.astype(np.float64)
    n = win * win
    cov_norm = n / (n - 1)

    def mean(t: np.ndarray) -> np.ndarray:
        return cv2.blur(t, (win, win), borderType=cv2.BORDER_REFLECT)

    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean()) if min(s.shape) > 2 * pad else float(s.mean())


def ssim_gray(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of the luma of two ``(H, W, 3) uint8`` RGB images (the study's cross-domain SSIM)."""
    return ssim(gray(a), gray(b))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def warp_error(
    inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray], max_side: int = 480
) -> float:
    """E_warp of a video: flow and occlusion from the INPUT frames; for each pair (t-1, t) the
    output at t is warped to t-1 and compared with the output at t-1 over non-occluded pixels.
    Pairs across a scene cut of the input (:func:`scene_cuts`) are left out: no flow links two
    shots, and one such pair outweighed the 46 others of a 48-frame clip.

    Frames are ``(H, W, 3) uint8``; differences are on [0, 1], summed over channels and
    averaged over the valid pixels, then over frame pairs. Lai et al.'s code divides by the
    valid pixels of a 3-channel mask, three times as many (a per-channel mean), and does not
    leave out pixels whose flow leaves the frame (``occlusion`` does): these figures compare
    between models and modes measured here, not with published ones.
    """
    estimate = FlowEstimator(max_side)
    errors = []
    prev_in: np.ndarray | None = None
    prev_out: np.ndarray | None = None
    for inp, out in zip(inputs, outputs, strict=True):
        cur_in = gray(inp)
        cur_out = out.astype(np.float32) / 255.0
        if prev_in is not None and prev_out is not None and not is_cut(prev_in, cur_in):
            fw = estimate(prev_in, cur_in)  # t-1 -> t
            bw = estimate(cur_in, prev_in)  # t -> t-1
            valid = ~occlusion(fw, bw)
            warped, _ = warp(cur_out, fw)  # output t brought to t-1
            n = int(valid.sum())
            if n:
                diff = ((warped - prev_out) ** 2).sum(-1)
                errors.append(float(diff[valid].sum() / n))
        prev_in, prev_out = cur_in, cur_out
    return float(np.mean(errors)) if errors else 0.0


def shot_starts(frames: Sequence[np.ndarray]) -> list[int]:
    """Where each shot of ``frames`` begins: 0, then every frame after a scene cut (the test
    the temporal stages reset at, ``video/smooth.py``)."""
    pairs = enumerate(itertools.pairwise(frames), start=1)
    return [0, *(i for i, (a, b) in pairs if is_cut(gray(a), gray(b)))]


def scene_cuts(frames: Sequence[np.ndarray]) -> int:
    """How many consecutive pairs of ``frames`` straddle a scene cut."""
    return len(shot_starts(frames)) - 1
