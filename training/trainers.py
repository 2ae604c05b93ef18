"""Trainers that step: ``gen_step(batch)`` and ``dis_step(batch, fakes)`` each do one update and
return plain dicts of floats (the MUNIT/UNIT gen_update/dis_update split); ``step(batch)`` does
both, the generator first, then the discriminators on the translations the generator step made
(detached), as CycleGAN's trainer orders them: that spares the discriminator
step a generator forward pass of its own (the bundled recipe: 1.56 -> 1.46 s a step on 2 CPU
cores). The loop lives in ``train.py``.

Under DDP each network's forward runs through the wrapper exactly once per step: the generator
through a module that computes every image the step needs, the discriminators on real and fake
images concatenated.
"""

from __future__ import annotations

import contextlib
import copy
import random
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from d2nvideo.choices import DOMAINS, Domain, other_domain
from d2nvideo.errors import ConfigError
from d2nvideo.model import CycleGANGenerator, UNITGenerator, build_generator
from d2nvideo.model.runtime import autocast

from .augment import diff_augment
from .config import TrainConfig
from .forward import CycleGANForward, Discriminators, UNITForward, init_weights
from .losses import (
    VGGPerceptual,
    combine,
    kl,
    l1,
    lsgan_dis,
    lsgan_gen,
    luma_distribution,
    new_colour,
    shift_consistency,
    structure,
    temporal_consistency,
)

Batch = dict[str, torch.Tensor]


class ImagePool:
    """CycleGAN's history of generated images: D sees a mix of current and older fakes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif rng.random() < 0.5:
                i = rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


class Trainer:
    """Holds the networks, optimisers, schedulers and scalers of one run."""

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        precision: str,
        gen: UNITGenerator | CycleGANGenerator,
        gen_forward: nn.Module,
        dis: nn.Module,
        dis_forward: nn.Module,
        vgg: VGGPerceptual | None,
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.precision = precision
        self.gen = gen
        self.gen_forward = gen_forward
        self.dis = dis
        self.dis_forward = dis_forward
        self.vgg = vgg
        o = cfg.optim
        betas = (o.beta1, o.beta2)
        self.opt_g = torch.optim.Adam(
            gen.parameters(), lr=o.lr, betas=betas, weight_decay=o.weight_decay
        )
        self.opt_d = torch.optim.Adam(
            dis.parameters(), lr=o.lr, betas=betas, weight_decay=o.weight_decay
        )
        self.sched_g = _scheduler(self.opt_g, cfg)
        self.sched_d = _scheduler(self.opt_d, cfg)
        fp16 = precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.pools = {d: ImagePool(cfg.optim.pool_size) for d in DOMAINS}
        self.pool_rng = random.Random(cfg.train.seed)
        # train.ema: a moving average of the generator's weights, what export writes and the
        # sample grids show (the average of a GAN generator flickers less than its last step)
        self.gen_ema = None if cfg.train.ema == 0 else copy.deepcopy(gen).requires_grad_(False)
        self.ema_updates = 0  # generator steps averaged since the average (re)started

    # -- steps ----------------------------------------------------------------------------

    def dis_step(self, batch: Batch, fakes: Batch | None = None) -> dict[str, float]:
        """One discriminator update on ``batch`` and ``fakes`` (by domain: translations into
        it); without them the generator makes its own, as UNIT's dis_update does."""
        if fakes is None:
            with torch.no_grad(), self.autocast():
                fakes = {d: self._fake(batch[other_domain(d)], d) for d in DOMAINS}
        images = {
            d: self._augment(
                torch.cat([batch[d], self.pools[d].query(fakes[d].float(), self.pool_rng)])
            )
            for d in DOMAINS
        }
        with self.autocast():
            outputs = self.dis_forward(images)
        n = {d: batch[d].shape[0] for d in DOMAINS}

        def dis_loss() -> torch.Tensor:
            return _sum(
                lsgan_dis([o[: n[d]] for o in outputs[d]], [o[n[d] :] for o in outputs[d]])
                for d in DOMAINS
            )

        total, logs = combine({"dis": (self.cfg.loss.gan, dis_loss)})
        self._update(total, self.opt_d, self.scaler_d)
        return {"dis": logs["dis"]}

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """What a discriminator sees of real or generated images (``dis.augment``: DiffAugment,
        the same policy in both updates)."""
        return diff_augment(images, self.cfg.dis.augment)

    def _fake(self, x: torch.Tensor, to: Domain) -> torch.Tensor:
        """A translation as the generator step makes it (UNIT: from a sampled latent)."""
        if isinstance(self.gen, UNITGenerator):
            z = self.gen.encode(x, other_domain(to))
            return self.gen.decode(z + torch.randn_like(z), to)
        return self.gen.translate(x, to)

    def gen_step(self, batch: Batch) -> dict[str, float]:
        return self._gen_update(batch)[0]

    def _gen_update(self, batch: Batch) -> tuple[dict[str, float], Batch]:
        """One generator update: its losses and its translations by target domain, detached."""
        self.dis.requires_grad_(False)
        try:
            with self.autocast():
                out = self.gen_forward(batch)
                total, logs = combine(self._gen_terms(batch, out))
            self._update(total, self.opt_g, self.scaler_g)
        finally:
            self.dis.requires_grad_(True)
        self._update_average()
        return logs, {d: out[f"fake_{d}"].detach() for d in DOMAINS}

    @torch.no_grad()
    def _update_average(self) -> None:
        """Move the averaged generator ``1 - decay`` of the way to the generator, the decay
        ramping up to ``train.ema`` over its first updates (as TensorFlow's
        ExponentialMovingAverage with num_updates), so that a fresh run's random weights do
        not linger in the average for hundreds of steps."""
        if self.gen_ema is None:
            return
        self.ema_updates += 1
        decay = min(self.cfg.train.ema, (1 + self.ema_updates) / (10 + self.ema_updates))
        average = [p.data for p in self.gen_ema.parameters()]
        current = [p.data for p in self.gen.parameters()]
        torch._foreach_lerp_(average, current, 1.0 - decay)
        for mine, theirs in zip(self.gen_ema.buffers(), self.gen.buffers(), strict=True):
            mine.copy_(theirs)

    def restart_average(self) -> None:
        """Start the averaged generator again from the generator's weights (``train --init``
        loads new weights into the generator after the trainer is built)."""
        if self.gen_ema is not None:
            self.gen_ema.load_state_dict(self.gen.state_dict())
            self.ema_updates = 0

    def _gen_terms(self, batch: Batch, out: dict[str, torch.Tensor]) -> dict[str, Any]:
        w = self.cfg.loss

        def over_domains(fn: Any) -> Any:
            return lambda: _sum(fn(d) for d in DOMAINS)

        dis_nets: Any = self.dis.nets  # a ModuleDict keyed by domain
        terms = _per_direction(
            "gan",
            w.gan,
            w.gan_to_day,
            lambda d: lsgan_gen(dis_nets[d](self._augment(out[f"fake_{d}"]))),
            over_domains,
        )
        terms["cyc_x"] = (w.cyc_x, over_domains(lambda d: l1(out[f"cyc_{d}"], batch[d])))
        if self.cfg.model.arch == "unit":
            terms["recon_x"] = (w.recon_x, over_domains(lambda d: l1(out[f"rec_{d}"], batch[d])))
            terms["recon_kl"] = (w.recon_kl, over_domains(lambda d: kl(out[f"z_{d}"])))
            terms["cyc_kl"] = (w.cyc_kl, over_domains(lambda d: kl(out[f"z_cyc_{d}"])))
        else:
            terms["identity"] = (w.identity, over_domains(lambda d: l1(out[f"idt_{d}"], batch[d])))
        terms |= _image_terms(w, batch, out, over_domains)
        gen = self.gen
        terms |= _per_direction(
            "shift",
            w.shift,
            w.shift_to_day,
            lambda d: shift_consistency(lambda x: gen.translate(x, d), batch[other_domain(d)]),
            over_domains,
        )
        terms |= _per_direction(
            "temporal",
            w.temporal,
            w.temporal_to_day,
            lambda d: temporal_consistency(
                lambda x: gen.translate(x, d), batch[f"pairs_{other_domain(d)}"]
            ),
            over_domains,
        )
        if self.vgg is not None:
            vgg = self.vgg
            terms["vgg"] = (
                w.vgg,
                over_domains(lambda d: vgg(out[f"fake_{other_domain(d)}"], batch[d])),
            )
        return terms

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: Any) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def step(self, batch: Batch) -> dict[str, float]:
        """One training step: the generator update, then the discriminators' on its
        translations, then the schedules; returns every loss. In the run's first
        ``train.dis_warmup`` steps the generator stands still: fresh discriminators catch up
        with a trained generator (``train --init``) before it learns from them."""
        if self.sched_g.last_epoch < self.cfg.train.dis_warmup:
            dis = self.dis_step(batch)
            with warnings.catch_warnings():  # the generator's schedule counts these steps too
                warnings.filterwarnings(
                    "ignore", "Detected call of `lr_scheduler.step", UserWarning
                )
                self.end_step()
            return dis
        gen, fakes = self._gen_update(batch)
        dis = self.dis_step(batch, fakes)
        self.end_step()
        return {**dis, **gen}

    def end_step(self) -> None:
        self.sched_g.step()
        self.sched_d.step()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.device, self.precision)

    # -- samples and state ----------------------------------------------------------------

    @torch.no_grad()
    def samples(self, batch: Batch) -> tuple[torch.Tensor, list[str]]:
        """Rows per domain: input, reconstruction (UNIT), translation, cycle, as
        ``(rows, B, 3, h, w)`` in [-1, 1], noise-free (latent means), and each row's name.
        With ``train.ema`` they show the averaged generator, the one export writes."""
        gen = self.gen if self.gen_ema is None else self.gen_ema
        gen.eval()
        rows: list[torch.Tensor] = []
        labels: list[str] = []
        try:
            for d in DOMAINS:
                x = batch[d][:4]
                other = other_domain(d)
                fake = gen.translate(x, other)
                rows.append(x)
                labels.append(d)
                if isinstance(gen, UNITGenerator):
                    rows.append(gen.reconstruct(x, d))
                    labels.append("recon")
                rows += [fake, gen.translate(fake, d)]
                labels += [f"-> {other}", "cycle"]
        finally:
            gen.train()
        return torch.stack(rows).float().clamp(-1, 1), labels

    def state_dict(self) -> dict[str, Any]:
        average = {}
        if self.gen_ema is not None:
            average = {
                "gen_ema": self.gen_ema.state_dict(),
                "ema_decay": self.cfg.train.ema,  # export records it from here
                "ema_updates": self.ema_updates,
            }
        return average | {
            "gen": self.gen.state_dict(),
            "dis": self.dis.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "pools": {d: list(p.images) for d, p in self.pools.items()},
            "pool_rng": list(self.pool_rng.getstate()[1]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.load_state_dict(state["gen"])
        self.dis.load_state_dict(state["dis"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        _rates_from_schedule(self.sched_g)
        _rates_from_schedule(self.sched_d)
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        for d, images in state["pools"].items():
            self.pools[d].images = [t.to(self.device) for t in images]
        self.pool_rng.setstate((3, tuple(state["pool_rng"]), None))
        self._load_average(state)

    def _load_average(self, state: dict[str, Any]) -> None:
        if self.gen_ema is None:
            if "gen_ema" in state:  # the next state saved would drop it, and rotation the rest
                raise ConfigError(
                    f"the run keeps a moving average of its generator (train.ema "
                    f"{state.get('ema_decay')}); resuming with train.ema=0 would drop it: "
                    "keep train.ema, or start a new run from an export with --init"
                )
            return
        if "gen_ema" not in state:  # a run resumed with train.ema newly on averages from here
            self.restart_average()
            return
        self.gen_ema.load_state_dict(state["gen_ema"])
        self.ema_updates = int(state.get("ema_updates", 0))


def _sum(values: Any) -> torch.Tensor:
    items = list(values)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total  # type: ignore[no-any-return]


def _rates_from_schedule(sched: Any) -> None:
    """Set the optimiser's learning rates to what the schedule gives at its step. The saved
    rates are the schedule's own unless a resume changed ``train.steps`` (the linear policy's
    length); without this, the first resumed step of a run that had decayed to its end would
    run at a rate of 0."""
    if isinstance(sched, torch.optim.lr_scheduler.LambdaLR):
        for group, base, fn in zip(
            sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True
        ):
            group["lr"] = base * fn(sched.last_epoch)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    o, steps = cfg.optim, cfg.train.steps
    if o.lr_policy == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=o.lr_step, gamma=o.lr_gamma)
    if o.lr_policy == "linear":  # CycleGAN: constant for half the run, then linearly to zero
        half = steps // 2
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 1.0 - max(0, s - half) / max(1, steps - half)
        )
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def build_trainer(
    cfg: TrainConfig, device: torch.device, precision: str, distributed: bool
) -> Trainer:
    """Networks initialised as the official code does, moved to ``device``, DDP-wrapped when
    ``distributed``."""
    gen = build_generator(cfg.model)
    dis = Discriminators(cfg)
    init_weights(gen, cfg.optim.init)
    init_weights(dis, "gaussian")
    gen.to(device).train()
    dis.to(device).train()
    if isinstance(gen, UNITGenerator):
        gen_forward: nn.Module = UNITForward(gen)
    else:
        gen_forward = CycleGANForward(gen, cfg.loss.identity > 0)
    dis_forward: nn.Module = dis
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        gen_forward = DDP(gen_forward, device_ids=ids)
        dis_forward = DDP(dis, device_ids=ids)
    vgg = None
    if cfg.loss.vgg > 0 and cfg.loss.vgg_weights:
        from pathlib import Path

        vgg = VGGPerceptual(Path(cfg.loss.vgg_weights)).to(device)
    return Trainer(cfg, device, precision, gen, gen_forward, dis, dis_forward, vgg)


def _per_direction(
    name: str, weight: float, to_day: float | None, into: Any, over_domains: Any
) -> dict[str, Any]:
    """A term with one weight for both directions (``name``), or with ``to_day`` set, that
    weight for day->night and ``to_day`` for night->day (``NAME_to_day``). ``into(d)``: the
    term for the translations into domain ``d``."""
    if to_day is None:
        return {name: (weight, over_domains(into))}
    return {  # in DOMAINS order, as over_domains: a split of equal weights draws the same noise
        f"{name}_to_day": (to_day, lambda: into("day")),
        name: (weight, lambda: into("night")),
    }


def _image_terms(
    w: Any, batch: Batch, out: dict[str, torch.Tensor], over_domains: Any
) -> dict[str, Any]:
    """The terms beyond UNIT's, each per direction: SSIM structure and new colour between each
    input and its translation, and the luma histogram of each translation against its target
    domain's real batch."""

    def fake(d: Domain) -> torch.Tensor:
        return out[f"fake_{d}"]

    def source(d: Domain) -> torch.Tensor:
        return batch[other_domain(d)]

    def hist(d: Domain) -> torch.Tensor:
        return luma_distribution(fake(d), batch[d])

    def struct(d: Domain) -> torch.Tensor:
        return structure(source(d), fake(d), polarity=w.struct_polarity)

    terms = _per_direction("struct", w.struct, w.struct_to_day, struct, over_domains)
    terms |= _per_direction("hist", w.hist, w.hist_to_day, hist, over_domains)
    return terms | _per_direction(
        "colour", w.colour, w.colour_to_day, lambda d: new_colour(source(d), fake(d)), over_domains
    )
