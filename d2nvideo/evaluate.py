"""``d2nvideo evaluate``: quality, realism, temporal stability and speed of a model.

Image quality as the study measured it (reconstruction SSIM/PSNR, cross-domain SSIM in
grayscale the study's way and in colour, cycle SSIM, domain success by the relabeler's scorer),
a download-free realism check (realism.py), the warping error E_warp of videos with each
smoothing mode, and frames/s against resolution. Trivial baselines (a plain darkening or
brightening) are measured the same way, so numbers that are easy to fake show it.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .images import list_images, read_image
from .labels import DEFAULT_THRESHOLDS, score_image
from .metrics import psnr, ssim, ssim_gray, warp_error
from .model import UNITGenerator, other_domain
from .pipeline import Resolution, translate_images
from .realism import RealismClassifier, train_realism
from .translator import Translator, from_tensor, to_tensor
from .video.decode import Frame, decode_frames
from .video.smooth import make_smoother

Images = list[np.ndarray]
BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "night": lambda im: (im.astype(np.float32) * 0.2 + 0.5).astype(np.uint8),  # x0.2 darkening
    "day": lambda im: np.clip(im.astype(np.float32) * 4.0 + 0.5, 0, 255).astype(np.uint8),
}


@dataclass(frozen=True)
class EvalOptions:
    max_images: int = 40  # per domain
    image_max_side: int = 640  # stills are evaluated at most this size (longer side)
    resolution: Resolution = field(default_factory=Resolution)  # working size, as in convert
    realism_steps: int = 400  # classifier training steps (0: skip the realism check)
    realism_day: Path | None = None  # the classifier's own real day images (default: half
    realism_night: Path | None = None  # of the evaluated folders, the other half evaluated)
    videos: tuple[Path, ...] = ()
    video_frames: int = 48  # frames per video for E_warp
    video_max_side: int = 480
    speed_heights: tuple[int, ...] = (180, 360, 540, 720)
    seed: int = 0


@dataclass
class Report:
    model: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    temporal: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_images(folder: Path, limit: int, max_side: int, seed: int) -> Images:
    """Up to ``limit`` images of ``folder`` (seeded choice), longer side at most ``max_side``."""
    paths = list_images(folder)
    if len(paths) > limit:
        keep = np.random.default_rng(seed).choice(len(paths), limit, replace=False)
        paths = [paths[i] for i in sorted(keep)]
    images = []
    for path in paths:
        image = read_image(path)
        h, w = image.shape[:2]
        if max(h, w) > max_side:
            s = max_side / max(h, w)
            image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        images.append(image)
    return images


def _split(images: Images) -> tuple[Images, Images]:
    return images[0::2], images[1::2]


def direction_quality(
    tr: Translator, images: Images, to: str, opts: EvalOptions, realism: RealismClassifier | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics of translating ``images`` into ``to``, for the model and for the baseline."""
    src = other_domain(to)
    outs = [translate_images([im], tr, to, opts.resolution)[0] for im in images]
    back = [translate_images([o], tr, src, opts.resolution)[0] for o in outs]
    model = _metrics(images, outs, to, realism)
    model["cycle_ssim"] = float(np.mean([ssim(a, b) for a, b in zip(images, back, strict=True)]))
    if isinstance(tr.model, UNITGenerator):
        rec = [_reconstruct(tr, im, src) for im in images]
        model["recon_ssim"] = float(np.mean([ssim(a, b) for a, b in zip(images, rec, strict=True)]))
        model["recon_psnr"] = float(np.mean([psnr(a, b) for a, b in zip(images, rec, strict=True)]))
    baseline = _metrics(images, [BASELINES[to](im) for im in images], to, realism)
    return model, baseline


def _metrics(
    inputs: Images, outputs: Images, to: str, realism: RealismClassifier | None
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
    }
    if realism is not None:
        p = realism(outputs)
        m["realism"] = float(np.mean(p > 0.5))
        m["realism_p"] = float(np.mean(p))
    return m


@torch.inference_mode()
def _reconstruct(tr: Translator, image: np.ndarray, domain: str) -> np.ndarray:
    from .translator import pad_to_multiple

    x = to_tensor(image[None], tr.device)
    h, w = x.shape[-2:]
    gen = tr.model
    assert isinstance(gen, UNITGenerator)
    with tr.autocast():
        y = gen.reconstruct(pad_to_multiple(x, tr.multiple), domain)
    return from_tensor(y[..., :h, :w].float())[0]


def image_quality(
    tr: Translator, day: Images, night: Images, opts: EvalOptions, report: Report
) -> None:
    own = _realism_data(opts)
    for to, inputs, targets in (("night", day, night), ("day", night, day)):
        realism = None
        evaluated = inputs
        if opts.realism_steps:
            if own is None:  # half of each folder trains the classifier, half is evaluated
                real_train, real_held = _split(targets)
                source_train, evaluated = _split(inputs)
            else:
                real_train, source_train, real_held = own[to], own[other_domain(to)], targets
            realism = train_realism(
                real_train, source_train, to, opts.realism_steps, seed=opts.seed
            )
            report.quality[f"real {to} (held out)"] = {
                "realism": float(np.mean(realism(real_held) > 0.5)),
                "realism_p": float(np.mean(realism(real_held))),
                "n": float(len(real_held)),
            }
        model, baseline = direction_quality(tr, evaluated, to, opts, realism)
        n = float(len(evaluated))
        report.quality[f"{other_domain(to)}->{to}"] = {**model, "n": n}
        name = "x0.2 darkening" if to == "night" else "x4 brightening"
        report.quality[f"{other_domain(to)}->{to}: {name}"] = {**baseline, "n": n}


def _realism_data(opts: EvalOptions) -> dict[str, Images] | None:
    if opts.realism_day is None or opts.realism_night is None:
        return None
    limit = 4 * opts.max_images
    return {
        "day": load_images(opts.realism_day, limit, opts.image_max_side, opts.seed),
        "night": load_images(opts.realism_night, limit, opts.image_max_side, opts.seed),
    }


def temporal_quality(tr: Translator, video: Path, to: str, opts: EvalOptions) -> dict[str, float]:
    """E_warp of the input, the per-frame output and each smoothing mode, and the SSIM of each
    smoothed output to the per-frame output, over the first ``video_frames`` frames."""
    inputs: list[np.ndarray] = []
    for frame in decode_frames(video):
        image = frame.image
        h, w = image.shape[:2]
        s = min(1.0, opts.video_max_side / max(h, w))
        inputs.append(cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA))
        if len(inputs) >= opts.video_frames:
            break
    per_frame = [translate_images([im], tr, to, opts.resolution)[0] for im in inputs]
    result = {
        "frames": float(len(inputs)),
        "ewarp_input": warp_error(inputs, inputs),
        "ewarp_per_frame": warp_error(inputs, per_frame),
    }
    for mode in ("ema", "flow"):
        smoothed = [f.image for f in make_smoother(mode)(_as_frames(inputs, per_frame))]
        result[f"ewarp_{mode}"] = warp_error(inputs, smoothed)
        result[f"ssim_{mode}_vs_per_frame"] = float(
            np.mean([ssim(a, b) for a, b in zip(smoothed, per_frame, strict=True)])
        )
    return result


def _as_frames(inputs: Images, outputs: Images) -> Iterator[Frame]:
    for i, (source, image) in enumerate(zip(inputs, outputs, strict=True)):
        yield Frame(image, i, Fraction(1, 30), i, source=source)


def speed(tr: Translator, heights: tuple[int, ...], repeats: int = 3) -> list[dict[str, float]]:
    """Network frames/s at 16:9 sizes on the translator's device, and peak memory."""
    rows = []
    for h in heights:
        w = round(h * 16 / 9)
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
        rows.append(
            {
                "height": float(h),
                "width": float(w),
                "fps": repeats / (time.perf_counter() - t0),
                "peak_mb": peak,
            }
        )
    return rows
