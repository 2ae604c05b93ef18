"""One object to run a generator: load a checkpoint, pick device and precision, translate."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import Checkpoint, load_checkpoint
from .choices import DOMAINS, Domain, OfficialDomain
from .errors import CheckpointError, UsageError
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
    ) -> None:
        self.model = model
        self.config = config
        self.device = device
        self.precision = precision
        self.meta = meta

    @classmethod
    def from_checkpoint(
        cls,
        path: Path | str,
        device: str | torch.device = "auto",
        precision: str = "auto",
        official_day: OfficialDomain = "a",
    ) -> Translator:
        ckpt = load_checkpoint(Path(path), official_day)
        return cls.from_loaded(ckpt, device, precision)

    @classmethod
    def from_loaded(
        cls, ckpt: Checkpoint, device: str | torch.device = "auto", precision: str = "auto"
    ) -> Translator:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        prec = resolve_precision(precision, dev)
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
        return cls(model, ckpt.config, dev, prec, ckpt.meta)

    def compile(self) -> Translator:
        """Compile the network with torch.compile (worth it on a GPU; the first call of each
        frame size pays the compilation, so warm up before timing)."""
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
        if to not in DOMAINS:
            raise UsageError(f"target domain must be one of {DOMAINS}, not '{to}'", to)
        return self._run(x, lambda padded: self.model(padded, to))

    @torch.inference_mode()
    def reconstruct_tensor(self, x: torch.Tensor, domain: Domain) -> torch.Tensor:
        """UNIT's within-domain reconstruction (encode and decode in ``domain``), as
        :meth:`translate_tensor`; a CycleGAN has none."""
        gen = self.model
        if not isinstance(gen, UNITGenerator):
            raise UsageError(f"a {self.config.arch} model has no reconstruction")
        return self._run(x, lambda padded: gen.reconstruct(padded, domain))

    def _run(self, x: torch.Tensor, net: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.multiple)
        if self.device.type == "cuda":
            padded = padded.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            y = net(padded)
        return y[..., :h, :w].float()  # type: ignore[no-any-return]

    def reconstruct(self, frames: np.ndarray, domain: Domain) -> np.ndarray:
        """``(N, H, W, 3) uint8`` -> the UNIT reconstruction, the same shape."""
        return from_tensor(self.reconstruct_tensor(to_tensor(frames, self.device), domain))

    def __call__(self, frames: np.ndarray, to: Domain) -> np.ndarray:
        """``(N, H, W, 3) uint8`` -> ``(N, H, W, 3) uint8`` in the ``to`` domain."""
        x = to_tensor(frames, self.device)
        return from_tensor(self.translate_tensor(x, to))


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
    converted there.
    """
    t = torch.as_tensor(frames)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 frames, got {tuple(t.shape)} {t.dtype}")
    if device.type == "cuda":  # page-locked memory lets the copy run without blocking
        t = t.pin_memory()
    t = t.to(device, non_blocking=True).permute(0, 3, 1, 2)
    return t.float().div_(127.5).sub_(1.0)


def from_tensor(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` float in [-1, 1] -> ``(N, H, W, 3) uint8`` on the host."""
    y = x.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()
