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

from ..choices import Smoothing, values
from ..errors import UsageError
from .decode import Frame
from .flow import FlowEstimator, gray, occlusion
from .geometry import compare_thumb, thumb_difference

Smoother = Callable[[Iterator[Frame]], Generator[Frame, None, None]]
Previous = tuple[np.ndarray, np.ndarray]  # the previous input's grey image, the carried state
Step = Callable[[np.ndarray, np.ndarray, Previous | None], tuple[np.ndarray, np.ndarray]]
SCENE_CUT = 40.0  # mean absolute difference (0-255) of consecutive input thumbnails
AGREE_SIGMA = 24.0  # output difference (0-255) at which blending weight falls to exp(-1/2)


def make_smoother(mode: Smoothing, strength: float = 0.6) -> Smoother:
    """A stage over translated frames (each carrying its input in ``source``)."""
    if not 0.0 <= strength < 1.0:
        raise UsageError(f"smoothing strength must be in [0, 1), not {strength}", strength)
    if mode not in values(Smoothing):
        raise UsageError(f"smoothing must be one of {'|'.join(values(Smoothing))}, not '{mode}'")
    if mode == "none" or strength == 0.0:
        return _identity
    step = _ema_step(strength) if mode == "ema" else _flow_step(strength)
    return lambda frames: _run(frames, step)


def _identity(frames: Iterator[Frame]) -> Generator[Frame, None, None]:
    yield from frames


def is_cut(a: np.ndarray, b: np.ndarray) -> bool:
    """Consecutive grayscale input frames ``a``, ``b`` belong to different shots."""
    return thumb_difference(compare_thumb(a), compare_thumb(b)) > SCENE_CUT


def _run(frames: Iterator[Frame], step: Step) -> Generator[Frame, None, None]:
    """The loop both smoothers share: one step per frame with the previous frame's state,
    forgotten at scene cuts (judged on the inputs, which do not flicker)."""
    previous: Previous | None = None
    for frame in frames:
        out = frame.image.astype(np.float32)
        grey = gray(frame.source if frame.source is not None else frame.image)
        if previous is not None and is_cut(previous[0], grey):
            previous = None
        state, image = step(out, grey, previous)
        previous = (grey, state)
        yield dataclasses.replace(frame, image=_to_uint8(image))


def _low(image: np.ndarray) -> np.ndarray:
    """Low frequencies of ``(H, W, 3)``: an 1/16-size blur brought back to full size."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _ema_step(strength: float) -> Step:
    """Carry a running average of the output's low frequencies; keep the frame's detail."""

    def step(out: np.ndarray, grey: np.ndarray, prev: Previous | None) -> tuple[np.ndarray, ...]:
        low = _low(out)
        state = low if prev is None else strength * prev[1] + (1 - strength) * low
        return state, out - low + state

    return step  # type: ignore[return-value]


def _flow_step(strength: float) -> Step:
    """Blend the previous output, warped along the inputs' optical flow, where the flow is
    consistent forward and backward and the warped output agrees with the current one.

    The flow and its occlusion test stay at the flow's working size (at most 480 pixels a
    side: the flow has no finer detail); only the warp and the agreement run at full size."""
    estimate = FlowEstimator()

    def step(out: np.ndarray, grey: np.ndarray, prev: Previous | None) -> tuple[np.ndarray, ...]:
        if prev is not None:
            prev_grey, prev_out = prev
            before, now = estimate.shrink(prev_grey), estimate.shrink(grey)  # before: kept
            back = estimate.small(now, before)  # current -> previous, on the inputs
            valid = ~occlusion(back, estimate.small(before, now), grey.shape[1] / now.shape[1])
            mx, my = estimate.remap_maps(back, grey.shape)
            carried = cv2.remap(prev_out, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            weight = _flow_weight(valid, carried, out, strength)
            out = cv2.blendLinear(carried, out, weight, 1.0 - weight)
        return out, out

    return step  # type: ignore[return-value]


def _flow_weight(
    valid: np.ndarray, carried: np.ndarray, out: np.ndarray, strength: float
) -> np.ndarray:
    """``(H, W) float32`` blend weight: ``strength`` where the working-size ``valid`` holds
    and the warped previous output ``carried`` agrees with ``out`` (a Gaussian of their mean
    absolute difference over the channels, AGREE_SIGMA), blurred."""
    h, w = out.shape[:2]
    mask = cv2.resize(valid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    gap = cv2.transform(cv2.absdiff(carried, out), np.full((1, 3), 1.0 / 3.0))
    agree = cv2.exp(cv2.multiply(gap, gap, scale=-0.5 / AGREE_SIGMA**2))
    return cv2.GaussianBlur(mask * agree, (0, 0), 2.0) * np.float32(strength)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
