"""How fast the convert path runs at a frame size, stage by stage, on this machine.

:func:`time_stages` writes a short synthetic clip of the size asked for (a sky gradient over a
textured road that moves: not timed), then times each stage of ``d2nvideo convert`` on its own
(decode included; each stage alone, one after the other, in ms per frame) and the whole
pipeline as convert runs it, threads overlapping. It sits above ``pipeline`` (the one module of
``infer/`` that does); ``pipeline.time_stages`` is its public name.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..choices import Domain
from ..video.codecs import EncodeSettings
from ..video.decode import Frame, decode_frames
from ..video.encode import encode_frames
from ..video.probe import probe

if TYPE_CHECKING:
    from ..pipeline import WorkingSize
    from ..translator import Translator

# The pipeline's threads and the stages each runs (pipeline.translate_frames, convert_video)
THREADS = {
    "decode": ("decode",),
    "network": ("resize", "network", "device"),
    "upsample": ("upsample",),
    "encode": ("encode",),
}


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds per frame of each stage alone (``device``: the whole device path on CUDA,
    of which ``network`` is the network's share), and the pipeline's frames/s."""

    width: int
    height: int
    work: tuple[int, int]  # (height, width) the network ran at
    backend: str
    batch_size: int
    ms: dict[str, float] = field(default_factory=dict)
    pipeline_fps: float = 0.0

    @property
    def busiest(self) -> tuple[str, float]:
        """The pipeline thread with the most work per frame and its ms: the limit with a
        core for each thread."""
        load = {t: sum(self.ms.get(s, 0.0) for s in stages) for t, stages in THREADS.items()}
        if "device" in self.ms:
            load["network"] -= self.ms.get("network", 0.0)  # network is part of device
        name = max(load, key=load.__getitem__)
        return name, load[name]

    @property
    def cpu_ms(self) -> float:
        """All stages' ms per frame together: with few cores, the pipeline's real bound."""
        total = sum(self.ms.values())
        return total - self.ms.get("network", 0.0) if "device" in self.ms else total


def time_stages(
    translator: Translator,
    to: Domain,
    resolution: WorkingSize,
    width: int,
    height: int,
    frames: int = 16,
    encode: EncodeSettings | None = None,
    batch_size: int = 0,
) -> StageTimes:
    """Time the convert path on a ``width`` x ``height`` synthetic clip of ``frames`` frames
    (see the module docstring; on CUDA, rounded up to whole batches). ``batch_size`` 0
    chooses as convert does. Each batch shape runs once untimed first (the ``auto`` backend
    measures there, CUDA autotunes)."""
    from ..pipeline import ConvertOptions, convert_video, on_device
    from .batching import auto_batch_size

    encode = encode or EncodeSettings()
    work = resolution.shape(height, width)
    batch_size = batch_size or auto_batch_size(translator, height, width, resolution)
    if on_device(translator):  # whole batches: convert pads a short last one, which 8 frames
        frames = -(-frames // batch_size) * batch_size  # at batch 32 would count 4x over
    with tempfile.TemporaryDirectory(prefix="d2nvideo-timing-") as folder:
        src = synthetic_clip(Path(folder) / "src.mp4", frames, width, height)
        ms, translated = _stage_times(src, translator, to, resolution, batch_size)
        t0 = time.perf_counter()
        encode_frames(translated, Path(folder) / "alone.mp4", probe(src), encode)
        ms["encode"] = _per_frame(t0, len(translated))
        opts = ConvertOptions(to, batch_size=batch_size, resolution=resolution, encode=encode)
        result = convert_video(src, Path(folder) / "pipeline.mp4", translator, opts)
    return StageTimes(
        width, height, work, translator.backend, batch_size, ms, pipeline_fps=result.fps
    )


def _per_frame(t0: float, n: int) -> float:
    return (time.perf_counter() - t0) * 1000 / max(1, n)


def _stage_times(
    src: Path, translator: Translator, to: Domain, resolution: WorkingSize, batch_size: int
) -> tuple[dict[str, float], list[Frame]]:
    """Decode, then each translation stage over every batch; the translated frames."""
    from ..pipeline import on_device, translate_images

    ms: dict[str, float] = {}
    frames = _timed(ms, "decode", lambda: list(decode_frames(src)))
    images = [f.image for f in frames]
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    for n in sorted({len(b) for b in batches}):  # warm-up: the auto backend measures, and
        translate_images(images[:n], translator, to, resolution)  # cuDNN tunes each shape
    step = _device_steps if on_device(translator) else _cpu_steps
    outputs: list[np.ndarray] = []
    for batch in batches:
        outputs += step(batch, translator, to, resolution, ms)
    ms = {k: v / len(images) for k, v in ms.items()}
    return ms, [dataclasses.replace(f, image=o) for f, o in zip(frames, outputs, strict=True)]


def _timed(ms: dict[str, float], stage: str, run: Callable[[], Any], sync: bool = False) -> Any:
    t0 = time.perf_counter()
    out = run()
    if sync:
        torch.cuda.synchronize()
    ms[stage] = ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000
    return out


def _cpu_steps(
    batch: list[np.ndarray],
    translator: Translator,
    to: Domain,
    resolution: WorkingSize,
    ms: dict[str, float],
) -> list[np.ndarray]:
    from ..pipeline import upsample_stage, working_inputs
    from .batching import run_network

    if resolution.shape(*batch[0].shape[:2]) == batch[0].shape[:2]:  # native: no resize
        return _timed(ms, "network", lambda: run_network(translator, batch, to))  # type: ignore[no-any-return]
    small = _timed(ms, "resize", lambda: working_inputs(batch, resolution))
    out = _timed(ms, "network", lambda: run_network(translator, small, to))
    return _timed(ms, "upsample", lambda: upsample_stage(batch, small, out, resolution, to))  # type: ignore[no-any-return]


def _device_steps(
    batch: list[np.ndarray],
    translator: Translator,
    to: Domain,
    resolution: WorkingSize,
    ms: dict[str, float],
) -> list[np.ndarray]:
    from .device_thread import on_device_thread
    from .frames import translate_on_device

    h, w = batch[0].shape[:2]
    work = resolution.shape(h, w)
    device = translator.weights_device
    x = torch.zeros(len(batch), 3, *work, device=device)
    network = lambda: on_device_thread(device, translator.translate_tensor, x, to)  # noqa: E731
    _timed(ms, "network", network, sync=True)
    upsample = resolution.upsample

    def run() -> np.ndarray:
        frames = np.stack(batch)
        return on_device_thread(device, translate_on_device, frames, translator, to, work, upsample)

    return list(_timed(ms, "device", run, sync=True))


def synthetic_clip(path: Path, frames: int, width: int, height: int, fps: int = 30) -> Path:
    """A ``width`` x ``height`` H.264 clip of a road-like scene moving forward."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 40, (2 * height, width, 1), dtype=np.uint8)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (np.array([120, 170, 235]) * (1 - 0.3 * y)).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == height % 2 == 0 else "yuv444p"
        stream.time_base = Fraction(1, fps)
        for i in range(frames):
            image = np.broadcast_to(sky, (height, width, 3)).copy()
            shift = (i * 7) % height
            road = 60 + texture[shift : shift + height - height // 2]
            image[height // 2 :] = road
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path
