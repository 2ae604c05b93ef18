"""The checks a training config passes when it is built (``TrainConfig.__post_init__``): the
choices, ranges and bounds its keys' comments document (configs/*.yaml), and the combinations
that would fail later inside torch or numpy, each refused with a message naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from d2nvideo.choices import (
    Balance,
    DisAugment,
    Init,
    LRPolicy,
    Norm,
    Padding,
    Precision,
    StructPolarity,
    Twilight,
    values,
)
from d2nvideo.errors import ConfigError
from d2nvideo.model.unit import MAX_BLOCKS as UNIT_MAX_BLOCKS
from d2nvideo.model.unit import MAX_WIDTH as UNIT_MAX_WIDTH

if TYPE_CHECKING:
    from .config import LossConfig, TrainConfig


def check_config(cfg: TrainConfig) -> None:
    """Raise ConfigError, naming the key, for the first value ``cfg`` may not have."""
    _check_choices(cfg)
    _check_counts(cfg)
    _check_ranges(cfg)
    if cfg.train.dis_warmup >= cfg.train.steps:
        raise ConfigError(
            f"config key 'train.dis_warmup' ({cfg.train.dis_warmup}) must be below "
            f"train.steps ({cfg.train.steps}): the generator would never train"
        )
    _check_bounds(cfg)
    _check_crop(cfg)
    _check_pairs(cfg)
    if cfg.loss.vgg > 0 and not cfg.loss.vgg_weights:
        raise ConfigError(
            "config key 'loss.vgg_weights' must name a local VGG16 weights file when "
            "loss.vgg > 0 (d2nvideo never downloads weights)"
        )


def _check_choices(cfg: TrainConfig) -> None:
    _check_choice("optim.lr_policy", cfg.optim.lr_policy, LRPolicy)
    _check_choice("optim.init", cfg.optim.init, Init)
    _check_choice("train.precision", cfg.train.precision, Precision)
    _check_choice("data.twilight", cfg.data.twilight, Twilight)
    _check_choice("data.balance", cfg.data.balance, Balance)
    _check_choice("dis.norm", cfg.dis.norm, Norm)
    _check_choice("dis.pad_type", cfg.dis.pad_type, Padding)
    _check_choice("loss.struct_polarity", cfg.loss.struct_polarity, StructPolarity)
    for policy in cfg.dis.augment:
        _check_choice("dis.augment", policy, DisAugment)
    if len(set(cfg.dis.augment)) < len(cfg.dis.augment):
        raise ConfigError(f"config key 'dis.augment' names a policy twice: {cfg.dis.augment}")


def _check_counts(cfg: TrainConfig) -> None:
    t, d = cfg.train, cfg.dis
    if t.batch_size > MAX_BATCH:  # 1e8 ran out of memory after 10 minutes; 1e30 overflowed
        raise ConfigError(
            f"config key 'train.batch_size' must be at most {MAX_BATCH} (images per domain per "
            f"step), got {shown(t.batch_size)}"
        )
    for key, value in (
        ("train.steps", t.steps),
        ("train.batch_size", t.batch_size),
        ("train.log_every", t.log_every),
        ("train.image_every", t.image_every),
        ("train.checkpoint_every", t.checkpoint_every),
        ("train.keep_checkpoints", t.keep_checkpoints),
        ("dis.num_scales", d.num_scales),
        ("dis.n_layers", d.n_layers),
    ):
        if value < 1:
            raise ConfigError(f"config key '{key}' must be at least 1, got {value}")
        if value > MAX_COUNT:
            raise ConfigError(
                f"config key '{key}' must be at most {MAX_COUNT:,}, got {shown(value)}"
            )


MAX_COUNT = 2**31 - 1  # steps, batch and the other counts
MAX_BATCH = 4096
# 1e30 forked until the machine stopped. A fixed bound, not this machine's: a run saved on a
# larger one resumes and exports here (the loader uses at most 4 a core, see training/data.py)
MAX_WORKERS = 256


_LOSS_WEIGHTS = (
    "gan",
    "recon_x",
    "recon_kl",
    "cyc_x",
    "cyc_kl",
    "identity",
    "struct",
    "hist",
    "colour",
    "shift",
    "temporal",
    "vgg",
)


def _check_ranges(cfg: TrainConfig) -> None:
    """The ranges the configs' comments document (configs/*.yaml), NaN and infinity refused."""
    o = cfg.optim
    rules: list[tuple[str, float, Callable[[float], bool], str]] = [
        *((f"loss.{k}", getattr(cfg.loss, k), _nonnegative, ">= 0") for k in _LOSS_WEIGHTS),
        # and not 0 either: it weighs the discriminators' loss too (gan_to_day or not)
        ("loss.gan", cfg.loss.gan, lambda v: v > 0, "> 0 (it weighs the discriminators' loss too)"),
        ("optim.lr", o.lr, lambda v: v > 0, "> 0"),
        ("optim.beta1", o.beta1, lambda v: 0 <= v < 1, "in [0, 1)"),
        ("optim.beta2", o.beta2, lambda v: 0 <= v < 1, "in [0, 1)"),
        ("optim.weight_decay", o.weight_decay, _nonnegative, ">= 0"),
        ("optim.lr_gamma", o.lr_gamma, lambda v: v > 0, "> 0"),
        ("optim.lr_step", o.lr_step, lambda v: v >= 1, "at least 1"),
        ("optim.pool_size", o.pool_size, _nonnegative, ">= 0"),
        ("data.resize", cfg.data.resize, _nonnegative, ">= 0"),
        (
            "data.workers",
            cfg.data.workers,
            lambda v: 0 <= v <= MAX_WORKERS,
            f"from 0 to {MAX_WORKERS}",
        ),
        ("train.dis_warmup", cfg.train.dis_warmup, _nonnegative, ">= 0"),
        ("train.ema", cfg.train.ema, lambda v: 0 <= v < 1, "in [0, 1)"),
        ("dis.width", cfg.dis.width, lambda v: v >= 1, "at least 1"),
    ]
    for key in (
        "gan_to_day",
        "struct_to_day",
        "hist_to_day",
        "colour_to_day",
        "shift_to_day",
        "temporal_to_day",
    ):
        if getattr(cfg.loss, key) is not None:
            rules.append((f"loss.{key}", getattr(cfg.loss, key), _nonnegative, ">= 0"))
    if cfg.train.max_minutes is not None:
        rules.append(("train.max_minutes", cfg.train.max_minutes, lambda v: v > 0, "> 0"))
    for key, value, ok, wording in rules:
        # an int is finite (and may be too large for math.isfinite's float)
        if not ((isinstance(value, int) or math.isfinite(value)) and ok(value)):
            raise ConfigError(f"config key '{key}' must be {wording}, got {value}")


MAX_SIDE = 16384  # data.crop and data.resize: past 8K video, before any allocation fails
# model.width and dis.width (channels, which each downsampling doubles), model.n_res and
# n_blocks (residual blocks: UNIT 4, CycleGAN 9): the generators' own bounds, which an
# inference checkpoint is held to as well
MAX_WIDTH, MAX_BLOCKS = UNIT_MAX_WIDTH, UNIT_MAX_BLOCKS
MAX_DOWNSAMPLE = 8  # as UNITConfig's; 2**8 divides a crop of at most MAX_SIDE many times
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit; the data streams' seeds must be >= 0


def _check_bounds(cfg: TrainConfig) -> None:
    """Values the type checks pass that would fail later inside torch or numpy: a seed out of
    range, networks wider or deeper than any machine holds."""
    m, seed = cfg.model, cfg.train.seed
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"config key 'train.seed' must be in [0, {MAX_SEED}], got {seed}")
    for key, value, most in (
        ("data.resize", cfg.data.resize, MAX_SIDE),
        ("model.width", m.width, MAX_WIDTH),
        ("dis.width", cfg.dis.width, MAX_WIDTH),
        ("model.n_res", getattr(m, "n_res", 0), MAX_BLOCKS),
        ("model.n_blocks", getattr(m, "n_blocks", 0), MAX_BLOCKS),
        ("model.n_downsample", getattr(m, "n_downsample", 0), MAX_DOWNSAMPLE),
    ):
        if value > most:
            raise ConfigError(f"config key '{key}' must be at most {most}, got {value}")
    n = getattr(m, "n_downsample", 2)  # CycleGAN's generator downsamples twice
    if m.width * 2**n > MAX_WIDTH:
        raise ConfigError(
            f"config key 'model.width' ({m.width}) doubled by {n} downsamplings makes "
            f"{m.width * 2**n} channels: the widest layer may have at most {MAX_WIDTH}"
        )


def _check_crop(cfg: TrainConfig) -> None:
    """A crop the networks can take: multiples of the generator's ``multiple``, no larger than
    MAX_SIDE, and room for its kernels, the discriminators' downsamplings and loss.shift."""
    m, crop = cfg.model, cfg.data.crop
    if min(crop) < 4 * m.multiple:
        raise ConfigError(f"config key 'data.crop' is too small: {crop}")
    if any(side % m.multiple or side > MAX_SIDE for side in crop):
        raise ConfigError(
            f"config key 'data.crop' must be multiples of {m.multiple} (the {m.arch} model's "
            f"2**downsamplings) of at most {MAX_SIDE} pixels, got {list(crop)}"
        )
    _check_kernels(cfg)
    _check_dis_depth(cfg)
    if max(cfg.loss.shift, cfg.loss.shift_to_day or 0) > 0 and min(crop) <= 24:
        raise ConfigError(
            f"loss.shift compares the crop less a 12-pixel border: data.crop {list(crop)} "
            "must be larger than 24 on each side"
        )


def _check_kernels(cfg: TrainConfig) -> None:
    """UNIT's decoder kernels must fit the images they slide over: ``out_kernel`` the crop,
    ``up_kernel`` the smallest upsampled map (crop / 2**(n_downsample - 1))."""
    m, side = cfg.model, min(cfg.data.crop)
    kernels = [("out_kernel", getattr(m, "out_kernel", 1), side, "data.crop's shorter side")]
    n = getattr(m, "n_downsample", 0)
    if n:
        where = f"the first upsampled map (data.crop / {2 ** (n - 1)})"
        kernels.append(("up_kernel", getattr(m, "up_kernel", 1), side // 2 ** (n - 1), where))
    for name, kernel, most, where in kernels:
        if kernel > most:
            raise ConfigError(
                f"config key 'model.{name}' ({kernel}) must be at most {most}, {where}"
            )


def _check_dis_depth(cfg: TrainConfig) -> None:
    """The discriminators' stride-2 layers must leave a patch map of at least 1x1 at the crop
    size: UNIT's multi-scale one needs 2**n_layers pixels at its smallest scale (the crop
    halved num_scales - 1 times); CycleGAN's PatchGAN (one scale) 3 * 2**n_layers."""
    d, side = cfg.dis, min(cfg.data.crop)
    layers = min(d.n_layers, 64)  # the crop is at most 2**14: more fail alike, and 2**n is cheap
    if cfg.model.arch == "unit":
        smallest = -(-side // 2 ** min(d.num_scales - 1, 64))
        need, rule = 2**layers, "2**n_layers"
    else:
        smallest, need, rule = side, 3 * 2**layers, "3 * 2**n_layers"
    rule += f" = {need}" if layers == d.n_layers else f" (n_layers {d.n_layers})"
    if smallest < need:
        raise ConfigError(
            f"config keys 'dis.n_layers' ({d.n_layers}) and 'dis.num_scales' ({d.num_scales}) "
            f"downsample data.crop's shorter side ({side}) to nothing: the smallest scale "
            f"({smallest} px) must be at least {rule}"
        )


def temporal_weights(loss: LossConfig) -> dict[str, tuple[float, str]]:
    """``loss.temporal``'s weight and config key by the domain whose frame pairs it learns
    from: day pairs for day->night (``temporal``), night pairs for night->day
    (``temporal_to_day``, or ``temporal`` where that is None)."""
    own = (loss.temporal, "temporal")
    if loss.temporal_to_day is None:
        return {"day": own, "night": own}
    return {"day": own, "night": (loss.temporal_to_day, "temporal_to_day")}


def _check_pairs(cfg: TrainConfig) -> None:
    """A ``loss.temporal`` weight without the pairs it needs is refused, not silently unused."""
    for domain, (weight, key) in temporal_weights(cfg.loss).items():
        if weight > 0 and not getattr(cfg.data, f"pairs_{domain}"):
            inherited = domain == "night" and key == "temporal"
            off = "set loss.temporal_to_day=0 for day->night alone" if inherited else "set it to 0"
            raise ConfigError(
                f"config key 'loss.{key}' ({weight}) needs consecutive frames in "
                f"'data.pairs_{domain}' (folders of NAME_a/NAME_b image pairs): "
                f"give them, or {off}"
            )


def _nonnegative(value: float) -> bool:
    return value >= 0


def _check_choice(key: str, value: str, kind: Any) -> None:
    allowed = values(kind)
    if value not in allowed:
        raise ConfigError(
            f"config key '{key}' must be one of {'|'.join(allowed)}, got {shown(value)}"
        )


def shown(value: Any) -> str:
    """``value``'s repr, cut to a line's worth (a list nested a thousand deep is one value)."""
    try:
        text = repr(value)
    except ValueError:  # Python prints no integer of more than 4,300 digits
        return f"an integer of {value.bit_length() * 0.30103:,.0f} digits"
    return text if len(text) <= 80 else text[:77] + "..."
