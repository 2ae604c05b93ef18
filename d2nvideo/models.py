"""Where models come from: the bundled default inside the package, or a user's file."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError

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
