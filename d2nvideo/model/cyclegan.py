"""The CycleGAN ResNet generator (Zhu et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix
``ResnetGenerator``), one per direction. The comparison baseline of the study.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..choices import DOMAINS, Domain, Norm, check
from .layers import make_norm
from .unit import MAX_BLOCKS, MAX_WIDTH


@dataclass(frozen=True)
class CycleGANConfig:
    arch: str = "cyclegan"
    width: int = 64  # ngf: channels after the 7x7 stem
    n_blocks: int = 9  # residual blocks: 6 (for 128px training) or 9 (256px and up)
    norm: Norm = "instance"

    def __post_init__(self) -> None:
        if self.arch != "cyclegan":
            raise ValueError(f"CycleGANConfig.arch must be 'cyclegan', got {self.arch!r}")
        if not (1 <= self.width <= MAX_WIDTH and 0 <= self.n_blocks <= MAX_BLOCKS):
            raise ValueError(
                f"width must be 1-{MAX_WIDTH} and n_blocks 0-{MAX_BLOCKS}, got {self.width} "
                f"and {self.n_blocks}"
            )
        check(Norm, self.norm, "norm")

    @property
    def multiple(self) -> int:
        return 4


def _norm_relu(kind: Norm, ch: int) -> list[nn.Module]:
    norm = make_norm(kind, ch)
    return ([norm] if norm is not None else []) + [nn.ReLU(True)]


class _ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: Norm) -> None:
        super().__init__()
        second = make_norm(norm, dim)
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            *_norm_relu(norm, dim),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            *([second] if second is not None else []),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def resnet_generator(cfg: CycleGANConfig) -> nn.Sequential:
    """c7s1-w, d2w, d4w, R4w x n_blocks, u2w, uw, c7s1-3, tanh."""
    w = cfg.width
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7), *_norm_relu(cfg.norm, w)]
    for mult in (1, 2):
        layers += [nn.Conv2d(w * mult, w * mult * 2, 3, 2, 1), *_norm_relu(cfg.norm, w * mult * 2)]
    layers += [_ResnetBlock(w * 4, cfg.norm) for _ in range(cfg.n_blocks)]
    for mult in (4, 2):
        layers += [
            nn.ConvTranspose2d(w * mult, w * mult // 2, 3, 2, 1, output_padding=1),
            *_norm_relu(cfg.norm, w * mult // 2),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class CycleGANGenerator(nn.Module):
    """One ResNet generator per target domain: ``gen['night']`` maps day to night."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gen = nn.ModuleDict({d: resnet_generator(cfg) for d in DOMAINS})

    def translate(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [-1, 1] -> the same shape in the ``to`` domain."""
        return self.gen[to](x)

    def forward(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        return self.translate(x, to)
