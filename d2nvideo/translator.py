"""One object to run a generator: load a checkpoint, pick device and precision, translate."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import Checkpoint, load_checkpoint
from .choices import (
    DOMAINS,
    Backend,
    BarsMode,
    Domain,
    OfficialDomain,
    Quality,
    Upsampler,
    normalise_domain,
    require,
)
from .errors import CheckpointError, UsageError
from .fileio import as_path
from .infer.backends import AutoNetwork, GraphNetwork, Network, candidates, check_backend
from .infer.graphs import cached_graph, model_key
from .model import Generator, ModelConfig, UNITGenerator, build_generator
from .model.runtime import autocast, resolve_device, resolve_precision


class Translator:
    """Translate frames between day and night with one generator.

    ``__call__`` takes ``(N, H, W, 3) uint8`` RGB frames of any size and returns the same shape;
    ``translate_tensor`` works on ``(B, 3, H, W)`` float in [-1, 1] already on the device.
    """

    def __init__(
        self,
        model: Generator,
        config: ModelConfig,
        device: torch.device,
        precision: str,
        meta: dict[str, Any],
        network: Network | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.device = device
        self.precision = precision
        self.meta = meta
        self.network = network  # None: the torch model itself (see infer/backends.py)

    @classmethod
    def from_checkpoint(
        cls,
        path: Path | str,
        device: str | torch.device = "auto",
        precision: str = "auto",
        official_day: OfficialDomain = "a",
        backend: Backend = "torch",
    ) -> Translator:
        """``backend``: torch, onnxruntime or openvino (CPU, fp32; the graphs are exported
        into the cache on first use), or auto (the fastest of those installed, measured)."""
        ckpt = load_checkpoint(as_path(path, "path"), official_day)
        return cls.from_loaded(ckpt, device, precision, backend)

    @classmethod
    def from_loaded(
        cls,
        ckpt: Checkpoint,
        device: str | torch.device = "auto",
        precision: str = "auto",
        backend: Backend = "torch",
    ) -> Translator:
        dev = resolve_device(str(device) if isinstance(device, torch.device) else device)
        prec = resolve_precision(precision, dev)
        check_backend(backend, dev, prec, compiled=False)
        model = build_generator(ckpt.config)
        state = {k: v.float() for k, v in ckpt.state_dict.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint weights do not match its {ckpt.config.arch} config: "
                f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:2]})"
            )
        model.eval().requires_grad_(False).to(dev)
        if dev.type == "cuda":
            model.to(memory_format=torch.channels_last)
        translator = cls(model, ckpt.config, dev, prec, ckpt.meta)
        translator.network = translator.backend_network(backend)
        return translator

    @property
    def weights_device(self) -> torch.device:
        """The device the weights are on, with its index (``device`` may say "cuda" alone: the
        current device of the thread that loaded them, which under torchrun is the rank's)."""
        for param in self.model.parameters():
            return param.device
        return self.device

    def backend_network(self, backend: Backend) -> Network | None:
        """The network for ``backend`` over this translator's model (None: torch)."""
        names = candidates(self.device, self.precision) if backend == "auto" else [backend]
        if names == ["torch"]:
            return None
        key = functools.cache(lambda: model_key(self.model, self.config))
        threads = torch.get_num_threads()  # the graph runtimes use as many as torch would
        networks: dict[str, Network] = {
            name: self._torch if name == "torch" else GraphNetwork(name, self._graph(key), threads)
            for name in names
        }
        return AutoNetwork(networks, key) if backend == "auto" else networks[backend]

    def _graph(self, key: Callable[[], str]) -> Callable[[Domain], Path]:
        return lambda to: cached_graph(self.model, self.config, to, key())

    def _torch(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        with self.autocast():
            return self.model(x, to)  # type: ignore[no-any-return]

    @classmethod
    def default(
        cls, device: str = "auto", precision: str = "auto", backend: Backend = "torch"
    ) -> Translator:
        """The bundled default model (MODEL.md says what it is and how good)."""
        from .registry import load_translator

        return load_translator(None, "a", device, precision, backend)

    def translate(
        self,
        images: np.ndarray,
        to: str,
        *,
        color: str = "rgb",
        quality: Quality = "auto",
        work_size: int | None = None,
        max_size: int | None = None,
        upsample: Upsampler = "guided",
        bars: BarsMode = "keep",
    ) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 image or a batch ``(N, H, W, 3)`` of one size, translated
        to ``to`` ('night' or 'day', any case) exactly as ``d2nvideo convert`` does it: at the
        model's working size (or ``quality``/``work_size``/``max_size``, as convert's options),
        guided upsampling back, and black bars the batch shares kept (``bars='translate'``
        translates them as scene). ``color='bgr'`` takes and returns OpenCV's channel order.
        Returns the same shape and dtype."""
        from .batch.settings import SizeSpec
        from .pipeline import translate_images
        from .video.bars import BarKeeper

        domain = normalise_domain(to)
        require(BarsMode, bars, "bars")
        size = SizeSpec(quality, work_size, max_size, upsample).resolve(self.meta)  # checked
        batch = list(_as_batch(images, color))
        kept = BarKeeper(enabled=bars == "keep").bars_of(batch)
        out = np.stack(translate_images(batch, self, domain, size, kept))
        if color == "bgr":
            out = np.ascontiguousarray(out[..., ::-1])
        return out if images.ndim == 4 else out[0]

    @property
    def backend(self) -> str:
        """What runs the network: torch, onnxruntime, openvino or ``auto: <choices>``."""
        return "torch" if self.network is None else str(getattr(self.network, "name", "?"))

    def compile(self) -> Translator:
        """Compile the network with torch.compile (worth it on a GPU; the first call of each
        frame size pays the compilation, so warm up before timing). Torch backend only."""
        if self.network is not None:
            raise UsageError(f"--compile needs --backend torch, not {self.backend}")
        if not hasattr(self.model, "_orig_mod"):  # compiled twice, it became a plain function
            self.model = torch.compile(self.model, dynamic=False)  # type: ignore[assignment]
        return self

    @property
    def multiple(self) -> int:
        return int(self.config.multiple)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.device, self.precision)

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [-1, 1] on ``self.device`` -> same shape, float32.

        Pads H and W (reflect) to the network's multiple and crops back, so any size works.
        """
        _check_tensor(x, to)
        network = self.network or self._torch
        return self._run(x, lambda padded: network(padded, to))

    @torch.inference_mode()
    def reconstruct_tensor(self, x: torch.Tensor, domain: Domain) -> torch.Tensor:
        """UNIT's within-domain reconstruction (encode and decode in ``domain``), as
        :meth:`translate_tensor`; a CycleGAN has none."""
        _check_tensor(x, domain)
        gen = getattr(self.model, "_orig_mod", self.model)  # compiled: the module inside
        if not isinstance(gen, UNITGenerator):
            raise UsageError(f"a {self.config.arch} model has no reconstruction")

        def net(padded: torch.Tensor) -> torch.Tensor:
            with self.autocast():
                return gen.reconstruct(padded, domain)

        return self._run(x, net)  # always on torch: the graphs hold the translations only

    def _run(self, x: torch.Tensor, net: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x.float(), self.multiple)  # float64 or half: the weights' type
        if self.device.type == "cuda":
            padded = padded.contiguous(memory_format=torch.channels_last)
        y = net(padded)
        return y[..., :h, :w].float()

    def reconstruct(self, frames: np.ndarray, domain: Domain) -> np.ndarray:
        """``(N, H, W, 3) uint8`` -> the UNIT reconstruction, the same shape."""
        x = to_tensor(_as_batch(frames, "rgb"), self.device)
        return from_tensor(self.reconstruct_tensor(x, domain))

    def __call__(self, frames: np.ndarray, to: Domain) -> np.ndarray:
        """``(N, H, W, 3) uint8`` RGB -> ``(N, H, W, 3) uint8`` in the ``to`` domain (one
        ``(H, W, 3)`` image comes back as a batch of one); anything else is a UsageError."""
        x = to_tensor(_as_batch(frames, "rgb"), self.device)
        return from_tensor(self.translate_tensor(x, to))


def _check_tensor(x: object, domain: object) -> None:
    """UsageError unless ``x`` is ``(B, 3, H, W)`` float and ``domain`` day or night."""
    if domain not in DOMAINS:
        raise UsageError(f"domain must be one of {DOMAINS}, not '{domain}'", domain)
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"expected a (B, 3, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise UsageError(f"expected a float tensor in [-1, 1], got {x.dtype}")
    if not x.shape[0] or not x.shape[2] or not x.shape[3]:
        raise UsageError(f"expected a batch of images, got an empty tensor {tuple(x.shape)}")


def _as_batch(images: object, color: str) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB from the public API's input, or a UsageError saying what is
    wrong with it (float images, wrong shapes and unknown channel orders are common)."""
    if color not in ("rgb", "bgr"):
        raise UsageError(f"color must be 'rgb' or 'bgr', not {color!r}", color)
    if not isinstance(images, np.ndarray):
        raise UsageError(f"expected a NumPy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise UsageError(
            f"expected uint8 images (0-255), got {images.dtype}: convert a float image in [0, 1] "
            "with (image * 255).round().astype(np.uint8)"
        )
    if images.ndim not in (3, 4) or images.shape[-1] != 3 or 0 in images.shape:
        raise UsageError(f"expected (H, W, 3) or (N, H, W, 3) images, got {images.shape}")
    batch = images if images.ndim == 4 else images[None]
    return np.ascontiguousarray(batch[..., ::-1] if color == "bgr" else batch)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of ``(B, C, H, W)`` up to multiples of ``multiple``, and to at
    least two multiples so the latent has more than one pixel (instance norm and the
    residual blocks' reflect padding need that)."""
    h, w = x.shape[-2:]
    ph = max((-h) % multiple, 2 * multiple - h)
    pw = max((-w) % multiple, 2 * multiple - w)
    if not ph and not pw:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def to_tensor(frames: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(N, H, W, 3) uint8`` -> ``(N, 3, H, W)`` float in [-1, 1] on ``device``.

    The uint8 data crosses to the device first (a quarter of the bytes of float) and is
    converted there. On the CPU NumPy converts it: the same arithmetic in one thread, where
    torch's two-thread elementwise ops wait for a core whenever another process holds it
    (issue 11: 35 ms for a 2-frame batch beside a training run).
    """
    t = torch.as_tensor(frames)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 frames, got {tuple(t.shape)} {t.dtype}")
    if device.type == "cpu":
        x = t.numpy().astype(np.float32)
        x /= np.float32(127.5)
        x -= np.float32(1.0)
        return torch.from_numpy(x).permute(0, 3, 1, 2)
    if device.type == "cuda":  # page-locked memory lets the copy run without blocking
        t = t.pin_memory()
    t = t.to(device, non_blocking=True).permute(0, 3, 1, 2)
    return t.float().div_(127.5).sub_(1.0)


def from_tensor(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` float in [-1, 1] -> ``(N, H, W, 3) uint8`` on the host."""
    if x.device.type == "cpu":  # in NumPy, as to_tensor
        y = x.detach().float().numpy() + np.float32(1.0)
        y *= np.float32(127.5)
        np.clip(np.rint(y, out=y), 0, 255, out=y)
        return np.ascontiguousarray(y.astype(np.uint8).transpose(0, 2, 3, 1))
    u8 = x.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()
