"""Steady exposure: a clip's translated brightness follows its input's, without drifting.

A translator sees one frame at a time; as the scene changes, its output gets darker or
brighter on its own (issue 10 measured solidWhiteRight -> night falling from 42 to 27 in 3 s
while the input held steady: a spread of 12.8% of the mean against 1.2%). This stage measures
each output frame's gain against its input, per colour channel, averages that gain over the
last few seconds (reset at scene cuts), and rescales the frame to the averaged gain. Brightness
changes of the input (a tunnel, the sun) pass through in proportion; the model's own wandering
does not. Detail, local contrast and colour within the frame are untouched: it is one
multiplier per channel and frame.

The gain is the plain mean of the first second of a shot (so one odd first frame does not set
it), then an exponential average with a 20-second time constant: slow enough that a drift over
a few seconds is held, quick enough to follow a long drive from a lit city into the country.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Iterator

import numpy as np

from .decode import Frame
from .flow import gray
from .smooth import is_cut

TIME_CONSTANT_S = 20.0  # seconds of past frames the gain is averaged over
WARM_UP_S = 1.0  # the first second of a shot sets the gain by a plain mean
OFFSET = 1.0  # added to means so black frames do not divide by zero


def steady_exposure(
    frames: Iterator[Frame], seconds: float = TIME_CONSTANT_S
) -> Generator[Frame, None, None]:
    """Rescale translated frames (each carrying its input in ``source``) so the ratio of
    output to input brightness changes slowly; see the module docstring."""
    gain: np.ndarray | None = None  # (3,) output/input brightness ratio, averaged
    previous: np.ndarray | None = None  # the last input's grey image
    shot_start = last_time = 0.0
    count = 0
    for frame in frames:
        source = frame.source if frame.source is not None else frame.image
        grey = gray(source)
        if previous is None or is_cut(previous, grey):
            gain, count, shot_start = None, 0, frame.time
        out = frame.image.astype(np.float32)
        means = out.reshape(-1, 3).mean(0)
        level = float(grey.mean()) + OFFSET
        current = (means + OFFSET) / level
        count += 1
        if gain is None:
            gain = current
        else:
            step = 1.0 - math.exp(-max(frame.time - last_time, 0.0) / seconds)
            if frame.time - shot_start < WARM_UP_S:
                step = max(step, 1.0 / count)
            gain = gain + step * (current - gain)
        previous, last_time = grey, frame.time
        target = gain * level - OFFSET
        scale = np.where(means > 0.5, np.maximum(target, 0.0) / np.maximum(means, 0.5), 1.0)
        image = np.clip(out * scale.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
        yield dataclasses.replace(frame, image=image)
