"""ONNX graphs of a generator, one per direction, and the cache that holds them.

A graph takes ``image``: ``(B, 3, H, W)`` float32 in [-1, 1] with H and W multiples of the
model's ``multiple`` (batch, height and width dynamic) and returns ``translated`` of the same
shape: the network alone, so any ONNX runtime reproduces the torch output (padding to the
multiple and conversion from and to uint8 stay outside).

The cache (``cache_root()``, a folder the user may delete at any time) holds the graphs of each
model under ``graphs/<key>/<direction>.onnx``, ``key`` being a hash of the model's config and
weights: a different file (a new bundled model, say) gets new graphs, never stale ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path

import torch
from torch import nn

from ..choices import DOMAINS, Domain
from ..errors import UsageError
from ..fileio import atomic_output
from ..model import Generator, ModelConfig, config_to_dict

GRAPH_VERSION = 1  # bump when the exported graph changes: old cache entries are then unused
OPSET = 17
INPUT, OUTPUT = "image", "translated"


def cache_root() -> Path:
    """``$D2NVIDEO_CACHE``, else ``$XDG_CACHE_HOME/d2nvideo``, else ``~/.cache/d2nvideo``."""
    if os.environ.get("D2NVIDEO_CACHE"):
        return Path(os.environ["D2NVIDEO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "d2nvideo"


def model_key(model: nn.Module, config: ModelConfig) -> str:
    """A content hash of a model: its config and every weight, in a fixed order."""
    digest = hashlib.sha256(json.dumps(config_to_dict(config), sort_keys=True).encode())
    digest.update(f"graph {GRAPH_VERSION}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


class _Direction(nn.Module):
    """The generator with its target domain fixed, as the exporter needs one tensor input."""

    def __init__(self, model: Generator, to: Domain) -> None:
        super().__init__()
        self.model = model
        self.target = to

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.target)  # type: ignore[no-any-return]


def require_onnx() -> None:
    """The ``onnx`` package, which torch's exporter needs, or one clear UsageError."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise UsageError(
            "exporting ONNX graphs needs the onnx package: pip install 'd2nvideo[onnx]'", "onnx"
        )


def export_graph(
    model: Generator, to: Domain, multiple: int, path: Path, overwrite: bool | None = True
) -> Path:
    """Write the ``to`` direction of ``model`` (on the CPU, eval mode) to ``path`` atomically;
    ``overwrite`` as :func:`~d2nvideo.fileio.atomic_output` takes it (a cache's graph is
    replaced whatever is there)."""
    require_onnx()
    example = torch.zeros(1, 3, 2 * multiple, 3 * multiple)
    dims = {0: "batch", 2: "height", 3: "width"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        _EXPORTING,  # the exporter's state is global: two threads' exports failed at random
        atomic_output(path, overwrite=overwrite) as tmp,
        warnings.catch_warnings(),
        torch.inference_mode(False),  # the exporter traces; callers may be in inference mode
    ):
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(
            _Direction(model, to).eval(),
            (example,),
            str(tmp),
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: dims, OUTPUT: dims},
            opset_version=OPSET,
            external_data=False,
        )
    return path


def export_graphs(model: Generator, multiple: int, stem: Path) -> dict[Domain, Path]:
    """``stem.night.onnx`` and ``stem.day.onnx`` (``d2nvideo export --onnx``, whose check let
    through what is there now: a graph that appears meanwhile is another process's, and kept)."""
    return {
        to: export_graph(model, to, multiple, stem.with_suffix(f".{to}.onnx"), overwrite=None)
        for to in DOMAINS
    }


def cached_graph(model: Generator, config: ModelConfig, to: Domain, key: str | None = None) -> Path:
    """The cached graph of one direction, exported on first use."""
    path = cache_root() / "graphs" / (key or model_key(model, config)) / f"{to}.onnx"
    with _EXPORTING:  # one thread exports it; the others then find it
        if not path.is_file():
            export_graph(model, to, int(config.multiple), path)
    return path


_EXPORTING = threading.RLock()
