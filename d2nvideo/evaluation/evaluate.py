"""``d2nvideo evaluate``: quality, realism, temporal stability and speed of a model.

Image quality as the study measured it (reconstruction SSIM/PSNR, cross-domain SSIM in
grayscale the study's way and in colour, cycle SSIM, domain success by the relabeler's scorer),
a download-free realism check (realism.py), the warping error E_warp of videos with each
smoothing mode, and frames/s against resolution. Trivial baselines (a plain darkening or
brightening) are measured the same way, so numbers that are easy to fake show it.
The clips' measures are in temporal.py, the speed table in speed.py.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import Domain, other_domain
from ..data.scoring import DEFAULT_THRESHOLDS, score_image
from ..images import fingerprint, list_images, read_image
from ..model import UNITGenerator
from ..pipeline import DARK_OUTPUT, WorkingSize, translate_images
from ..translator import Translator
from ..video.geometry import fit_within
from .metrics import psnr, ssim, ssim_gray
from .options import SILENT, EvalOptions, Images, Tracker
from .provenance import Seen, check_judge_overlap, check_overlap, check_roles, note_clip_overlap
from .realism import RealismClassifier, train_realism
from .report import Report
from .speed import speed
from .temporal import temporal_quality

log = logging.getLogger(__name__)
BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "night": lambda im: (im.astype(np.float32) * 0.2 + 0.5).astype(np.uint8),  # x0.2 darkening
    "day": lambda im: np.clip(im.astype(np.float32) * 4.0 + 0.5, 0, 255).astype(np.uint8),
}


def load_images(folder: Path, limit: int, max_side: int, seed: int, seen: Seen) -> Images:
    """Up to ``limit`` images of ``folder`` (seeded choice), longer side at most ``max_side``;
    ``seen`` gets each one's path and fingerprint at its own size (shrunk to 32 px first, a
    quarter of them moved more than the overlap check allows, and training images passed as
    held out), and the damaged ones."""
    paths = list_images(folder)
    if len(paths) > limit:
        keep = np.random.default_rng(seed).choice(len(paths), limit, replace=False)
        paths = [paths[i] for i in sorted(keep)]
    images = []
    for path in paths:
        image = read_image(path, damaged=seen.damaged)
        seen.paths.append(path)
        seen.prints.append(fingerprint(image))
        images.append(fit_within(image, max_side))
    return images


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


def _realism_data(opts: EvalOptions, seen: dict[str, Seen]) -> dict[str, Images] | None:
    if opts.realism_day is None or opts.realism_night is None:
        return None
    from ..errors import InputError

    limit = 4 * opts.max_images  # the judge learns from up to four times as many
    own = {}
    for domain, folder in (("day", opts.realism_day), ("night", opts.realism_night)):
        record = seen.setdefault(f"realism {domain}", Seen())
        own[domain] = load_images(folder, limit, opts.image_max_side, opts.seed, record)
        if len(own[domain]) < 2:
            found = len(own[domain])
            raise InputError(
                f"the realism judge needs at least 2 {domain} images; '{folder}' has {found}",
                folder,
            )
    return own


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

    report = Report(model=_model_summary(tr, opts), inputs=_options_used(videos, opts))
    for video, _ in videos:  # a missing clip was found after the images' minutes of work
        _check_clip(video, opts, tr.meta, report)
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


def _check_clip(video: Path, opts: EvalOptions, meta: dict[str, Any], report: Report) -> None:
    """A clip E_warp can measure: frames of one shot in a row among the first
    ``video_frames`` (a still was refused at the end; a clip of cuts only scored a perfect
    0.00000). Decoding them twice costs a second; finding out at the end cost the run. A
    note says how many of those frames the model was trained on."""
    from ..errors import InputError
    from ..video.probe import probe
    from .metrics import shot_starts
    from .temporal import clip_start

    info = probe(video, salvage=True)  # a truncated clip's first frames are there

    if info.still:
        raise InputError(f"'{info.path}' is a still image, not a clip to measure", info.path)
    if info.missing_bytes:  # its first frames are there: what E_warp measures
        log.warning(
            "'%s' is truncated (%s of its %s bytes missing): measured on the frames that are there",
            info.path.name,
            f"{info.missing_bytes:,}",
            f"{info.index_end:,}",
        )
    seen = Seen()
    frames = clip_start(info.path, opts, warn=False, seen=seen)  # said once, when measured
    note_clip_overlap(meta, info.path, seen, report)
    if len(shot_starts(frames)) == len(frames):
        short = len(frames) < opts.video_frames
        stopped = seen.stopped or ("the file is cut short" if short and info.missing_bytes else "")
        first = f"its first {len(frames)} frames"
        why, more = f"a scene cut comes between each of {first}", "more --video-frames, or "
        if stopped:
            pair = "them" if len(frames) == 2 else "each"
            why = f"only {first} can be read ({stopped}), and a scene cut comes between {pair}"
            more = ""
        raise InputError(f"'{info.path}': {why}: no pair to measure ({more}another clip)", video)


def _load(
    tr: Translator, day: Path, night: Path, opts: EvalOptions, report: Report
) -> tuple[Images, Images, dict[str, Images] | None]:
    """The day and night images, the judge's own images, all checked against the model's
    training images and the held-out ones against the judge's; what was read is recorded in
    the report."""
    from ..errors import InputError, PathError
    from ..fileio import not_a_folder

    for folder in (day, night, opts.realism_day, opts.realism_night):
        if folder is not None and not folder.is_dir():
            raise PathError(f"image folder '{folder}' {not_a_folder(folder)}", folder)
    roots = {"day": day, "night": night, "realism day": opts.realism_day,
             "realism night": opts.realism_night}  # fmt: skip
    check_roles({f"--{k.replace(' ', '-')}": v for k, v in roots.items()})
    seen = {"day": Seen(), "night": Seen()}
    day_images = load_images(day, opts.max_images, opts.image_max_side, opts.seed, seen["day"])
    night_images = load_images(
        night, opts.max_images, opts.image_max_side, opts.seed, seen["night"]
    )
    if len(day_images) < 2 or len(night_images) < 2:
        raise InputError("evaluate needs at least 2 day and 2 night images")
    own = _realism_data(opts, seen)
    folders = {"day": day_images, "night": night_images}
    folders |= {f"realism {d}": images for d, images in (own or {}).items()}
    check_overlap(tr.meta, folders, opts.allow_overlap, report, seen)
    check_judge_overlap(seen, opts.allow_overlap, report)
    _note_damaged(seen, report)
    report.inputs["images"] = {
        name: {"folder": str(roots[name]), "files": [os.path.relpath(p, root) for p in s.paths]}
        for name, s in seen.items()
        if (root := roots[name]) is not None
    }
    return day_images, night_images, own


def _note_damaged(seen: dict[str, Seen], report: Report) -> None:
    damaged = [path for s in seen.values() for path in s.damaged]
    if damaged:
        report.notes.append(
            f"{len(damaged)} damaged image{'s' * (len(damaged) > 1)} (data missing, decoded "
            f"grey) {'are' if len(damaged) > 1 else 'is'} in the figures, e.g. '{damaged[0]}'"
        )
        log.warning(report.notes[-1])


def _planned(n_day: int, n_night: int, own_judge: bool, videos: int, opts: EvalOptions) -> int:
    """Units of work for the progress bar: each image translated, each judge trained, each
    clip frame, each frame size timed."""
    if opts.realism_steps and not own_judge:  # half of each folder trains the judge
        n_day, n_night = n_day // 2, n_night // 2
    judges = 2 if opts.realism_steps else 0
    return judges + n_day + n_night + videos * opts.video_frames + len(opts.speed_heights)


def _options_used(videos: tuple[tuple[Path, Domain | None], ...], opts: EvalOptions) -> dict:
    """What the figures were measured on, so that a report can be reproduced and read."""
    return {
        "videos": [{"path": str(v), "to": to} for v, to in videos],
        "max_images": opts.max_images,
        "image_max_side": opts.image_max_side,
        "realism_steps": opts.realism_steps,
        "realism_images_max": 4 * opts.max_images,
        "video_frames": opts.video_frames,
        "video_max_side": opts.video_max_side,
        "seed": opts.seed,
        "allow_overlap": opts.allow_overlap,
    }


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
        k: {d: len(v) for d, v in data[k].items() if isinstance(v, list)}  # garbage: left out
        for k in ("fingerprints", "earlier_fingerprints")
        if isinstance(data.get(k), dict)
    }
    return {**meta, "data": {**data, **counted}}
