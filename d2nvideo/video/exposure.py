"""Steady exposure: a clip's translated brightness follows its input's, without drifting.

A translator sees one frame at a time; as the scene changes, its output gets darker or
brighter on its own (issue 10 measured solidWhiteRight -> night falling from 42 to 27 in 3 s
while the input held steady: a spread of 12.8% of the mean against 1.2%). This stage measures
each output frame's gain against its input, per colour channel, averages that gain over the
last few seconds (reset at scene cuts), and rescales the frame to the averaged gain. Brightness
changes of the input (a tunnel, the sun) pass through in proportion; the model's own wandering
does not. Detail, local contrast and colour within the frame are untouched: it is one
multiplier per channel and frame.

The gain of a shot's first second is the plain mean over that whole second (its frames are
held back until the second is complete, so one odd first frame neither sets the gain nor
escapes it), then an exponential average with a 20-second time constant: slow enough that a
drift over a few seconds is held, quick enough to follow a long drive from a lit city into the
country. Memory: one second of frames, at most WARM_UP_BYTES of them (a 2.8K clip at 60 fps held
1.7 GB): past the budget the frames held are released at their own mean gain, and each later
frame of that first second at the mean of the frames so far, so that from the end of the
first second on the gain is what holding the whole second would have made it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Iterator

import cv2
import numpy as np

from .decode import Frame
from .flow import gray
from .geometry import compare_thumb, thumb_difference
from .smooth import SCENE_CUT

TIME_CONSTANT_S = 20.0  # seconds of past frames the gain is averaged over
WARM_UP_S = 1.0  # the first second of a shot sets the gain by a plain mean
WARM_UP_BYTES = 384 << 20  # of held-back frames (their outputs and inputs): 1080p30 fits whole
OFFSET = 1.0  # added to means so black frames do not divide by zero


def steady_exposure(
    frames: Iterator[Frame], seconds: float = TIME_CONSTANT_S
) -> Generator[Frame, None, None]:
    """Rescale translated frames (each carrying its input in ``source``) so the ratio of
    output to input brightness changes slowly; see the module docstring."""
    shot: _Shot | None = None
    for frame in frames:
        m = _measure(frame)
        if shot is None or thumb_difference(shot.thumb, m.thumb) > SCENE_CUT:
            yield from _release(shot.warm if shot else [])
            shot = _Shot(frame.time, m.thumb)
        if shot.firsts is not None or shot.gain is None:
            yield from shot.first_second(m, frame.time)
        else:
            step = 1.0 - math.exp(-max(frame.time - shot.last_time, 0.0) / seconds)
            shot.gain = shot.gain + step * (m.current - shot.gain)
            yield _rescaled(m, shot.gain)
        shot.thumb, shot.last_time = m.thumb, frame.time
    yield from _release(shot.warm if shot else [])


@dataclasses.dataclass
class _Shot:
    """A shot's gain: the plain mean over its first second, then averaged exponentially."""

    start: float  # its first frame's time
    thumb: np.ndarray  # the last input's thumbnail, for the scene-cut test
    warm: list[_Measured] = dataclasses.field(default_factory=list)  # held back, gain unknown
    firsts: list[np.ndarray] | None = dataclasses.field(default_factory=list)  # first second's
    gain: np.ndarray | None = None  # (3,) output/input brightness ratio, averaged
    last_time: float = 0.0  # the last frame's

    def first_second(self, m: _Measured, time: float) -> Generator[Frame, None, None]:
        """Hold frames back until the second is complete or WARM_UP_BYTES are held, then
        release them at their mean gain; past the budget, each later frame of the second at
        the mean of the frames so far."""
        assert self.firsts is not None
        self.firsts.append(m.current)
        second = time - self.start >= WARM_UP_S
        if self.gain is None:
            self.warm.append(m)
            if second or _held_bytes(self.warm) >= WARM_UP_BYTES:
                self.gain = np.mean(self.firsts, axis=0)
                yield from _release(self.warm, self.gain)
                self.warm = []
        else:
            self.gain = np.mean(self.firsts, axis=0)
            yield _rescaled(m, self.gain)
        if second:
            self.firsts = None


@dataclasses.dataclass(frozen=True)
class _Measured:
    frame: Frame
    thumb: np.ndarray  # the input's, for the scene-cut test (smooth.is_cut's)
    means: np.ndarray  # (3,) the output's channel means
    level: float  # the input's mean brightness (+ OFFSET)

    @property
    def current(self) -> np.ndarray:
        """This frame's own output/input gain per channel."""
        return (self.means + OFFSET) / self.level


def _measure(frame: Frame) -> _Measured:
    grey = gray(frame.source if frame.source is not None else frame.image)
    means = np.array(cv2.mean(frame.image)[:3], np.float64)  # 15x numpy's mean at 720p
    return _Measured(frame, compare_thumb(grey), means, cv2.mean(grey)[0] + OFFSET)


def _held_bytes(warm: list[_Measured]) -> int:
    """What the held-back frames keep alive: each output and the input it carries."""
    sizes = (
        m.frame.image.nbytes + (0 if m.frame.source is None else m.frame.source.nbytes)
        for m in warm
    )
    return sum(sizes)


def _release(warm: list[_Measured], gain: np.ndarray | None = None) -> Generator[Frame, None, None]:
    """The held-back frames at ``gain`` (default: their mean gain, for a shot shorter than
    the warm-up)."""
    if warm:
        gain = gain if gain is not None else np.mean([w.current for w in warm], axis=0)
        for m in warm:
            yield _rescaled(m, gain)


def _rescaled(m: _Measured, gain: np.ndarray) -> Frame:
    target = gain * m.level - OFFSET
    scale = np.where(m.means > 0.5, np.maximum(target, 0.0) / np.maximum(m.means, 0.5), 1.0)
    # one multiplier per channel, rounded and saturated to uint8 (OpenCV: a few ms at 720p,
    # against 16 through float32 NumPy)
    image = cv2.multiply(m.frame.image, (*(float(v) for v in scale), 0.0))  # type: ignore[call-overload]
    return dataclasses.replace(m.frame, image=image)
