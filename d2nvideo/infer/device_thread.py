"""One long-lived thread for a process's CUDA translations.

PyTorch keeps cuDNN's autotuning results (``torch.backends.cudnn.benchmark``, which the
commands turn on) per thread: ``aten/src/ATen/native/cudnn/Conv_v8.cpp`` holds its benchmark
cache ``thread_local``, because cuDNN's execution plans are not thread-safe. The pipeline ran
its network in a thread of its own made for each video, so every convert, and every file of a
``--jobs`` batch, autotuned every convolution again, and a warm-up in the calling thread did not
carry over. On an H200 a full-size UNIT at 1280x720 spent about 25 s on each new batch shape,
and a 192-frame convert ran at 2.8 frames/s where its device path allows about 30.

:func:`on_device_thread` runs a call on one thread that lives as long as the process, so each
shape is tuned once per process. A call made on that thread already runs at once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_here = threading.local()


def _mark() -> None:
    _here.device_thread = True


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="d2nvideo-cuda", initializer=_mark)


def on_device_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` on the process's device thread; its result, or its exception
    raised here."""
    if getattr(_here, "device_thread", False):
        return fn(*args, **kwargs)
    return _executor().submit(fn, *args, **kwargs).result()
