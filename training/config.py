"""Typed training configuration: frozen dataclasses, one source of truth, loaded from YAML.

The loader rejects unknown keys and wrong types with a message naming the key. ``--set
section.key=value`` overrides go through the same checks.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
)
from d2nvideo.errors import ConfigError
from d2nvideo.fileio import require_file
from d2nvideo.model import ModelConfig, UNITConfig, config_from_dict

from .config_checks import check_config, shown


@dataclass(frozen=True)
class DataConfig:
    day: tuple[str, ...] = ()  # folders of day images (searched recursively)
    night: tuple[str, ...] = ()  # folders of night images
    nexet_csv: str | None = None  # NEXET train.csv (image_filename,lighting,city)
    bdd_json: str | None = None  # BDD100K label JSON (list of {name, attributes.timeofday})
    images: str | None = None  # the image folder that nexet_csv / bdd_json names refer to
    relabeled: str | None = None  # a 'd2nvideo relabel' output folder (its train lists)
    twilight: Twilight = "drop"  # NEXET Twilight / BDD dawn/dusk: dropped or taken as a domain
    resize: int = 286  # shorter side before cropping, pixels; 0 keeps the size
    crop: tuple[int, int] = (256, 256)  # (height, width) of the random crop
    flip: bool = True  # random horizontal flip
    balance: Balance = "image"  # every image, or every source folder, equally often
    workers: int = 2  # DataLoader worker processes; 0 loads in the training process
    pairs_day: tuple[str, ...] = ()  # folders of consecutive day frames NAME_a/NAME_b (temporal)
    pairs_night: tuple[str, ...] = ()  # folders of consecutive night frames (temporal_to_day)


@dataclass(frozen=True)
class DisConfig:
    width: int = 64  # channels of the first layer, doubled per layer
    n_layers: int = 4  # stride-2 conv layers per scale (UNIT 4; CycleGAN PatchGAN 3)
    num_scales: int = 3  # image scales judged (UNIT 3; CycleGAN 1)
    norm: Norm = "none"
    pad_type: Padding = "reflect"
    augment: tuple[DisAugment, ...] = ()  # DiffAugment on what D judges: colour|translation|cutout


@dataclass(frozen=True)
class LossConfig:
    gan: float = 1.0  # adversarial (LSGAN)
    gan_to_day: float | None = None  # the generator's weight for night->day alone; None: gan
    recon_x: float = 10.0  # UNIT: VAE reconstruction L1
    recon_kl: float = 0.01  # UNIT: KL of the latent
    cyc_x: float = 10.0  # cycle reconstruction L1 (UNIT and CycleGAN)
    cyc_kl: float = 0.01  # UNIT: KL of the cycle latent
    identity: float = 0.0  # CycleGAN: identity L1 (0.5 * cyc_x in the paper's setting)
    struct: float = 0.0  # SSIM structure term between input and translation (not in UNIT)
    struct_to_day: float | None = None  # its weight for night->day alone; None: struct
    struct_polarity: StructPolarity = "keep"  # keep: an edge whose contrast flips costs; free: not
    hist: float = 0.0  # luma histogram of each translation against its target domain's batch
    hist_to_day: float | None = None  # its weight for night->day alone; None: hist
    colour: float = 0.0  # local colour a translation adds that its input did not have
    colour_to_day: float | None = None  # its weight for night->day alone; None: colour
    shift: float = 0.0  # a translation moved a few pixels against the moved input's (flicker)
    shift_to_day: float | None = None  # its weight for night->day alone; None: shift
    temporal: float = 0.0  # a clip's next frame's translation warped back against this one's
    temporal_to_day: float | None = None  # its weight for night->day alone; None: temporal
    vgg: float = 0.0  # perceptual loss between input and translation (needs vgg_weights)
    vgg_weights: str | None = None  # local torchvision VGG16 state dict (.pth); never downloaded


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 0.0001  # Adam learning rate (UNIT 1e-4; CycleGAN 2e-4)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    weight_decay: float = 0.0001  # Adam weight decay (UNIT 1e-4; CycleGAN 0)
    lr_policy: LRPolicy = "step"
    lr_step: int = 100000  # step: multiply by lr_gamma every lr_step steps
    lr_gamma: float = 0.5  # step: the factor
    init: Init = "kaiming"  # generator weight init
    pool_size: int = 0  # history of generated images shown to D (CycleGAN 50; 0 off)


@dataclass(frozen=True)
class LoopConfig:
    steps: int = 1000000  # training iterations (one D and one G update each)
    batch_size: int = 1  # images per domain per step, per process
    precision: Precision = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device: str = "auto"  # auto|cpu|cuda
    seed: int = 1  # seeds data order, augmentation, init and noise
    log_every: int = 100  # steps between scalar logs
    image_every: int = 1000  # steps between sample grids
    checkpoint_every: int = 10000  # steps between training-state checkpoints
    keep_checkpoints: int = 3  # training states kept (oldest deleted)
    max_minutes: float | None = None  # wall-clock budget; ends cleanly with a checkpoint
    dis_warmup: int = 0  # first steps of a run in which only the discriminators learn
    ema: float = 0.0  # decay of a moving average of the generator's weights, exported (0 off)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=UNITConfig)
    dis: DisConfig = field(default_factory=DisConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        check_config(self)


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its data and weight paths made absolute, so that the config saved in a run
    folder resumes from any working directory."""

    def full(path: str | None) -> str | None:
        return None if path is None else os.path.abspath(path)

    d = cfg.data
    data = dataclasses.replace(
        d,
        day=tuple(os.path.abspath(p) for p in d.day),
        night=tuple(os.path.abspath(p) for p in d.night),
        pairs_day=tuple(os.path.abspath(p) for p in d.pairs_day),
        pairs_night=tuple(os.path.abspath(p) for p in d.pairs_night),
        nexet_csv=full(d.nexet_csv),
        bdd_json=full(d.bdd_json),
        images=full(d.images),
        relabeled=full(d.relabeled),
    )
    loss = dataclasses.replace(cfg.loss, vgg_weights=full(cfg.loss.vgg_weights))
    return dataclasses.replace(cfg, data=data, loss=loss)


# --- loading -------------------------------------------------------------------------------


def load_config(path: Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config; ``overrides`` are ``section.key=value`` strings (YAML values).

    An empty file is refused rather than silently training on the defaults."""
    if not path.exists():
        raise ConfigError(
            f"config '{path}' does not exist (see 'd2nvideo configs' for the shipped ones)", path
        )
    require_file(path, "config")  # not a folder, nor a pipe that would wait for a writer
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config '{path}' is not valid YAML: {_one_line(exc)}", path) from exc
    except ValueError as exc:  # PyYAML's int() (4,300 digits at most), a date that is none...
        raise ConfigError(f"config '{path}' {_unreadable_value(exc)}", path) from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise ConfigError(f"config '{path}' nests too deeply to be a config", path) from exc
    if data is None:
        raise ConfigError(
            f"config '{path}' is empty: start from a shipped one ('d2nvideo configs --dump "
            "tiny'), or write {} to train on the defaults",
            path,
        )
    if not isinstance(data, dict):
        raise ConfigError(f"config '{path}' must be a mapping of sections", path)
    for item in overrides:
        _apply_override(data, item)
    return config_from_data(data)


def _unreadable_value(exc: ValueError) -> str:
    """A value PyYAML recognises but cannot build: an integer past Python's 4,300 digits, a
    date that does not exist (2024-02-30)."""
    if "integer string conversion" in str(exc):
        return "holds a number too long to read"
    return f"holds a value that cannot be read ({_one_line(exc)})"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (``width: 4`` and later
    ``width: 8``), where PyYAML keeps the last without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()  # the mapping's own keys: a merged one (<<:) may be overridden
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:  # a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value", key_node.start_mark
                ) from None
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice", key_node.start_mark
                )
        self.flatten_mapping(node)  # then the merge keys, as the safe loader does
        return super().construct_mapping(node, deep=deep)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def config_from_data(data: dict[str, Any]) -> TrainConfig:
    model = data.get("model", {"arch": "unit"})
    if not isinstance(model, dict):
        raise ConfigError("config key 'model' must be a mapping")
    try:
        model_cfg = config_from_dict({"arch": "unit", **model})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config key 'model': {exc}") from exc
    rest = {k: v for k, v in data.items() if k != "model"}
    try:
        return _build(TrainConfig, rest, "", {"model": model_cfg})
    except TypeError as exc:
        raise ConfigError(f"config: {exc}") from exc


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"override '{item}' must look like section.key=value")
    section = data.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ConfigError(f"config key '{parts[0]}' must be a mapping")
    try:
        section[parts[1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{item}' has no valid YAML value: {_one_line(exc)}") from exc
    except ValueError as exc:
        raise ConfigError(f"override '{key}' {_unreadable_value(exc)}") from exc
    except RecursionError as exc:
        raise ConfigError(f"override '{key}=...' nests too deeply for a config value") from exc


def _build(cls: type, data: Any, prefix: str, preset: dict[str, Any] | None = None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}'")
    built = dict(preset or {})
    for name, value in data.items():
        key = f"{prefix}{name}"
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            built[name] = _build(kind, value, f"{key}.")  # type: ignore[arg-type]
        else:
            built[name] = _coerce(kind, value, key)
    return cls(**built)


def _coerce(kind: Any, value: Any, key: str) -> Any:
    origin, got = typing.get_origin(kind), shown(value)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' must be a list, got {got}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key '{key}' must have {len(args)} items, got {got}")
        return tuple(_coerce(a, v, key) for a, v in zip(args, value, strict=True))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {got}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {got}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key '{key}' must be a number, got {got}")
        try:
            return float(value)
        except OverflowError:  # an integer past float's range
            raise ConfigError(f"config key '{key}' is too large, got {got}") from None
    if origin is typing.Literal:
        if value not in args:
            choices = "|".join(map(str, args))
            raise ConfigError(f"config key '{key}' must be one of {choices}, got {got}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {got}")
        return value
    raise ConfigError(f"config key '{key}' has an unsupported type {kind!r}")


def config_to_data(cfg: TrainConfig) -> dict[str, Any]:
    """Plain data (lists for tuples) that ``config_from_data`` reads back to an equal config."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))  # type: ignore[no-any-return]


def save_config(cfg: TrainConfig, path: Path) -> None:
    from d2nvideo.fileio import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(config_to_data(cfg), sort_keys=False))


def with_changes(cfg: TrainConfig, section: str, **changes: Any) -> TrainConfig:
    """A copy of ``cfg`` with keys of one section replaced (for command-line flags)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return cfg
    return dataclasses.replace(
        cfg, **{section: dataclasses.replace(getattr(cfg, section), **changes)}
    )
