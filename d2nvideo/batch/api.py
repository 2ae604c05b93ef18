"""What ``d2nvideo.convert_video`` runs: convert's options by name, with convert's defaults,
turned into the library's objects, and progress for a script or a notebook."""

from __future__ import annotations

import dataclasses
import inspect
import os
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
    """Every check that needs no decoding and no model first (the options, the files), then
    the target (``auto`` decodes a few frames), then the model."""
    from ..choices import normalise_domain, require_flag
    from ..data.scoring import resolve_target
    from ..fileio import check_output
    from ..pipeline import DarkOutputWatch, convert_video
    from ..video.codecs import check_encode
    from ..video.probe import probe

    auto = isinstance(to, str) and to.strip().lower() == "auto"
    target = "auto" if auto else normalise_domain(to)
    require_flag(overwrite, "overwrite")  # a truthy "no" must not replace the user's file
    _check_progress(progress)
    settings = _Settings.of(dict(options), model)
    _require_video_file(src)
    check_encode(dst, settings.encode)
    check_output(dst, [src], overwrite)
    info = probe(src, salvage=settings.pipeline.salvage)  # not a video: said before the model
    domain = resolve_target(src, target)
    with _callers_float_mode():
        translator = settings.translator(model)
        opts = settings.pipeline.options(translator, domain, settings.encode)
        with _progress(progress, info.frames_in(opts.start, opts.duration)) as advance:
            watch = DarkOutputWatch(domain)  # convert's warnings: nearly black, frames lost
            result = convert_video(src, dst, translator, opts, advance, info, watch=watch)
    result.warn_lost(src)
    return result


def _require_video_file(src: Path) -> None:
    from ..fileio import require_file
    from ..images import is_image

    require_file(src)
    if is_image(src):  # it said the OUTPUT image's input "is a video", and wrote .mp4 of one frame
        raise UsageError(
            f"'{src}' is an image: convert_video converts videos; translate an image with "
            "Translator.translate, or 'd2nvideo convert'",
            src,
        )


@dataclasses.dataclass(frozen=True)
class _Settings:
    """convert_video's options by convert's names and defaults, sorted into the library's
    settings; unknown names are refused."""

    encode: Any  # EncodeSettings
    pipeline: Any  # PipelineSpec
    load: dict[str, Any]

    @classmethod
    def of(cls, options: dict[str, Any], model: Any) -> _Settings:
        from ..translator import Translator
        from ..video.codecs import EncodeSettings
        from .settings import ModelSpec, PipelineSpec, SizeSpec

        encode = EncodeSettings(**_take(options, ENCODE_KEYS, EncodeSettings))
        size = SizeSpec(**_take(options, SIZE_KEYS, SizeSpec))
        load = _take(options, LOAD_KEYS, ModelSpec)
        ModelSpec(**load)  # its checks, before any work; the model path comes at load
        known = {f.name for f in dataclasses.fields(PipelineSpec)} - {"size"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"convert_video got unknown option(s): {', '.join(unknown)}")
        if not (model is None or isinstance(model, (str, os.PathLike, Translator))):
            raise UsageError(f"model must be a path, a Translator or None, not {model!r}", model)
        if isinstance(model, str) and not model:  # Path(''): "checkpoint '.' is a directory"
            raise UsageError("model is an empty path (''), which names nothing", model)
        if load and isinstance(model, Translator):
            raise UsageError(f"{', '.join(load)}: for a model path; this Translator is loaded")
        pipeline = PipelineSpec(size=size, **options)
        if "smooth_strength" in options and pipeline.smooth == "none":  # as the command line
            raise UsageError("smooth_strength needs smooth='flow' or smooth='ema'")
        return cls(encode, pipeline, load)

    def translator(self, model: Any) -> Translator:
        from ..translator import Translator
        from .settings import ModelSpec

        if isinstance(model, Translator):
            return model
        return ModelSpec(path=None if model is None else Path(model), **self.load).load()


def _take(options: dict[str, Any], keys: tuple[str, ...], kind: Any) -> dict[str, Any]:
    taken = {k: options.pop(k) for k in keys if k in options}
    if kind is not None:
        defaults = inspect.signature(kind).parameters
        taken = {k: v for k, v in taken.items() if k in defaults}
    return taken


@contextmanager
def _callers_float_mode() -> Iterator[None]:
    """Run with the command's process-wide speed-ups (ModelSpec.load sets them: denormals
    flushed to zero on the CPU, cuDNN autotuning), then give the caller's thread its own
    back: after convert_video its NumPy and torch turned every denormal into 0."""
    import numpy as np
    import torch

    denormals = bool(np.float32(1e-40) * np.float32(1.0) != 0)  # this thread's FTZ/DAZ
    benchmark = torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        if denormals:
            torch.set_flush_denormal(False)
        torch.backends.cudnn.benchmark = benchmark


def _check_progress(progress: object) -> None:
    if not (isinstance(progress, bool) or callable(progress)):
        raise UsageError(
            f"progress must be True, False or a callable (done, total), not {progress!r}",
            progress,
        )


@contextmanager
def _progress(
    progress: bool | Callable[[int, int], None], total: int
) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for the pipeline: a tqdm.auto bar, nothing, or the caller's callable.
    ``total`` is an estimate where a segment is cut (from the average rate): the last report
    says the frames written, so a finished run is at 100% (it ended at (7, 8))."""
    if progress is False:
        yield lambda n: None
        return
    if callable(progress):
        done = [0]

        def report(n: int) -> None:
            done[0] += n
            progress(done[0], max(total, done[0]))  # type: ignore[operator]

        yield report
        if done[0] != total:
            progress(done[0], done[0])  # type: ignore[operator]
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="frame", dynamic_ncols=True) as bar:
        yield bar.update
        bar.total = bar.n
