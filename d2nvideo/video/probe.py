"""Read what a video holds: streams, size, rate, duration, frame count, rotation, metadata."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fileio import require_file
from .damage import (
    demuxed,
    ffmpeg_reason,
    index_cut,
    index_end,
    is_mp4_family,
    truncation_message,
    unreadable_mp4,
)


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str  # video|audio|subtitle|data|attachment
    codec: str
    language: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    cover: bool = False  # a cover image (an attached picture), not video


@dataclass(frozen=True)
class Color:
    """The video's colour tags, as FFmpeg's enum values (2 = unspecified, 0 range unknown)."""

    primaries: int = 2
    trc: int = 2  # transfer characteristic: 16 PQ (SMPTE ST 2084), 18 HLG (ARIB STD-B67)
    space: int = 2  # the YUV matrix
    range: int = 0  # 1 limited (tv), 2 full (pc)

    @property
    def hdr(self) -> bool:
        """PQ or HLG transfer, or BT.2020 primaries: not the SDR video the model learned on."""
        return self.trc in (16, 18) or self.primaries == 9


@dataclass(frozen=True)
class VideoInfo:
    """One video file, as d2nvideo needs it. ``frames`` is exact when ``frames_exact``."""

    path: Path
    format: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: Fraction  # average rate; variable-rate files keep their own pts regardless
    time_base: Fraction
    duration: float  # seconds
    frames: int
    frames_exact: bool
    rotation: int  # degrees counter-clockwise from the display matrix, 0 when absent
    start_time: float
    bit_rate: int | None
    video_index: int
    streams: tuple[StreamInfo, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    still: bool = False  # a still image (PNG, JPEG...) that FFmpeg reads as one frame
    color: Color = field(default_factory=lambda: Color())
    size: int = 0  # bytes on disk
    index_end: int | None = None  # byte where the container's index says the last sample ends
    header_end: float | None = None  # Matroska/WebM: seconds where the header says video ends
    base_rate: Fraction | None = None  # the lowest rate that holds every frame time FFmpeg saw
    sar: Fraction | None = None  # sample (pixel) aspect ratio where not square: anamorphic, DV
    interlaced: bool = False  # the first frame is coded as two fields (broadcast, old cameras)

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "audio"]

    @property
    def missing_bytes(self) -> int:
        """Bytes the index lists beyond the end of the file: > 0 when it was cut short (a
        dashcam that lost power mid-write)."""
        return max(0, self.index_end - self.size) if self.index_end else 0

    def frames_in(self, start: float = 0.0, span: float | None = None) -> int:
        """Frames a conversion of ``[start, start + span)`` writes (an estimate from the
        average rate when cut), for progress totals."""
        if not start and span is None:
            return self.frames
        left = max(0.0, self.duration - start)
        wanted = span if span is not None else left
        return max(1, round(min(wanted, left) * float(self.fps)))

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(path=str(self.path), fps=float(self.fps), time_base=str(self.time_base))
        data.update(base_rate=float(self.base_rate) if self.base_rate else None)
        data.update(sar=str(self.sar) if self.sar else None)
        return data


_codec_threads = [0]  # threads for each video decoder and encoder; 0: every core


def set_codec_threads(n: int) -> None:
    """Threads each video decoder and encoder of this process may use: 0 (the default) lets
    FFmpeg take every core; a ``convert --jobs`` worker takes its share of them, as its torch
    threads do, instead of every worker's codecs starting a thread per core."""
    _codec_threads[0] = max(0, n)


def codec_threads() -> int:
    """What :func:`set_codec_threads` set (0: every core)."""
    return _codec_threads[0]


def use_threads(codec_context: Any) -> None:
    """Frame threads where the codec has them (slice threads otherwise), as the ffmpeg command
    opens codecs; PyAV's default, slice threads, scales worse (x264 at 720p on 2 cores: 20.5
    -> 14.2 ms a frame)."""
    codec_context.thread_count = _codec_threads[0]
    codec_context.thread_type = "AUTO"


def open_input(path: Path, hwaccel: str | None = None) -> Any:
    """``av.open`` with our errors: a missing, unreadable or non-media file gives InputError.

    ``hwaccel`` ("cuda") decodes on the device (NVDEC) where FFmpeg and the driver allow it;
    when they do not, it warns once and decodes in software.
    """
    import av

    require_file(path)
    if hwaccel:
        try:
            from av.codec.hwaccel import HWAccel

            return av.open(str(path), "r", hwaccel=HWAccel(hwaccel, allow_software_fallback=True))
        except Exception as exc:  # no device, no driver, or a PyAV without hwaccel
            warn_once(  # FFmpeg's own words were "[Errno 1] Operation not permitted"
                f"hardware decoding ({hwaccel}) is not available (no GPU or driver for it? "
                f"FFmpeg: {ffmpeg_reason(exc)}); decoding in software"
            )
    try:
        container = av.open(str(path), "r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if is_mp4_family(path):
            raise InputError(unreadable_mp4(path, exc), path) from exc
        raise InputError(f"'{path}' is not a readable video ({ffmpeg_reason(exc)})", path) from exc
    if container.format.name in TEXT_DEMUXERS:  # a .txt converted to 31 frames, exit 0
        container.close()
        raise InputError(f"'{path}' is text, not a video (FFmpeg would draw it as ANSI art)", path)
    return container


TEXT_DEMUXERS = ("tty",)  # FFmpeg's ANSI-art reader takes any text file of some size


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logging.getLogger(__name__).warning(message)


def video_stream(container: Any, path: Path) -> Any:
    """The video stream d2nvideo converts: the largest picture that is not a cover image
    (an attached picture); the first of equals. The first stream alone was no rule: a
    one-frame picture stored first was converted instead of the video."""
    moving = [s for s in container.streams.video if not s.disposition & ATTACHED_PIC]
    known = [s for s in moving if s.codec_context is not None]  # PyAV: no size, no decoder
    if not known:
        raise InputError(index_cut(path) or _no_stream(path, moving), path)
    vs = max(known, key=lambda s: (s.width or 0) * (s.height or 0))
    _warn_if_more([s for s in moving if s is not vs], vs, path)
    return vs


def _no_stream(path: Path, streams: list[Any]) -> str:
    if not streams:
        return f"'{path}' has no video stream"
    return (
        f"'{path}' has a video stream whose codec FFmpeg does not know (or its header is "
        "damaged): it cannot be decoded"
    )


def _warn_if_more(others: list[Any], vs: Any, path: Path) -> None:
    """Once per file: video streams other than the one converted are left out (a front and
    rear dashcam's file holds two)."""
    if others:
        warn_once(
            f"'{path.name}' has {len(others) + 1} video streams: stream {vs.index} "
            f"({vs.width}x{vs.height}) is the one used, stream "
            f"{', '.join(str(s.index) for s in others)} left out"
        )


ATTACHED_PIC = 1024  # AV_DISPOSITION_ATTACHED_PIC: a cover image, not video


def probe(path: Path, salvage: bool = False) -> VideoInfo:
    """Describe ``path``, decoding its first frame (does it decode? rotation, fields). InputError
    for anything that is not a decodable video, and for a file cut short (its index lists
    samples past its end) unless ``salvage``: refused before decoding what is there."""
    with open_input(path) as container:
        vs = video_stream(container, path)
        size, end = path.stat().st_size, index_end(container)
        if (cut := end is not None and end > size) and not salvage:
            raise InputError(truncation_message(path, size, end), path)
        first = _first_frame(container, vs, path)
        tb, fps = vs.time_base or Fraction(1, 90000), vs.average_rate or vs.guessed_rate or 30
        duration = _duration(container, vs, tb)
        frames, exact = _frame_count(container, vs, cut, duration, fps)
        return VideoInfo(
            path=path,
            format=container.format.name,
            codec=vs.codec_context.name,
            width=first.width,
            height=first.height,
            pix_fmt=first.format.name,
            fps=Fraction(fps),
            time_base=Fraction(tb),
            duration=duration,
            frames=frames,
            frames_exact=exact,
            rotation=_rotation(first, path),
            start_time=float(vs.start_time * tb) if vs.start_time is not None else 0.0,
            bit_rate=container.bit_rate or None,
            video_index=vs.index,
            streams=tuple(_stream_info(s) for s in container.streams),
            metadata=dict(container.metadata),
            still=_is_still(container.format.name),
            color=_color(first),
            size=size,
            index_end=end,
            header_end=_header_end(container, vs),
            base_rate=Fraction(vs.base_rate) if vs.base_rate else None,
            sar=_sar(vs),
            interlaced=bool(first.interlaced_frame),
        )


def held_duration(path: Path) -> float | None:
    """Seconds of video from its start whose samples lie wholly inside the file, by its index:
    less than the duration when the file was cut short; None without an index."""
    with open_input(path) as container:
        vs = video_stream(container, path)
        size = path.stat().st_size
        try:
            times = [e.timestamp for e in vs.index_entries if e.pos >= 0 and e.pos + e.size <= size]
        except (AttributeError, TypeError):
            return None
        if not times:
            return None
        tb = vs.time_base or Fraction(1, 90000)
        return float((max(times) - (vs.start_time or 0)) * tb)


def _header_end(container: Any, vs: Any) -> float | None:
    """Where a Matroska or WebM file's header says its video ends (seconds, the timeline's
    own): the video track's DURATION tag, which the muxer writes last, else the segment's
    duration (all that is left of a file cut short); None for other containers, whose
    frame counts or indexes tell a cut file instead."""
    import av

    if "matroska" not in container.format.name:
        return None
    tag = _tag_seconds(vs.metadata.get("DURATION", ""))
    if tag is not None:
        return tag
    if container.duration:
        return float((container.start_time or 0) + container.duration) / av.time_base
    return None


def _tag_seconds(tag: str) -> float | None:
    """'00:00:05.021000000' -> 5.021; None for anything else."""
    try:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _is_still(format_name: str) -> bool:
    """Image demuxers: image2 (numbered files) and the *_pipe readers of single images."""
    return format_name == "image2" or format_name.endswith("_pipe")


def _color(frame: Any) -> Color:
    def tag(name: str, default: int) -> int:
        value = getattr(frame, name, None)
        return int(value) if value is not None else default

    return Color(
        tag("color_primaries", 2), tag("color_trc", 2), tag("colorspace", 2), tag("color_range", 0)
    )


def warn_if_hdr(info: VideoInfo) -> None:
    """Once per process: HDR input keeps its colour tags but is translated as coded."""
    if info.color.hdr:
        warn_once(
            f"'{info.path.name}' is HDR video (PQ/HLG or BT.2020): its colour tags are kept, but "
            "the model was trained on SDR video and sees the coded values without tone mapping, "
            "so colours may be off"
        )


def warn_if_deep(info: VideoInfo) -> None:
    """Once per file: more than 8 bits a channel (a phone's 10-bit HEVC) is translated at 8."""
    bits = pixel_bits(info.pix_fmt)
    if bits > 8:
        warn_once(
            f"'{info.path.name}' has {bits} bits a channel ({info.pix_fmt}): it is translated "
            "at 8 bits, so its finer steps of brightness are rounded"
        )


def warn_if_interlaced(info: VideoInfo) -> None:
    """Once per file: two fields a frame are translated, and written, as one picture."""
    if info.interlaced:
        warn_once(
            f"'{info.path.name}' is interlaced: each frame's two fields are translated as one "
            "picture and written as progressive frames, so moving edges keep their combing; "
            "deinterlace it first (ffmpeg -vf bwdif) for a clean result"
        )


def warn_if_cut_short(info: VideoInfo) -> None:
    """Once per file: an MPEG-TS (no index to tell) whose size is no whole number of its
    packets, as a recording cut part-way leaves it: its last frames may be missing (a TS cut
    to 60% converted 37 of 60 frames, exit 0, without a word)."""
    if info.format != "mpegts":
        return
    size = _ts_packet_size(info.path)
    sizes = (size,) if size else TS_PACKET_SIZES  # not told: a size none of them divides
    if all(info.size % n for n in sizes):
        warn_once(
            f"'{info.path.name}' ends part-way through an MPEG-TS packet: it looks cut short, "
            "and what was recorded after the cut is not in the output"
        )


TS_PACKET_SIZES = (188, 192, 204)  # plain, M2TS (Blu-ray, AVCHD), with Reed-Solomon bytes


def _ts_packet_size(path: Path) -> int | None:
    """The packet size of an MPEG-TS file, from its first packets' sync bytes (0x47; an
    M2TS packet's 4-byte time code comes first), or None where they do not tell."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 * 204 + 4)
    except OSError:
        return None
    for size in TS_PACKET_SIZES:
        at = 4 if size == 192 else 0
        if len(head) >= at + 3 * size + 1 and all(head[at + k * size] == 0x47 for k in range(4)):
            return size
    return None


def pixel_bits(pix_fmt: str) -> int:
    """Bits a channel of an FFmpeg pixel format (8 when it is not known)."""
    import av

    try:
        return max((c.bits for c in av.VideoFormat(pix_fmt).components), default=8)
    except (ValueError, TypeError):
        return 8


def _rotation(first: Any, path: Path) -> int:
    """The display matrix's rotation, where it is one by a multiple of 90 degrees. A zeroed or
    degenerate matrix reads as INT_MIN (PyAV's NaN) and a skewed one as -45: carried into the
    output, players turned it by -127 degrees. Such a matrix is ignored, with a warning."""
    degrees = round(first.rotation or 0)
    if degrees % 90 == 0 and abs(degrees) <= 360:
        return degrees
    warn_once(
        f"'{path.name}' has a display matrix that is not a turn by a multiple of 90 degrees "
        f"({'undefined' if abs(degrees) > 360 else f'{degrees} degrees'}): it is ignored"
    )
    return 0


def _first_frame(container: Any, vs: Any, path: Path) -> Any:
    import av

    try:
        for packet in demuxed(container, vs):
            for frame in packet.decode():
                return frame
    except av.error.FFmpegError as exc:
        raise InputError(f"'{path}' is corrupt: {ffmpeg_reason(exc)}", path) from exc
    raise InputError(index_cut(path) or f"'{path}' has a video stream but no decodable frame", path)


def _duration(container: Any, vs: Any, tb: Fraction) -> float:
    """Seconds from the first frame to the end. FFmpeg's duration of a Matroska file runs from
    0 on its timeline, not from its first frame: a clip whose clock starts at 100 s and lasts
    2 said 102, and extract or preview asked for frames that are not there."""
    import av

    if vs.duration:
        return float(vs.duration * tb)
    track_end = _hms(vs.metadata.get("DURATION"))  # the container's: its longest stream's
    if track_end is not None and vs.start_time is not None:  # (a subtitle past the picture)
        return max(0.0, track_end - max(0.0, float(vs.start_time * tb)))
    if container.duration:
        seconds = float(container.duration / av.time_base)
        if "matroska" in container.format.name and container.start_time:
            seconds -= max(0.0, float(container.start_time / av.time_base))
        return max(0.0, seconds)
    return 0.0


def _hms(text: object) -> float | None:
    """Seconds of a Matroska track's DURATION tag ("00:01:42.000000000": where it ends on the
    file's timeline), None where there is none or it does not read."""
    if not isinstance(text, str):
        return None
    parts = text.strip().split(":")
    try:
        hours, minutes, seconds = (float(x) for x in parts) if len(parts) == 3 else (0, 0, -1)
    except ValueError:
        return None
    total = hours * 3600 + minutes * 60 + seconds
    return total if seconds >= 0 and math.isfinite(total) else None


def _sar(vs: Any) -> Fraction | None:
    """The pixels' aspect ratio where they are not square (None: square or unknown)."""
    sar = vs.sample_aspect_ratio or vs.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar != 1 else None


def _frame_count(
    container: Any, vs: Any, cut: bool, duration: float, fps: Fraction | int
) -> tuple[int, bool]:
    """The frames, and whether that is the container's count or an estimate from the
    duration (no count, or one of frames an edit list hides)."""
    count = _stored_frames(container, vs, cut or _riff_short(container))
    if count and not _edited(count, duration, fps):
        return count, True
    return max(1, round(duration * float(fps))), False


def _stored_frames(container: Any, vs: Any, cut: bool) -> int:
    """The container's count of frames. An AVI's header counts slots, empty ones too (a
    variable-rate clip is stored at a fine rate with a frame in some slots: 41 frames in 419
    slots, so d2nvideo's own .avi was refused as "decoded 41 of 419 frames", after the work);
    its index lists the frames, where it reaches the last slots (a file ``cut`` short, or one
    without an index, is listed only as far as FFmpeg has scanned it: no count). A header
    without a count (0: its writer stopped before the end) cannot tell a whole index from
    the packets FFmpeg read to open the file (41 of 60 frames were called the count)."""
    count = int(vs.frames or 0)
    entries = vs.index_entries if container.format.name == "avi" and not cut else []
    if len(entries) < 2 or not count:
        return count
    last = entries[len(entries) - 1].timestamp
    step = last / (len(entries) - 1)  # slots a frame, on average
    return len(entries) if last + 2 * step >= count - count_slack(count) else count


def _riff_short(container: Any) -> bool:
    """Whether an AVI says it runs past its end: a copy that lost its last bytes lost the end
    of the index, written last, and its entries point inside the file (a short index was
    taken as whole: 299 of 300 frames). Other files are not read."""
    if container.format.name != "avi":
        return False
    try:
        with open(container.name, "rb") as fh:
            head, size = fh.read(8), os.fstat(fh.fileno()).st_size
    except OSError:
        return False
    return head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 > size


def _edited(count: int, duration: float, fps: Fraction | int) -> bool:
    """An MP4 cut by copying (``ffmpeg -ss 0.6 -c copy``) keeps the GOP before the cut and an
    edit list hides it: the container counts every stored frame, the duration only what plays.
    Such a count is no count of the frames a decode gives."""
    shown = duration * float(fps)
    return duration > 0 and count > shown + count_slack(count)


def count_slack(count: int) -> int:
    """How many frames fewer than a container's count may decode before a file is called
    truncated (counts can exceed what decodes by a frame or two: edit lists); the same slack
    tells an edit list that hides frames, so that no such file is refused."""
    return max(2, count // 200)


def codec_name(stream: Any) -> str | None:
    """The codec's own name, not its decoder's: an MP3 is "mp3" (its decoder "mp3float", which
    MPEG-TS's list of names did not hold: re-encoded to AAC), a DVB subtitle "dvb_subtitle"
    (not "dvbsub": left out of a .ts), SubRip "subrip" (not "srt")."""
    cc = stream.codec_context
    return str(cc.codec.canonical_name) if cc is not None else None


def _stream_info(s: Any) -> StreamInfo:
    cc = s.codec_context
    name = codec_name(s) or (s.codec.name if getattr(s, "codec", None) else "?")
    audio = s.type == "audio"
    return StreamInfo(
        index=s.index,
        type=s.type,
        codec=name,
        language=s.metadata.get("language"),
        sample_rate=cc.sample_rate if audio and cc is not None else None,
        channels=cc.channels if audio and cc is not None else None,
        cover=bool(s.disposition & ATTACHED_PIC),
    )
