"""How fast a model converts: the convert pipeline per stage at each frame size, and the network
alone at native size."""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
import torch

from ..pipeline import WorkingSize
from ..translator import Translator
from .options import SILENT, Tracker


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
