"""decode -> batch -> translate -> smooth -> encode, over bounded queues.

Decoding runs ahead in one thread, the network one batch ahead in another, encoding behind in
a third; upsampling (on the CPU) and the temporal stages run in the caller's thread. On CUDA
the network thread hands each batch's whole device path (resize, network, upsampling) to its
GPU's device thread (``infer/device_thread.py``). Memory is bounded by the batch
size and queue depths, never by the video's length. How big a batch is, and what happens when
one is too big for the GPU: ``infer/batching.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .choices import BarsMode, Domain, Exposure, Quality, Smoothing, Upsampler, check
from .fileio import atomic_output
from .infer.batching import CPU_BATCH_SIZE, auto_batch_size, run_network, split_on_oom
from .infer.device_thread import on_device_thread
from .infer.frames import translate_on_device
from .prefetch import Sink, prefetch, start_sink
from .translator import Translator
from .upsample import bicubic_upsample, guided_upsample
from .video.bars import NO_BARS, BarKeeper, Bars
from .video.codecs import EncodeSettings
from .video.decode import Frame, Salvage, decode_frames
from .video.encode import encode_frames
from .video.geometry import restore, upright
from .video.probe import VideoInfo, probe

if TYPE_CHECKING:
    from .infer.timing import StageTimes
from .video.exposure import steady_exposure
from .video.smooth import make_smoother

log = logging.getLogger(__name__)
QUALITY_PRESETS = {"fast": 180, "balanced": 288, "full": None}  # the network's shorter side
DARK_OUTPUT = 8.0  # mean brightness (0-255) under which an output frame counts as black
AUTO_BATCH = 0  # batch_size value that lets the pipeline choose (auto_batch_size)


@dataclass(frozen=True)
class WorkingSize:
    """The size the network runs at and how its output returns to native size."""

    work_size: int | None = None  # shorter side for the network, pixels; None: native
    max_size: int | None = None  # and/or the longer side at most this
    upsample: Upsampler = "guided"  # back to native size (see upsample.py)

    def shape(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the network runs at for a frame of this size (never larger)."""
        scale = 1.0
        if self.work_size:
            scale = min(scale, self.work_size / min(height, width))
        if self.max_size:
            scale = min(scale, self.max_size / max(height, width))
        if scale >= 1.0:
            return height, width
        return max(1, round(height * scale)), max(1, round(width * scale))


def working_size(
    quality: Quality,
    work_size: int | None,
    max_size: int | None,
    upsample: Upsampler,
    model_meta: dict[str, object],
) -> WorkingSize:
    """The CLI's size options against the model: ``auto`` runs the network at the working
    size the model was trained for (its ``work_size`` metadata), else natively."""
    if work_size is None:
        recommended = model_meta.get("work_size")
        if quality == "auto":
            work_size = int(recommended) if isinstance(recommended, int | float) else None
        else:
            work_size = QUALITY_PRESETS[quality]
    return WorkingSize(work_size, max_size, upsample)


@dataclass(frozen=True)
class ConvertOptions:
    to: Domain  # target domain
    batch_size: int = AUTO_BATCH  # frames per network call; AUTO_BATCH chooses
    resolution: WorkingSize = field(default_factory=WorkingSize)
    start: float = 0.0  # seconds into the input
    duration: float | None = None  # seconds to convert; None: to the end
    smooth: Smoothing = "none"  # temporal smoothing
    smooth_strength: float = 0.6  # share of the motion-compensated past kept, in [0, 1)
    hwaccel: str | None = None  # decode on this device ("cuda": NVDEC), with software fallback
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    exposure: Exposure = "steady"  # see video/exposure.py
    salvage: bool = False  # convert what decodes of a corrupt or truncated file
    bars: BarsMode = "keep"  # black letterbox/pillarbox bars (video/bars.py)

    def __post_init__(self) -> None:
        check(Exposure, self.exposure, "exposure")
        check(BarsMode, self.bars, "bars")

    @property
    def whole(self) -> bool:
        """The whole file, not a segment of it."""
        return self.start <= 0 and self.duration is None


Watch = Callable[[list[np.ndarray], list[np.ndarray]], list[np.ndarray]]  # (outputs, inputs)


class DarkOutputWatch:
    """Passes translated images through and warns once if they come out nearly black (a
    model that does not suit the footage), saying how dark they are."""

    def __init__(self, to: Domain, threshold: float = DARK_OUTPUT) -> None:
        self.to = to
        self.threshold = threshold
        self.warned = False

    def __call__(self, images: list[np.ndarray], inputs: list[np.ndarray]) -> list[np.ndarray]:
        """``images`` translated from ``inputs``: an output is judged only where its input is
        not nearly black itself (a clip whose first frames are black warned)."""
        if not self.warned and images:
            pairs = zip(images, inputs, strict=True)  # an input's mean only for a dark output
            dark = [im for im, src in pairs if im.mean() < self.threshold <= src.mean()]
            if dark:
                self.warned = True
                log.warning(
                    "output frames are nearly black (mean brightness %.1f of 255): the model "
                    "may not suit this footage; check the output (d2nvideo preview)",
                    float(np.mean([im.mean() for im in dark])),
                )
        return images


@dataclass(frozen=True)
class ConvertResult:
    output: Path
    frames: int
    seconds: float
    lost: int = 0  # frames that could not be decoded (with salvage)
    to: Domain | None = None  # the domain converted into (what "auto" chose)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def warn_lost(self, src: Path) -> None:
        """One warning line if ``--salvage`` left frames out."""
        if self.lost:
            log.warning(
                "'%s': %d frames could not be decoded and are left out (--salvage)", src, self.lost
            )


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def translate_images(
    images: list[np.ndarray],
    translator: Translator,
    to: Domain,
    resolution: WorkingSize,
    bars: Bars | None = None,
) -> list[np.ndarray]:
    """Translate same-sized ``(H, W, 3) uint8`` images, at a working size if one is set, and
    return them at their native size. ``bars``: black bars kept as they came (see
    video/bars.py, ``BarKeeper`` says which)."""
    bars = bars or NO_BARS
    small, out = network_stage(images, translator, to, resolution, bars)
    return upsample_stage(images, small, out, resolution, to, bars)


def on_device(translator: Translator) -> bool:
    """Whether frames take the device path (every per-pixel step in torch on the network's
    device, ``infer/frames.py``): on CUDA. On the CPU OpenCV's upsampler is faster."""
    return translator.device.type == "cuda"


def network_stage(
    images: list[np.ndarray],
    translator: Translator,
    to: Domain,
    resolution: WorkingSize,
    bars: Bars = NO_BARS,
    pad_to: int = 0,
) -> tuple[list[np.ndarray] | None, list[np.ndarray]]:
    """The first half of :func:`translate_images`: the working-size inputs and the network's
    outputs, or (None, the finished outputs, ``bars`` kept) where nothing is left to
    upsample.

    On CUDA the batch runs on its GPU's device thread (``infer/device_thread.py``: cuDNN
    tunes each shape once per thread), and a batch shorter than ``pad_to`` (a video's last,
    after whole batches of ``pad_to``) is padded with its last frame: less work than tuning a
    new shape."""
    if on_device(translator):
        work = resolution.shape(*images[0].shape[:2])
        run = functools.partial(
            _on_device, translator=translator, work=work, res=resolution, bars=bars
        )
        padded = images + images[-1:] * (pad_to - len(images))
        device = translator.weights_device
        return None, on_device_thread(device, split_on_oom, run, padded, to)[: len(images)]
    small = working_inputs(images, resolution)
    if small is None:  # the network at native size: finished here
        return None, bars.restore(images, run_network(translator, images, to))
    return small, run_network(translator, small, to)


def working_inputs(images: list[np.ndarray], resolution: WorkingSize) -> list[np.ndarray] | None:
    """The images at the working size (area resize), or None when the network runs on them as
    they are."""
    h, w = images[0].shape[:2]
    wh, ww = resolution.shape(h, w)
    if (wh, ww) == (h, w):
        return None
    return [cv2.resize(im, (ww, wh), interpolation=cv2.INTER_AREA) for im in images]


def _on_device(
    images: list[np.ndarray],
    to: Domain,
    translator: Translator,
    work: tuple[int, int],
    res: WorkingSize,
    bars: Bars,
) -> list[np.ndarray]:
    return list(translate_on_device(np.stack(images), translator, to, work, res.upsample, bars))


def upsample_stage(
    images: list[np.ndarray],
    small: list[np.ndarray] | None,
    out: list[np.ndarray],
    resolution: WorkingSize,
    to: Domain,
    bars: Bars = NO_BARS,
) -> list[np.ndarray]:
    """The second half of :func:`translate_images`: back to native size on the CPU, with
    ``bars`` copied back from the input. The guided fit then sees only the picture between
    them, so the network's colour for the bars does not bleed into the picture's edges. Into
    night, the lights the fit cannot express come back on top (``upsample.find_lights``).
    ``small`` None: ``out`` is finished (on the GPU path, the bars too)."""
    if small is None:
        return out
    h, w = images[0].shape[:2]
    if resolution.upsample == "bicubic":
        return bars.restore(images, [bicubic_upsample(o, (w, h)) for o in out])
    lights = to == "night"
    inner = bars.at_working_size((h, w), small[0].shape[:2])
    if inner is None:
        outputs = [
            guided_upsample(s, o, im, lights=lights)
            for s, o, im in zip(small, out, images, strict=True)
        ]
        return bars.restore(images, outputs)
    return [
        bars.paste(
            im, guided_upsample(inner.inner(s), inner.inner(o), bars.inner(im), lights=lights)
        )
        for s, o, im in zip(small, out, images, strict=True)
    ]


def translate_frames(
    frames: Iterable[Frame],
    translator: Translator,
    opts: ConvertOptions,
    rotation: int,
    watch: Watch | None = None,
) -> Iterator[Frame]:
    """Translate frames in batches, each upright for the network and stored back as it came;
    every output frame carries its input in ``source``. ``watch`` sees each batch's outputs.

    The network stage runs one batch ahead in its own thread, so upsampling batch k (here)
    overlaps the network's work on batch k+1 (issue 11: both cores busy on a 2-core CPU)."""

    keeper = BarKeeper(enabled=opts.bars == "keep")  # used in the network thread only

    size = opts.batch_size or CPU_BATCH_SIZE

    def prepared() -> Iterator[tuple[list[Frame], list[np.ndarray], Bars, Any, list[np.ndarray]]]:
        pad = 0  # the batch size once a whole batch ran: a clip shorter than one is not padded
        for batch in batched(frames, size):
            images = [upright(f.image, rotation) for f in batch]
            bars = keeper.bars_of(images)
            small, out = network_stage(images, translator, opts.to, opts.resolution, bars, pad)
            pad = pad or (size if len(images) == size else 0)
            yield batch, images, bars, small, out

    network = prefetch(prepared(), depth=1, name="network")
    try:
        for batch, images, bars, small, out in network:
            outputs = upsample_stage(images, small, out, opts.resolution, opts.to, bars)
            if watch is not None:
                outputs = watch(outputs, images)
            for frame, image in zip(batch, outputs, strict=True):
                yield dataclasses.replace(frame, image=restore(image, rotation), source=frame.image)
    finally:
        network.close()  # stop and join its thread now: see convert_video


def convert_video(
    src: Path,
    dst: Path,
    translator: Translator,
    opts: ConvertOptions,
    on_frames: Callable[[int], None] = lambda n: None,
    info: VideoInfo | None = None,
    post: Callable[[Iterator[Frame]], Iterator[Frame]] | None = None,
    rotation: int | None = None,
    watch: Watch | None = None,
) -> ConvertResult:
    """Translate the video ``src`` into ``dst`` (written atomically). ``on_frames(n)`` is called
    as frames are written. ``post`` is an extra stage before encoding (preview's composition);
    ``info`` describes the output (the probe of ``src`` by default) and ``rotation`` how the
    input frames are stored (``info.rotation`` by default); ``watch`` sees translated batches."""
    info = info or probe(src, salvage=opts.salvage)
    rotation = info.rotation if rotation is None else rotation
    if opts.batch_size < 1:
        size = auto_batch_size(translator, info.height, info.width, opts.resolution)
        opts = dataclasses.replace(opts, batch_size=size)
    lost = Salvage() if opts.salvage else None
    frames = prefetch(_decoded(src, opts, info, lost), depth=2 * opts.batch_size, name="decode")
    smoothed = after_translation(translate_frames(frames, translator, opts, rotation, watch), opts)
    staged = post(smoothed) if post is not None else smoothed
    t0 = time.perf_counter()
    try:
        count = _encode(staged, dst, info, opts, on_frames)
    finally:
        # Stop and join the worker threads before an error or Ctrl-C leaves: the traceback
        # keeps the generators alive, and with them threads that would go on decoding and
        # translating for a caller that has already caught the error
        smoothed.close()
        frames.close()
    return ConvertResult(dst, count, time.perf_counter() - t0, lost.lost if lost else 0, opts.to)


def after_translation(
    frames: Iterator[Frame], opts: ConvertOptions
) -> Generator[Frame, None, None]:
    """The temporal stages on translated frames: smoothing, then steady exposure."""
    smoothed = make_smoother(opts.smooth, opts.smooth_strength)(frames)
    return steady_exposure(smoothed) if opts.exposure == "steady" else smoothed


def segment(opts: ConvertOptions, info: VideoInfo) -> tuple[float, float | None]:
    """The stretch to convert, ``[start, end)`` on the file's own clock: ``opts.start`` counts
    from the first frame, as a player's 0:00 does (as extract and preview --at count), and an
    MPEG-TS clip's clock rarely starts at 0. The whole file is everything from 0 on (or from
    the first frame, where the clock starts before 0), its end None."""
    if opts.whole:
        return min(0.0, info.start_time), None
    start = info.start_time + opts.start
    return start, None if opts.duration is None else start + opts.duration


def _decoded(
    src: Path, opts: ConvertOptions, info: VideoInfo, salvage: Salvage | None
) -> Iterator[Frame]:
    whole = opts.whole
    start, _ = segment(opts, info)
    return decode_frames(
        src,
        start,
        opts.duration,
        expect_frames=info.frames if whole and info.frames_exact else None,
        hwaccel=opts.hwaccel,
        salvage=salvage,
        expect_end=info.header_end if whole and not info.frames_exact else None,
    )


def _encode(
    frames: Iterator[Frame],
    dst: Path,
    info: VideoInfo,
    opts: ConvertOptions,
    on_frames: Callable[[int], None],
) -> int:
    """Encode ``frames`` on a writer thread into a temporary file renamed to ``dst``."""
    start, end = segment(opts, info)
    with atomic_output(dst) as tmp:
        sink: Sink[Frame, int] = start_sink(
            lambda items: encode_frames(
                items, tmp, info, opts.encode, None if opts.whole else start, end
            ),
            depth=2 * opts.batch_size,
            name="encode",
        )
        try:
            for frame in frames:
                sink.put(dataclasses.replace(frame, source=None))  # unread; 1.6 GB on a GPU at 4K
                on_frames(1)
            return sink.finish()
        except BaseException:
            sink.abort()
            raise


def time_stages(
    translator: Translator,
    to: Domain,
    resolution: WorkingSize,
    width: int,
    height: int,
    frames: int = 16,
    encode: EncodeSettings | None = None,
    batch_size: int = AUTO_BATCH,
) -> StageTimes:
    """The convert path at ``width`` x ``height``, stage by stage and as a whole, measured
    now on a synthetic clip (``infer/timing.py`` says how)."""
    from .infer.timing import time_stages as measure

    _check_timing(to, resolution, width, height, frames, batch_size)
    return measure(translator, to, resolution, width, height, frames, encode, batch_size)


def _check_timing(
    to: object, resolution: object, width: object, height: object, frames: object, batch: object
) -> None:
    """time_stages' arguments, each a UsageError naming it (a 0 width was an IndexError from
    PyAV, 0 frames a missing temporary file)."""
    from .choices import require, require_number
    from .errors import UsageError

    require(Domain, to, "to")
    if not isinstance(resolution, WorkingSize):
        raise UsageError(f"resolution must be a WorkingSize, not {resolution!r}", resolution)
    for name, value in (("width", width), ("height", height), ("frames", frames)):
        require_number(value, name, lambda v: v >= 1, "an integer >= 1", True)
    require_number(batch, "batch_size", lambda v: v >= 0, "an integer >= 0 (0: auto)", True)
