"""The UNIT generator (Liu, Breuel and Kautz, "Unsupervised Image-to-Image Translation Networks",
NIPS 2017): two VAE encoder/decoder pairs, one per domain, that share a latent space.

Per domain an encoder (7x7 conv, stride-2 downsamplings, residual blocks) and a decoder (residual
blocks, 2x upsampling + 5x5 conv with layer norm, 7x7 conv + tanh), all with reflect padding, as
in the official code. The paper ties the weights of the encoders' last layers and the decoders'
first layers so both domains map into one latent code; ``n_shared`` residual blocks on each side
are shared here (0 gives the independent autoencoders of the maintained official code, whose
shared latent then comes from the losses alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..choices import DOMAINS, Activation, Domain, Norm, Padding, check, other_domain
from .layers import Conv2dBlock, res_blocks

__all__ = ["DOMAINS", "UNITConfig", "UNITGenerator", "other_domain"]
# Bounds far beyond any network trained here, so a damaged or hostile file is refused before
# it asks for terabytes (the official UNIT: width 64, 2 downsamplings, 4 blocks, kernel 7)
MAX_WIDTH, MAX_BLOCKS, MAX_KERNEL = 4096, 64, 31


@dataclass(frozen=True)
class UNITConfig:
    arch: str = "unit"
    width: int = 64  # channels after the 7x7 stem; doubled by each downsampling
    n_downsample: int = 2  # stride-2 convolutions in each encoder (and 2x upsamplings back)
    n_res: int = 4  # residual blocks in each encoder and in each decoder
    n_shared: int = 1  # of those, shared between domains: encoder's last, decoder's first
    norm: Norm = "instance"  # encoder and residual-block norm
    activation: Activation = "relu"
    pad_type: Padding = "reflect"
    up_kernel: int = 5  # kernel of the conv after each 2x upsampling (official UNIT: 5)
    out_kernel: int = 7  # kernel of the decoder's last conv, features -> RGB (official: 7)
    antialias: bool = False  # blur before each stride-2 conv, bilinear 2x upsampling

    def __post_init__(self) -> None:
        if self.arch != "unit":
            raise ValueError(f"UNITConfig.arch must be 'unit', got {self.arch!r}")
        if not (1 <= self.width <= MAX_WIDTH and 0 <= self.n_downsample <= 8):
            raise ValueError(
                f"width must be 1-{MAX_WIDTH} and n_downsample 0-8, got {self.width} and "
                f"{self.n_downsample}"
            )
        if not 0 <= self.n_res <= MAX_BLOCKS:
            raise ValueError(f"n_res must be 0-{MAX_BLOCKS}, got {self.n_res}")
        for name, k in (("up_kernel", self.up_kernel), ("out_kernel", self.out_kernel)):
            if not 1 <= k <= MAX_KERNEL or k % 2 == 0:
                raise ValueError(f"{name} must be an odd number 1-{MAX_KERNEL}, got {k}")
        if not 0 <= self.n_shared <= self.n_res:
            raise ValueError(f"n_shared must be between 0 and n_res={self.n_res}")
        if not isinstance(self.antialias, bool):
            raise ValueError(f"antialias must be true or false, got {self.antialias!r}")
        check(Norm, self.norm, "norm")
        check(Activation, self.activation, "activation")
        check(Padding, self.pad_type, "pad_type")

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.n_downsample

    @property
    def latent_channels(self) -> int:
        return self.width * 2**self.n_downsample


def _private_encoder(cfg: UNITConfig) -> nn.Sequential:
    layers: list[nn.Module] = [
        Conv2dBlock(3, cfg.width, 7, 1, 3, cfg.norm, cfg.activation, cfg.pad_type)
    ]
    dim = cfg.width
    for _ in range(cfg.n_downsample):
        layers.append(
            Conv2dBlock(
                dim, 2 * dim, 4, 2, 1, cfg.norm, cfg.activation, cfg.pad_type, cfg.antialias
            )
        )
        dim *= 2
    layers.append(res_blocks(cfg.n_res - cfg.n_shared, dim, cfg.norm, cfg.activation, cfg.pad_type))
    return nn.Sequential(*layers)


def _private_decoder(cfg: UNITConfig) -> nn.Sequential:
    dim = cfg.latent_channels
    layers: list[nn.Module] = [
        res_blocks(cfg.n_res - cfg.n_shared, dim, cfg.norm, cfg.activation, cfg.pad_type)
    ]
    for _ in range(cfg.n_downsample):
        # anti-aliased: bilinear, which is nearest followed by a reflect-padded [1, 2, 1] blur
        # (Blur's taps), in one cheap op; either module sits at the same index without
        # parameters, so the keys do not move
        if cfg.antialias:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        else:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        k = cfg.up_kernel
        layers.append(
            Conv2dBlock(dim, dim // 2, k, 1, k // 2, "layer", cfg.activation, cfg.pad_type)
        )
        dim //= 2
    k = cfg.out_kernel
    layers.append(Conv2dBlock(dim, 3, k, 1, k // 2, "none", "tanh", cfg.pad_type))
    return nn.Sequential(*layers)


class UNITGenerator(nn.Module):
    """Both domains' encoders and decoders, with the shared blocks held once.

    Images are ``(B, 3, H, W)`` float in [-1, 1] with H and W multiples of ``cfg.multiple``;
    latents are ``(B, cfg.latent_channels, H / m, W / m)``. ``encode`` returns the latent mean:
    training adds the unit-variance sample noise itself (the model draws no noise, so it never
    has to know a device).
    """

    def __init__(self, cfg: UNITConfig) -> None:
        super().__init__()
        self.cfg = cfg
        shared = (cfg.n_shared, cfg.latent_channels, cfg.norm, cfg.activation, cfg.pad_type)
        self.enc = nn.ModuleDict({d: _private_encoder(cfg) for d in DOMAINS})
        self.enc_shared = res_blocks(*shared)
        self.dec_shared = res_blocks(*shared)
        self.dec = nn.ModuleDict({d: _private_decoder(cfg) for d in DOMAINS})

    def encode(self, x: torch.Tensor, domain: Domain) -> torch.Tensor:
        return self.enc_shared(self.enc[domain](x))

    def decode(self, z: torch.Tensor, domain: Domain) -> torch.Tensor:
        return self.dec[domain](self.dec_shared(z))

    def translate(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        """``to`` is the target domain: day->night is decode_night(encode_day(x))."""
        return self.decode(self.encode(x, other_domain(to)), to)

    def reconstruct(self, x: torch.Tensor, domain: Domain) -> torch.Tensor:
        return self.decode(self.encode(x, domain), domain)

    def forward(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        return self.translate(x, to)
