"""Decode a video's frames as RGB arrays that keep their presentation timestamps."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .damage import demuxed, ffmpeg_reason
from .probe import count_slack, open_input, use_threads, video_stream, warn_once

log = logging.getLogger(__name__)


@dataclass
class Frame:
    """One video frame in stored orientation.

    ``image`` is ``(H, W, 3) uint8`` RGB. ``pts`` is in ``time_base`` units, exactly as decoded,
    so variable-frame-rate files keep their timing through to the encoder.
    """

    image: np.ndarray
    pts: int
    time_base: Fraction
    index: int
    duration: int = 0  # in time_base units; 0 when unknown
    source: np.ndarray | None = None  # for a translated frame: its input image

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass
class Salvage:
    """What a salvaging decode (``decode_frames(..., salvage=Salvage())``) could not decode:
    packets that failed, frames missing against the container's count, the first reason."""

    lost: int = 0
    reason: str = ""

    def failed(self, exc: Exception) -> None:
        self.lost += 1
        self.reason = self.reason or ffmpeg_reason(exc)


@dataclass
class _Watch:
    """What one decode of a file saw go wrong. ``salvage`` None: a failing packet is an error.
    ``damaged`` holds the times (seconds) of packets the demuxer marked corrupt (an MPEG-TS
    with lost or damaged packets: the decoder hides the damage as blocks or smears and raises
    nothing, so such a file was converted without a word); a packet read twice (a seek back
    over it) counts once; ``untimed`` counts those without a time."""

    salvage: Salvage | None = None
    damaged: set[float] = field(default_factory=set)
    untimed: int = 0
    unseekable: bool = False  # a seek failed: the file is read on from where it is

    def seen(self, packet: Any, tb: Fraction) -> None:
        if packet.is_corrupt:
            if packet.pts is None:
                self.untimed += 1
            else:
                self.damaged.add(float(packet.pts * tb))

    def report(self, path: Path) -> None:
        count = len(self.damaged) + self.untimed
        if count:
            first = min(self.damaged, default=None)
            at = "" if first is None else f", the first at {first:.2f} s"
            log.warning(
                "'%s' has %d damaged video packet%s%s: the decoder hid what it could, and the "
                "frames there may show blocks or smears as they do in the input",
                path,
                count,
                "" if count == 1 else "s",
                at,
            )


def decode_frames(
    path: Path,
    start: float = 0.0,
    duration: float | None = None,
    expect_frames: int | None = None,
    hwaccel: str | None = None,
    salvage: Salvage | None = None,
    expect_end: float | None = None,
) -> Iterator[Frame]:
    """Yield the frames of ``path`` whose time lies in ``[start, start + duration)``.

    Seeks to the keyframe before ``start`` and decodes forward (FFmpeg picks the threads). If
    ``expect_frames`` (the container's exact count, for a whole-file decode) is given and the
    file ends early, it is truncated: InputError rather than a short output. ``hwaccel``
    ("cuda") decodes with NVDEC where available. With ``salvage`` a corrupt packet or a file cut
    short is not an error: what decodes is yielded and the losses are counted in ``salvage``.
    ``expect_end`` (where the header says a whole file ends, for containers without an exact
    count, such as Matroska) warns once when the frames stop well before it.
    """
    container = open_input(path, hwaccel)
    try:
        vs = video_stream(container, path)
        use_threads(vs.codec_context)
        tb = Fraction(vs.time_base or Fraction(1, 90000))
        frames = _sought(container, vs, path, tb, start, watch := _Watch(salvage))
        end = None if duration is None else start + duration
        count, slack, size = 0, half_tick(tb), _FirstSize(path)
        for frame in frames:
            t = float(frame.pts * tb)
            if t < start - slack:
                continue
            if end is not None and t >= end - slack:
                break
            yield Frame(size.rgb(frame), frame.pts, tb, count, frame.duration or 0)
            count += 1
        _check_count(path, count, expect_frames, salvage)
        _check_end(path, t if count else None, expect_end, start)
        watch.report(path)
    finally:
        container.close()


@dataclass
class _FirstSize:
    """Every frame as RGB at the size of the first: a stream whose size changes part-way (two
    recordings joined, a camera switching mode) crashed convert in its bar detection. As the
    ffmpeg command does, later frames are scaled to the first's size, with a warning."""

    path: Path
    size: tuple[int, int] | None = None
    warned: bool = False

    def rgb(self, frame: Any) -> np.ndarray:
        if self.size is None:
            self.size = (frame.width, frame.height)
        if (frame.width, frame.height) == self.size:
            return np.asarray(frame.to_ndarray(format="rgb24"))
        if not self.warned:
            self.warned = True
            log.warning(
                "'%s' changes its frame size part-way (%dx%d to %dx%d): later frames are "
                "scaled to the first's size",
                self.path.name,
                *self.size,
                frame.width,
                frame.height,
            )
        width, height = self.size
        return np.asarray(frame.to_ndarray(format="rgb24", width=width, height=height))


def half_tick(tb: Fraction) -> float:
    """How early a frame may be and still be the one at a time asked for: half the time base,
    as timestamps are rounded to it (Matroska's milliseconds put a 30-fps clip's frames at
    0.033 s, under 1/30; taken for the time after, ``extract --fps 30`` lost a third of its
    frames), at least a microsecond and at most half a millisecond: a coarser base (1/30 in
    AVI) counts frames, whose times are exact, and half of it is half a frame."""
    return max(1e-6, min(float(tb) / 2, 5e-4))


def _check_end(path: Path, last: float | None, expected: float | None, start: float) -> None:
    # a header's duration can run past the last frame by an audio tail or a frame or two; a
    # file cut short stops far earlier (Matroska and WebM have no frame count to check)
    if last is None or expected is None or expected <= start:
        return
    if last < expected - max(1.0, 0.1 * (expected - start)):
        log.warning(
            "'%s' ends at %.2f s where its header says %.2f s: it may be truncated; the frames "
            "that are there were converted",
            path,
            last,
            expected,
        )


def _check_count(path: Path, count: int, expected: int | None, salvage: Salvage | None) -> None:
    # Containers' counts can exceed what decodes by a frame or two (edit lists); a file cut
    # short loses far more. Once a packet has failed, every frame short of the count is lost:
    # the decoder drops frames that refer to a failed one without an error of their own.
    failed = salvage is not None and salvage.lost > 0
    if expected is not None and (count < expected - count_slack(expected) or failed):
        if salvage is None:
            raise InputError(
                f"'{path}' is truncated or corrupt: decoded {count} of {expected} frames", path
            )
        salvage.lost = max(salvage.lost, expected - count)
    if count == 0:
        raise InputError(f"'{path}' has no frames in the requested range", path)


def _decoded(container: Any, vs: Any, path: Path, tb: Fraction, watch: _Watch) -> Iterator[Any]:
    """Decoded frames in display order, with an increasing pts on each (see ``_Timestamps``)."""
    step = max(1, round(1 / (float(vs.average_rate or vs.guessed_rate or 30) * tb)))
    stored = container.format.name == "avi"
    wraps = container.format.name.split(",")[0] in WRAPPING  # a 33-bit clock
    ahead = round(AHEAD_S / tb) if wraps else _Timestamps.ahead
    times = _Timestamps(step, stored, round(BACK_S / tb), ahead)
    slots = _Slots() if stored else None
    frames = _packets_decoded(container, vs, path, tb, watch, slots)
    for frame in frames:
        frame.pts = times.of(frame.pts, slots.of(frame.dts) if slots else frame.dts)
        if times.went_back:
            raise InputError(clock_restarts(path, float(times.went_back * tb)), path)
        if times.went_ahead:
            raise InputError(clock_jumps(path, float(times.went_ahead * tb)), path)
        yield frame


BACK_S = 0.5  # a clock that goes back further restarted (reordered frames go back a few ticks)
AHEAD_S = 3600.0  # an hour between two frames of an MPEG stream: its clock jumped
WRAPPING = ("mpegts", "mpeg")  # containers with a 33-bit clock, which FFmpeg unwraps


def clock_jumps(path: Path, ahead: float) -> str:
    """An MPEG-TS clock that restarts (``cat a.ts b.ts``) is read by FFmpeg as a 33-bit wrap,
    26.5 hours ahead: a .mkv of a day and a night was written, a .mp4 failed. (Other
    containers' clocks do not wrap: a parking-mode clip's hour between two frames is kept.)"""
    return (
        f"'{path}' jumps {ahead / 3600:.1f} h ahead in time between two frames: files joined "
        "end to end? Convert each part on its own"
    )


def clock_restarts(path: Path, back: float) -> str:
    """Files joined end to end (``cat a.ts b.ts``) restart their clock part-way: the frames
    after were squashed into one instant (their times a tick apart), or the audio refused."""
    return (
        f"'{path}' goes back {back:.1f} s in time part-way: files joined end to end? "
        "Convert each part on its own"
    )


@dataclass
class _Timestamps:
    """A frame's presentation time, as FFmpeg's best-effort timestamp guesses it.

    Frames come out of the decoder in display order, but the pts on them can be out of order:
    an AVI with B-frames stores no presentation times, and its decoded frames carry times of
    other frames (1, 3, 4, 2, 6, ...); the encoder refused them. As FFmpeg does, once the pts
    have gone backwards more often than the dts, the dts are used. A time no later than the one
    before (or none at all) becomes the one before plus a tick (plus a frame where none), so
    every frame is kept, in order. An AVI's (``stored``) are its dts, the slot each frame is
    stored in: FFmpeg guesses an H.264 frame's pts there as the next frame's dts, one slot
    late (three behind audio; each AVI to AVI conversion added as many)."""

    step: int
    stored: bool = False
    back: int = 1_000_000  # ticks in BACK_S: a time further back is a restarted clock
    ahead: int = 1 << 62  # ticks in AHEAD_S: a time further ahead is a clock that jumped
    went_back: int = 0  # how far it went back (ticks), when it did
    went_ahead: int = 0  # how far it jumped ahead (ticks), when it did
    timed: bool = False  # ``last`` comes from a frame's own time (the first may have none)
    last: int | None = None
    last_pts: int | None = None
    last_dts: int | None = None
    faulty_pts: int = 0
    faulty_dts: int = 0

    def of(self, pts: int | None, dts: int | None) -> int:
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        trust_pts = not self.stored and self.faulty_pts <= self.faulty_dts
        use_pts = pts is not None and (dts is None or trust_pts)
        t = pts if use_pts else dts
        if self.last is not None and t is not None and t < self.last - self.back:
            self.went_back = self.last - t
        if self.timed and self.last is not None and t is not None and t > self.last + self.ahead:
            self.went_ahead = t - self.last
        self.timed = self.timed or t is not None
        if self.last is not None and (t is None or t <= self.last):
            t = self.last + (1 if t is not None else self.step)
        self.last = 0 if t is None else t
        return self.last


@dataclass
class _Slots:
    """The slots an AVI's frames are shown in. It stores no presentation times: each packet's
    dts is the slot it is stored in, and a decoder with B-frames gives each frame the dts of
    the packet that let it out, ``delay`` packets later (frame k in display order came out at
    slot k + 2 behind its sound). Each frame takes the slot ``delay`` packets before the one it
    carries, ``delay`` read off the first frame (its own slot is the first packet's); frames
    the decoder's flush lets out, with no dts, take the slots left in order."""

    slots: list[int] = field(default_factory=list)  # packets' dts from ``base`` on
    base: int = 0  # the position (in packets with data) of ``slots[0]``
    delay: int | None = None
    given: int = -1  # the position of the last slot given

    def fed(self, packet: Any) -> None:
        if packet.size and packet.dts is not None:
            self.slots.append(packet.dts)
            if len(self.slots) > 2 * SLOTS_KEPT:  # bounded on a long video
                del self.slots[:SLOTS_KEPT]
                self.base += SLOTS_KEPT

    def of(self, dts: int | None) -> int | None:
        """The slot of the next frame in display order that carries ``dts``."""
        at = self._position(dts)
        if self.delay is None:  # the first frame's own slot is the first packet's
            self.delay = at or 0
        position = self.given + 1 if at is None else at - self.delay
        if not self.base <= position < self.base + len(self.slots):
            return dts  # not a slot known here: as the decoder says
        self.given = position
        return self.slots[position - self.base]

    def _position(self, dts: int | None) -> int | None:
        if dts is None:
            return None
        i = bisect.bisect_left(self.slots, dts)
        return self.base + i if i < len(self.slots) and self.slots[i] == dts else None


SLOTS_KEPT = 512


def _packets_decoded(
    container: Any, vs: Any, path: Path, tb: Fraction, watch: _Watch, slots: _Slots | None
) -> Iterator[Any]:
    """Decode packet by packet. Without salvage a packet that fails is an error; with it, the
    packet is skipped and counted, and a container that cannot be read further ends the
    stream."""
    import av

    packets = demuxed(container, vs)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            _failed(path, watch, exc)
            return
        watch.seen(packet, tb)
        if slots is not None:
            slots.fed(packet)
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            _failed(path, watch, exc)
            continue
        yield from frames


def _failed(path: Path, watch: _Watch, exc: Exception) -> None:
    if watch.salvage is None:
        raise InputError(f"'{path}' is corrupt: {ffmpeg_reason(exc)}", path) from exc
    watch.salvage.failed(exc)


def keyframe_times(vs: Any, tb: Fraction) -> list[float] | None:
    """Keyframe times (seconds) from the container's index, or None where it has none."""
    try:
        times = [float(e.timestamp * tb) for e in vs.index_entries if e.is_keyframe]
    except (AttributeError, TypeError):
        return None
    return sorted(times) or None


def frames_at(path: Path, times: list[float], name_damage: bool = False) -> Iterator[Frame]:
    """For each time in ascending ``times``, yield the first frame at or after it.

    Decodes only what it needs: to reach a time it seeks to the keyframe before it when that
    keyframe lies ahead of the current position (so whole GOPs in between are never decoded),
    and decodes forward otherwise. Without a keyframe index it seeks when the next time is more
    than 2 s ahead. A time on a frame already yielded is skipped. ``name_damage``: damaged
    packets met are named in a warning at the end (not for a guess that convert reads again).
    """
    import av

    container = open_input(path)
    try:
        vs = video_stream(container, path)
        use_threads(vs.codec_context)
        tb = Fraction(vs.time_base or Fraction(1, 90000))
        slack = half_tick(tb)
        keyframes, watch = keyframe_times(vs, tb), _Watch()
        decoder: Iterator[Any] = iter(())
        position: float | None = None  # time of the frame last decoded
        count = 0
        for t in sorted(times):
            if position is not None and t <= position + 1e-6:
                continue  # the frame at or after t was already yielded
            if _should_seek(position, t, keyframes):
                decoder = _sought(container, vs, path, tb, t, watch)
            frame = next((f for f in decoder if f.pts * tb >= t - slack), None)
            if frame is None:
                break  # the file ended
            position = float(frame.pts * tb)
            yield Frame(frame.to_ndarray(format="rgb24"), frame.pts, tb, count, frame.duration or 0)
            count += 1
        if name_damage:
            watch.report(path)
    except av.error.FFmpegError as exc:
        raise InputError(f"'{path}' is corrupt: {ffmpeg_reason(exc)}", path) from exc
    finally:
        container.close()


def _sought(
    container: Any, vs: Any, path: Path, tb: Fraction, t: float, watch: _Watch
) -> Iterator[Any]:
    """Decoded frames from a frame at or before ``t`` (seconds) on. A seek can land after
    ``t``, even past the last frame: MPEG-TS seeks by byte position, and its keyframes are not
    indexed. Then it seeks again from further back (1, 4, 16... s), at last from the file's
    start; a ``t`` past the container's end is not retried."""
    # the container's duration runs from its start, which an MPEG-TS clock puts anywhere
    end = ((container.start_time or 0) + (container.duration or 0)) / 1e6
    past_end = container.duration is not None and t > end + 1.0
    back = 0.0
    while True:
        target = max(0.0, t - back)
        if watch.unseekable or (
            (target > 0 or back) and not _seek(container, vs, path, tb, target)
        ):
            watch.unseekable = True  # read on from where the file is: no seek works in it
            yield from _decoded(container, vs, path, tb, watch)
            return
        frames = _decoded(container, vs, path, tb, watch)
        first = next(frames, None)
        landed = first is not None and float(first.pts * tb) <= t + 1e-6
        if landed or target <= 0 or (first is None and past_end):
            if first is not None:
                yield first
            yield from frames
            return
        back = max(1.0, 4 * back)


def _seek(container: Any, vs: Any, path: Path, tb: Fraction, t: float) -> bool:
    """Seek to the keyframe before ``t`` (seconds). Where FFmpeg refuses (a damaged keyframe index:
    EPERM, invalid data; a traceback or "Operation not permitted" before), it warns, goes back
    to the first frame and returns False: the frames are read from there, slower, as a
    decode of the whole file gives them."""
    import av

    try:
        container.seek(_seek_pts(t, tb), stream=vs, backward=True)
        return True
    except av.error.FFmpegError as exc:
        why = ffmpeg_reason(exc)
    warn_once(
        f"'{path.name}' cannot be sought in ({why}: its index is damaged); reading it from "
        "the start"
    )
    first = (vs.start_time or 0) - round(10 / tb)  # 10 s before the first frame's time
    try:  # to the first frame, before 0 where an edit list puts it (0 began after a keyframe)
        container.seek(first, stream=vs, any_frame=True)  # the failed seek left the demuxer stuck
    except av.error.FFmpegError as exc:
        raise InputError(f"'{path}' is corrupt: cannot seek in it ({why})", path) from exc
    return False


def _seek_pts(t: float, tb: Fraction) -> int:
    """``t`` seconds in ``tb`` units for a seek, within FFmpeg's int64 (a start of 1e15 s is
    past any end, as a start of 100 s past a short clip's: nothing decodes there)."""
    return max(0, min(int(min(t, 1e12) / tb), 2**62))


def _should_seek(position: float | None, target: float, keyframes: list[float] | None) -> bool:
    if position is None:
        return True
    if keyframes is None:
        return target > position + 2.0
    before = bisect.bisect_right(keyframes, target + 1e-6) - 1
    return before >= 0 and keyframes[before] > position + 1e-6
