"""``d2nvideo preview``: input and translation together, as a video (audio kept), a still
comparison at a given time, or a GIF; the same pipeline and options as convert."""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .choices import Layout
from .errors import InputError
from .fileio import atomic_output
from .images import write_image
from .pipeline import (
    ConvertOptions,
    ConvertResult,
    after_translation,
    convert_video,
    segment,
    translate_frames,
)
from .translator import Translator
from .video.decode import Frame, Salvage, decode_frames, frames_at
from .video.geometry import upright
from .video.probe import VideoInfo, held_duration, probe

STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
WIPE_PERIOD_S = 4.0
GIF_FPS = 10
GIF_MAX_WIDTH = 800


def draw_label(image: np.ndarray, text: str, x: int = 0, y: int = 0) -> None:
    """Write ``text`` in a dark box at (x, y) of ``(H, W, 3) uint8``, in place."""
    scale = max(0.4, image.shape[0] / 720)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    pad = max(3, round(6 * scale))
    cv2.rectangle(image, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), (0, 0, 0), -1)
    cv2.putText(
        image,
        text,
        (x + pad, y + pad + th),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )


def compose(
    source: np.ndarray, output: np.ndarray, layout: Layout, to: str, phase: float = 0.5
) -> np.ndarray:
    """Input and translation, ``(H, W, 3) uint8`` each, in one image.

    side: left/right; stack: top/bottom; wipe: the translation left of a divider at ``phase``
    (0-1) of the width, the input right of it.
    """
    h, w = source.shape[:2]
    if layout == "wipe":
        x = round(float(np.clip(phase, 0, 1)) * w)
        image = source.copy()
        image[:, :x] = output[:, :x]
        cv2.line(image, (x, 0), (x, h - 1), (255, 255, 255), max(1, w // 400))
        draw_label(image, to)
        draw_label(image, "input", x=max(0, w - 90 * max(1, round(h / 720))))
        return image
    a, b = source.copy(), output.copy()
    draw_label(a, "input")
    draw_label(b, f"{to} (d2nvideo)")
    return np.ascontiguousarray(np.hstack([a, b]) if layout == "side" else np.vstack([a, b]))


def compose_stage(
    layout: Layout, to: str, rotation: int
) -> Callable[[Iterator[Frame]], Iterator[Frame]]:
    """A pipeline stage turning translated frames into comparisons (in display orientation)."""

    def stage(frames: Iterator[Frame]) -> Iterator[Frame]:
        for frame in frames:
            assert frame.source is not None
            phase = 0.5 + 0.45 * math.sin(2 * math.pi * frame.time / WIPE_PERIOD_S)
            image = compose(
                upright(frame.source, rotation), upright(frame.image, rotation), layout, to, phase
            )
            yield dataclasses.replace(frame, image=image)

    return stage


def preview_video(
    src: Path,
    dst: Path,
    translator: Translator,
    opts: ConvertOptions,
    layout: Layout,
    on_frames: Callable[[int], None],
) -> ConvertResult:
    source = probe(src, salvage=opts.salvage)
    info = dataclasses.replace(source, rotation=0)  # frames are composed upright
    return convert_video(
        src,
        dst,
        translator,
        opts,
        on_frames,
        info,
        post=compose_stage(layout, opts.to, source.rotation),
        rotation=source.rotation,
    )


def _frame_at(src: Path, info: VideoInfo, at: float, lasts: float) -> list[Frame]:
    """The first frame at or after ``at``; up to the end (``lasts``), the last one, also where
    the header's duration runs past the last frame (29.97-fps clips: "no frame at 31.97 s (it
    lasts 32.01 s)")."""
    last = max(0.0, lasts - 1 / float(info.fps))  # the last frame's time, at the clip's rate
    when = min(at, last) if at < lasts else at
    frames = list(frames_at(src, [info.start_time + when], name_damage=True))
    if frames or at >= lasts:
        return frames
    tail = collections.deque(decode_frames(src, start=info.start_time + max(0.0, when - 5)), 1)
    return list(tail)


def preview_still(
    src: Path,
    dst: Path,
    translator: Translator,
    opts: ConvertOptions,
    at: float | None,
    layout: Layout,
) -> float:
    """The frame at ``at`` seconds (None: the middle of what the file holds) beside its
    translation; returns the second it was taken from."""
    info = probe(src, salvage=opts.salvage)
    lasts = info.duration
    if info.missing_bytes:  # cut short (only with salvage): the frames end before the index
        lasts = min(lasts, held_duration(src) or lasts)
    at = lasts / 2 if at is None else at
    try:
        frames = _frame_at(src, info, at, lasts)
    except InputError:
        if not info.missing_bytes:
            raise
        frames = []
    if not frames:
        cut = " of what decodes: the file is cut short" if info.missing_bytes else ""
        raise InputError(f"'{src}' has no frame at {at:g} s (it lasts {lasts:.2f} s{cut})", src)
    (out,) = translate_frames(frames, translator, opts, info.rotation)
    assert out.source is not None
    write_image(
        dst,
        compose(
            upright(out.source, info.rotation), upright(out.image, info.rotation), layout, opts.to
        ),
    )
    return frames[0].time - info.start_time


def preview_gif(
    src: Path,
    dst: Path,
    translator: Translator,
    opts: ConvertOptions,
    layout: Layout,
    on_frames: Callable[[int], None],
) -> ConvertResult:
    """An animated GIF at up to 10 fps and 800 pixels wide (held in memory: keep it short)."""
    from PIL import Image

    t0 = time.perf_counter()
    info = probe(src, salvage=opts.salvage)
    step = max(1, math.ceil(float(info.fps) / GIF_FPS - 1e-6))
    salvage = Salvage() if opts.salvage else None
    # a file cut short: what its index lists in the segment and does not decode is counted lost
    expect = info.frames_in(opts.start, opts.duration) if info.missing_bytes else None
    decoded = decode_frames(src, segment(opts, info)[0], opts.duration, expect, salvage=salvage)
    frames = (f for f in decoded if f.index % step == 0)
    translated = after_translation(translate_frames(frames, translator, opts, info.rotation), opts)
    images, times = [], []
    for frame in compose_stage(layout, opts.to, info.rotation)(translated):
        image = _gif_width(frame.image)
        images.append(
            Image.fromarray(image).quantize(colors=255, dither=Image.Dither.FLOYDSTEINBERG)
        )
        times.append(frame.time)
        on_frames(step)
    durations = gif_durations(times, step / float(info.fps))
    with atomic_output(dst) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        )
    seconds = time.perf_counter() - t0
    return ConvertResult(dst, len(images), seconds, salvage.lost if salvage else 0, opts.to)


def gif_durations(times: list[float], last: float) -> list[int]:
    """Each GIF frame's display time (ms) from the frames' own times, the last one ``last``
    seconds: a variable-rate clip (a phone's 30 fps, then 5 in the dark) played its slow part
    six times too fast at one duration for all. GIF counts hundredths of a second, so the
    times are rounded where they fall, not each duration (no drift over a long clip)."""
    ends = [*times[1:], times[-1] + last]
    return [
        max(10, 10 * (round(100 * b) - round(100 * a))) for a, b in zip(times, ends, strict=True)
    ]


def _gif_width(image: np.ndarray) -> np.ndarray:
    """At most GIF_MAX_WIDTH wide (a GIF's size grows with every pixel)."""
    if image.shape[1] <= GIF_MAX_WIDTH:
        return image
    size = (GIF_MAX_WIDTH, round(image.shape[0] * GIF_MAX_WIDTH / image.shape[1]))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
