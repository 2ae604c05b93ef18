"""How steady a model's video is: E_warp and brightness drift of a clip's first frames,
translated per frame as ``convert`` does it and through each smoothing mode."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..choices import Domain
from ..images import fingerprint
from ..pipeline import translate_images
from ..translator import Translator
from ..video.bars import BarKeeper
from ..video.decode import Frame, Salvage, decode_frames
from ..video.exposure import steady_exposure
from ..video.geometry import fit_within
from ..video.smooth import make_smoother
from .metrics import shot_starts, ssim, warp_error
from .options import SILENT, EvalOptions, Images, Tracker
from .provenance import Seen

log = logging.getLogger(__name__)


def temporal_quality(
    tr: Translator, video: Path, to: Domain, opts: EvalOptions, track: Tracker = SILENT
) -> dict[str, float]:
    """E_warp of the input, the per-frame output and each smoothing mode, and the SSIM of each
    smoothed output to the per-frame output, over the first ``video_frames`` frames."""
    inputs = clip_start(video, opts)
    per_frame = []
    keeper = BarKeeper()  # black bars kept, as convert does by default
    for image in inputs:
        bars = keeper.bars_of([image])
        per_frame.append(translate_images([image], tr, to, opts.resolution, bars)[0])
        track.done()
    track.done(opts.video_frames - len(inputs))  # a clip shorter than planned
    starts = shot_starts(inputs)  # cut pairs are left out of E_warp and drift alike
    result = {
        "frames": float(len(inputs)),
        "cut_pairs": float(len(starts) - 1),
        "ewarp_input": warp_error(inputs, inputs),
        "ewarp_per_frame": warp_error(inputs, per_frame),
        "drift_input": brightness_spread(inputs, starts),
        "drift_per_frame": brightness_spread(per_frame, starts),
        "darkest_input": float(min(im.mean() for im in inputs)),
        "darkest_output": float(min(im.mean() for im in per_frame)),
    }
    stages = {
        "ema": make_smoother("ema"),
        "flow": make_smoother("flow"),
        "steady": steady_exposure,  # convert's default: no smoothing, steady exposure
        "flow_steady": lambda frames: steady_exposure(make_smoother("flow")(frames)),
    }
    for mode, stage in stages.items():
        smoothed = [f.image for f in stage(_as_frames(inputs, per_frame))]
        result[f"ewarp_{mode}"] = warp_error(inputs, smoothed)
        result[f"drift_{mode}"] = brightness_spread(smoothed, starts)
        result[f"ssim_{mode}_vs_per_frame"] = float(
            np.mean([ssim(a, b) for a, b in zip(smoothed, per_frame, strict=True)])
        )
    return result


def clip_start(
    video: Path, opts: EvalOptions, warn: bool = True, seen: Seen | None = None
) -> Images:
    """The first ``video_frames`` frames of ``video``, longer side at most ``video_max_side``;
    ``warn``: say so where a frame that does not decode ends them early; ``seen`` gets each
    frame's fingerprint at its own size."""
    from ..errors import InputError

    inputs: list[np.ndarray] = []
    salvage = Salvage()  # a truncated file: the frames in a row before its first loss
    for frame in decode_frames(video, salvage=salvage):
        if salvage.lost:
            break
        if seen is not None:
            seen.prints.append(fingerprint(frame.image))
        inputs.append(fit_within(frame.image, opts.video_max_side))
        if len(inputs) >= opts.video_frames:
            break
    if len(inputs) < 2:
        raise InputError(f"'{video}' has fewer than 2 decodable frames to measure", video)
    if seen is not None and salvage.lost and len(inputs) < opts.video_frames:
        seen.stopped = salvage.reason or f"the file's next {salvage.lost} are missing"
    if warn and salvage.lost and len(inputs) < opts.video_frames:
        log.warning(
            "'%s': measured on its first %d frames, before one that does not decode (%s)",
            video.name,
            len(inputs),
            salvage.reason,
        )
    return inputs


def brightness_spread(images: Images, starts: Sequence[int] = (0,)) -> float:
    """How much a clip's mean brightness wanders: the standard deviation of the per-frame
    means over their average (0 for a steady clip), within each shot (``starts``: the first
    frame of each) and averaged over the frames of shots at least 2 frames long, so that a
    cut between a dark and a bright shot is not counted as drift."""
    means = np.array([im.mean() for im in images], np.float64)
    spreads, weights = [], []
    for lo, hi in itertools.pairwise([*starts, len(means)]):
        shot = means[lo:hi]
        if len(shot) >= 2:
            spreads.append(shot.std() / max(shot.mean(), 1e-6))
            weights.append(len(shot))
    return float(np.average(spreads, weights=weights)) if spreads else 0.0


def _as_frames(inputs: Images, outputs: Images) -> Iterator[Frame]:
    for i, (source, image) in enumerate(zip(inputs, outputs, strict=True)):
        yield Frame(image, i, Fraction(1, 30), i, source=source)
