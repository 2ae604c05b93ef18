"""One long-lived thread per GPU for a process's CUDA translations.

PyTorch keeps cuDNN's autotuning results (``torch.backends.cudnn.benchmark``, which the
commands turn on) per thread: ``aten/src/ATen/native/cudnn/Conv_v8.cpp`` holds its benchmark
cache ``thread_local``, because cuDNN's execution plans are not thread-safe. The pipeline ran
its network in a thread of its own made for each video, so every convert, and every file of a
``--jobs`` batch, autotuned every convolution again, and a warm-up in the calling thread did not
carry over. On an H200 a full-size UNIT at 1280x720 spent about 25 s on each new batch shape,
which went a long way to make a 192-frame convert run at 2.8 frames/s.

:func:`on_device_thread` runs a call on a thread that lives as long as the process (a daemon:
it never holds the process open), one for each GPU, with that GPU current (the current device
is per thread too: a new thread starts on cuda:0 whatever the caller chose). A call made on a
device thread runs at once. A forked child starts its own threads when it first needs them.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")

_here = threading.local()
_lock = threading.Lock()
_queues: dict[int | None, queue.SimpleQueue[Any]] = {}


def on_device_thread(
    device: torch.device, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """``fn(*args, **kwargs)`` on the device thread of ``device`` (a CUDA device; any other,
    the CPU in tests, gets a thread of its own too); its result, or its exception raised
    here."""
    index = device.index if device.type == "cuda" else None
    if getattr(_here, "device", False) == (index,):
        return fn(*args, **kwargs)
    future: Future[R] = Future()
    _queue(index).put((future, fn, args, kwargs))
    return future.result()


def _queue(index: int | None) -> queue.SimpleQueue[Any]:
    with _lock:
        if index not in _queues:
            _queues[index] = queue.SimpleQueue()
            thread = threading.Thread(
                target=_serve,
                args=(_queues[index], index),
                name=f"d2nvideo-cuda{'' if index is None else index}",
                daemon=True,
            )
            thread.start()
        return _queues[index]


def _serve(calls: queue.SimpleQueue[Any], index: int | None) -> None:
    _here.device = (index,)
    if index is not None:
        torch.cuda.set_device(index)
    while True:
        future, fn, args, kwargs = calls.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # the caller raises it
                future.set_exception(exc)
        del future, fn, args, kwargs  # hold no frames or tensors while idle


def _forget_threads() -> None:
    global _lock
    _lock = threading.Lock()
    _queues.clear()


os.register_at_fork(after_in_child=_forget_threads)
