"""What ``d2nvideo.convert_video`` runs: convert's options by name, with convert's defaults,
turned into the library's objects, and progress for a script or a notebook."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..pipeline import ConvertResult
    from ..translator import Translator

ENCODE_KEYS = ("codec", "crf", "preset", "pix_fmt")
SIZE_KEYS = ("quality", "work_size", "max_size", "upsample")
LOAD_KEYS = ("device", "precision")


def run_convert_video(
    src: Path,
    dst: Path,
    to: str,
    model: Any,
    progress: bool | Callable[[int, int], None],
    overwrite: bool,
    options: dict[str, Any],
) -> ConvertResult:
    from ..fileio import check_output, require_file
    from ..pipeline import convert_video
    from ..video.encode import check_encode
    from ..video.probe import probe

    opts, translator = _options(to, model, dict(options))
    require_file(src)
    check_encode(dst, opts.encode)
    check_output(dst, [src], overwrite)
    info = probe(src)
    with _progress(progress, info.frames) as advance:
        return convert_video(src, dst, translator, opts, advance, info)


def _options(to: str, model: Any, options: dict[str, Any]) -> tuple[Any, Translator]:
    """ConvertOptions and a Translator from convert's option names and defaults."""
    from ..choices import normalise_domain
    from ..pipeline import ConvertOptions
    from ..translator import Translator
    from ..video.encode import EncodeSettings
    from .settings import PipelineSpec, SizeSpec

    encode = EncodeSettings(**_take(options, ENCODE_KEYS, EncodeSettings))
    size = SizeSpec(**_take(options, SIZE_KEYS, SizeSpec))
    load = _take(options, LOAD_KEYS, None)
    known = {f.name for f in dataclasses.fields(PipelineSpec)} - {"size"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"convert_video got unknown option(s): {', '.join(unknown)}")
    translator = model if isinstance(model, Translator) else _load(model, load)
    spec = PipelineSpec(size=size, **options)
    opts: ConvertOptions = spec.options(translator, normalise_domain(to), encode)
    return opts, translator


def _take(options: dict[str, Any], keys: tuple[str, ...], kind: Any) -> dict[str, Any]:
    taken = {k: options.pop(k) for k in keys if k in options}
    if kind is not None:
        defaults = inspect.signature(kind).parameters
        taken = {k: v for k, v in taken.items() if k in defaults}
    return taken


def _load(model: str | Path | None, load: dict[str, Any]) -> Translator:
    from ..model.runtime import set_fast_flags
    from ..registry import load_translator

    translator = load_translator(None if model is None else Path(model), **load)
    set_fast_flags(translator.device)
    return translator


@contextmanager
def _progress(
    progress: bool | Callable[[int, int], None], total: int
) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for the pipeline: a tqdm.auto bar, nothing, or the caller's callable."""
    if progress is False:
        yield lambda n: None
        return
    if callable(progress):
        done = [0]

        def report(n: int) -> None:
            done[0] += n
            progress(done[0], total)  # type: ignore[operator]

        yield report
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="frame", dynamic_ncols=True) as bar:
        yield bar.update
