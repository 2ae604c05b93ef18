"""Temporal smoothing of translated frames: per-frame translation flickers, these stages calm
it with one previous frame of state.

- ``flow``: optical flow on the INPUT frames (which do not flicker) carries the previous
  smoothed output into the current frame; where the flow is consistent forward-backward and the
  warped previous output agrees with the current one, the two are blended. Reset at scene cuts.
- ``ema``: an exponential moving average of the output's low frequencies (overall brightness and
  colour), without motion compensation: cheap, but on fast motion it drags large bright or dark
  areas behind (ghosting), and it does not touch fine texture flicker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator

import cv2
import numpy as np

from ..errors import UsageError
from .decode import Frame
from .flow import FlowEstimator, gray, occlusion, warp

SMOOTHERS = ("none", "ema", "flow")
Smoother = Callable[[Iterator[Frame]], Generator[Frame, None, None]]
SCENE_CUT = 40.0  # mean absolute difference (0-255) of consecutive input thumbnails
AGREE_SIGMA = 24.0  # output difference (0-255) at which blending weight falls to exp(-1/2)


def make_smoother(mode: str, strength: float = 0.6) -> Smoother:
    """A stage over translated frames (each carrying its input in ``source``)."""
    if not 0.0 <= strength < 1.0:
        raise UsageError(f"smoothing strength must be in [0, 1), not {strength}", strength)
    if mode == "none" or strength == 0.0:
        return _identity
    if mode == "ema":
        return lambda frames: _ema(frames, strength)
    if mode == "flow":
        return lambda frames: _flow(frames, strength)
    raise UsageError(f"smoothing must be one of {'|'.join(SMOOTHERS)}, not '{mode}'", mode)


def _identity(frames: Iterator[Frame]) -> Generator[Frame, None, None]:
    yield from frames


def is_cut(a: np.ndarray, b: np.ndarray) -> bool:
    """Consecutive grayscale input frames ``a``, ``b`` belong to different shots."""
    ta = cv2.resize(a, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
    tb = cv2.resize(b, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(np.abs(ta - tb).mean()) > SCENE_CUT


def _low(image: np.ndarray) -> np.ndarray:
    """Low frequencies of ``(H, W, 3)``: an 1/16-size blur brought back to full size."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _ema(frames: Iterator[Frame], strength: float) -> Generator[Frame, None, None]:
    state: np.ndarray | None = None
    prev_gray: np.ndarray | None = None
    for frame in frames:
        out = frame.image.astype(np.float32)
        low = _low(out)
        cur_gray = gray(frame.source if frame.source is not None else frame.image)
        if state is None or prev_gray is None or is_cut(prev_gray, cur_gray):
            state = low
        else:
            state = strength * state + (1 - strength) * low
        prev_gray = cur_gray
        yield dataclasses.replace(frame, image=_to_uint8(out - low + state))


def _flow(frames: Iterator[Frame], strength: float) -> Generator[Frame, None, None]:
    estimate = FlowEstimator()
    prev_out: np.ndarray | None = None
    prev_gray: np.ndarray | None = None
    for frame in frames:
        out = frame.image.astype(np.float32)
        source = frame.source if frame.source is not None else frame.image
        cur_gray = gray(source)
        if prev_out is not None and prev_gray is not None and not is_cut(prev_gray, cur_gray):
            back = estimate(cur_gray, prev_gray)  # current -> previous, on the inputs
            fore = estimate(prev_gray, cur_gray)
            carried, _ = warp(prev_out, back)
            valid = ~occlusion(back, fore)
            agree = np.exp(-0.5 * (np.abs(carried - out).mean(-1) / AGREE_SIGMA) ** 2)
            weight = strength * cv2.GaussianBlur((valid * agree).astype(np.float32), (0, 0), 2.0)
            out = out + weight[..., None] * (carried - out)
        prev_out, prev_gray = out, cur_gray
        yield dataclasses.replace(frame, image=_to_uint8(out))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
