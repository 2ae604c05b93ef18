"""Day/night scoring of images by brightness: the study's rule and a better one.

Two methods, each a score on a 0-255 brightness scale with a night threshold and a day
threshold (between them: ambiguous):

- ``mean``: the study's gamma, the mean pixel value over H x W x C; night <= 60 < ambiguous <=
  68 < day. It takes night streets full of lamps for day and dark days (tunnels, overcast,
  bridges) for night.
- ``sky`` (default): 0.69 x the 75th percentile of the upper half's luma + 0.31 x the mean. The
  upper half holds the sky, which is bright by day even under cloud and dark at night even
  among lamps; the percentile ignores small bright lamps. Weights and thresholds come from a
  logistic fit on AMOS training images and half of ../shared/data/frames, tested on the rest
  (benchmarks/bench_relabel.py prints the figures).

Images are scored on a 160-pixel-wide thumbnail, so any size costs about the same.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..choices import Domain, Label, ScoreMethod
from ..errors import D2NError, InputError, UsageError

log = logging.getLogger(__name__)
THUMB_WIDTH = 160
GUESS_SAMPLES = 8  # frames of a video scored to guess what it looks like
# Logistic fit: logit(day) = (7.2 * upper_p75 + 3.2 * mean) / 255 - 4.0, rewritten as a
# brightness score (weights summing to 1) with p = 0.5 at 98 and p = 0.5 +- 0.05 at 98 -+ 5.
SKY_WEIGHTS = (0.69, 0.31)


@dataclass(frozen=True)
class Thresholds:
    night_max: float = 60.0  # score <= night_max: night
    day_min: float = 68.0  # score > day_min: day; in between: ambiguous

    def label(self, score: float) -> Label:
        if score <= self.night_max:
            return "night"
        if score > self.day_min:
            return "day"
        return "ambiguous"


DEFAULT_THRESHOLDS: dict[ScoreMethod, Thresholds] = {
    "mean": Thresholds(60.0, 68.0),
    "sky": Thresholds(93.0, 103.0),
}


@dataclass(frozen=True)
class Scores:
    """Brightness statistics of one image, all on 0-255."""

    mean: float  # the study's gamma: mean over H x W x C
    upper_p75: float  # 75th percentile of luma in the upper half
    median: float  # median luma
    dark: float  # share of pixels with luma < 40, 0-1

    @property
    def sky(self) -> float:
        return SKY_WEIGHTS[0] * self.upper_p75 + SKY_WEIGHTS[1] * self.mean

    def score(self, method: ScoreMethod) -> float:
        return self.mean if method == "mean" else self.sky


def thumbnail(image: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """Area-downscale ``(H, W, 3) uint8`` to ``width`` pixels wide (never upscales)."""
    h, w = image.shape[:2]
    if w <= width:
        return image
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def score_image(image: np.ndarray) -> Scores:
    """Brightness statistics of ``(H, W, 3) uint8`` RGB (any size; scored on a thumbnail)."""
    small = thumbnail(image)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    upper = gray[: max(1, gray.shape[0] // 2)]
    return Scores(
        mean=float(small.mean()),
        upper_p75=float(np.percentile(upper, 75)),
        median=float(np.median(gray)),
        dark=float((gray < 40).mean()),
    )


def classify(
    image: np.ndarray, method: ScoreMethod = "sky", thresholds: Thresholds | None = None
) -> Label:
    """'day', 'night' or 'ambiguous' for ``(H, W, 3) uint8`` RGB."""
    t = thresholds or DEFAULT_THRESHOLDS[method]
    return t.label(score_image(image).score(method))


def otsu_threshold(scores: np.ndarray, bins: int = 256) -> float:
    """The threshold on 0-255 that best splits a two-mode histogram (Otsu 1979)."""
    hist, edges = np.histogram(np.clip(scores, 0, 255), bins=bins, range=(0, 256))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centers)
    total = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * w0 - mu) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = 0
    # Between two well-separated modes every threshold in the gap scores the same: take the
    # middle of that plateau rather than its first bin.
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float(edges[round(float(best.mean())) + 1])


def auto_thresholds(scores: np.ndarray, method: ScoreMethod) -> Thresholds:
    """Otsu's valley of the score histogram, with the method's default ambiguous band around
    it (8 wide for the study's mean, 10 for sky)."""
    valley = otsu_threshold(scores)
    default = DEFAULT_THRESHOLDS[method]
    half = (default.day_min - default.night_max) / 2
    return Thresholds(valley - half, valley + half)


@dataclass(frozen=True)
class Guess:
    """What a set of frames looks like, by the relabeler's default (sky) scorer."""

    looks_like: Label
    sky_score: float  # mean sky score of the frames, 0-255
    brightness: float  # mean pixel value of the frames, 0-255
    scored_frames: int  # how many frames were scored


def guess(images: list[np.ndarray]) -> Guess:
    """Day, night or ambiguous for ``(H, W, 3) uint8`` frames of one clip or one still."""
    if not images:
        return Guess("ambiguous", 0.0, 0.0, 0)
    scores = [score_image(im) for im in images]
    sky = sum(s.sky for s in scores) / len(scores)
    mean = sum(s.mean for s in scores) / len(scores)
    return Guess(DEFAULT_THRESHOLDS["sky"].label(sky), round(sky, 1), round(mean, 1), len(scores))


def guess_file(path: Path, samples: int = GUESS_SAMPLES) -> Guess:
    """:func:`guess` for a still image, ``samples`` images of a folder, or ``samples`` frames
    spread across a video. A file's guess is kept while its size and time are unchanged (convert
    asks once to name an output and again to warn)."""
    from ..images import list_images

    if path.is_dir():
        found = list_images(path)
        picked = found[:: max(1, len(found) // samples)][:samples]
        return guess([im for im in map(_readable, picked) if im is not None])
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}", path) from exc
    return _guess_one_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns, samples)


@functools.lru_cache(maxsize=64)
def _guess_one_file(path: str, size: int, mtime_ns: int, samples: int) -> Guess:
    from ..images import is_image, read_image
    from ..video.geometry import upright
    from ..video.probe import held_duration, probe

    if is_image(Path(path)):
        return guess(_between_bars([read_image(Path(path))]))
    info = probe(Path(path), salvage=True)  # guessed from the frames that are there
    span = max(info.duration, 0.0)
    if info.missing_bytes:  # cut short: sample what the file holds
        span = min(span, held_duration(Path(path)) or span)
    times = [info.start_time + span * (i + 0.5) / samples for i in range(samples)]
    shown = [upright(im, info.rotation) for im in _frames_until_error(Path(path), times)]
    return guess(_between_bars(shown))  # as shown: a phone's sideways frame has no sky on top


def _frames_until_error(path: Path, times: list[float]) -> list[np.ndarray]:
    """The frames at ``times`` up to the first that does not decode (a file cut short, whose
    index lists times past its end); the error itself when none does."""
    from ..video.decode import frames_at

    images: list[np.ndarray] = []
    try:
        for frame in frames_at(path, times):
            images.append(frame.image)
    except InputError:
        if not images:
            raise
    return images


def _between_bars(images: list[np.ndarray]) -> list[np.ndarray]:
    """The pictures between black bars all of ``images`` share (a letterboxed clip's bars
    would count as night): what convert translates as scene."""
    from ..video.bars import find_bars

    bars = find_bars(images) if images and len({im.shape for im in images}) == 1 else None
    return [bars.inner(im) for im in images] if bars else images


def _readable(path: Path) -> np.ndarray | None:
    from ..images import read_image

    try:
        return read_image(path)
    except D2NError:
        return None


def resolve_target(path: Path, to: str) -> Domain:
    """The domain to convert ``path`` to: ``to`` itself, or for ``auto`` the other domain of
    what the input looks like. Warns once when the input already looks like the target."""
    if to == "auto":
        looks = guess_file(path).looks_like
    else:  # only for the warning: an unreadable input is reported by the conversion itself
        try:
            looks = guess_file(path).looks_like
        except D2NError:
            looks = "ambiguous"
    if to == "auto":
        if looks == "ambiguous":
            raise UsageError(
                f"'{path}' looks neither clearly day nor night; give --to night or --to day", path
            )
        return "day" if looks == "night" else "night"
    if looks == to:
        log.warning(
            "'%s' already looks like %s (by its brightness): converting it to %s anyway",
            path,
            to,
            to,
        )
    return "day" if to == "day" else "night"
