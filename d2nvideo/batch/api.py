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
    from ..choices import Domain
    from ..pipeline import ConvertResult
    from ..translator import Translator

ENCODE_KEYS = ("codec", "crf", "preset", "pix_fmt")
SIZE_KEYS = ("quality", "work_size", "max_size", "upsample")
LOAD_KEYS = ("official_day", "device", "precision", "compile", "backend")


def run_convert_video(
    src: Path,
    dst: Path,
    to: str,
    model: Any,
    progress: bool | Callable[[int, int], None],
    overwrite: bool,
    options: dict[str, Any],
) -> ConvertResult:
    from ..choices import normalise_domain
    from ..data.scoring import resolve_target
    from ..fileio import check_output, require_file
    from ..pipeline import convert_video
    from ..video.encode import check_encode
    from ..video.probe import probe

    auto = isinstance(to, str) and to.strip().lower() == "auto"
    target = "auto" if auto else normalise_domain(to)
    require_file(src)
    opts, translator = _options(resolve_target(src, target), model, dict(options))
    check_encode(dst, opts.encode)
    check_output(dst, [src], overwrite)
    info = probe(src, salvage=opts.salvage)
    with _progress(progress, info.frames) as advance:
        return convert_video(src, dst, translator, opts, advance, info)


def _options(to: Domain, model: Any, options: dict[str, Any]) -> tuple[Any, Translator]:
    """ConvertOptions and a Translator from convert's option names and defaults."""
    from ..pipeline import ConvertOptions
    from ..translator import Translator
    from ..video.encode import EncodeSettings
    from .settings import ModelSpec, PipelineSpec, SizeSpec

    encode = EncodeSettings(**_take(options, ENCODE_KEYS, EncodeSettings))
    size = SizeSpec(**_take(options, SIZE_KEYS, SizeSpec))
    load = _take(options, LOAD_KEYS, ModelSpec)
    known = {f.name for f in dataclasses.fields(PipelineSpec)} - {"size"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"convert_video got unknown option(s): {', '.join(unknown)}")
    if isinstance(model, Translator):
        if load:
            raise UsageError(f"{', '.join(load)}: for a model path; this Translator is loaded")
        translator = model
    else:
        translator = ModelSpec(path=None if model is None else Path(model), **load).load()
    spec = PipelineSpec(size=size, **options)
    opts: ConvertOptions = spec.options(translator, to, encode)
    return opts, translator


def _take(options: dict[str, Any], keys: tuple[str, ...], kind: Any) -> dict[str, Any]:
    taken = {k: options.pop(k) for k in keys if k in options}
    if kind is not None:
        defaults = inspect.signature(kind).parameters
        taken = {k: v for k, v in taken.items() if k in defaults}
    return taken


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
