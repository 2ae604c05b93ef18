"""Optical flow helpers shared by temporal smoothing and the warping-error metric.

Flow is OpenCV's DIS (Kroeger et al. 2016) on grayscale frames at a reduced size, scaled back
up. A flow field is ``(H, W, 2) float32`` in pixels: ``(dx, dy)`` such that pixel ``p`` of the
first frame moves to ``p + flow[p]`` in the second.
"""

from __future__ import annotations

import functools

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
        self.last: tuple[np.ndarray, np.ndarray] | None = None  # see shrink

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grayscale ``a`` to ``b`` (same size), at their full size."""
        flow = self.small(self.shrink(a), self.shrink(b))
        return self.enlarge(flow, a.shape[:2])

    def working_size(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """``(width, height)`` at which the flow of frames of ``shape`` is estimated."""
        h, w = shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        return max(FLOW_MIN_SIDE, round(w * scale)), max(FLOW_MIN_SIDE, round(h * scale))

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """A grayscale frame at the working size (itself when that is its size). The last
        frame shrunk is kept: along a video, each frame is shrunk as the current one and again
        as the previous one."""
        if self.last is not None and self.last[0] is image:
            return self.last[1]
        size = self.working_size(image.shape)
        small = image
        if size != (image.shape[1], image.shape[0]):
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        self.last = (image, small)
        return small

    def small(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from :meth:`shrink`-ed ``a`` to ``b``, in pixels of that working size."""
        return self.dis.calc(a, b, None)  # type: ignore[no-any-return]

    @staticmethod
    def remap_maps(flow: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel of a frame of ``shape`` samples along a working-size ``flow``:
        ``cv2.remap``'s ``(x, y)`` maps, the flow enlarged (bilinear) plus the pixel grid."""
        h, w = shape[:2]
        xs, ys = _grid(h, w)
        fx, fy = cv2.split(flow)
        fx *= np.float32(w / flow.shape[1])
        fy *= np.float32(h / flow.shape[0])
        size = (w, h)
        fx = cv2.resize(fx, size, interpolation=cv2.INTER_LINEAR)
        fy = cv2.resize(fy, size, interpolation=cv2.INTER_LINEAR)
        return cv2.add(xs, fx), cv2.add(ys, fy)

    @staticmethod
    def enlarge(flow: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A working-size flow brought to ``shape``'s size and pixels (bilinear)."""
        h, w = shape[:2]
        if flow.shape[:2] == (h, w):
            return flow
        sx, sy = w / flow.shape[1], h / flow.shape[0]
        big = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        big[..., 0] *= sx
        big[..., 1] *= sy
        return big


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(xs, ys)``, each ``(h, w) float32``; cached (a video has one size),
    read-only."""
    xs = np.broadcast_to(np.arange(w, dtype=np.float32), (h, w)).copy()
    ys = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)).copy()
    xs.flags.writeable = ys.flags.writeable = False
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


def occlusion(fw: np.ndarray, bw: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``(H, W) bool`` occluded pixels of the first frame (Lai et al. 2018, after Sundaram et
    al. 2010): forward-backward inconsistency |fw + bw'|^2 > 0.01 (|fw|^2 + |bw'|^2) + 0.5,
    where bw' is the backward flow sampled along fw, or a motion boundary |grad fw|^2 >
    0.01 |fw|^2 + 0.002; pixels that leave the frame are occluded too.

    ``scale`` > 1: the flows are a working-size estimate of frames ``scale`` times larger (in
    working-size pixels), and the test is the one the frames' own size would make on them
    enlarged (its pixel thresholds rescaled), at the cost of the working size.
    """
    bw_w, inside = warp(bw, fw)
    s2 = scale * scale
    fb = _norm2(fw[..., 0] + bw_w[..., 0], fw[..., 1] + bw_w[..., 1])
    mag = _norm2(fw[..., 0], fw[..., 1]) + _norm2(bw_w[..., 0], bw_w[..., 1])
    inconsistent = fb > 0.01 * mag + 0.5 / s2
    du_y, du_x = _gradient(fw[..., 0])
    dv_y, dv_x = _gradient(fw[..., 1])
    edges = _norm2(du_x, du_y) + _norm2(dv_x, dv_y)
    boundary = edges > 0.01 * s2 * _norm2(fw[..., 0], fw[..., 1]) + 0.002
    return inconsistent | boundary | ~inside


def _norm2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x * x + y * y


def _gradient(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.gradient`` along y and x, zero along a side of one pixel (which has none)."""
    h, w = field.shape
    dy = np.gradient(field, axis=0) if h > 1 else np.zeros_like(field)
    dx = np.gradient(field, axis=1) if w > 1 else np.zeros_like(field)
    return dy, dx
