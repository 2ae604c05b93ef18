"""The networks as one training step runs them: under DDP each wrapper's forward runs exactly
once a step, the generator's through a module that computes every image the step needs
(``UNITForward``, ``CycleGANForward``), the discriminators on a dict of batches
(``Discriminators``); and UNIT's weight initialisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from d2nvideo.choices import DOMAINS, other_domain
from d2nvideo.model import CycleGANGenerator, UNITGenerator

from .config import TrainConfig
from .discriminators import MultiScaleDiscriminator, PatchDiscriminator

Batch = dict[str, torch.Tensor]


def init_weights(module: nn.Module, kind: str) -> None:
    """UNIT's weights_init: conv and linear weights by ``kind``, biases zero."""
    if kind == "default":
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=math.sqrt(2))
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Discriminators(nn.Module):
    """One discriminator per domain; ``forward`` judges a dict of image batches."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        kind = MultiScaleDiscriminator if cfg.model.arch == "unit" else PatchDiscriminator
        self.nets = nn.ModuleDict({d: kind(cfg.dis) for d in DOMAINS})

    def forward(self, images: dict[str, torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        return {d: self.nets[d](x) for d, x in images.items()}


class UNITForward(nn.Module):
    """Everything one UNIT generator step computes (official trainer's gen_update).

    The same maths as calling ``encode``/``decode`` per image batch, in fewer and larger
    calls: each decoder runs once on both domains' samples (its reconstruction and its
    translation), and the shared blocks run once per step and stage on both domains (the
    official code runs them once per decode, twice on the same sample). With batch norm,
    whose statistics would mix the domains, it keeps the per-domain calls."""

    def __init__(self, gen: UNITGenerator) -> None:
        super().__init__()
        self.gen = gen
        self.batched = gen.cfg.norm != "batch"

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if not self.batched:
            return self._per_domain(batch)
        g, out = self.gen, {}
        sizes = [batch[d].shape[0] for d in DOMAINS]
        z = g.enc_shared(torch.cat([g.enc[d](batch[d]) for d in DOMAINS]))
        # the noise is drawn per domain in the order the per-domain calls draw it
        sample = torch.cat([zd + torch.randn_like(zd) for zd in z.split(sizes)])
        shared = g.dec_shared(sample)
        for src, z_src in zip(DOMAINS, z.split(sizes), strict=True):
            out[f"z_{src}"] = z_src
        for dst in DOMAINS:  # this decoder's reconstruction and translation in one call
            decoded = g.dec[dst](shared).split(sizes)
            for src, image in zip(DOMAINS, decoded, strict=True):
                out[f"rec_{src}" if src == dst else f"fake_{dst}"] = image
        fakes = [out[f"fake_{other_domain(src)}"] for src in DOMAINS]
        z_cyc = g.enc_shared(
            torch.cat([g.enc[other_domain(src)](f) for src, f in zip(DOMAINS, fakes, strict=True)])
        )
        noisy = torch.cat([zc + torch.randn_like(zc) for zc in z_cyc.split(sizes)])
        back = g.dec_shared(noisy).split(sizes)
        for src, z_src, h in zip(DOMAINS, z_cyc.split(sizes), back, strict=True):
            out[f"z_cyc_{src}"] = z_src
            out[f"cyc_{src}"] = g.dec[src](h)
        return out

    def _per_domain(self, batch: Batch) -> dict[str, torch.Tensor]:
        g, out = self.gen, {}
        for src in DOMAINS:
            dst = other_domain(src)
            z = g.encode(batch[src], src)
            sample = z + torch.randn_like(z)  # the VAE's reparameterised sample (unit variance)
            out[f"z_{src}"] = z
            out[f"rec_{src}"] = g.decode(sample, src)
            out[f"fake_{dst}"] = g.decode(sample, dst)
        for src in DOMAINS:
            dst = other_domain(src)
            z_cyc = g.encode(out[f"fake_{dst}"], dst)
            out[f"z_cyc_{src}"] = z_cyc
            out[f"cyc_{src}"] = g.decode(z_cyc + torch.randn_like(z_cyc), src)
        return out


class CycleGANForward(nn.Module):
    """Everything one CycleGAN generator step computes."""

    def __init__(self, gen: CycleGANGenerator, identity: bool) -> None:
        super().__init__()
        self.gen = gen
        self.identity = identity

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        g, out = self.gen, {}
        for src in DOMAINS:
            dst = other_domain(src)
            out[f"fake_{dst}"] = g.translate(batch[src], dst)
            out[f"cyc_{src}"] = g.translate(out[f"fake_{dst}"], src)
            if self.identity:
                out[f"idt_{src}"] = g.translate(batch[src], src)
        return out
