"""Running conversion tasks: one at a time in this process, or on a pool of worker processes
(``--jobs``). A failing input is recorded and the others go on; Ctrl-C stops everything and
leaves only complete outputs (each is written to a temporary file and renamed)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import D2NError
from ..fileio import sweep_stale_parts
from ..processes import sigint_ignored, start_resource_tracker
from .plan import Task
from .relay import Relay

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..pipeline import ConvertOptions, DarkOutputWatch
    from ..translator import Translator

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What became of one input: a line of the JSONL report."""

    input: str
    output: str
    status: Status
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    to: str = ""  # the domain converted into: what --to auto chose, per input

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "fps": round(self.fps, 3)}


@dataclass
class Converter:
    """Converts one task with a loaded translator; ``opts.to`` may be 'auto' per file."""

    translator: Translator
    opts: ConvertOptions
    to: str  # night|day|auto
    overwrite: bool
    watch: DarkOutputWatch | None = None

    def __call__(self, task: Task, on_frames: Callable[[int], None]) -> Outcome:
        if task.dst.is_dir():  # not an output: nothing would ever be written there
            error = f"output '{task.dst}' is a folder; move it away or choose another -o"
            return Outcome(str(task.src), str(task.dst), "failed", error=error)
        if task.dst.exists() and not self.overwrite:
            return Outcome(str(task.src), str(task.dst), "skipped")
        t0 = time.perf_counter()
        try:
            frames, to = self._convert(task, on_frames)
        except D2NError as exc:
            return Outcome(str(task.src), str(task.dst), "failed", error=str(exc))
        except OSError as exc:  # one without a file is not blamed on the input
            where = f": {exc.filename}" if exc.filename else f" (converting '{task.src}')"
            error = f"{exc.strerror or exc}{where}"
            return Outcome(str(task.src), str(task.dst), "failed", error=error)
        seconds = time.perf_counter() - t0
        return Outcome(str(task.src), str(task.dst), "done", frames, seconds, to=to)

    def _convert(self, task: Task, on_frames: Callable[[int], None]) -> tuple[int, str]:
        """The frames written, and the domain they were converted into."""
        from ..data.scoring import resolve_target
        from ..fileio import require_file

        require_file(task.src)  # one listed on stdin may be gone: no folder made for it
        to = resolve_target(task.src, self.to)  # warns if it already looks like the target
        opts = dataclasses.replace(self.opts, to=to)
        task.dst.parent.mkdir(parents=True, exist_ok=True)
        if task.kind == "image":
            return self._image(task, opts, on_frames), to
        from ..fileio import check_output
        from ..pipeline import convert_video
        from ..video.codecs import check_encode

        check_encode(task.dst, opts.encode)
        check_output(task.dst, [task.src], self.overwrite)
        result = convert_video(
            task.src, task.dst, self.translator, opts, on_frames, watch=self.watch
        )
        result.warn_lost(task.src)
        return result.frames, to

    def _image(self, task: Task, opts: ConvertOptions, on_frames: Callable[[int], None]) -> int:
        from ..fileio import check_output
        from ..images import read_image, warn_if_lossy, write_image
        from ..pipeline import translate_images
        from ..video.bars import BarKeeper

        check_output(task.dst, [task.src], self.overwrite)
        image = [read_image(task.src)]
        warn_if_lossy(task.src)
        bars = BarKeeper(enabled=opts.bars == "keep").bars_of(image)
        out = translate_images(image, self.translator, opts.to, opts.resolution, bars)
        if self.watch is not None:
            out = self.watch(out, image)
        write_image(task.dst, out[0])
        on_frames(1)
        return 1


def run_here(
    tasks: list[Task],
    convert: Callable[[Task, Callable[[int], None]], Outcome],
    on_frames: Callable[[int], None],
    on_outcome: Callable[[Outcome], None],
    counts: list[int] | None = None,
    skip: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Every task in this process, in order. With ``counts`` (each task's expected frames),
    a task's frames are settled once it ends (see :func:`_settle`; the bar stood at 0/3
    after 'nothing to do')."""
    outcomes = []
    for i, task in enumerate(tasks):
        seen = [0]

        def tick(n: int, seen: list[int] = seen) -> None:
            seen[0] += n
            on_frames(n)

        outcome = convert(task, tick)
        if counts is not None:
            _settle(outcome, counts[i] - seen[0], on_frames, skip)
        outcomes.append(outcome)
        on_outcome(outcome)
    return outcomes


def _settle(
    outcome: Outcome,
    left: int,
    on_frames: Callable[[int], None],
    skip: Callable[[int], None] | None,
) -> None:
    """A finished task's ``left`` frames: counted for a converted one (more or fewer than
    expected), off the total for one skipped or failed (a failed single input drew a full bar
    before its error)."""
    if outcome.status != "done" and skip is not None:
        skip(left)
    elif left > 0:
        on_frames(left)


def frame_counts(
    tasks: list[Task], start: float = 0.0, span: float | None = None, salvage: bool = False
) -> list[int]:
    """Frames each task will write (1 for an image, the probe's count for a video's
    ``[start, start + span)``, 1 when it cannot be probed: the conversion reports why), for
    progress totals. ``salvage``: a truncated file counts what its index lists."""
    from ..video.probe import probe

    counts = []
    for task in tasks:
        try:
            video = task.kind == "video"
            counts.append(probe(task.src, salvage).frames_in(start, span) if video else 1)
        except D2NError:
            counts.append(1)
    return counts


def worker_threads(jobs: int) -> int:
    """torch threads per worker so ``jobs`` workers share the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


# --- a pool of worker processes (--jobs) ---------------------------------------------------

_WORKER: dict[str, Any] = {}  # "converter": a Converter; "started": its pass's flags
_STATE = {"busy": False, "stopping": False}  # converting a task; told to stop


def _on_terminate(signum: int, frame: object) -> None:
    """SIGTERM (or SIGHUP, or the parent's death): mid-task, unwind once so the task's
    temporary file is removed, then :func:`_work` ends the process; idle, end at once. Later
    signals are ignored so that they cannot cut the cleanup short. The pool's worker loop
    catches every exception of a task and goes on to the next: a worker must not outlive this."""
    import signal

    from ..processes import Terminated

    if not _STATE["busy"]:
        os._exit(143)
    if _STATE["stopping"]:
        return
    _STATE["stopping"] = True
    for sig in (signal.SIGTERM, signal.SIGHUP):  # not SIG_IGN: a signal already pending then
        signal.signal(sig, _ignore)  # raised "Signal 15 ignored due to race condition"
    raise Terminated(signum)


def _ignore(signum: int, frame: object) -> None:
    """A later SIGTERM or SIGHUP while a task cleans up."""


def _die_with_parent(sig: int, parent: int) -> None:
    """Linux: have the kernel send ``sig`` when the parent (pid ``parent``) dies (SIGKILL, the
    OOM killer), so that no worker goes on converting after its run; a no-op elsewhere."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request: nobody will send the signal
        os._exit(143)


def _start_worker(
    factory: Callable[[], Converter], threads: int, parent: int, shared: _Shared, logs: Any
) -> None:
    import signal

    import torch

    from ..video.probe import set_codec_threads

    # Ctrl-C in a terminal reaches the whole process group; the parent decides and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_terminate)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # under nohup it stays ignored
        signal.signal(signal.SIGHUP, _on_terminate)
    _die_with_parent(signal.SIGTERM, parent)
    from .relay import install

    install(logs)  # its warnings are the parent's to print (above the bar)
    torch.set_num_threads(threads)
    set_codec_threads(threads)  # its encoders and decoders too
    _WORKER["shared"] = shared
    _WORKER["converter"] = factory()


def _work(task: Task, index: int) -> Outcome:
    from ..processes import Terminated

    _STATE["busy"] = True
    shared = _WORKER["shared"]
    shared.started[index] = STARTED  # before the work: a crash in it names the task
    try:
        outcome = _WORKER["converter"](task, functools.partial(shared.count, index))
        shared.started[index] = FINISHED
        _STATE["busy"] = False  # from here a SIGTERM ends the process at once
    except Terminated:  # its partial output is gone: end here, not in the pool's loop
        os._exit(143)
    except BaseException:
        if _STATE["stopping"]:  # a clean-up's own error replaced Terminated
            os._exit(143)
        _STATE["busy"] = False
        raise
    if _STATE["stopping"]:
        os._exit(143)
    return outcome


STARTED, FINISHED = 1, 2  # a task's flag in its pass's shared array (0: not started)
WORKER_DIED = (
    "a worker process ended unexpectedly (killed, or out of memory?); the outputs finished "
    "before were kept"
)
CRASHED = (
    "the worker process converting it ended unexpectedly, twice (a crash in a decoder, "
    "out of memory, or killed)"
)


def run_pool(
    tasks: list[Task],
    factory: Callable[[], Converter],
    jobs: int,
    counts: list[int],
    on_frames: Callable[[int], None],
    on_outcome: Callable[[Outcome], None],
    skip: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Every task on ``jobs`` worker processes, each with its own translator from
    ``factory`` (picklable) and its share of the cores. Outcomes come back in task order; a
    task's frames reach ``on_frames`` as they are written, and are settled as it ends (see
    :func:`_settle`). A worker that dies (a decoder's crash on a damaged file, the OOM killer)
    takes the pool with it: the inputs being converted then are tried again, each alone on a
    fresh worker, and one that ends its worker again is a failed outcome; the rest go on."""
    outcomes: list[Outcome | None] = [None] * len(tasks)
    shown = [0] * len(tasks)  # each task's frames on the bar so far

    def report(i: int, outcome: Outcome) -> None:
        outcomes[i] = outcome
        _settle(outcome, counts[i] - shown[i], on_frames, skip)
        on_outcome(outcome)

    def progress(frames: Any) -> None:  # the workers' counts, twice a second
        for i, n in enumerate(frames):
            if n > shown[i] and outcomes[i] is None:
                on_frames(n - shown[i])
                shown[i] = n

    while todo := [i for i, outcome in enumerate(outcomes) if outcome is None]:
        suspects = _pass(tasks, todo, factory, jobs, report, progress)
        if suspects is None:
            continue
        _warn_crashed([tasks[i] for i in suspects])
        for i in suspects:  # alone now: a crash is this input's own
            if _pass(tasks, [i], factory, 1, report, progress) is not None:
                task = tasks[i]
                sweep_stale_parts(task.dst.parent, again=True)  # its worker's partial output
                report(i, Outcome(str(task.src), str(task.dst), "failed", error=CRASHED))
    return [o for o in outcomes if o is not None]


def _warn_crashed(suspects: list[Task]) -> None:
    names = ", ".join(f"'{task.src}'" for task in suspects)
    logging.getLogger(__name__).warning(
        f"a worker process ended unexpectedly while converting {names}; trying again alone"
    )


def _pass(
    tasks: list[Task],
    todo: list[int],
    factory: Callable[[], Converter],
    jobs: int,
    report: Callable[[int, Outcome], None],
    progress: Callable[[Any], None],
) -> list[int] | None:
    """Tasks ``todo`` on a fresh pool, each outcome to ``report`` and the frames written so
    far to ``progress``. None when all came back; when a worker died, the tasks that had
    started and not finished."""
    pool, shared, logs = _pool(factory, jobs, len(tasks))
    with contextlib.closing(logs):
        return _collect(pool, shared, tasks, todo, jobs, report, progress)


def _collect(
    pool: Any,
    shared: _Shared,
    tasks: list[Task],
    todo: list[int],
    jobs: int,
    report: Callable[[int, Outcome], None],
    progress: Callable[[Any], None],
) -> list[int] | None:
    """``_pass`` on its pool."""
    from concurrent.futures.process import BrokenProcessPool

    futures: dict[Future[Outcome], int] = {}
    done: set[int] = set()
    started = shared.started
    try:
        futures = _submit(pool, tasks, todo, jobs)
        for future in _as_completed(futures, lambda: progress(shared.frames)):
            outcome, i = future.result(), futures[future]
            done.add(i)  # before report: an interrupt in it must not report it again
            report(i, outcome)
    except BrokenProcessPool as exc:
        _stop(pool)
        late_outcomes(futures, done, report)
        suspects = [i for i in todo if started[i] == STARTED and i not in done]
        if not suspects:  # none had started: the workers cannot start (the model?)
            raise D2NError(WORKER_DIED) from exc
        return suspects
    except BaseException:
        _stop(pool)
        late_outcomes(futures, done, report)
        raise
    pool.shutdown()
    return None


@dataclass(frozen=True)
class _Shared:
    """What the workers write for the parent to read: each task's flag as it starts and
    finishes (a queue, read only after a break, filled its pipe after some 3,500 inputs and
    every worker blocked writing to it), and its frames written so far (the bar moved only as
    a file ended: '0/240, 0:00' for a whole run of two files, then 115 fps)."""

    started: Any
    frames: Any

    def count(self, index: int, n: int) -> None:
        self.frames[index] += n  # one writer a task: its worker


def _pool(factory: Callable[[], Converter], jobs: int, tasks: int) -> tuple[Any, _Shared, Relay]:
    """A pool of ``jobs`` spawned workers, what they share with this process (``_Shared``)
    and the relay of their warnings."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    start_resource_tracker()  # before the pool's semaphores are registered with it
    context = mp.get_context("spawn")
    shared = _Shared(context.RawArray("b", tasks), context.RawArray("q", tasks))
    logs = Relay(context)
    initargs = (factory, worker_threads(jobs), os.getpid(), shared, logs.writer)
    return ProcessPoolExecutor(jobs, context, _start_worker, initargs), shared, logs


def late_outcomes(
    futures: dict[Future[Outcome], int],
    done: set[int],
    report: Callable[[int, Outcome], None],
) -> None:
    """Outcomes that came in as the run stopped (a worker finished its input as Ctrl-C came,
    or while the others were being ended): reported too, so that the report names every
    output written (a resumed run skipped the file, and its line was missing)."""
    for future, i in futures.items():
        finished = future.done() and not future.cancelled() and future.exception() is None
        if i not in done and finished:
            done.add(i)
            report(i, future.result())


def _submit(pool: Any, tasks: list[Task], todo: list[int], jobs: int) -> dict[Future[Outcome], int]:
    """Tasks ``todo``, in order. The first ``jobs`` submits start the workers, with SIGINT
    ignored so that they inherit it; the rest with it heard (a folder of 20,000 inputs takes
    a second to submit, and a Ctrl-C then was lost)."""
    futures = {}
    for n, i in enumerate(todo):
        with sigint_ignored() if n < jobs else contextlib.nullcontext():
            futures[pool.submit(_work, tasks[i], i)] = i
    return futures


def _as_completed(
    futures: Iterable[Future[Outcome]], waking: Callable[[], None]
) -> Iterator[Future[Outcome]]:
    """``concurrent.futures.as_completed``, waking twice a second: Ctrl-C may reach another
    of this process's threads, and an untimed wait in the main thread then never sees it
    (the run went on until a worker finished a whole input)."""
    import queue

    done: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
    pending = list(futures)
    for future in pending:
        future.add_done_callback(done.put)
    for _ in pending:
        while True:
            try:
                yield done.get(timeout=0.5)
                break
            except queue.Empty:
                waking()


def _stop(pool: object) -> None:
    """Cancel what has not started and end the workers (each removes its partial output)."""
    import signal

    processes = dict(getattr(pool, "_processes", None) or {})
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)  # type: ignore[attr-defined]
    for process in processes.values():
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(process.pid, signal.SIGTERM)
    for process in processes.values():
        process.join(timeout=5)
        if process.is_alive():  # stuck in native code: no worker outlives the run
            process.kill()
            process.join(timeout=5)
    if manager is not None:  # it closes the pool's queues once the workers are gone
        manager.join(timeout=5)
