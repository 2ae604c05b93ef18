"""Two small thread helpers with bounded queues: a producer that runs ahead of its consumer
(decode), and a consumer that runs behind its producer (encode). Memory is bounded by ``depth``.
Exceptions cross to the calling thread; stopping early closes the other side cleanly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()
_POLL_S = 0.1


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put unless ``stop`` is set first; return whether it was put."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def prefetch(iterable: Iterable[T], depth: int, name: str = "prefetch") -> Generator[T, None, None]:
    """Iterate ``iterable`` in a background thread, at most ``depth`` items ahead."""
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work() -> None:
        it = iter(iterable)
        try:
            for item in it:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as exc:
            _put(q, _Raised(exc), stop)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class Sink(Generic[T, R]):
    """A consumer running in its own thread; feed it with ``put`` and end it with ``finish``."""

    def __init__(self, q: queue.Queue[object], stop: threading.Event) -> None:
        self.q = q
        self.stop = stop
        self.thread: threading.Thread | None = None
        self.result: R | None = None
        self.error: BaseException | None = None

    def put(self, item: T) -> None:
        """Hand over one item; raises the consumer's exception if it has failed."""
        if not _put(self.q, item, self.stop) or self.error is not None:
            self._raise()

    def finish(self) -> R:
        """Signal the end, wait for the consumer, return its result (or raise its error)."""
        _put(self.q, _DONE, self.stop)
        self._join()
        if self.error is not None:
            self._raise()
        return self.result  # type: ignore[return-value]

    def abort(self) -> None:
        """Stop the consumer without finishing its output (it sees GeneratorExit-free end)."""
        self.stop.set()
        self._join()

    def _join(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def _raise(self) -> None:
        self._join()
        assert self.error is not None
        raise self.error

    def _items(self) -> Iterator[T]:
        while True:
            try:
                item = self.q.get(timeout=_POLL_S)
            except queue.Empty:
                if self.stop.is_set():
                    raise _Aborted() from None
                continue
            if item is _DONE:
                return
            yield item  # type: ignore[misc]


class _Aborted(Exception):
    """Raised inside an aborted consumer so that its ``finally`` blocks run."""


def start_sink(consume: Callable[[Iterator[T]], R], depth: int, name: str = "sink") -> Sink[T, R]:
    """Run ``consume(items)`` in a thread, where ``items`` yields what is ``put``."""
    sink: Sink[T, R] = Sink(queue.Queue(maxsize=max(1, depth)), threading.Event())

    def work() -> None:
        try:
            sink.result = consume(sink._items())
        except _Aborted:
            pass
        except BaseException as exc:
            sink.error = exc
            sink.stop.set()

    sink.thread = threading.Thread(target=work, name=name, daemon=True)
    sink.thread.start()
    return sink
