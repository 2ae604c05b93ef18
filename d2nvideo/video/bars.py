"""Black bars (letterbox and pillarbox) found in footage and kept black.

A clip uploaded at another aspect ratio carries black bars on two opposite sides. A model
sees them as part of the scene: night->day turned the side bars of a dusk clip beige, and
they carried most of its frame-to-frame flicker. The pipeline copies the bars back from the
input after translating. The network still sees the whole frame: translating the picture
alone (cropped) made the bundled model's night->day output of that clip brighter and far less
steady (E_warp over the picture 0.00116 against 0.00031 with the bars in view; the
instance-normalised network's statistics change more from frame to frame without them).

Only a pair counts: both sides black, of equal width within a few pixels, each at most a
quarter of the frame. A night sky alone at the top, or a black hood alone at the bottom, is
scene, not a bar; the test clips' dark skies (339 black rows at the top, none at the bottom)
and dark left and right edges (81 and 167 columns) are all left to the model. Bars are found
once, on the first frames, and checked on every later batch: where a batch has anything
bright inside them it is translated whole. NumPy only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

BLACK = 16  # brightest value (0-255, any channel) a bar pixel may have: video black plus noise
MIN_BAR = 2  # pixels: narrower runs of black are not bars
MAX_SHARE = 0.25  # each bar at most this share of the frame's side
STRAY = 0.01  # share of a bar's pixels that may be brighter before it stops counting as a bar
TOLERANCE = 0.01  # the two bars of a pair differ by at most this share of the side (>= 2 px)


@dataclass(frozen=True)
class Bars:
    """Black bars in pixels, on an upright frame."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    def __bool__(self) -> bool:
        return any((self.top, self.bottom, self.left, self.right))

    @property
    def sides(self) -> tuple[int, int, int, int]:
        return self.top, self.bottom, self.left, self.right

    def inner(self, image: np.ndarray) -> np.ndarray:
        """The picture between the bars (a view)."""
        h, w = image.shape[:2]
        return image[self.top : h - self.bottom, self.left : w - self.right]

    def still_black(self, images: list[np.ndarray]) -> bool:
        """Whether the bars are still bars in ``images``: at most :data:`STRAY` of their
        pixels brighter than :data:`BLACK`, away from the picture's edge (compression rings
        a few pixels into the bars, and the edge's exact column moves from frame to frame)."""
        for image in images:
            h, w = image.shape[:2]
            regions = (
                image[: _outer(self.top)],
                image[h - _outer(self.bottom) :],
                image[:, : _outer(self.left)],
                image[:, w - _outer(self.right) :],
            )
            for region in regions:
                if region.size and np.count_nonzero(region.max(axis=-1) > BLACK) > STRAY * (
                    region.size // 3
                ):
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


class BarKeeper:
    """A clip's bars: found on its first batch, kept while they stay black (a batch with
    anything bright inside them is translated whole)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bars: Bars | None = None

    def bars_of(self, images: list[np.ndarray]) -> Bars:
        """The bars to keep in this batch (none when disabled or not black here)."""
        if self.bars is None:
            self.bars = find_bars(images) if self.enabled else Bars()
            if self.bars:
                log.info("keeping black bars (top, bottom, left, right): %s", self.bars.sides)
        return self.bars if self.bars and self.bars.still_black(images) else Bars()


NO_BARS = Bars()


def find_bars(images: list[np.ndarray]) -> Bars:
    """The black bars that ``images`` (same-sized ``(H, W, 3) uint8`` frames) all share; no
    bars when there are none, when only one side of a pair is black, or when the frames are
    black throughout."""
    if not images:
        return Bars()
    brightest = np.max(np.stack([im.max(axis=2) for im in images]), axis=0)
    top, bottom = _pair(brightest.max(axis=1))
    left, right = _pair(brightest.max(axis=0))
    return Bars(top, bottom, left, right)


def _outer(bar: int) -> int:
    """The part of a bar checked for content: all but the pixels nearest the picture."""
    return max(0, bar - max(2, bar // 8))


def _pair(profile: np.ndarray) -> tuple[int, int]:
    """The widths of black runs at both ends of ``profile`` (the brightest value of each row or
    column), or (0, 0) unless they make a pair."""
    size = len(profile)
    bright = np.flatnonzero(profile > BLACK)
    if not len(bright):
        return 0, 0
    first, last = int(bright[0]), size - 1 - int(bright[-1])
    limit = MAX_SHARE * size
    if min(first, last) < MIN_BAR or max(first, last) > limit:
        return 0, 0
    if abs(first - last) > max(2.0, TOLERANCE * size):
        return 0, 0
    return first, last
