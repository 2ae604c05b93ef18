"""d2nvideo: day-to-night and night-to-day translation of dashcam video.

The Python API, in five lines::

    import cv2
    from d2nvideo import Translator, convert_video

    night = Translator.default().translate(cv2.imread("day.jpg"), "night", color="bgr")
    convert_video("drive.mp4", "drive_night.mp4", to="night")

``Translator`` runs a model on images exactly as ``d2nvideo convert`` does (the model's
working size, guided upsampling back to native size); ``convert_video`` is ``d2nvideo
convert`` for one video, with the same defaults. Importing this package loads neither torch
nor PyAV: they load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import D2NError, UsageError

__version__ = "0.1.0"
__all__ = ["D2NError", "Translator", "UsageError", "__version__", "convert_video"]

if TYPE_CHECKING:
    from .pipeline import ConvertResult
    from .translator import Translator


def __getattr__(name: str) -> Any:
    if name == "Translator":
        from .translator import Translator

        return Translator
    raise AttributeError(f"module 'd2nvideo' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API (``dir(d2nvideo)`` listed Any, Callable and Path, and not Translator)."""
    return sorted(__all__)


def convert_video(
    src: str | Path,
    dst: str | Path,
    to: str,
    *,
    model: str | Path | Translator | None = None,
    progress: bool | Callable[[int, int], None] = True,
    overwrite: bool = False,
    **options: Any,
) -> ConvertResult:
    """Convert the video ``src`` to ``dst`` (``to``: 'night' or 'day'), as ``d2nvideo convert``
    does with the same defaults; ``to="auto"`` picks the other domain of what ``src`` looks
    like. ``model``: a path, a loaded Translator, or None for the bundled one. ``options`` are
    convert's options by their Python names (``quality``, ``work_size``, ``max_size``,
    ``upsample``, ``smooth``, ``smooth_strength``, ``exposure``, ``bars``, ``start``,
    ``duration``, ``batch_size``, ``hwaccel``, ``salvage``, ``codec``, ``crf``, ``preset``,
    ``pix_fmt``, and for a model path ``device``, ``precision``, ``backend``, ``compile``,
    ``official_day``), each refused with a UsageError, before the model loads, where the
    command line would refuse it. ``progress``: a tqdm bar (``tqdm.auto``: a widget in a
    notebook), False for none, or a callable ``(done, total)``. The result names the output,
    its frames, the seconds taken, the frames ``salvage`` left out, and ``to``: the domain
    converted into (what ``"auto"`` chose)."""
    from .batch.api import run_convert_video
    from .fileio import as_path

    source, output = as_path(src, "src"), as_path(dst, "dst")
    return run_convert_video(source, output, to, model, progress, overwrite, options)
