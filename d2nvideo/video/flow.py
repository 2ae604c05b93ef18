"""Optical flow helpers shared by temporal smoothing and the warping-error metric.

Flow is OpenCV's DIS (Kroeger et al. 2016) on grayscale frames at a reduced size, scaled back
up. A flow field is ``(H, W, 2) float32`` in pixels: ``(dx, dy)`` such that pixel ``p`` of the
first frame moves to ``p + flow[p]`` in the second.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_MAX_SIDE = 480
FLOW_MIN_SIDE = 16  # DIS refuses smaller images (its patches): tiny frames are enlarged


def gray(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB -> ``(H, W) uint8`` luma."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """DIS flow at most ``max_side`` pixels on the longer side. Holds the OpenCV object only."""

    def __init__(self, max_side: int = FLOW_MAX_SIDE) -> None:
        self.max_side = max_side
        self.dis = cv2.DISOpticalFlow_create(  # type: ignore[attr-defined]
            cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
        )

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grayscale ``a`` to ``b`` (same size), at their full size."""
        h, w = a.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        size = (max(FLOW_MIN_SIDE, round(w * scale)), max(FLOW_MIN_SIDE, round(h * scale)))
        resized = size != (w, h)
        if resized:
            a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
            b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
        flow = self.dis.calc(a, b, None)
        if resized:
            sx, sy = w / flow.shape[1], h / flow.shape[0]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= sx
            flow[..., 1] *= sy
        return flow


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``p + flow[p]`` (bilinear). Returns the warped image and a
    ``(H, W) bool`` mask of pixels whose source lies inside the frame."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return warped, inside


def occlusion(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` occluded pixels of the first frame (Lai et al. 2018, after Sundaram et
    al. 2010): forward-backward inconsistency |fw + bw'|^2 > 0.01 (|fw|^2 + |bw'|^2) + 0.5,
    where bw' is the backward flow sampled along fw, or a motion boundary |grad fw|^2 >
    0.01 |fw|^2 + 0.002; pixels that leave the frame are occluded too."""
    bw_w, inside = warp(bw, fw)
    fb = ((fw + bw_w) ** 2).sum(-1)
    mag = (fw**2).sum(-1) + (bw_w**2).sum(-1)
    inconsistent = fb > 0.01 * mag + 0.5
    du_y, du_x = _gradient(fw[..., 0])
    dv_y, dv_x = _gradient(fw[..., 1])
    boundary = (du_x**2 + du_y**2 + dv_x**2 + dv_y**2) > 0.01 * (fw**2).sum(-1) + 0.002
    return inconsistent | boundary | ~inside


def _gradient(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.gradient`` along y and x, zero along a side of one pixel (which has none)."""
    h, w = field.shape
    dy = np.gradient(field, axis=0) if h > 1 else np.zeros_like(field)
    dx = np.gradient(field, axis=1) if w > 1 else np.zeros_like(field)
    return dy, dx
