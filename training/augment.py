"""Differentiable augmentation of what the discriminators see (DiffAugment, Zhao et al.,
"Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020).

A discriminator trained on a few hundred images learns them by heart, and its gradient then
teaches the generator those images' particulars instead of what the domain looks like. DiffAugment
draws the same random transforms for the real and the generated images a discriminator judges,
in both updates (the generator's loss goes through the transform, which is differentiable), so
the discriminator never sees an image twice the same way and the generator cannot win by
producing augmented-looking images: both sides of the comparison are augmented alike.

Policies (``dis.augment``), applied in this order, each image drawing its own parameters:

- ``colour``: brightness (+U(-0.5, 0.5)), saturation (x U(0, 2)) and contrast (x U(0.5, 1.5)),
  as the paper's code on images in [-1, 1]. It blurs the discriminator's sense of absolute
  brightness and colour, which is what day<->night is about: try the spatial ones first.
- ``translation``: a shift of up to 1/8 of each side, the uncovered border filled with zeros.
- ``cutout``: a zero square of half each side at a random place.

Randomness comes from torch's global generator, which a training checkpoint saves, so a resumed
run draws the same transforms.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def diff_augment(x: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    """``x`` (N, C, H, W) in [-1, 1] augmented by each policy in order; ``x`` itself when the
    policy is empty."""
    for name in policy:
        x = _OPS[name](x)
    return x


def _rand(x: torch.Tensor) -> torch.Tensor:
    """One uniform [0, 1) draw per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def colour(x: torch.Tensor) -> torch.Tensor:
    x = x + (_rand(x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x) + 0.5) + mean


def translation(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,)).tolist()
    dx = torch.randint(-sx, sx + 1, (n,)).tolist()
    padded = F.pad(x, (sx, sx, sy, sy))
    shifted = [
        padded[i, :, sy - a : sy - a + h, sx - b : sx - b + w]
        for i, (a, b) in enumerate(zip(dy, dx, strict=True))
    ]
    return torch.stack(shifted)


def cutout(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    # the square's centre anywhere in the image (it may hang over an edge), as the paper's code
    cy = torch.randint(0, h, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), device=x.device)
    top, left = cy - ch // 2, cx - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"colour": colour, "translation": translation, "cutout": cutout}
