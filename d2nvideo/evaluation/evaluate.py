"""``d2nvideo evaluate``: quality, realism, temporal stability and speed of a model.

Image quality as the study measured it (reconstruction SSIM/PSNR, cross-domain SSIM in
grayscale the study's way and in colour, cycle SSIM, domain success by the relabeler's scorer),
a download-free realism check (realism.py), the warping error E_warp of videos with each
smoothing mode, and frames/s against resolution. Trivial baselines (a plain darkening or
brightening) are measured the same way, so numbers that are easy to fake show it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..choices import Domain, other_domain
from ..data.scoring import DEFAULT_THRESHOLDS, score_image
from ..errors import UsageError
from ..images import list_images, read_image
from ..model import UNITGenerator
from ..pipeline import DARK_OUTPUT, WorkingSize, translate_images
from ..translator import Translator
from ..video.bars import BarKeeper
from ..video.decode import Frame, decode_frames
from ..video.exposure import steady_exposure
from ..video.geometry import fit_within
from ..video.smooth import make_smoother
from .metrics import psnr, shot_starts, ssim, ssim_gray, warp_error
from .provenance import overlapping, training_fingerprints
from .realism import RealismClassifier, train_realism
from .report import Report

log = logging.getLogger(__name__)
Images = list[np.ndarray]
BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "night": lambda im: (im.astype(np.float32) * 0.2 + 0.5).astype(np.uint8),  # x0.2 darkening
    "day": lambda im: np.clip(im.astype(np.float32) * 4.0 + 0.5, 0, 255).astype(np.uint8),
}


@dataclass(frozen=True)
class EvalOptions:
    max_images: int = 40  # per domain
    image_max_side: int = 640  # stills are evaluated at most this size (longer side)
    resolution: WorkingSize = field(default_factory=WorkingSize)  # as convert runs it
    realism_steps: int = 400  # classifier training steps (0: skip the realism check)
    realism_day: Path | None = None  # the classifier's own real day images (default: half
    realism_night: Path | None = None  # of the evaluated folders, the other half evaluated)
    video_frames: int = 48  # frames per video for E_warp
    video_max_side: int = 480
    speed_heights: tuple[int, ...] = (180, 360, 540, 720)
    seed: int = 0
    allow_overlap: bool = False  # evaluate even where images overlap the model's training set

    def __post_init__(self) -> None:
        if (self.realism_day is None) != (self.realism_night is None):
            raise UsageError(
                "--realism-day and --realism-night go together: give both, or neither (the "
                "judge then trains on half of --day and --night)"
            )


class Tracker:
    """What ``evaluate`` reports its progress to: ``start(total)`` once the amount of work is
    known (images translated, clip frames, judges trained, frame sizes timed), then ``done(n)``
    as it goes, and ``say`` for each phase. The default does nothing."""

    def start(self, total: int) -> None:
        pass

    def done(self, n: int = 1) -> None:
        pass

    def say(self, message: str) -> None:
        pass


SILENT = Tracker()


def load_images(folder: Path, limit: int, max_side: int, seed: int) -> Images:
    """Up to ``limit`` images of ``folder`` (seeded choice), longer side at most ``max_side``."""
    paths = list_images(folder)
    if len(paths) > limit:
        keep = np.random.default_rng(seed).choice(len(paths), limit, replace=False)
        paths = [paths[i] for i in sorted(keep)]
    return [fit_within(read_image(path), max_side) for path in paths]


def _split(images: Images) -> tuple[Images, Images]:
    return images[0::2], images[1::2]


def direction_quality(
    tr: Translator,
    images: Images,
    to: Domain,
    opts: EvalOptions,
    realism: RealismClassifier | None,
    track: Tracker = SILENT,
) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics of translating ``images`` into ``to``, for the model and for the baseline."""
    src = other_domain(to)
    outs = []
    for image in images:
        outs.append(translate_images([image], tr, to, opts.resolution)[0])
        track.done()
    back = [translate_images([o], tr, src, opts.resolution)[0] for o in outs]
    model = _metrics(images, outs, to, realism)
    model["cycle_ssim"] = float(np.mean([ssim(a, b) for a, b in zip(images, back, strict=True)]))
    if isinstance(tr.model, UNITGenerator):
        rec = [tr.reconstruct(im[None], src)[0] for im in images]
        model["recon_ssim"] = float(np.mean([ssim(a, b) for a, b in zip(images, rec, strict=True)]))
        model["recon_psnr"] = float(np.mean([psnr(a, b) for a, b in zip(images, rec, strict=True)]))
    baseline = _metrics(images, [BASELINES[to](im) for im in images], to, realism)
    return model, baseline


def _metrics(
    inputs: Images, outputs: Images, to: Domain, realism: RealismClassifier | None
) -> dict[str, float]:
    pairs = list(zip(inputs, outputs, strict=True))
    scores = [score_image(o) for o in outputs]
    m = {
        "ssim_gray": float(np.mean([ssim_gray(a, b) for a, b in pairs])),
        "ssim_color": float(np.mean([ssim(a, b) for a, b in pairs])),
        "success_sky": float(
            np.mean([DEFAULT_THRESHOLDS["sky"].label(s.sky) == to for s in scores])
        ),
        "success_mean": float(
            np.mean([DEFAULT_THRESHOLDS["mean"].label(s.mean) == to for s in scores])
        ),
        "mean_brightness": float(np.mean([s.mean for s in scores])),
        "dark_share": float(np.mean([o.mean() < DARK_OUTPUT for o in outputs])),
    }
    if realism is not None:
        p = realism(outputs)
        m["realism"] = float(np.mean(p > 0.5))
        m["realism_p"] = float(np.mean(p))
    return m


def image_quality(
    tr: Translator,
    day: Images,
    night: Images,
    own: dict[str, Images] | None,
    opts: EvalOptions,
    report: Report,
    track: Tracker = SILENT,
) -> None:
    """Both directions: the model and its trivial baseline, each beside the realism judge's
    own figures on held-out real images (its recall on the target domain and its false
    alarms on the source domain), so a strict judge can be told from a bad model. ``own``:
    the judge's own real images by domain, or None to use half of each evaluated folder."""
    directions: list[tuple[Domain, Images, Images]] = [("night", day, night), ("day", night, day)]
    for to, inputs, targets in directions:
        src = other_domain(to)
        judge, evaluated = None, inputs
        if opts.realism_steps:
            judge, evaluated, held = _train_judge(to, inputs, targets, own, opts)
            track.done()
            report.quality[f"real {to} (held out): judge recall"] = _judged(judge, held)
            report.quality[f"real {src} (held out): judge false alarms"] = _judged(judge, evaluated)
        report.notes.append(_sizes_note(f"{src} stills", evaluated, opts.resolution))
        model, baseline = direction_quality(tr, evaluated, to, opts, judge, track)
        n = float(len(evaluated))
        report.quality[f"{src}->{to}"] = {**model, "n": n}
        name = "x0.2 darkening" if to == "night" else "x4 brightening"
        report.quality[f"{src}->{to}: {name}"] = {**baseline, "n": n}


def _sizes_note(what: str, images: Images, resolution: WorkingSize) -> str:
    """How the stills were translated: through the working size and the upsampler, as
    convert does with real frames, or (stills no larger than the working size) by the network
    alone, whose own output lacks the detail the upsampler takes from a larger input."""
    sizes = sorted(im.shape[:2] for im in images)
    h, w = sizes[len(sizes) // 2]
    native = sum(resolution.shape(*hw) == hw for hw in sizes)
    text = f"{what}: {len(images)}, median {w}x{h}"
    if native == 0:
        wh, ww = resolution.shape(h, w)
        return (
            f"{text}, translated at {ww}x{wh} and upsampled ({resolution.upsample}) as convert does"
        )
    return (
        f"{text}; {native} no larger than the working size: for those the figures are the "
        "network's own output, without the upsampler that gives real frames their detail"
    )


def _train_judge(
    to: Domain, inputs: Images, targets: Images, own: dict[str, Images] | None, opts: EvalOptions
) -> tuple[RealismClassifier, Images, Images]:
    """The judge for ``to``, the source images left to evaluate and the held-out real
    target images. Without its own folders, half of each evaluated folder trains it."""
    if own is None:
        real_train, real_held = _split(targets)
        source_train, evaluated = _split(inputs)
    else:
        real_train, source_train = own[to], own[other_domain(to)]
        real_held, evaluated = targets, inputs
    judge = train_realism(real_train, source_train, to, opts.realism_steps, seed=opts.seed)
    return judge, evaluated, real_held


def _judged(judge: RealismClassifier, images: Images) -> dict[str, float]:
    p = judge(images)
    return {"realism": float(np.mean(p > 0.5)), "realism_p": float(np.mean(p)), "n": len(images)}


def check_overlap(
    meta: dict[str, Any], folders: dict[str, Images], allow: bool, report: Report
) -> None:
    """Refuse (or with ``allow`` record loudly) evaluation images that the model was trained
    on; note when the model records no training fingerprints to check against."""
    known = training_fingerprints(meta)
    if known is None:
        report.notes.append(
            "the model records no training-image fingerprints: overlap of the evaluation and "
            "realism images with its training set was not checked"
        )
        log.warning(report.notes[-1])
        return
    data = meta.get("data")
    if isinstance(data, dict) and data.get("incomplete"):
        report.notes.append(
            f"the model's training data is only partly recorded ({data['incomplete']}): "
            "overlap with the unrecorded images was not checked"
        )
        log.warning(report.notes[-1])
    for name, images in folders.items():
        hits = overlapping(images, known)
        report.overlap[name] = len(hits)
        if not hits:
            continue
        message = (
            f"{len(hits)} of {len(images)} {name} images match the model's training images "
            "(same picture or a neighbouring frame of the same clip)"
        )
        if not allow:
            raise UsageError(
                f"{message}: use images the model never saw (--allow-overlap "
                "evaluates anyway, and the report says so)"
            )
        report.notes.append(f"OVERLAP: {message}; figures on them are not held out")
        log.warning(report.notes[-1])


def _realism_data(opts: EvalOptions) -> dict[str, Images] | None:
    if opts.realism_day is None or opts.realism_night is None:
        return None
    from ..errors import InputError

    limit = 4 * opts.max_images
    own = {}
    for domain, folder in (("day", opts.realism_day), ("night", opts.realism_night)):
        own[domain] = load_images(folder, limit, opts.image_max_side, opts.seed)
        if len(own[domain]) < 2:
            found = len(own[domain])
            raise InputError(
                f"the realism judge needs at least 2 {domain} images; '{folder}' has {found}",
                folder,
            )
    return own


def temporal_quality(
    tr: Translator, video: Path, to: Domain, opts: EvalOptions, track: Tracker = SILENT
) -> dict[str, float]:
    """E_warp of the input, the per-frame output and each smoothing mode, and the SSIM of each
    smoothed output to the per-frame output, over the first ``video_frames`` frames."""
    inputs = _clip_start(video, opts)
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


def _clip_start(video: Path, opts: EvalOptions) -> Images:
    """The first ``video_frames`` frames of ``video``, longer side at most ``video_max_side``."""
    from ..errors import InputError

    inputs: list[np.ndarray] = []
    for frame in decode_frames(video):
        inputs.append(fit_within(frame.image, opts.video_max_side))
        if len(inputs) >= opts.video_frames:
            break
    if len(inputs) < 2:
        raise InputError(f"'{video}' has fewer than 2 decodable frames to measure", video)
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


def speed(
    tr: Translator,
    heights: tuple[int, ...],
    resolution: WorkingSize,
    frames: int = 8,
    track: Tracker = SILENT,
) -> list[dict[str, Any]]:
    """At each 16:9 size: the convert pipeline's frames/s as a user runs it (working size,
    upsampling, encode; ``pipeline.time_stages``), each stage's ms per frame, the stage that
    limits it, and the network alone at native size, with peak memory."""
    from ..pipeline import time_stages

    rows = []
    for h in heights:
        w = round(h * 16 / 9)
        times = time_stages(tr, "night", resolution, w, h, frames=frames)
        busiest, _ = times.busiest
        rows.append(
            {
                "height": float(h),
                "width": float(w),
                "work": list(times.work),
                "pipeline_fps": times.pipeline_fps,
                "stages_ms": times.ms,
                "limit": busiest,
                **_network_alone(tr, h, w),
            }
        )
        track.done()
    return rows


def _network_alone(tr: Translator, h: int, w: int, repeats: int = 3) -> dict[str, float]:
    """The network's frames/s on one native ``h`` x ``w`` frame, and peak memory (MB)."""
    frames = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    tr(frames, "night")  # warm-up (cudnn autotuning, allocator)
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(repeats):
        tr(frames, "night")
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"fps": repeats / (time.perf_counter() - t0), "peak_mb": peak}


def evaluate(
    tr: Translator,
    day: Path,
    night: Path,
    videos: tuple[tuple[Path, Domain | None], ...],
    opts: EvalOptions,
    track: Tracker = SILENT,
) -> Report:
    """Every measurement of the report: image quality and realism on the ``day`` and ``night``
    folders, temporal stability of each video (converted to the domain given with it, or
    else to the other domain of what it looks like), and speed. ``track`` hears how far it
    has got."""
    from ..data.scoring import guess_file

    report = Report(model=_model_summary(tr, opts))
    day_images, night_images, own = _load(tr, day, night, opts, report)
    track.start(_planned(len(day_images), len(night_images), own is not None, len(videos), opts))
    track.say(f"image quality and realism: {len(day_images)} day, {len(night_images)} night")
    image_quality(tr, day_images, night_images, own, opts, report, track)
    for video, given in videos:
        to: Domain = given or ("day" if guess_file(video).looks_like == "night" else "night")
        track.say(f"temporal stability: {video.name} -> {to}")
        report.temporal[f"{video.name} -> {to}"] = temporal_quality(tr, video, to, opts, track)
    track.say(f"speed on {tr.device}")
    report.speed = speed(tr, opts.speed_heights, opts.resolution, track=track)
    return report


def _load(
    tr: Translator, day: Path, night: Path, opts: EvalOptions, report: Report
) -> tuple[Images, Images, dict[str, Images] | None]:
    """The day and night images, the judge's own images, all checked against the model's
    training images."""
    from ..errors import InputError
    from ..fileio import not_a_folder

    for folder in (day, night, opts.realism_day, opts.realism_night):
        if folder is not None and not folder.is_dir():
            raise InputError(f"image folder '{folder}' {not_a_folder(folder)}", folder)
    day_images = load_images(day, opts.max_images, opts.image_max_side, opts.seed)
    night_images = load_images(night, opts.max_images, opts.image_max_side, opts.seed)
    if len(day_images) < 2 or len(night_images) < 2:
        raise InputError("evaluate needs at least 2 day and 2 night images")
    own = _realism_data(opts)
    folders = {"day": day_images, "night": night_images}
    folders |= {f"realism {d}": images for d, images in (own or {}).items()}
    check_overlap(tr.meta, folders, opts.allow_overlap, report)
    return day_images, night_images, own


def _planned(n_day: int, n_night: int, own_judge: bool, videos: int, opts: EvalOptions) -> int:
    """Units of work for the progress bar: each image translated, each judge trained, each
    clip frame, each frame size timed."""
    if opts.realism_steps and not own_judge:  # half of each folder trains the judge
        n_day, n_night = n_day // 2, n_night // 2
    judges = 2 if opts.realism_steps else 0
    return judges + n_day + n_night + videos * opts.video_frames + len(opts.speed_heights)


def _model_summary(tr: Translator, opts: EvalOptions) -> dict[str, Any]:
    return {
        "meta": _without_fingerprints(tr.meta),
        "config": dataclasses.asdict(tr.config),
        "device": str(tr.device),
        "precision": tr.precision,
        "resolution": dataclasses.asdict(opts.resolution),
    }


def _without_fingerprints(meta: dict[str, Any]) -> dict[str, Any]:
    """The model's metadata with its training fingerprints counted, not listed (thousands of
    hashes would swamp the report)."""
    data = meta.get("data")
    if not isinstance(data, dict):
        return meta
    counted = {
        k: {d: len(v) for d, v in data[k].items()}
        for k in ("fingerprints", "earlier_fingerprints")
        if isinstance(data.get(k), dict)
    }
    return {**meta, "data": {**data, **counted}}
