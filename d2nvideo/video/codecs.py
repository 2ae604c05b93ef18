"""What an output is encoded with: the settings (codec, quality, preset, pixel format), the
codec and pixel format that open here for a size, the muxer a suffix names, and the checks that
refuse options which cannot work before any frame is encoded."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..choices import require_number
from ..errors import UsageError
from ..fileio import output_name
from .damage import ffmpeg_reason
from .probe import codec_threads
from .streams import muxer_default, supported_codecs

log = logging.getLogger(__name__)

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
STILL_SUFFIXES = ("png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff")


@dataclass(frozen=True)
class EncodeSettings:
    codec: str | None = None  # None: libx264, or the container's own (codec_for)
    crf: int | None = 18  # quality (lower is better); None leaves the codec's default
    preset: str | None = "fast"  # codec speed preset (x264/x265 names; p1-p7 for NVENC)
    pix_fmt: str | None = None  # None: yuv420p, or yuv444p when a side is odd

    def __post_init__(self) -> None:
        for name in ("codec", "preset", "pix_fmt"):  # b"libx264" passed every check, and
            value = getattr(self, name)  # failed in the encoder once the model had run
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{name} must be a name (a str) or None, not {value!r}", value)
        if self.crf is not None:
            require_number(self.crf, "crf", lambda v: 0 <= v <= 63, "an integer from 0 to 63", True)


def codec_for(path: Path, settings: EncodeSettings) -> str:
    """The encoder: the one asked for; else libx264 where the container takes it, else the
    container's own for the few that work with it (VP9 for .webm, MPEG-1 for .mpg)."""
    return settings.codec or default_codec(output_name(path).suffix.lower().lstrip("."))


@lru_cache(maxsize=16)
def default_codec(suffix: str) -> str:
    format_name = _muxers_by_suffix().get(suffix)
    if format_name not in OWN_CODEC_MUXERS or _takes(format_name, "libx264"):
        return "libx264"  # refused by check_encode where the container does not take it
    return muxer_default(format_name, "video") or "libx264"


# Containers written with their own codec where H.264 does not fit. Others' own wrote files
# whose video was missing (.flac), all at one time (.rm), at 12800 fps (.y4m) or with its
# first frame dropped (.ogv), or failed after the model loaded (.mxf, .swf): refused before.
OWN_CODEC_MUXERS = ("webm", "mpeg", "apng")


def usable_codec(codec: str, width: int, height: int) -> str:
    """``codec``, or libx264 (with a warning) when a hardware encoder (NVENC) cannot open on
    this machine: no GPU, no driver, or a session limit."""
    import av

    if not codec.endswith(("_nvenc", "_qsv", "_vaapi", "_amf")):
        return codec
    try:
        cc: Any = av.CodecContext.create(codec, "w")
        cc.width, cc.height, cc.pix_fmt = max(width, 256), max(height, 256), "yuv420p"
        cc.time_base = Fraction(1, 25)
        cc.open()
        return codec
    except Exception as exc:  # FFmpeg's own words were "[Errno 1] Operation not permitted"
        log.warning(
            "encoder %s cannot open here (no GPU, driver or free session for it? FFmpeg: %s); "
            "using libx264",
            codec,
            ffmpeg_reason(exc),
        )
        return "libx264"


def _refuse_codec(path: Path, name: str, default: bool, format_name: str) -> None:
    """A container that cannot take the codec: what to do instead ("leave --codec out" was
    said where the default codec did not fit either, or to a user who gave none)."""
    suffix = path.suffix
    if default:
        raise UsageError(
            f"a {suffix} file cannot take {name}, the codec written by default: choose another "
            "suffix (.mp4, .mkv, .mov, .webm)",
            path,
        )
    fits = _takes(format_name, codec_for(path, EncodeSettings()))
    instead = f"for {suffix} leave --codec out" if fits else "choose another suffix"
    raise UsageError(f"codec '{name}' cannot go into a {suffix} file; {instead}", name)


def _takes(format_name: str, name: str) -> bool:
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except Exception:
        return False
    return bool({name, codec.canonical_name} & supported_codecs(format_name))


def check_codec(name: str) -> None:
    """``name`` is a video encoder of this PyAV build (not an audio one like aac)."""
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except Exception as exc:
        raise UsageError(f"codec '{name}' is not available in this PyAV build", name) from exc
    if codec.type != "video":
        raise UsageError(f"codec '{name}' is an {codec.type} encoder, not a video one", name)


def check_encode(path: Path, settings: EncodeSettings) -> None:
    """Everything about an output video that can be refused before any work: the container
    (from the suffix), the codec and whether the container takes it, the preset and the
    pixel format. Raises UsageError naming the option."""
    import av

    path = output_name(path)  # encode_frames sees the temporary file: speak of the output
    format_name = output_format(path)
    name = codec_for(path, settings)
    check_codec(name)
    codec = av.codec.Codec(name, "w")
    if not _takes(format_name, name):
        _refuse_codec(path, name, settings.codec is None, format_name)
    if name in ("libx264", "libx265") and settings.preset not in (None, *X264_PRESETS):
        raise UsageError(
            f"preset '{settings.preset}' is not a {name} preset: one of {', '.join(X264_PRESETS)}",
            settings.preset,
        )
    if name == "libsvtav1":
        _check_svt(settings)
    if settings.pix_fmt:
        _check_pix_fmt(settings.pix_fmt, codec)


def _check_svt(settings: EncodeSettings) -> None:
    """SVT-AV1's presets are 0-13 (convert's default, x264's 'fast', means SVT's own default,
    8; another name meant 8 too, without a word). It writes a banner and its warnings to stderr
    itself, --quiet or not, and its errors before ours: its log is turned off here, on the
    caller's thread before any encoder runs, unless SVT_LOG is set (SVT-AV1 reads it once, at
    its first encoder)."""
    preset = settings.preset or ""
    number = preset.isdigit() and int(preset) <= SVT_MAX_PRESET
    if not (number or preset in ("", "fast")):
        raise UsageError(
            f"preset '{preset}' is not a libsvtav1 preset: 0 (slowest) to {SVT_MAX_PRESET}",
            preset,
        )
    os.environ.setdefault("SVT_LOG", "0")


def _check_pix_fmt(pix_fmt: str, codec: Any) -> None:
    import av

    try:
        av.VideoFormat(pix_fmt)
    except (ValueError, TypeError):
        raise UsageError(
            f"pixel format '{pix_fmt}' does not exist (try yuv420p)", pix_fmt
        ) from None
    takes = [f.name for f in codec.video_formats or []]
    if takes and pix_fmt not in takes:
        raise UsageError(
            f"codec '{codec.name}' cannot encode pixel format '{pix_fmt}'; it takes "
            f"{', '.join(takes[:8])}",
            pix_fmt,
        )


@lru_cache(maxsize=1)
def _muxers_by_suffix() -> dict[str, str]:
    import av

    found: dict[str, str] = {}
    for name in sorted(av.formats_available):
        try:
            fmt = av.format.ContainerFormat(name, "w")
        except (ValueError, TypeError):
            continue
        for ext in fmt.extensions or ():
            found.setdefault(ext, name)
    found.update({"mp4": "mp4", "mkv": "matroska", "ts": "mpegts", "m4v": "mp4"})
    return found


def output_format(path: Path) -> str:
    """The muxer FFmpeg picks for a video output named ``path``, or UsageError: no suffix, a
    suffix no muxer knows, or an image or GIF (which another command writes)."""
    suffix = path.suffix.lower().lstrip(".")
    if not suffix:
        raise UsageError(
            f"output '{path}' has no suffix: name a video file, e.g. .mp4, .mkv or .webm", path
        )
    if suffix in STILL_SUFFIXES:
        raise UsageError(
            f"output '{path}' is an image, but the input is a video: 'd2nvideo preview --at "
            "SECONDS' shows one frame, 'd2nvideo extract' writes frames",
            path,
        )
    if suffix == "gif":
        raise UsageError(
            f"output '{path}' is a GIF: 'd2nvideo preview -o {path.name}' makes an animated "
            "comparison; convert writes video files (.mp4, .mkv, .webm)",
            path,
        )
    format_name = _muxers_by_suffix().get(suffix)
    if format_name is None:
        raise UsageError(
            f"output '{path}': '.{suffix}' is not a video format FFmpeg writes; use .mp4, .mkv, "
            ".mov, .webm or .ts",
            path,
        )
    if format_name in BESIDE_MUXERS:
        raise UsageError(
            f"output '{path}': a .{suffix} file is written with others beside it ({format_name}: "
            "playlists, segments or images, whose names no check guards); convert writes one "
            "video file: use .mp4, .mkv, .mov, .webm or .ts",
            path,
        )
    return format_name


def codec_options(codec: str, settings: EncodeSettings) -> dict[str, str]:
    opts: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        if settings.crf is not None:
            opts["crf"] = str(settings.crf)
        if settings.preset:
            opts["preset"] = settings.preset
        if codec == "libx265":  # x265 prints its banner and statistics to stderr itself
            threads = codec_threads()  # and starts a thread pool of its own on every core
            opts["x265-params"] = "log-level=error" + (f":pools={threads}" if threads else "")
    elif codec in QSCALE_CODECS and settings.crf is not None:  # else 200 kbit/s, blocky
        q = str(_qscale(settings.crf))  # a constant quantiser (global_quality needs it set
        opts.update({"flags": "+qscale", "qmin": q, "qmax": q})  # on each frame, as ffmpeg does)
    elif codec == "libvpx-vp9":
        opts.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
        if settings.crf is not None:
            opts["crf"] = str(min(63, settings.crf + 13))  # VP9's scale: 31 ~ x264's 18
    elif codec == "libvpx" and settings.crf is not None:  # VP8: CRF under a bit-rate cap
        crf = str(max(4, min(63, settings.crf - 8)))  # 10 ~ x264's 18 (PSNR on a dashcam clip)
        opts.update({"crf": crf, "b": "100M", "deadline": "good", "cpu-used": "4"})
    elif codec == "libsvtav1":
        if settings.crf is not None:
            opts["crf"] = str(min(63, settings.crf + 12))
        preset = settings.preset or ""
        opts["preset"] = preset if preset.isdigit() else "8"
    elif codec.endswith("_nvenc"):
        preset = settings.preset or ""
        opts["preset"] = preset if preset.startswith("p") else "p4"
        if settings.crf is not None:
            opts.update({"rc": "vbr", "cq": str(settings.crf + 5), "b": "0"})
    return opts


# FFmpeg's own MPEG-family encoders: quality by quantiser scale (ffmpeg -q:v), 1 best to 31
QSCALE_CODECS = frozenset(
    {"mpeg1video", "mpeg2video", "mpeg4", "msmpeg4", "msmpeg4v2", "wmv1", "wmv2", "h263"}
    | {"h263p", "flv", "mjpeg", "rv10", "rv20"}
)


def _qscale(crf: int) -> int:
    """A quantiser scale of x264's CRF scale: 18 -> 2 (visually lossless), 24 -> 4, halving the
    quality every 6 as CRF does; 1 to 31."""
    return max(1, min(31, round(2 ** ((crf - 12) / 6))))


SVT_MAX_PRESET = 13
# libx265 (3.x here) opens for tiny frames and then corrupts its heap now and then: 33x17, 48x32
# and 48x28 aborted the process in trials; 40x40, 48x48, 64x40 never did
X265_MIN_SIDE = 40
# Muxers that write files beside the one named (DASH's init-stream0.m4s, HLS's segments, one
# image a frame): outside the write-to-a-temporary-file-and-rename, they replaced another run's
# files of the same names unasked.
BESIDE_MUXERS = ("dash", "hls", "webm_chunk", "image2", "smoothstreaming", "segment", "tee")
# What to encode in when yuv420p (or yuv444p for odd sizes) does not open with a codec
# (MJPEG wants full-range yuvj420p, PNG rgb24...); failing these, the first it takes that opens.
FALLBACK_PIX_FMTS = ("yuvj420p", "yuv444p", "yuvj444p", "yuv422p", "yuvj422p", "rgb24", "bgr24")


def pick_pix_fmt(codec: str, width: int, height: int, settings: EncodeSettings) -> str:
    if codec == "libx265" and min(width, height) < X265_MIN_SIDE:
        raise UsageError(  # it opens, then corrupts memory: the process aborted, no line said why
            f"libx265 is not safe for {width}x{height} frames (it crashes on frames with a side "
            f"under about {X265_MIN_SIDE} pixels); choose another --codec",
            codec,
        )
    if settings.pix_fmt:
        _check_subsampling(settings.pix_fmt, width, height)
        return settings.pix_fmt
    # 4:2:0 needs even sides; an odd-sized source keeps its exact size in 4:4:4 instead.
    usual = "yuv444p" if width % 2 or height % 2 else "yuv420p"
    takes = _formats_of(codec)
    for name in dict.fromkeys((usual, *FALLBACK_PIX_FMTS, *takes)):
        usable = (not takes or name in takes) and _fits(name, width, height)
        if usable and _opens(codec, name, width, height):
            return name
    why = " (SVT_LOG=2 shows SVT-AV1's reasons)" if codec == "libsvtav1" else ""
    raise UsageError(
        f"codec '{codec}' cannot encode {width}x{height} frames in any pixel format it takes "
        f"({', '.join(takes[:8]) or 'none listed'}){why}; choose another --codec",
        codec,
    )


@lru_cache(maxsize=64)
def _opens(codec: str, pix_fmt: str, width: int, height: int) -> bool:
    """Whether ``codec`` opens for frames of this size and pixel format (a trial encoder)."""
    import av

    try:
        cc: Any = av.CodecContext.create(codec, "w")
        cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
        cc.time_base = Fraction(1, 25)
        cc.options = {"x265-params": "log-level=none"} if codec == "libx265" else {}
        cc.open()
    except Exception:  # FFmpeg refuses in many ways (ArgumentError, ValueError...)
        return False
    return True


def _formats_of(codec: str) -> list[str]:
    """The pixel formats ``codec`` encodes (empty: it does not say)."""
    import av

    return [f.name for f in av.codec.Codec(codec, "w").video_formats or []]


def _fits(pix_fmt: str, width: int, height: int) -> bool:
    try:
        _check_subsampling(pix_fmt, width, height)
    except UsageError:
        return False
    return True


def _check_subsampling(pix_fmt: str, width: int, height: int) -> None:
    """4:2:0 needs even sides, 4:2:2 an even width."""
    import av

    fmt = av.VideoFormat(pix_fmt)
    odd_w = width % 2 and fmt.chroma_width(width) != width
    odd_h = height % 2 and fmt.chroma_height(height) != height
    if odd_w or odd_h:
        raise UsageError(
            f"pixel format '{pix_fmt}' needs even sides, but the frames are {width}x{height}: "
            "leave --pix-fmt out (yuv444p is chosen for odd sizes)",
            pix_fmt,
        )
