"""How many frames go to the network at once, and what happens when a batch is too big.

On a CPU batching adds little: two frames a call. On CUDA :func:`auto_batch_size` measures one
frame (its peak memory and its largest tensor) and takes as many as half the free memory
holds and CUDA's 32-bit indexing allows, at most 32; a batch that still fails either way is split in
halves and retried (:func:`split_on_oom`) instead of crashing the convert.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..choices import Domain
from ..errors import D2NError
from .device_thread import on_device_thread
from .frames import translate_on_device

if TYPE_CHECKING:
    from ..pipeline import WorkingSize
    from ..translator import Translator

log = logging.getLogger(__name__)
CPU_BATCH_SIZE = 2  # frames per network call chosen on a CPU: batching adds little there
INDEX_LIMIT = 2**31 - 1  # elements a tensor may have for CUDA kernels that index in 32 bits
# in the RuntimeError of a kernel past INDEX_LIMIT (reflect pad; depthwise convolutions)
INDEX_LIMIT_MESSAGES = ("32-bit index math", "canUse32BitIndexMath")


def run_network(translator: Translator, images: list[np.ndarray], to: Domain) -> list[np.ndarray]:
    """The translator on a batch (see :func:`split_on_oom`); on a CPU in calls of
    ``CPU_BATCH_SIZE``, as convert makes them: a script's 64 frames in one call of the Python
    API took 2.5 GB (the network's activations, about 28 MB a frame), 1,000 the OOM killer."""

    def run(batch: list[np.ndarray], target: Domain) -> list[np.ndarray]:
        return list(translator(np.stack(batch), target))

    step = max(CPU_BATCH_SIZE if translator.device.type == "cpu" else len(images), 1)
    return [
        out
        for i in range(0, len(images), step)
        for out in split_on_oom(run, images[i : i + step], to)
    ]


def split_on_oom(
    run: Callable[[list[np.ndarray], Domain], list[np.ndarray]],
    images: list[np.ndarray],
    to: Domain,
) -> list[np.ndarray]:
    """``run(images, to)``; on GPU out-of-memory, or a tensor too large for CUDA's 32-bit
    indexing, the batch is split in halves and retried instead of crashing, down to one
    frame. The retry runs after the ``except`` block, so the failed attempt's tensors (held by
    the traceback) are freed first."""
    try:
        return run(images, to)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        what = _device_limit(exc)
        if what is None:
            raise
        if len(images) == 1:
            h, w = images[0].shape[:2]
            raise D2NError(
                f"{what} translating one {w}x{h} frame: use --work-size or --max-size, or "
                "--device cpu"
            ) from exc
    torch.cuda.empty_cache()
    log.warning("%s at batch %d; retrying in halves", what, len(images))
    half = len(images) // 2
    return split_on_oom(run, images[:half], to) + split_on_oom(run, images[half:], to)


def _device_limit(exc: BaseException) -> str | None:
    """What limit a GPU failure hit, or None when it is another error."""
    if isinstance(exc, torch.OutOfMemoryError):
        return "GPU out of memory"
    if any(m in str(exc) for m in INDEX_LIMIT_MESSAGES):
        return "a tensor too large for CUDA's 32-bit indexing"
    return None


def auto_batch_size(
    translator: Translator, height: int, width: int, resolution: WorkingSize | None = None
) -> int:
    """Frames per network call: 2 on the CPU (batching adds little there); on CUDA at most 32,
    as many as half the free memory holds (memory PyTorch holds cached but unused counts as
    free) and CUDA's 32-bit indexing allows, from one measured frame: a ``height`` x
    ``width`` frame through the device path at ``resolution`` (or, without one, the network
    alone at that size), on the GPU's device thread, where every statistic reads that GPU."""
    if translator.device.type != "cuda":
        return CPU_BATCH_SIZE
    return on_device_thread(
        translator.weights_device, _probe, translator, height, width, resolution
    )


def _probe(translator: Translator, height: int, width: int, resolution: WorkingSize | None) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    frame = np.zeros((1, height, width, 3), np.uint8)
    with _eager(translator) as model, largest_tensor(model) as largest, _untuned():
        if resolution is None:
            translator(frame, "night")
        else:
            work = resolution.shape(height, width)
            translate_on_device(frame, translator, "night", work, resolution.upsample)
    per_frame = max(1, torch.cuda.max_memory_allocated() - base)
    free, _ = torch.cuda.mem_get_info()
    free += torch.cuda.memory_reserved() - torch.cuda.memory_allocated()  # cached, reusable
    by_index = INDEX_LIMIT // max(1, largest[0])  # CUDA kernels index with 32 bits
    return int(max(1, min(32, by_index, free * 0.5 // per_frame)))


@contextlib.contextmanager
def _untuned() -> Iterator[None]:
    """cuDNN's autotuning off within, nothing else changed (``cudnn.flags`` resets the other
    settings to its defaults): the probe's one frame is a batch shape no convert runs, and
    tuning every convolution for it cost as much as tuning a whole batch (seconds to tens of
    seconds for a full-size UNIT at 720p)."""
    cudnn = torch.backends.cudnn
    tuning = cudnn.benchmark
    cudnn.benchmark = False
    try:
        yield
    finally:
        cudnn.benchmark = tuning


@contextlib.contextmanager
def largest_tensor(module: torch.nn.Module) -> Iterator[list[int]]:
    """Within the block, ``[n]``: the most elements of any tensor that ``module`` or one of its
    submodules takes or returns (nested in tuples, lists and dicts too)."""
    largest = [0]

    def numel(value: Any) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel()
        if isinstance(value, (tuple, list)):
            return max((numel(v) for v in value), default=0)
        if isinstance(value, dict):
            return max((numel(v) for v in value.values()), default=0)
        return 0

    def hook(_: torch.nn.Module, inputs: Any, output: Any) -> None:
        largest[0] = max(largest[0], numel(inputs), numel(output))

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        yield largest
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _eager(translator: Translator) -> Iterator[torch.nn.Module]:
    """The translator's network uncompiled within the block (a probe with hooks would make
    torch.compile warn and recompile); the network itself."""
    model = translator.model
    translator.model = getattr(model, "_orig_mod", model)
    try:
        yield translator.model
    finally:
        translator.model = model
