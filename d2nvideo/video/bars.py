"""Black bars (letterbox and pillarbox) found in footage and kept black.

A clip uploaded at another aspect ratio carries black bars on two opposite sides. A model
sees them as part of the scene: night->day turned the side bars of a dusk clip beige and
changing from frame to frame. The pipeline copies the bars back from the input after
translating, and the guided upsampler fits only the picture between them. The network still
sees the whole frame: translating the picture alone (cropped) made the bundled model's
night->day output of that clip brighter and far less steady (E_warp over the picture 0.00116
against 0.00031 with the bars in view; the instance-normalised network's statistics change
more from frame to frame without them).

Only digital black in a pair counts. A bar is the run of lines (rows or columns) from the
frame's edge that are black, no pixel brighter than :data:`BLACK`, and flat, averaging at
most :data:`FLAT`; the two bars of a pair are equally wide within :data:`TOLERANCE` pixels,
each at most a quarter of the frame. A night sky alone at the top, or a black hood alone at
the bottom, is scene, not a bar, and so are a night clip's dark edges: in sagi-vaknin's night
highway they stay under 16 for 40-odd columns on both sides but average 3.5 or more, where
the dusk clip's real bars average 0.0-1.2 a line (the most next to the picture, where
compression rings into them). The flatness also keeps a bar from running on into a night
scene's dark edge, which would make the two sides unequal. A clip's bars are looked for on
its first frames until found (a fade from black shows none at first) and then kept for the
clip, copied from the input with whatever they hold (a subtitle stays as it came), until the
picture stays in them (:data:`SPREAD` of their pixels bright for :data:`FILL_FRAMES` frames
running: a flash or a corrupt frame does not end them), after which the rest of the clip is
translated whole. NumPy only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np

log = logging.getLogger(__name__)

BLACK = 16  # brightest value (0-255, any channel) a bar pixel may have: video black plus noise
FLAT = 1.5  # a bar line's average at most (0-255): digital black, not a dark scene
MIN_BAR = 2  # pixels: narrower runs of black are not bars
MAX_SHARE = 0.25  # each bar at most this share of the frame's side
TOLERANCE = 3  # pixels: the two bars of a pair differ by at most this much
SPREAD = 0.2  # share of a bar's pixels brighter than BLACK at which the picture has filled it
DETECT_FRAMES = 60  # frames a clip's bars are looked for in before it is taken to have none
FILL_FRAMES = 15  # consecutive frames with the picture in the bars before they are given up
SCAN = 16  # lines looked at together from each end when looking for bars


@dataclass(frozen=True)
class Bars:
    """Black bars in pixels, on an upright frame."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    def __bool__(self) -> bool:
        return any(self.sides)

    @property
    def sides(self) -> tuple[int, int, int, int]:
        return self.top, self.bottom, self.left, self.right

    def window(self, height: int, width: int) -> tuple[slice, slice]:
        """The rows and columns of the picture between the bars."""
        return slice(self.top, height - self.bottom), slice(self.left, width - self.right)

    def inner(self, image: np.ndarray) -> np.ndarray:
        """The picture between the bars (a view)."""
        rows, cols = self.window(*image.shape[:2])
        return image[rows, cols]

    def still_bars(self, images: list[np.ndarray]) -> bool:
        """Whether the picture has stayed out of the bars in ``images``: at most
        :data:`SPREAD` of the pixels of each bar brighter than :data:`BLACK`, away from the
        picture's edge (compression rings a few pixels into a bar)."""
        for image in images:
            h, w = image.shape[:2]
            regions = (
                image[: _outer(self.top)],
                image[h - _outer(self.bottom) :],
                image[:, : _outer(self.left)],
                image[:, w - _outer(self.right) :],
            )
            for region in regions:
                if region.size and _bright_share(region) > SPREAD:
                    return False
        return True

    def scaled(self, shape: tuple[int, int], to: tuple[int, int]) -> Bars:
        """These bars on a frame of ``shape`` (height, width), on a resized frame of shape
        ``to``: rounded outward, so the picture between them stays inside the picture, and
        left with an even width and height where the frame has them (the guided fit's 2x2
        subsampling wants both)."""
        (h, w), (th, tw) = shape, to
        top, bottom = math.ceil(self.top * th / h), math.ceil(self.bottom * th / h)
        left, right = math.ceil(self.left * tw / w), math.ceil(self.right * tw / w)
        bottom += (th - top - bottom) % 2 if th % 2 == 0 else 0
        right += (tw - left - right) % 2 if tw % 2 == 0 else 0
        return Bars(top, bottom, left, right)

    def at_working_size(self, shape: tuple[int, int], to: tuple[int, int]) -> Bars | None:
        """:meth:`scaled`, or None where there are no bars or fewer than 4 rows or columns of
        picture would be left between them: the guided fit then takes the whole frame."""
        inner = self.scaled(shape, to)
        rows, cols = inner.window(*to)
        if not self or rows.stop - rows.start < 4 or cols.stop - cols.start < 4:
            return None
        return inner

    def paste(self, image: np.ndarray, picture: np.ndarray) -> np.ndarray:
        """A copy of ``image`` (an input frame) with ``picture`` between its bars."""
        out = image.copy()
        self.inner(out)[...] = picture
        return out

    def restore(self, images: list[np.ndarray], outputs: list[np.ndarray]) -> list[np.ndarray]:
        """``outputs`` (translations of ``images``) with the bars copied back from the input
        frames (in place where the arrays are writable); ``outputs`` when there are none."""
        if not self:
            return outputs
        outputs = [out if out.flags.writeable else out.copy() for out in outputs]
        for image, out in zip(images, outputs, strict=True):
            h, w = image.shape[:2]
            out[: self.top] = image[: self.top]
            out[h - self.bottom :] = image[h - self.bottom :]
            out[:, : self.left] = image[:, : self.left]
            out[:, w - self.right :] = image[:, w - self.right :]
        return outputs


NO_BARS = Bars()


class BarKeeper:
    """A clip's bars, batch after batch: looked for until found or until
    :data:`DETECT_FRAMES` frames have gone by, then kept until the picture spreads into them.
    Used by one thread (the one that runs the network stage)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bars: Bars | None = None  # None: still looking
        self.seen = 0
        self.filled = 0  # consecutive frames with the picture in the bars

    def bars_of(self, images: list[np.ndarray]) -> Bars:
        """The bars to keep in this batch of upright frames."""
        if not self.enabled or not images:
            return NO_BARS
        if self.bars is None:
            found = find_bars(images)
            self.seen += len(images)
            if found or self.seen >= DETECT_FRAMES:
                self.bars = found
                if found:
                    log.info("keeping black bars (top, bottom, left, right): %s", found.sides)
            return found
        if self.bars:
            self.filled = 0 if self.bars.still_bars(images) else self.filled + len(images)
            if self.filled >= FILL_FRAMES:
                log.info("the picture fills the black bars from here on: translating them")
                self.bars = NO_BARS
        return self.bars


def find_bars(images: list[np.ndarray]) -> Bars:
    """The black bars that ``images`` (same-sized ``(H, W, 3) uint8`` frames) all share; no
    bars when there are none, when only one side of a pair is black, when the black is not
    flat, or when the frames are black throughout.

    A pair needs both edge lines black, and only the outer :data:`MAX_SHARE` of each side can
    hold a bar, so a 720p frame without bars, or with a dark scene at its edges, costs 0.2 ms
    (two lines of each axis) and one with 160-px pillarbox bars 8, against 27 ms for a pass
    over every line, which every frame of a clip paid until bars were found or 60 frames had
    gone by."""
    if not images:
        return NO_BARS
    top, bottom = _pair(_black_lines(images, len(images[0])))
    left, right = _pair(_black_lines([im.transpose(1, 0, 2) for im in images], images[0].shape[1]))
    return Bars(top, bottom, left, right)


def _black_lines(images: list[np.ndarray], size: int) -> np.ndarray:
    """Which of the ``size`` lines (first axis of ``images``) are bar-black in every frame
    (:func:`_black`). Looked at from each end inward, :data:`SCAN` lines at a time, up to the
    first line with picture in it and never beyond the outer :data:`MAX_SHARE`; the lines not
    looked at are marked black: :func:`_pair` needs only the first picture line from each end,
    and none beyond that share, and no pair at all unless both edge lines are black."""
    black = np.ones(size, bool)
    edges = [0, size - 1]
    black[edges] = _black(images, edges)
    if not black[edges].all():
        return black
    reach = int(MAX_SHARE * size) + 1  # the lines _pair may need to see from each end
    for order in (np.arange(min(reach, size)), np.arange(size - 1, max(size - reach, 0) - 1, -1)):
        for first in range(0, len(order), SCAN):
            lines = order[first : first + SCAN]
            black[lines] = _black(images, lines)
            if not black[lines].all():
                break
    return black


def _black(images: list[np.ndarray], lines: Sequence[int] | np.ndarray) -> np.ndarray:
    """For each of ``lines`` (indices into the first axis of ``images``): no pixel brighter
    than :data:`BLACK` in any frame, and the brightest channel averaging at most :data:`FLAT`
    over the frames."""
    brightest = [im[lines].max(axis=-1) for im in images]
    peak = reduce(np.maximum, [b.max(axis=1) for b in brightest])
    mean = sum(b.mean(axis=1, dtype=np.float32) for b in brightest) / len(images)
    return np.asarray((peak <= BLACK) & (mean <= FLAT))


def _pair(black: np.ndarray) -> tuple[int, int]:
    """The widths of the runs of black lines at both ends of ``black`` (a frame's rows or
    columns, True where a line is bar-black), or (0, 0) unless they make a pair."""
    size = len(black)
    picture = np.flatnonzero(~black)
    if not len(picture):
        return 0, 0
    first, last = int(picture[0]), size - 1 - int(picture[-1])
    if min(first, last) < MIN_BAR or max(first, last) > MAX_SHARE * size:
        return 0, 0
    if abs(first - last) > TOLERANCE:
        return 0, 0
    return first, last


def _outer(bar: int) -> int:
    """The part of a bar checked for the picture: all but the pixels nearest the picture."""
    return max(0, bar - max(2, bar // 8))


def _bright_share(region: np.ndarray) -> float:
    return float(np.count_nonzero(region.max(axis=-1) > BLACK)) / (region.size // 3)
