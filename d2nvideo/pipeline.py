"""decode -> batch -> translate -> smooth -> encode, over bounded queues.

Decoding runs ahead in one thread, encoding behind in another, the network in the caller's
thread; memory is bounded by the batch size and queue depths, never by the video's length.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .fileio import atomic_output
from .prefetch import Sink, prefetch, start_sink
from .translator import Translator
from .video.decode import Frame, decode_frames
from .video.encode import EncodeSettings, encode_frames
from .video.probe import VideoInfo, probe
from .video.smooth import make_smoother


@dataclass(frozen=True)
class ConvertOptions:
    to: str  # target domain: night|day
    batch_size: int = 4  # frames per network call
    max_size: int | None = None  # run the network with the longer side at most this (pixels)
    start: float = 0.0  # seconds into the input
    duration: float | None = None  # seconds to convert; None: to the end
    smooth: str = "none"  # temporal smoothing: none|ema|flow
    smooth_strength: float = 0.6  # share of the motion-compensated past kept, in [0, 1)
    encode: EncodeSettings = field(default_factory=EncodeSettings)


@dataclass(frozen=True)
class ConvertResult:
    output: Path
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a stored frame as a player would show it (``rotation`` degrees CCW)."""
    k = round(rotation / 90) % 4
    return np.rot90(image, k) if k else image


def restore(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo :func:`upright`."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


def work_shape(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """The (height, width) the network runs at: the frame's own, or scaled so the longer
    side is at most ``max_size``."""
    if not max_size or max(height, width) <= max_size:
        return height, width
    scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def translate_images(
    images: list[np.ndarray], translator: Translator, to: str, max_size: int | None
) -> list[np.ndarray]:
    """Translate same-sized ``(H, W, 3) uint8`` images, optionally at a reduced size."""
    h, w = images[0].shape[:2]
    wh, ww = work_shape(h, w, max_size)
    if (wh, ww) == (h, w):
        return list(translator(np.stack(images), to))
    small = np.stack([cv2.resize(im, (ww, wh), interpolation=cv2.INTER_AREA) for im in images])
    out = translator(small, to)
    return [cv2.resize(o, (w, h), interpolation=cv2.INTER_CUBIC) for o in out]


def translate_frames(
    frames: Iterable[Frame], translator: Translator, opts: ConvertOptions, rotation: int
) -> Iterator[Frame]:
    for batch in batched(frames, opts.batch_size):
        images = [upright(f.image, rotation) for f in batch]
        outputs = translate_images(images, translator, opts.to, opts.max_size)
        for frame, out in zip(batch, outputs, strict=True):
            yield dataclasses.replace(frame, image=restore(out, rotation), source=frame.image)


def convert_video(
    src: Path,
    dst: Path,
    translator: Translator,
    opts: ConvertOptions,
    on_frames: Callable[[int], None] = lambda n: None,
    info: VideoInfo | None = None,
    post: Callable[[Iterator[Frame]], Iterator[Frame]] | None = None,
    rotation: int | None = None,
) -> ConvertResult:
    """Translate the video ``src`` into ``dst`` (written atomically). ``on_frames(n)`` is called
    as frames are written. ``post`` is an extra stage before encoding (preview's composition);
    ``info`` describes the output (the probe of ``src`` by default) and ``rotation`` how the
    input frames are stored (``info.rotation`` by default)."""
    info = info or probe(src)
    rotation = info.rotation if rotation is None else rotation
    whole = opts.start <= 0 and opts.duration is None
    decoded = decode_frames(
        src,
        opts.start,
        opts.duration,
        expect_frames=info.frames if whole and info.frames_exact else None,
    )
    frames = prefetch(decoded, depth=2 * opts.batch_size, name="decode")
    smoother = make_smoother(opts.smooth, opts.smooth_strength)
    smoothed = smoother(translate_frames(frames, translator, opts, rotation))
    staged = post(smoothed) if post is not None else smoothed
    end = None if opts.duration is None else opts.start + opts.duration
    t0 = time.perf_counter()
    with atomic_output(dst) as tmp:
        sink: Sink[Frame, int] = start_sink(
            lambda items: encode_frames(items, tmp, info, opts.encode, opts.start, end),
            depth=2 * opts.batch_size,
            name="encode",
        )
        try:
            for frame in staged:
                sink.put(frame)
                on_frames(1)
            count = sink.finish()
        except BaseException:
            sink.abort()
            raise
        finally:
            smoothed.close()
    return ConvertResult(dst, count, time.perf_counter() - t0)
