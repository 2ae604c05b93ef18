"""Building blocks shared by the generator architectures.

Layer layout and layer norm follow the official UNIT/MUNIT code (mingyuliutw/UNIT, networks.py),
so that an official ``gen_XXXXXXXX.pt`` maps onto these modules by renaming keys only.
"""

from __future__ import annotations

import torch
from torch import nn

from ..choices import Activation, Norm, Padding, values

THIN = 16  # output channels at or below which CPU training runs the conv channels-last


class LayerNorm(nn.Module):
    """Per-sample layer norm over (C, H, W) with a per-channel affine, as in UNIT/MUNIT.

    Uses the unbiased std and ``(x - mean) / (std + eps)`` exactly as the official code does, so
    imported weights give the same outputs. Unlike ``nn.GroupNorm(1, C)`` the eps sits outside
    the square root.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1).float()
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1).view(-1, 1, 1, 1)
        y = ((x.float() - mean) / (std + self.eps)).to(x.dtype)
        return y * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def make_norm(kind: Norm, channels: int) -> nn.Module | None:
    if kind == "none":
        return None
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "layer":
        return LayerNorm(channels)
    raise ValueError(f"unknown norm {kind!r}; expected one of {values(Norm)}")


def make_activation(kind: Activation) -> nn.Module | None:
    table: dict[str, nn.Module | None] = {
        "relu": nn.ReLU(inplace=True),
        "lrelu": nn.LeakyReLU(0.2, inplace=True),
        "tanh": nn.Tanh(),
        "none": None,
    }
    if kind not in table:
        raise ValueError(f"unknown activation {kind!r}; expected one of {values(Activation)}")
    return table[kind]


def make_pad(kind: Padding, size: int) -> nn.Module:
    if kind == "reflect":
        return nn.ReflectionPad2d(size)
    if kind == "replicate":
        return nn.ReplicationPad2d(size)
    if kind == "zero":
        return nn.ZeroPad2d(size)
    raise ValueError(f"unknown padding {kind!r}; expected one of {values(Padding)}")


class Blur(nn.Module):
    """A fixed 3x3 binomial low-pass ([1, 2, 1] x [1, 2, 1] / 16) on each channel, size kept.

    Anti-aliased downsampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML
    2019): before a stride-2 conv it takes out what the subsampling would fold into aliases, so
    that a scene that moves by a pixel or less gives a moved output rather than a different one
    (flicker in video). Reflect-padded whatever the network's padding (zeros would dim the
    border). No parameters, and its buffer is not saved: the keys are the plain layout's.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        self.kernel: torch.Tensor
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.pad = nn.ReflectionPad2d(1)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(self.pad(x), self.kernel, groups=self.channels)


class Conv2dBlock(nn.Module):
    """[blur ->] pad -> conv -> norm -> activation (UNIT's Conv2dBlock; ``blur`` low-passes the
    input first, for an anti-aliased strided conv)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        padding: int,
        norm: Norm = "none",
        activation: Activation = "relu",
        pad_type: Padding = "reflect",
        blur: bool = False,
    ) -> None:
        super().__init__()
        self.blur = Blur(in_ch) if blur else None
        self.pad = make_pad(pad_type, padding)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, bias=True)
        self.norm = make_norm(norm, out_ch)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur is not None:
            x = self.blur(x)
        x = self.pad(x)
        if self.conv.out_channels <= THIN and x.device.type == "cpu" and torch.is_grad_enabled():
            # oneDNN's weight gradient for convolutions with few output channels is several
            # times slower in NCHW than in channels-last (49 vs 17 ms for the decoder's last
            # 32->16 conv at 160x160, batch 3): the same maths, laid out for the backward.
            x = self.conv(x.contiguous(memory_format=torch.channels_last)).contiguous()
        else:
            x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ResBlock(nn.Module):
    """Two 3x3 conv blocks with an identity skip (UNIT's ResBlock)."""

    def __init__(self, dim: int, norm: Norm, activation: Activation, pad_type: Padding) -> None:
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm, activation, pad_type),
            Conv2dBlock(dim, dim, 3, 1, 1, norm, "none", pad_type),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


def res_blocks(
    n: int, dim: int, norm: Norm, activation: Activation, pad_type: Padding
) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(dim, norm, activation, pad_type) for _ in range(n)))
