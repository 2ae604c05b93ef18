"""Where the network runs: torch, or an exported ONNX graph in ONNX Runtime or OpenVINO.

Every backend is a :class:`Network`: padded ``(B, 3, H, W)`` float32 in [-1, 1] (a CPU tensor
for the graph runtimes) -> the translation, same shape. ``auto`` measures the installed ones
at the working size on the first batch and keeps the fastest (see :class:`AutoNetwork`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..choices import Backend, Domain, require
from ..errors import D2NError, UsageError, first_line
from ..fileio import atomic_output
from .graphs import INPUT, cache_root

log = logging.getLogger(__name__)
RUNTIMES: dict[str, tuple[str, ...]] = {  # backend -> the packages it needs
    "onnxruntime": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "onnx"),
}
EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}  # pip install 'd2nvideo[EXTRA]'
TIMED_RUNS = 3  # per candidate, after one warm-up run, when auto measures


class Network(Protocol):
    def __call__(self, x: torch.Tensor, to: Domain) -> torch.Tensor: ...


GraphFor = Callable[[Domain], Path]  # the ONNX graph of a direction, exported on first use


def installed(name: str) -> bool:
    """Whether the packages backend ``name`` needs are importable (torch always is)."""
    return all(importlib.util.find_spec(p) is not None for p in RUNTIMES.get(name, ()))


def check_backend(name: str, device: torch.device, precision: str, compiled: bool) -> None:
    """A backend that cannot run as asked is one UsageError, before any work."""
    require(Backend, name, "backend")  # None was "not 'None'"
    if name in ("auto", "torch"):
        return
    if not installed(name):
        raise UsageError(
            f"--backend {name} needs the {name} package, which is not installed: "
            f"pip install 'd2nvideo[{EXTRAS[name]}]' (or use --backend torch)",
            name,
        )
    if device.type != "cpu" or precision != "fp32" or compiled:
        raise UsageError(
            f"--backend {name} runs the network on the CPU in fp32 without --compile; "
            f"use --backend torch for {device.type} {precision}{' compiled' if compiled else ''}",
            name,
        )


def candidates(device: torch.device, precision: str) -> list[str]:
    """What ``auto`` measures: the installed graph runtimes beside torch, on a CPU in fp32
    (on CUDA torch is the one that runs there)."""
    if device.type != "cpu" or precision != "fp32":
        return ["torch"]
    return ["torch", *(name for name in RUNTIMES if installed(name))]


class GraphNetwork:
    """One ONNX graph runtime; a direction's session is opened on its first use."""

    def __init__(self, name: str, graph_for: GraphFor, threads: int) -> None:
        self.name = name
        self.graph_for = graph_for
        self.threads = threads
        self.sessions: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

    def __call__(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        if to not in self.sessions:
            self.sessions[to] = self._open(to)
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.sessions[to](array))

    def _open(self, to: Domain) -> Callable[[np.ndarray], np.ndarray]:
        """The session of a direction's graph. A cached graph the runtime cannot load (cut
        short: a full disk, a killed export of an older version) is exported again, once; it
        failed every run with the runtime's own error."""
        graph = self.graph_for(to)
        try:
            return _open(self.name, graph, self.threads)
        except Exception as exc:
            if not graph.is_relative_to(cache_root()):
                raise D2NError(_unloadable(self.name, graph, exc), graph) from exc
            log.warning("the cached graph %s cannot be loaded: exporting it again", graph)
            graph.unlink(missing_ok=True)
        graph = self.graph_for(to)
        try:
            return _open(self.name, graph, self.threads)
        except Exception as exc:
            raise D2NError(_unloadable(self.name, graph, exc), graph) from exc


def _unloadable(name: str, graph: Path, exc: BaseException) -> str:
    return f"{name} cannot load the graph '{graph}' ({first_line(exc)}); use --backend torch"


def _open(name: str, graph: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    if name == "onnxruntime":
        return _onnxruntime(graph, threads)
    return _openvino(graph, threads)


def _onnxruntime(graph: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Threads that spin while waiting for work steal the core the pipeline's other stages
    # run on (decode, upsampling, encode).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT: x})[0]  # type: ignore[no-any-return]


def _openvino(graph: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": "f32",  # else bf16 on CPUs that have it: not torch's output
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = ov.Core().compile_model(str(graph), "CPU", config)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return np.array(request.infer({0: x})[0], copy=True)

    return run


class AutoNetwork:
    """Measures each candidate on the first batch (one warm-up run, then the median of
    TIMED_RUNS runs) and keeps the fastest for the rest of its life (evaluate's stills come in
    many sizes: one measurement serves them all). The choice is stored in
    ``cache_root()/backends.json`` per model, candidates, threads and frame size, so a later
    run starting at that size skips the measurement (delete the file to measure again)."""

    def __init__(self, networks: dict[str, Network], key: Callable[[], str]) -> None:
        self.networks = networks
        self.key = key
        self.chosen: str | None = None

    def __call__(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        if self.chosen is None:
            stored = _stored_choice(self._entry(x))
            if stored not in self.networks:
                return self._measure(x, to)
            try:  # its first call opens it (a runtime that cannot load now: memory, a cache)
                out = self.networks[stored](x, to)
            except (OSError, RuntimeError, D2NError) as exc:
                log.warning("backend %s, chosen before, failed to run (%s): measuring", stored, exc)
                self.networks = {k: v for k, v in self.networks.items() if k != stored}
                return self._measure(x, to, stored=False)
            self.chosen = stored
            return out
        return self.networks[self.chosen](x, to)

    def _entry(self, x: torch.Tensor) -> str:
        size = "x".join(map(str, x.shape[-2:]))  # not the batch: a video's last is smaller
        among = ",".join(self.networks)
        return f"{self.key()} {among} threads={torch.get_num_threads()} {size}"

    def _measure(self, x: torch.Tensor, to: Domain, stored: bool = True) -> torch.Tensor:
        """The fastest candidate, kept; stored for later runs only when every candidate ran
        (one left out by a full cache disk would be left out for good)."""
        times: dict[str, float] = {}
        outputs: dict[str, torch.Tensor] = {}
        failure: Exception | None = None
        for name, network in self.networks.items():
            try:  # warm-up: opens the session, exports the graph the first time
                network(x, to)
            except (OSError, RuntimeError, D2NError) as exc:  # an unwritable cache, say
                log.warning("backend %s left out of the choice: %s", name, exc)
                stored, failure = False, exc
                continue
            runs = []
            for _ in range(TIMED_RUNS):
                t0 = time.perf_counter()
                outputs[name] = network(x, to)
                runs.append(time.perf_counter() - t0)
            times[name] = statistics.median(runs)
        if not times:  # none ran: the last one's own error (out of memory, say)
            raise failure or D2NError("no backend could run")
        best = min(times, key=times.__getitem__)
        log.info("backend for %s: %s (%s)", tuple(x.shape), best, _ms(times))
        self.chosen = best
        if stored:
            _store_choice(self._entry(x), best)
        return outputs[best]

    @property
    def name(self) -> str:
        return f"auto: {self.chosen or 'not measured yet'}"


def _ms(times: dict[str, float]) -> str:
    return ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in times.items())


def _choices_file() -> Path:
    return cache_root() / "backends.json"


def _choices() -> dict[str, Any]:
    """The stored choices; none from a missing or damaged file ('[1, 2]' was a traceback in
    every run, and a file that was no JSON was never replaced)."""
    try:
        data = json.loads(_choices_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stored_choice(entry: str) -> str | None:
    choice = _choices().get(entry)
    return choice if isinstance(choice, str) else None


def _store_choice(entry: str, name: str) -> None:
    """Add one choice to the file, atomically (a cache: failing to write it is not an error)."""
    path = _choices_file()
    try:
        data = _choices()
        data[entry] = name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    except (OSError, ValueError) as exc:
        log.debug("could not store the backend choice: %s", exc)
