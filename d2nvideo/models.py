"""Where models come from: the bundled default inside the package, or a user's file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
    model: Path | None, day_is: str, device: str, precision: str, compile_model: bool = False
) -> Translator:
    """The translator for ``--model`` (or the bundled default), compiled if asked."""
    from .translator import Translator

    translator = Translator.from_checkpoint(resolve_model(model), device, precision, day_is)
    return translator.compile() if compile_model else translator
