"""The source's audio and subtitle streams in a new file: copied packet for packet where the
output container takes their codec; audio it does not take is re-encoded (AAC, or where the
container takes none its own default: Opus for WebM, MP2 for MPEG); what neither fits is left
out with a warning.

MPEG-TS declares no codec table, so FFmpeg's list of what it "supports" is nearly empty although
it muxes AAC, MP3, AC-3 and Opus; those are allowed here by name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InputError
from .chapters import is_chapter_track
from .damage import demuxed
from .decode import BACK_S, clock_restarts
from .probe import ATTACHED_PIC, VideoInfo, codec_name, open_input

log = logging.getLogger(__name__)

MPEGTS_CODECS = frozenset(
    {"h264", "hevc", "mpeg2video", "mpeg1video", "mpeg4", "av1"}
    | {"aac", "mp3", "mp2", "ac3", "eac3", "opus", "dvb_subtitle", "dvb_teletext"}
)

# How far past a segment's end the copier reads: streams are interleaved within seconds (10 s
# at most, FFmpeg's muxers), and what lies further is not in the segment. It read on to the
# end of the file: an hour of sound for a one-second segment at the start.
PAST_END_S = 30.0

# What a muxer lists as supported but refuses when the file is begun ("Invalid argument": an
# MKV's Opus copied into .mov), found by writing each into each here (FFmpeg 7).
REFUSED = {
    "mov": frozenset({"opus", "libopus", "flac", "vp8", "libvpx", "vp9", "libvpx-vp9", "av1"})
    | frozenset({"libaom-av1", "libsvtav1", "libdav1d", "truehd"}),
    "flv": frozenset({"pcm_s16le", "mpeg4"}),
}


@cache
def supported_codecs(format_name: str) -> frozenset[str]:
    """Codec names the muxer ``format_name`` accepts (FFmpeg's list, less what it refuses,
    plus MPEG-TS's own)."""
    import os

    import av

    try:
        with av.open(os.devnull, "w", format=format_name) as probe:
            names = frozenset(probe.supported_codecs)
    except (ValueError, av.error.FFmpegError):
        names = frozenset()
    names -= REFUSED.get(format_name, frozenset())
    return names | MPEGTS_CODECS if format_name == "mpegts" else names


@cache
def muxer_default(format_name: str, kind: str) -> str | None:
    """The encoder FFmpeg itself writes ``kind`` ("video" or "audio") into a ``format_name``
    file with (MPEG-1 and MP2 for .mpg, VP9 and Opus for .webm), if this build has one."""
    import os

    import av

    try:
        with av.open(os.devnull, "w", format=format_name) as probe:
            name = getattr(probe, f"default_{kind}_codec")
        return str(av.codec.Codec(name, "w").name)
    except Exception:  # no such muxer, none of that kind ("none"), or no encoder here
        return None


def accepts(out: Any, codec: str) -> bool:
    return codec in supported_codecs(out.format.name.split(",")[0])


class StreamCopier:
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
        self.mapping = mapping  # source stream index -> output stream or _Transcoder
        self.window = window
        self.offset_s = offset_s
        self.packets: Iterator[Any] = demuxed(src, [src.streams[i] for i in mapping])
        self.pending: Any = None
        self.path = Path(src.name)
        self.last_times: dict[int, float] = {}  # each stream's latest packet time
        self.fed: set[int] = set()  # the source streams a packet was given from

    @classmethod
    def open(
        cls, source: VideoInfo, out: Any, start: float, end: float | None, offset_s: float
    ) -> StreamCopier | None:
        """A copier for every audio and subtitle stream that can go into ``out``; None when
        there is nothing to copy."""
        import av

        src = open_input(source.path)
        mapping = {}
        for s in src.streams:
            if _cover(s) or (s.type in ("data", "attachment") and not is_chapter_track(s)):
                _left_out(s)
            if s.type in ("audio", "subtitle"):
                target = _output_for(s, out, offset_s)
                if target is not None:
                    mapping[s.index] = target
        if not mapping:
            src.close()
            return None
        if start > 0:
            src.seek(int(start * av.time_base), backward=True)
        return cls(src, out, mapping, (start, end), offset_s)

    def copy_until(self, t: float) -> None:
        """Mux every pending packet whose presentation time is at most ``t`` seconds."""
        while True:
            pkt = self.pending or next(self.packets, None)
            self.pending = None
            if pkt is None:
                return
            if pkt.dts is None or pkt.pts is None:  # the demuxer's end-of-stream flush packet
                continue
            pt = float(pkt.pts * pkt.time_base)
            if self.window[1] is not None and pt > self.window[1] + PAST_END_S:
                self.packets, self.pending = iter(()), None  # the rest is past the segment
                return
            self._check_clock(pkt.stream.index, pt)
            if pt > t:
                self.pending = pkt
                return
            if _shown_in(pkt, pt, self.window, self.offset_s):
                self._mux(pkt)

    def _check_clock(self, index: int, pt: float) -> None:
        last = self.last_times.get(index)
        if last is not None and pt < last - BACK_S:
            raise InputError(clock_restarts(self.path, last - pt), self.path)
        self.last_times[index] = pt if last is None else max(pt, last)

    def finish(self) -> None:
        """Copy what is left and flush the re-encoders."""
        self.copy_until(float("inf"))
        for target in self.mapping.values():
            if isinstance(target, _Transcoder):
                target.flush(self.out)

    def given(self) -> set[int]:
        """The output tracks given a packet: an MP4 or MPEG-PS leaves out one given none."""
        targets = (self.mapping[i] for i in self.fed)
        return {(t.stream if isinstance(t, _Transcoder) else t).index for t in targets}

    def _mux(self, pkt: Any) -> None:
        self.fed.add(pkt.stream.index)
        target = self.mapping[pkt.stream.index]
        if isinstance(target, _Transcoder):
            target.encode(self.out, pkt)
            return
        if self.offset_s:
            shift = round(Fraction(self.offset_s) / pkt.time_base)
            pkt.pts -= shift
            pkt.dts -= shift
        pkt.stream = target
        self.out.mux(pkt)

    def close(self) -> None:
        self.src.close()


def _shown_in(pkt: Any, pt: float, window: tuple[float, float | None], origin: float) -> bool:
    """Whether a packet beginning at ``pt`` s goes into the output of ``window``. A subtitle
    shown across either edge of a segment (a dashcam's GPS line, one a second) is cut to it,
    from the output's 0 (``origin``, its first frame): one begun before ``--start`` was left
    out, and one that outlasted the segment made the file last longer than its picture."""
    start, end = window
    if pkt.stream.type != "subtitle" or not pkt.duration:
        return pt >= start - 1e-6 and (end is None or pt < end)
    tb, first = pkt.time_base, pkt.pts
    if math.isfinite(start):
        first = max(first, round(Fraction(max(start, origin)) / tb))
    last = pkt.pts + pkt.duration
    if end is not None:
        last = min(last, round(Fraction(end) / tb))
    if last <= first:
        return False
    pkt.pts, pkt.dts, pkt.duration = first, first, last - first
    return True


def _output_for(stream: Any, out: Any, offset_s: float) -> Any:
    """The output stream a source stream goes to: a copy, a re-encoder, or None (left out)."""
    name = codec_name(stream)
    lossy_avi = _uncopiable_into_avi(stream, out) and not (name or "").startswith("pcm_")
    if name is not None and accepts(out, name) and not lossy_avi:
        return described_as(out.add_stream_from_template(stream), stream)
    fallback = audio_codec(out.format.name.split(",")[0])
    if stream.type == "audio" and fallback and accepts(out, fallback):
        source = stream.container.format.name.split(",")[0].upper()
        why = f"cannot be copied from {source} to AVI" if lossy_avi else "cannot go into"
        where = "" if lossy_avi else f" {out.format.name}"
        log.warning(
            "audio stream %d (%s) %s%s; re-encoded to %s", stream.index, name, why, where, fallback
        )
        return _Transcoder(stream, out, fallback, offset_s)
    log.warning(
        "%s stream %d (%s) cannot go into %s; left out",
        stream.type,
        stream.index,
        name,
        out.format.name,
    )
    return None


def audio_codec(format_name: str) -> str | None:
    """What audio the container does not take is re-encoded to: AAC, else its own default."""
    return "aac" if "aac" in supported_codecs(format_name) else muxer_default(format_name, "audio")


def stream_tags(stream: Any) -> dict[str, str]:
    """A stream's tags for its copy (its language, title, handler: "deu" audio became "und"),
    less what describes the source's encoding or size (a Matroska file's DURATION, mkvmerge's
    statistics, 'BPS-eng' as 'BPS'), which the muxer writes anew or which would be wrong."""
    return {
        k: v
        for k, v in stream.metadata.items()
        if tag_key(k) not in _ENCODING_TAGS and not k.startswith("_STATISTICS")
    }


def described_as(copy: Any, stream: Any) -> Any:
    """``copy`` with ``stream``'s tags and dispositions: a track marked default, forced or
    commentary was written unmarked (a player chose the first audio, the commentary, and no
    longer showed a forced subtitle by itself)."""
    copy.metadata.update(stream_tags(stream))
    copy.disposition = stream.disposition
    language = copy.metadata.get("language")
    if copy.container.format.name == "mov" and language in QUICKTIME_LANGUAGES:
        copy.metadata["language"] = QUICKTIME_LANGUAGES[language]
    return copy


# A .mov stores a language by QuickTime's old numbers, which know these by their ISO 639-2/B
# codes only: German audio tagged 'deu' (the T code, as Matroska writes it) read back untagged.
# The list is each code that .mov lost and its B code kept, found by writing both here.
QUICKTIME_LANGUAGES = {
    "bod": "tib", "cym": "wel", "deu": "ger", "ell": "gre", "eus": "baq", "fas": "per",
    "hye": "arm", "isl": "ice", "kat": "geo", "mkd": "mac", "msa": "may", "mya": "bur",
    "nld": "dut", "sqi": "alb", "zho": "chi",
}  # fmt: skip


def tag_key(key: str) -> str:
    """A tag's name without case or language (an .mp4's 'location-eng', Matroska's 'BPS-eng')."""
    return key.lower().split("-")[0]


_ENCODING_TAGS = {"duration", "encoder", "vendor_id", "bps", "number_of_frames", "number_of_bytes"}


def _cover(stream: Any) -> bool:
    """A cover image (an attached picture: a phone's or an editor's thumbnail), which probe
    does not count as video."""
    return bool(stream.type == "video" and stream.disposition & ATTACHED_PIC)


def _left_out(stream: Any) -> None:
    """Data streams (a camera's GPS or timecode track), attachments (a Matroska file's fonts)
    and cover images went missing from the output without a word."""
    tag = stream.metadata.get("handler_name") or stream.metadata.get("filename") or ""
    tag = "a cover image" if _cover(stream) else tag.strip()
    log.warning(
        "%s stream %d%s is left out: convert copies audio and subtitle streams only",
        stream.type,
        stream.index,
        f" ({tag})" if tag else "",
    )


def _uncopiable_into_avi(stream: Any, out: Any) -> bool:
    """Compressed audio goes into an AVI copied only from an MP4, MOV or Matroska file. An
    AVI's (AAC, MP3) keeps the block size its reader read, and the output's reader then times
    its packets by bytes (0, 0, 1, 1, 1, 2... for 0, 1, 2...: the file could not be converted
    again); an MPEG-TS's AAC (ADTS, no codec header) made the AVI muxer refuse the file."""
    if out.format.name != "avi":
        return False
    return not any(kind in stream.container.format.name for kind in ("mp4", "matroska"))


class _Transcoder:
    """Decodes one source audio stream and encodes it again with ``codec``. The samples are
    stamped as one run from the first one's time (less ``offset_s``: a segment starts at 0),
    so the encoder times its packets itself, its priming samples before that time (stamped
    from 0 by the muxer, an AAC's 1,024 were heard first: a cheap dashcam's 8 kHz sound came
    128 ms late)."""

    def __init__(self, stream: Any, out: Any, codec: str, offset_s: float) -> None:
        cc = stream.codec_context
        self.rate = 48000 if codec == "libopus" else _rate_for(codec, cc.sample_rate or 48000)
        self.stream = described_as(out.add_stream(codec, rate=self.rate), stream)
        self.stream.layout = "mono" if cc.channels == 1 else "stereo"
        self.offset_s = offset_s
        self.origin: Fraction | None = None  # the first sample's time (s), on the output clock
        self.sent = 0  # samples stamped so far, at the source's rate
        # An AVI stores no time below 0: there the priming packet is moved to 0 (FFmpeg moved
        # the video behind it, with empty frames), and heard first, as before.
        self.lead: int | None = None if out.format.name == "avi" else 0

    def encode(self, out: Any, pkt: Any) -> None:
        for frame in pkt.decode():
            rate = frame.sample_rate or self.rate
            if self.origin is None:
                begin = frame.pts * frame.time_base if frame.pts is not None else 0
                self.origin = Fraction(begin) - Fraction(self.offset_s)
            frame.pts = round(self.origin * rate) + self.sent
            frame.time_base = Fraction(1, rate)
            self.sent += frame.samples
            for packet in self.stream.encode(frame):
                self._mux(out, packet)

    def flush(self, out: Any) -> None:
        for packet in self.stream.encode(None):
            self._mux(out, packet)

    def _mux(self, out: Any, packet: Any) -> None:
        if self.lead is None and packet.pts is not None:
            self.lead = max(0, -packet.pts)
        if self.lead and packet.pts is not None:
            packet.pts += self.lead
            packet.dts = (packet.dts if packet.dts is not None else packet.pts) + self.lead
        out.mux(packet)


def _rate_for(codec: str, rate: int) -> int:
    """``rate`` where the encoder takes it, else the lowest it takes above (or its highest):
    MP2 takes no 8 kHz, a cheap dashcam's."""
    import av

    rates = sorted(av.codec.Codec(codec, "w").audio_rates or [])
    return rate if not rates or rate in rates else next((r for r in rates if r > rate), rates[-1])
