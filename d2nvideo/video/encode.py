"""Encode frames into a new file that keeps the source's timing, rotation, metadata and its
audio and subtitle streams (copied packet for packet, never re-encoded)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .decode import Frame
from .probe import VideoInfo, open_input

log = logging.getLogger(__name__)

CODECS_BY_SUFFIX = {".webm": "libvpx-vp9"}
# Container-level tags that the muxer writes itself; copying them would mislabel the output.
_MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "creation_time"}


@dataclass(frozen=True)
class EncodeSettings:
    codec: str | None = None  # None: libx264, or libvpx-vp9 for .webm
    crf: int | None = 18  # quality (lower is better); None leaves the codec's default
    preset: str | None = "fast"  # codec speed preset (x264/x265 names; p1-p7 for NVENC)
    pix_fmt: str | None = None  # None: yuv420p, or yuv444p when a side is odd


def codec_for(path: Path, settings: EncodeSettings) -> str:
    return settings.codec or CODECS_BY_SUFFIX.get(path.suffix.lower(), "libx264")


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
    except Exception as exc:
        log.warning("encoder %s cannot open here (%s); using libx264", codec, exc)
        return "libx264"


def check_codec(name: str) -> None:
    import av

    try:
        av.codec.Codec(name, "w")
    except Exception as exc:
        raise UsageError(f"codec '{name}' is not available in this PyAV build", name) from exc


def _codec_options(codec: str, settings: EncodeSettings) -> dict[str, str]:
    opts: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        if settings.crf is not None:
            opts["crf"] = str(settings.crf)
        if settings.preset:
            opts["preset"] = settings.preset
    elif codec == "libvpx-vp9":
        opts.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
        if settings.crf is not None:
            opts["crf"] = str(min(63, settings.crf + 13))  # VP9's scale: 31 ~ x264's 18
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


def _pix_fmt(codec: str, width: int, height: int, settings: EncodeSettings) -> str:
    if settings.pix_fmt:
        return settings.pix_fmt
    # 4:2:0 needs even sides; an odd-sized source keeps its exact size in 4:4:4 instead.
    return "yuv444p" if width % 2 or height % 2 else "yuv420p"


def encode_frames(
    frames: Iterable[Frame],
    path: Path,
    source: VideoInfo,
    settings: EncodeSettings,
    start: float = 0.0,
    end: float | None = None,
) -> int:
    """Write ``frames`` (``image`` of shape ``(H, W, 3) uint8``) to ``path``; return the count.

    Output pts equal input pts (shifted so a segment starting at ``start > 0`` begins at 0).
    Audio and subtitle packets of the source within ``[start, end)`` are copied and interleaved
    by time. The container is flushed and closed in ``finally``.
    """
    import av

    codec = usable_codec(codec_for(path, settings), source.width, source.height)
    out = av.open(str(path), "w")
    copier: _StreamCopier | None = None
    count = 0
    try:
        vs, offset = None, 0
        for frame in frames:
            if vs is None:
                offset = frame.pts if start > 0 else 0
                vs = _add_video_stream(out, codec, frame.image, source, settings)
                copier = _open_copier(source, out, start, end, frame)
                _copy_metadata(out, source)
            count += 1
            _mux(out, vs.encode(_to_av(frame, offset)), copier)
        if vs is not None:
            _mux(out, vs.encode(), None)
        if copier is not None:
            copier.copy_until(float("inf"))
    finally:
        if copier is not None:
            copier.close()
        out.close()
    return count


def _open_copier(
    source: VideoInfo, out: Any, start: float, end: float | None, first: Frame
) -> _StreamCopier | None:
    # A whole-file copy keeps everything, priming packets with pts < 0 included.
    window_start = start if start > 0 else float("-inf")
    return _StreamCopier.open(source, out, window_start, end, first.time if start else 0)


def _mux(out: Any, packets: Iterable[Any], copier: _StreamCopier | None) -> None:
    """Mux video packets, and before each the source's other packets up to its time."""
    for packet in packets:
        out.mux(packet)
        if copier is not None and packet.dts is not None:
            copier.copy_until(float(packet.dts * packet.time_base))


def _to_av(frame: Frame, offset: int) -> Any:
    import av

    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")
    vf.pts = frame.pts - offset
    vf.time_base = frame.time_base
    if frame.duration:
        vf.duration = frame.duration
    return vf


def _add_video_stream(
    out: Any, codec: str, image: np.ndarray, source: VideoInfo, settings: EncodeSettings
) -> Any:
    height, width = image.shape[:2]
    vs = out.add_stream(codec, rate=source.fps, options=_codec_options(codec, settings))
    vs.width, vs.height = width, height
    vs.pix_fmt = _pix_fmt(codec, width, height, settings)
    vs.time_base = source.time_base
    vs.codec_context.time_base = source.time_base
    if source.rotation:
        vs.set_display_rotation(source.rotation)
    return vs


def _copy_metadata(out: Any, source: VideoInfo) -> None:
    for key, value in source.metadata.items():
        if key not in _MUXER_TAGS:
            out.metadata[key] = value


class _StreamCopier:
    """Feeds the source's audio and subtitle packets to the output up to a given time."""

    def __init__(
        self,
        src: Any,
        out: Any,
        mapping: dict[int, Any],
        window: tuple[float, float | None],
        offset_s: float,
    ) -> None:
        self.src = src
        self.out = out
        self.mapping = mapping
        self.window = window
        self.offset_s = offset_s
        self.packets: Iterator[Any] = src.demux([src.streams[i] for i in mapping])
        self.pending: Any = None

    @classmethod
    def open(
        cls, source: VideoInfo, out: Any, start: float, end: float | None, offset_s: float
    ) -> _StreamCopier | None:
        """A copier for every audio and subtitle stream the output container can hold; None
        when there is nothing to copy."""
        import av

        src = open_input(source.path)
        mapping = {}
        for s in src.streams:
            if s.type not in ("audio", "subtitle"):
                continue
            name = s.codec_context.name if s.codec_context else None
            if name not in out.supported_codecs:
                log.warning(
                    "%s stream %d (%s) cannot go into %s; left out",
                    s.type,
                    s.index,
                    name,
                    out.format.name,
                )
                continue
            mapping[s.index] = out.add_stream_from_template(s)
        if not mapping:
            src.close()
            return None
        if start > 0:
            src.seek(int(start * av.time_base), backward=True)
        return cls(src, out, mapping, (start, end), offset_s)

    def copy_until(self, t: float) -> None:
        """Mux every pending packet whose presentation time is at most ``t`` seconds."""
        start, end = self.window
        while True:
            pkt = self.pending or next(self.packets, None)
            self.pending = None
            if pkt is None:
                return
            if pkt.dts is None or pkt.pts is None:  # the demuxer's end-of-stream flush packet
                continue
            pt = float(pkt.pts * pkt.time_base)
            if pt > t:
                self.pending = pkt
                return
            if pt >= start - 1e-6 and (end is None or pt < end):
                self._mux(pkt)

    def _mux(self, pkt: Any) -> None:
        if self.offset_s:
            shift = round(Fraction(self.offset_s) / pkt.time_base)
            pkt.pts -= shift
            pkt.dts -= shift
        pkt.stream = self.mapping[pkt.stream.index]
        self.out.mux(pkt)

    def close(self) -> None:
        self.src.close()
