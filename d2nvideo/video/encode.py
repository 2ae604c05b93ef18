"""Encode frames into a new file that keeps the source's timing, rotation, metadata, colour tags
(HDR) and its audio and subtitle streams (see streams.py). Options that cannot work are refused
before any frame is encoded (``check_encode``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import OutputError
from ..fileio import output_name
from . import chapters
from .codecs import (
    EncodeSettings,
    check_encode,
    codec_for,
    codec_options,
    pick_pix_fmt,
    usable_codec,
)
from .damage import ffmpeg_reason
from .decode import Frame
from .probe import (
    Color,
    VideoInfo,
    open_input,
    use_threads,
    warn_if_cut_short,
    warn_if_deep,
    warn_if_hdr,
    warn_if_interlaced,
)
from .streams import StreamCopier, described_as, tag_key
from .ticks import Clock, Window, codec_rates, frame_tick, listed_rate

log = logging.getLogger(__name__)

# Container-level tags that the muxer writes itself; copying them would mislabel the output.
# (creation_time is the recording's, a dashcam's clock: the muxer writes none of its own; an
# AVI's "software" is its writer's, as "encoder" is.)
_MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "software"}
NO_ROTATION = ("avi", "mpegts")  # muxers that drop the display matrix


def encode_frames(
    frames: Iterable[Frame],
    path: Path,
    source: VideoInfo,
    settings: EncodeSettings,
    start: float | None = None,
    end: float | None = None,
) -> int:
    """Write ``frames`` (``image`` of shape ``(H, W, 3) uint8``) to ``path``; return the count.

    Output pts equal input pts, shifted so the first frame is at 0 in a segment (``start``,
    seconds on the file's clock; None: the whole file) and where the clock starts below 0 (an
    MP4's edit list hid the frames before 0). Audio and subtitle packets of the source within
    ``[start, end)`` are copied, shifted alike, and interleaved by time. The container is
    closed whatever happens; a failure is one OutputError, the first one met.
    """
    import av

    codec, out = _prepare(path, source, settings, (start, end)), av.open(str(path), "w")
    writer = _Writer(out, source, settings, codec, (start, end))
    try:
        for frame in frames:
            writer.write(frame)
        writer.flush()
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the first failure is the one to tell
            writer.close()
        if isinstance(exc, av.error.FFmpegError):  # what no check foresaw: one line
            raise _write_failed(path, exc) from exc
        raise
    try:
        writer.close()
    except av.error.FFmpegError as exc:  # the trailer (an MP4's index) could not be written
        raise _write_failed(path, exc) from exc
    _read_back(path, writer)
    return writer.count


def _read_back(path: Path, writer: _Writer) -> None:
    """Name what the written file could not keep of what it was given (container tags, its
    tracks' languages and titles, chapters), opening it once."""
    import av

    try:
        with av.open(str(path)) as written:
            _warn_dropped_tags(path, written, writer.tags)
            _warn_dropped_track_tags(path, written, writer.track_tags)
            chapters.warn_if_dropped(path, written, writer.chapters)
    except (av.error.FFmpegError, OSError):  # not for a read-back to fail a file written whole
        return


class _Writer:
    """One output file: its video stream, added at the first frame (its size, its time), and
    the copier of the source's other streams."""

    def __init__(
        self,
        out: Any,
        source: VideoInfo,
        settings: EncodeSettings,
        codec: str,
        window: tuple[float | None, float | None],
    ) -> None:
        self.out, self.source, self.settings, self.codec = out, source, settings, codec
        self.window = window
        self.vs: Any = None
        self.clock = Clock(0)
        self.copier: StreamCopier | None = None
        self.count = 0
        self.tags: dict[str, str] = {}  # the source's container tags given to the output
        self.chapters = 0  # the source's chapters given to it
        self.track_tags: list[Track] = []  # its tracks' languages and titles

    def write(self, frame: Frame) -> None:
        if self.vs is None:
            self._begin(frame)
        self.count += 1
        self._mux(self.vs.encode(self.clock.stamp(_to_av(frame, self.vs.pix_fmt), frame)))

    def _begin(self, first: Frame) -> None:
        start, end = self.window
        origin = self._origin(first)  # seconds on the source's clock that become 0
        offset = round(origin / first.time_base)
        tick = frame_tick(self.out.format.name, self.codec, self.source, offset, self.window)
        self.clock = Clock(offset, tick, from_first=bool(codec_rates(self.codec)))
        self.vs = _add_video_stream(
            self.out, self.codec, first.image, self.source, self.settings, self.clock.tick
        )
        self.copier = _open_copier(self.source, self.out, start, end, float(origin))
        self.tags = _copy_metadata(self.out, self.source)
        with open_input(self.source.path) as src:  # its title and language were lost
            _described_as(self.vs, src.streams[self.source.video_index])
            self.chapters = chapters.copy_chapters(src, self.out, self.window, origin)

    def _origin(self, first: Frame) -> Fraction:
        """The output's 0: a segment's first frame, as is a clock below 0's (an MP4's edit
        list hid what is before 0). An AVI's sound has no times and plays from 0: its 0 is
        where picture or sound begins, the earlier (sound before 0 is left out there)."""
        here = Fraction(first.pts) * first.time_base
        if self.window[0] is not None or first.pts < 0:
            return here
        if self.out.format.name != "avi":
            return Fraction(0)
        return max(Fraction(0), min(here, _audio_start(self.source.path, here)))

    def flush(self) -> None:
        if self.vs is not None:
            self._mux(self.vs.encode(), copy=False)
        if self.copier is not None:
            self.copier.finish()
        given = self.copier.given() if self.copier is not None else set()
        self.track_tags = _track_tags(self.out.streams, given)

    def _mux(self, packets: Iterable[Any], copy: bool = True) -> None:
        """Mux video packets, and before each the source's other packets up to its time."""
        for packet in packets:
            self.out.mux(packet)
            if copy and self.copier is not None and packet.dts is not None:
                self.copier.copy_until(float(packet.dts * packet.time_base))

    def close(self) -> None:
        try:
            if self.copier is not None:
                self.copier.close()
        finally:
            self.out.close()


def _described_as(vs: Any, source: Any) -> None:
    """The video stream with its source's tags and marks, less its timecode: the source's first
    frame's, which a segment's is not (one from --start 2 read 01:00:00:00, its source's), and
    whose track (a data stream) is named as left out, as it was before the tags were kept."""
    described_as(vs, source)
    vs.metadata.pop("timecode", None)


def _audio_start(path: Path, otherwise: Fraction) -> Fraction:
    """When the source's first sound begins (seconds), ``otherwise`` where it has none."""
    with open_input(path) as container:
        starts = [
            Fraction(s.start_time) * s.time_base
            for s in container.streams.audio
            if s.start_time is not None and s.time_base
        ]
    return min(starts, default=otherwise)


Track = tuple[int, bool, dict[str, str]]  # an output track: index, given a packet, its tags
_KINDS, _NAMES = ("audio", "subtitle"), ("language", "title")


def _track_tags(streams: Any, given: set[int]) -> list[Track]:
    """The output's audio and subtitle tracks, in order: whether each was given a packet, and
    the language and title given to it."""
    return [
        (s.index, s.index in given, {k: v for k, v in s.metadata.items() if k in _NAMES})
        for s in streams
        if s.type in _KINDS
    ]


def _warn_dropped_track_tags(path: Path, written: Any, tracks: list[Track]) -> None:
    """Name the languages and titles of the tracks copied that the written file does not hold,
    read back from it: a .ts keeps no title, an .avi no language, a .mov no language outside
    QuickTime's old list ('deu', 'nld': it takes 'ger', 'dut'), each without a word. An MP4
    leaves out a track given no packet (one silent in a segment): the tracks after it moved
    up, and were said to have lost what they kept."""
    kept = [set(s.metadata.values()) for s in written.streams if s.type in _KINDS]
    if len(kept) != len(tracks):  # those given nothing are not in it
        _warn_empty(path, [i for i, fed, _ in tracks if not fed])
        tracks = [track for track in tracks if track[1]]
    if len(kept) != len(tracks):  # which is which is not known: nothing said
        return
    lost = [
        f"{key} '{value}' of track {i}"
        for (i, _, tags), held in zip(tracks, kept, strict=True)
        for key, value in tags.items()
        if value != "und" and value not in held
    ]
    if lost:
        log.warning("the %s file could not keep the %s", output_name(path).suffix, ", ".join(lost))


def _warn_empty(path: Path, tracks: list[int]) -> None:
    """Name the tracks given no packet that the written file leaves out (an MP4 does)."""
    if tracks:
        log.warning(
            "the %s file leaves out track%s %s: nothing in %s fell within what was converted",
            output_name(path).suffix,
            "" if len(tracks) == 1 else "s",
            ", ".join(map(str, tracks)),
            "it" if len(tracks) == 1 else "them",
        )


def _write_failed(path: Path, exc: Exception) -> OutputError:
    return OutputError(f"writing '{output_name(path)}' failed: {ffmpeg_reason(exc)}", path)


def _prepare(path: Path, source: VideoInfo, settings: EncodeSettings, window: Window) -> str:
    """Refuse what cannot work, warn about HDR or 10-bit input, and pick the encoder that
    opens here."""
    check_encode(path, settings)
    warn_if_hdr(source)
    warn_if_deep(source)
    warn_if_interlaced(source)
    warn_if_cut_short(source)
    codec = usable_codec(codec_for(path, settings), source.width, source.height)
    if codec_rates(codec):  # MPEG-1/2: refused here, before any frame is translated
        listed_rate(codec, source, window)
    return codec


def _open_copier(
    source: VideoInfo, out: Any, start: float | None, end: float | None, offset_s: float
) -> StreamCopier | None:
    # A whole-file copy keeps everything, priming packets with pts < 0 included, except into
    # an AVI: it stores no times below 0, and FFmpeg shifted the video behind an AAC's priming
    # packet by writing empty frames (two or three: the picture a tenth of a second late).
    if start is None:
        start = offset_s if out.format.name == "avi" else float("-inf")
    return StreamCopier.open(source, out, start, end, offset_s)


def _to_av(frame: Frame, pix_fmt: str) -> Any:
    """The frame for the encoder: 4:2:0 by OpenCV's BT.601 conversion (the matrix and range
    FFmpeg's scaler uses for RGB input, luma within one level; 7x faster than the scaler), any
    other pixel format as RGB for FFmpeg to convert."""
    import av

    image = np.ascontiguousarray(frame.image)
    if pix_fmt == "yuv420p":
        i420 = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), np.uint8)
        vf = av.VideoFrame.from_ndarray(i420, format="yuv420p")
    else:
        vf = av.VideoFrame.from_ndarray(image, format="rgb24")
    return vf


def _add_video_stream(
    out: Any,
    codec: str,
    image: np.ndarray,
    source: VideoInfo,
    settings: EncodeSettings,
    tick: Fraction | None,
) -> Any:
    """``tick``: the time base where frames are counted (``frame_tick``), None where times
    are stored (the source's is kept)."""
    height, width = image.shape[:2]
    options = codec_options(codec, settings)
    if tick is not None and out.format.name == "avi":  # an AVI stores no presentation times:
        options["bf"] = "0"  # B-frames shifted every frame
    vs = out.add_stream(codec, rate=source.fps, options=options)
    vs.width, vs.height = width, height
    vs.pix_fmt = pick_pix_fmt(codec, width, height, settings)
    vs.time_base = tick or source.time_base
    vs.codec_context.time_base = tick or source.time_base
    if source.sar:  # anamorphic or DV pixels: dropped, the picture played at the wrong width
        vs.codec_context.sample_aspect_ratio = source.sar
    use_threads(vs.codec_context)
    if source.rotation:
        vs.set_display_rotation(source.rotation)
        if out.format.name in NO_ROTATION:
            log.warning(
                "the %s container cannot store the clip's rotation (%d degrees): players will "
                "show it turned; .mp4, .mov or .mkv keep it",
                out.format.name,
                source.rotation,
            )
    _tag_colour(vs, source.color)
    return vs


def _tag_colour(vs: Any, color: Color) -> None:
    """Colour tags for what is written. HDR keeps the input's (PQ/HLG values shown as SDR look
    washed out). Otherwise the YUV matrix is BT.601's, the one the RGB frames are converted
    with (OpenCV's, or FFmpeg's scaler by default), and the primaries and transfer the
    input's: untagged, a player took an HD clip for BT.709 and shifted its hues."""
    cc = vs.codec_context
    if color.hdr:
        cc.color_primaries, cc.color_trc = color.primaries, color.trc
        cc.colorspace, cc.color_range = color.space, color.range
        return
    if not vs.pix_fmt.startswith("yuv"):
        return
    cc.colorspace = SMPTE170M
    cc.color_range = 2 if vs.pix_fmt.startswith("yuvj") else 1  # full (JPEG) or limited
    if color.primaries != 2:
        cc.color_primaries, cc.color_trc = color.primaries, color.trc


SMPTE170M = 6  # FFmpeg's AVCOL_SPC_SMPTE170M: the BT.601 matrix


def _copy_metadata(out: Any, source: VideoInfo) -> dict[str, str]:
    kept = {k: v for k, v in source.metadata.items() if tag_key(k) not in _MUXER_TAGS}
    out.metadata.update(kept)
    return kept


def _warn_dropped_tags(path: Path, written: Any, tags: dict[str, str]) -> None:
    """The source's container tags the written file does not hold, by name or by value (a
    muxer may rename one: an AVI's album reads back as product), read back from what was
    written: a .ts keeps none, an .mp4 no make or model, an .avi no location, each without a
    word."""
    names = {tag_key(k) for k in written.metadata}
    values = set(written.metadata.values())
    dropped = [k for k, v in tags.items() if tag_key(k) not in names and v not in values]
    if dropped:
        log.warning(
            "the %s file could not keep the clip's metadata %s: .mkv keeps every tag",
            output_name(path).suffix,
            ", ".join(dropped[:5]) + (", ..." if len(dropped) > 5 else ""),
        )
