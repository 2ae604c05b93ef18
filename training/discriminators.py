"""Discriminators: UNIT's multi-scale PatchGAN and CycleGAN's 70x70 PatchGAN.

Both return a list of patch maps (one per scale) so the GAN losses treat them alike.
"""

from __future__ import annotations

import torch
from torch import nn

from d2nvideo.model.layers import Conv2dBlock, make_norm

from .config import DisConfig


class MultiScaleDiscriminator(nn.Module):
    """UNIT's MsImageDis: the same PatchGAN applied to the image at ``num_scales`` scales, each
    a 2x average-pooled copy of the last (mingyuliutw/UNIT networks.py)."""

    def __init__(self, cfg: DisConfig) -> None:
        super().__init__()
        self.cnns = nn.ModuleList(self._one_scale(cfg) for _ in range(cfg.num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @staticmethod
    def _one_scale(cfg: DisConfig) -> nn.Sequential:
        dim = cfg.width
        layers: list[nn.Module] = [Conv2dBlock(3, dim, 4, 2, 1, "none", "lrelu", cfg.pad_type)]
        for _ in range(cfg.n_layers - 1):
            layers.append(Conv2dBlock(dim, dim * 2, 4, 2, 1, cfg.norm, "lrelu", cfg.pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for cnn in self.cnns:
            outputs.append(cnn(x))
            x = self.downsample(x)
        return outputs


class PatchDiscriminator(nn.Module):
    """CycleGAN's NLayerDiscriminator (junyanz/pytorch-CycleGAN-and-pix2pix): with 3 layers
    each output judges a 70x70 patch."""

    def __init__(self, cfg: DisConfig) -> None:
        super().__init__()
        w = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < cfg.n_layers else 1
            layers.append(nn.Conv2d(w * prev, w * mult, 4, stride, 1))
            norm = make_norm(cfg.norm, w * mult)
            if norm is not None:
                layers.append(norm)
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Conv2d(w * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.model(x)]
