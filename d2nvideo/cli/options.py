"""Option groups shared by convert, preview and evaluate, each parsed into one typed value
(the settings of d2nvideo/batch/settings.py, which build the library's objects).

A group decorator adds its click options and hands the command a single dataclass instead of
the options one by one, so no string-keyed ``**kw`` dict crosses into the library.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..batch.settings import ModelSpec, PipelineSpec, SizeSpec
from ..choices import (
    Backend,
    BarsMode,
    Exposure,
    HwAccel,
    OfficialDomain,
    Precision,
    Quality,
    Smoothing,
    Upsampler,
    values,
)
from .shell import INPUT

if TYPE_CHECKING:
    from ..video.codecs import EncodeSettings

__all__ = ["ModelSpec", "PipelineSpec", "SizeSpec"]


def choice(kind: Any) -> click.Choice:
    return click.Choice(values(kind))


def option_group(
    options: list[Callable[[Any], Any]], names: tuple[str, ...], build: Callable[..., Any], as_: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding ``options`` to a command and passing ``build(**their values)`` as the
    single keyword argument ``as_``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            group = {name: kwargs.pop(name) for name in names}
            return command(*args, **{as_: build(**group)}, **kwargs)

        for add in reversed(options):
            wrapper = add(wrapper)
        return wrapper

    return decorate


# --- the model ---------------------------------------------------------------------------------


DAY_IS = click.option(  # also export's, for the graphs of a gen_*.pt
    "--day-is",
    "official_day",
    type=choice(OfficialDomain),
    default="a",
    help="For an official UNIT gen_*.pt: which of its domains a/b is day.",
)
MODEL_OPTIONS = [
    click.option(
        "--model",
        "path",
        type=INPUT,
        default=None,
        help="Model file (.safetensors from 'd2nvideo export', or an official UNIT gen_*.pt). "
        "Default: the bundled model.",
    ),
    DAY_IS,
    click.option(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (auto picks CUDA if present)."
    ),
    click.option(
        "--precision",
        type=choice(Precision),
        default="auto",
        help="Network precision: auto is bf16/fp16 on CUDA, fp32 on the CPU.",
    ),
    click.option(
        "--compile",
        is_flag=True,
        help="torch.compile the network (worth it on a GPU for long videos; the first frames "
        "pay the compilation).",
    ),
    click.option(
        "--backend",
        type=choice(Backend),
        default="auto",
        help="What runs the network: auto measures the installed ones on the first frames and "
        "keeps the fastest (torch on CUDA); onnxruntime and openvino (CPU, fp32) need "
        "pip install 'd2nvideo[onnx]' or 'd2nvideo[openvino]'.",
    ),
]
model_options = option_group(
    MODEL_OPTIONS,
    ("path", "official_day", "device", "precision", "compile", "backend"),
    ModelSpec,
    "model",
)


# --- working size -----------------------------------------------------------------------------


SIZE_OPTIONS = [
    click.option(
        "--quality",
        type=choice(Quality),
        default="auto",
        help="Network working size: fast 180 px, balanced 288 px (shorter side), full native; "
        "auto uses the size the model was trained for (full if it does not say).",
    ),
    click.option(
        "--work-size",
        type=click.IntRange(16),
        default=None,
        help="Run the network with the shorter side at this many pixels (overrides --quality).",
    ),
    click.option(
        "--max-size",
        type=click.IntRange(16),
        default=None,
        help="Also cap the network's longer side at this many pixels.",
    ),
    click.option(
        "--upsample",
        type=choice(Upsampler),
        default="guided",
        help="Back to native size: guided transfers the input's detail through a local colour "
        "transform fitted on the small input/output pair; bicubic just resizes.",
    ),
]
size_options = option_group(
    SIZE_OPTIONS, ("quality", "work_size", "max_size", "upsample"), SizeSpec, "size"
)


# --- the pipeline -----------------------------------------------------------------------------


def _pipeline(size: SizeSpec, **rest: Any) -> PipelineSpec:
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("smooth_strength") if ctx is not None else None
    if source is click.core.ParameterSource.COMMANDLINE and rest.get("smooth") == "none":
        raise click.UsageError("--smooth-strength needs --smooth flow or --smooth ema")
    return PipelineSpec(size=size, **rest)


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Refuse inf and nan, which click's FloatRange lets through."""
    if value is not None and (value != value or value in (float("inf"), float("-inf"))):
        raise click.BadParameter(f"{value} is not a finite number", ctx, param)
    return value


PIPELINE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--batch-size",
        type=click.IntRange(0, 256),
        default=0,
        help="Frames per network call; 0 chooses (2 on the CPU, from free memory on a GPU).",
    ),
    click.option(
        "--hwaccel",
        type=choice(HwAccel),
        default="auto",
        help="Decode on the GPU (NVDEC) when available; auto does so when --device is CUDA. "
        "Falls back to software decoding.",
    ),
    size_options,
    click.option(
        "--start",
        type=click.FloatRange(0),
        default=0.0,
        callback=finite,
        help="Start this many seconds after the first frame.",
    ),
    click.option(
        "--duration",
        type=click.FloatRange(0, min_open=True),
        default=None,
        callback=finite,
        help="Seconds to process. Default: to the end (5 s for a GIF preview).",
    ),
    click.option(
        "--smooth",
        type=choice(Smoothing),
        default="none",
        help="Temporal smoothing against flicker. flow: motion-compensated blend with the "
        "previous output (optical flow on the input, occlusion-checked, reset at cuts). "
        "ema: running average of the output's overall brightness and colour only; cheap, "
        "but it ghosts on fast motion and leaves fine flicker.",
    ),
    click.option(
        "--smooth-strength",
        type=click.FloatRange(0, 1, max_open=True),
        default=0.6,
        help="How much of the (motion-compensated) past is kept.",
    ),
    click.option(
        "--exposure",
        type=choice(Exposure),
        default="steady",
        help="steady: a clip's output brightness follows its input's and does not drift with "
        "the scene (one gain per channel, averaged over seconds, reset at cuts); free: each "
        "frame as the network made it.",
    ),
    click.option(
        "--bars",
        type=choice(BarsMode),
        default="keep",
        help="Black letterbox or pillarbox bars (a pair on opposite sides, found on the first "
        "frames): keep them black and translate the picture between them, or translate them "
        "with the rest as scene.",
    ),
    click.option(
        "--salvage",
        is_flag=True,
        help="Convert what decodes of a corrupt or truncated video (an MP4 with its index "
        "first, cut when a dashcam lost power, or frames that fail to decode) and report the "
        "frames lost, instead of refusing it.",
    ),
]
pipeline_options = option_group(
    PIPELINE_OPTIONS,
    (
        "size",
        "batch_size",
        "hwaccel",
        "start",
        "duration",
        "smooth",
        "smooth_strength",
        "exposure",
        "salvage",
        "bars",
    ),
    _pipeline,
    "pipeline",
)


# --- encoding ---------------------------------------------------------------------------------


def _encode(codec: str | None, crf: int, preset: str, pix_fmt: str | None) -> EncodeSettings:
    from ..video.codecs import EncodeSettings

    return EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)


ENCODE_OPTIONS = [
    click.option(
        "--codec",
        default=None,
        help="Video encoder: libx264 (default; libvpx-vp9 for .webm, mpeg1video for .mpg), "
        "libx265, libsvtav1, h264_nvenc, hevc_nvenc.",
    ),
    click.option(
        "--crf",
        type=click.IntRange(0, 63),
        default=18,
        help="Quality: lower is better and larger (x264 scale; mapped for VP8/VP9/AV1 and the "
        "MPEG encoders).",
    ),
    click.option(
        "--preset",
        default="fast",
        help="Encoder speed preset: x264/x265 names; libsvtav1 0 (slowest) to 13.",
    ),
    click.option(
        "--pix-fmt",
        default=None,
        help="Output pixel format. Default: yuv420p, or yuv444p for odd sizes.",
    ),
]
encode_options = option_group(
    ENCODE_OPTIONS, ("codec", "crf", "preset", "pix_fmt"), _encode, "encode"
)

quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar (results are still printed)."
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout."
)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace an existing output.")
