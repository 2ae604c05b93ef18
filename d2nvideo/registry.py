"""Where models come from: the bundled default inside the package, or a user's file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .choices import Backend, OfficialDomain
from .errors import UsageError

if TYPE_CHECKING:
    from .translator import Translator

ASSETS = Path(__file__).parent / "assets"
DEFAULT_MODEL = ASSETS / "d2n_default.safetensors"


def bundled_models() -> list[Path]:
    return sorted(ASSETS.glob("*.safetensors"))


def resolve_model(path: Path | None) -> Path:
    """The user's model if given, else the bundled default; a clear error if neither exists."""
    if path is not None:
        return path
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    raise UsageError(
        "no model given and no bundled default is installed: pass --model PATH "
        "(a .safetensors file from 'd2nvideo export', or an official UNIT gen_*.pt)"
    )


def load_translator(
    model: Path | None,
    official_day: OfficialDomain = "a",
    device: str = "auto",
    precision: str = "auto",
    backend: Backend = "torch",
) -> Translator:
    """The translator for ``--model`` (or the bundled default), its network on ``backend``."""
    from .translator import Translator

    return Translator.from_checkpoint(
        resolve_model(model), device, precision, official_day, backend
    )


@dataclass(frozen=True)
class ModelRow:
    """What ``d2nvideo models`` shows of one model file."""

    path: str
    bundled: bool
    arch: str
    config: dict[str, Any]
    params: int
    mb: float
    steps: int | str
    work_size: int | str
    note: str


def describe_model(path: Path) -> ModelRow:
    """The row of one model file (read without unpickling); CheckpointError if it is none."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    return ModelRow(
        path=str(path),
        bundled=path.parent == ASSETS,
        arch=ckpt.config.arch,
        config=dataclasses.asdict(ckpt.config),
        params=sum(t.numel() for t in ckpt.state_dict.values()),
        mb=path.stat().st_size / 2**20,
        steps=meta.get("steps", "?"),
        work_size=meta.get("work_size", "native"),
        note=str(meta.get("note", "default" if path == DEFAULT_MODEL else "")),
    )
