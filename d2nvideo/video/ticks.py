"""Output frame times where a container or a codec counts frames instead of storing times:
an AVI (one slot a frame, at a rate whose slots hold the clip's times) and MPEG-1/2 video (a
rate from the standard's short list; FFmpeg refused any other time base with "Invalid
argument")."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .damage import demuxed
from .decode import Frame, half_tick
from .probe import VideoInfo, open_input, video_stream, warn_once

# MPEG-1's eight rates; FFmpeg lists five more (5-15 fps, Xing's) that it writes only when
# asked for unofficial streams, which players need not play.
MPEG1_RATES = 8


Window = tuple[float | None, float | None]  # seconds on the file's clock; None: its ends


def frame_tick(
    format_name: str, codec: str, source: VideoInfo, offset: int, window: Window = (None, None)
) -> Fraction | None:
    """The output's time base where frames are counted, None where times are stored (the
    source's time base is kept). Raises UsageError where no rate the codec takes holds the
    frames of ``window``."""
    if codec_rates(codec):
        return 1 / listed_rate(codec, source, window)
    if format_name == "avi":
        return _avi_tick(source, offset)
    return None


@lru_cache(maxsize=4)
def codec_rates(codec: str) -> tuple[Fraction, ...]:
    """The frame rates ``codec`` can store, lowest first; () where it stores any."""
    import av

    try:
        rates = av.codec.Codec(codec, "w").frame_rates or []
    except Exception:  # an encoder this build lacks: check_encode says so
        return ()
    if codec == "mpeg1video":
        rates = rates[:MPEG1_RATES]
    return tuple(sorted({Fraction(r.numerator, r.denominator) for r in rates}))


def listed_rate(codec: str, source: VideoInfo, window: Window = (None, None)) -> Fraction:
    """The rate of ``codec``'s list at which the frames of ``window`` fill its slots from the
    first to the last, one a slot, each within a millisecond of a slot counted from the
    first; else UsageError. MPEG-1/2 video carries no time of its own for most frames: a
    player shows them evenly at the stream's rate, so a 15-fps clip written at 30 (every time
    on a slot, every other slot empty) played at double speed, and a clip that drops frames or
    varies its rate cannot be told apart from an even one. One a slot but for one frame in a
    hundred: FFmpeg's MPEG-PS reader gives a picture now and then a time a slot off (two in
    a slot, or a slot empty), which the frames of a .mpg that plays evenly showed."""
    stat = source.path.stat()
    rates = codec_rates(codec)
    key = (source.path, stat.st_size, stat.st_mtime_ns, window, Fraction(source.fps))
    held = _held(rates, *key)
    if held is None:
        shown = ", ".join(f"{float(r):.4g}" for r in rates[:12])
        raise UsageError(
            f"{_CODEC_NAMES.get(codec, codec)} plays its frames evenly at one of these rates: "
            f"{shown}"
            f"{' and a few more' if len(rates) > 12 else ''}; the frames of "
            f"'{source.path.name}' ({float(source.fps):.4g} a second) do not follow one of them "
            "evenly: write .mp4, .mkv or .mov with the default codec (H.264), which keep their "
            "times",
            codec,
        )
    return held


_CODEC_NAMES = {
    "mpeg1video": "MPEG-1 video (mpeg1video)",
    "mpeg2video": "MPEG-2 video (mpeg2video)",
}


@lru_cache(maxsize=2)  # asked before any work and at the first frame: the file is read once
def _held(
    rates: tuple[Fraction, ...],
    path: Path,
    size: int,
    mtime_ns: int,
    window: Window,
    fps: Fraction,
) -> Fraction | None:
    times = _window_times(path, window)
    if len(times) < 2:  # one frame, or none timed (a raw stream): the rate the header gives
        near = min(rates, key=lambda r: abs(r - fps), default=None)
        return near if near is not None and abs(near - fps) <= near / 1000 else None
    span = times[-1] - times[0]
    measured = (len(times) - 1) / span if span else Fraction(0)
    for rate in sorted(rates, key=lambda r: abs(r - measured)):  # 30 before 29.97: both within
        since = [t - times[0] for t in times]  # a millisecond over a second of 30 fps
        filled = round(since[-1] * rate)  # slots from the first frame to the last
        if _holds(rate, since) and abs(filled - (len(times) - 1)) <= len(times) // 100:
            return rate
    return None


def _window_times(path: Path, window: Window) -> list[Fraction]:
    """The frame times (seconds) of ``window``, sorted, taken as the decoder takes them
    (``half_tick`` early at either edge)."""
    start, end = window
    ticks, tb = _frame_ticks(path, 0, end)
    slack = Fraction(half_tick(tb))
    return sorted(
        t * tb
        for t in ticks
        if (start is None or t * tb >= start - slack) and (end is None or t * tb < end - slack)
    )


@dataclass
class Clock:
    """Output times: the input's, less ``offset`` (a segment starts at 0). Where frames are
    counted (``tick``: 1/fps, see ``frame_tick``), each time is rounded to a tick, one past
    the last where a variable-rate clip's two frames round alike (an AVI given an MP4's
    1/12800 had its muxer write 24 empty chunks a frame at a rate of 600)."""

    offset: int
    tick: Fraction | None = None
    last: int = -1
    from_first: bool = False  # MPEG: slots counted from the first frame (``listed_rate``)
    first: Fraction | None = None  # the first frame's time, in ticks

    def stamp(self, vf: Any, frame: Frame) -> Any:
        if self.tick is None:
            vf.pts, vf.time_base = frame.pts - self.offset, frame.time_base
            if frame.duration:
                vf.duration = frame.duration
            return vf
        slot = (frame.pts - self.offset) * frame.time_base / self.tick
        if not self.from_first:  # AVI: a jittered clip's frames move by under half a slot
            pts = round(slot)
        else:  # a first frame half a slot off the grid left a slot empty (half to even)
            self.first = slot if self.first is None else self.first
            pts = math.floor(self.first + Fraction(1, 2)) + round(slot - self.first)
        self.last = max(pts, self.last + 1)
        vf.pts, vf.time_base = self.last, self.tick
        return vf


def _avi_tick(source: VideoInfo, offset: int) -> Fraction | None:
    """An AVI's time base: one frame slot at the lowest rate whose
    slots hold every frame time within a millisecond (a 25-fps clip with a gap, which FFmpeg's
    base rate put at 30, had frames moved by up to 13 ms; a phone's 30 fps that drops to 5
    keeps 1/30). Where no rate up to MAX_AVI_RATE holds them (times with jitter), FFmpeg's base
    rate or the average one, with a warning: the frames move to its slots. Times count from the
    first frame: a clip whose sound begins before its picture (an MPEG-TS's AAC, 46 ms) puts
    its first frame off the grid of the AVI's 0, all frames alike, and was called jittered."""
    base = source.base_rate if source.base_rate and source.base_rate <= MAX_AVI_RATE else None
    rate = Fraction(base or source.fps).limit_denominator(1_000_000)
    ticks, tb = _frame_ticks(source.path, offset)
    first = min(ticks, default=0)  # times count from the first frame: see the docstring
    steps = [t - first for t in ticks]
    times = [t * tb for t in steps]
    held = next((r for r in _avi_rates(rate, steps, tb) if _holds(r, times)), None)
    if held is not None:
        return 1 / held
    if rate <= 0:
        return None
    warn_once(
        f"'{source.path.name}' has frame times that no AVI frame rate up to {MAX_AVI_RATE} holds: "
        f"frames are placed at 1/{float(rate):.3g}-s slots, moved by less than one (.mkv and "
        ".mp4 keep the times)"
    )
    return 1 / rate


def _avi_rates(rate: Fraction, ticks: list[int], tb: Fraction) -> list[Fraction]:
    """Rates to try, lowest first: the clip's and its multiples, the usual ones, and the one
    of the times' greatest common step (exact, but maybe high: every empty slot is a chunk)."""
    found = {rate * k for k in (1, 2, 3, 4)} | {Fraction(n, 1001) for n in (24000, 30000, 60000)}
    found |= {Fraction(n) for n in (24, 25, 30, 48, 50, 60, 90, 100, 120, 240)}
    step = math.gcd(*ticks) if ticks else 0
    if step:
        found.add(1 / (step * tb))
    return sorted(r for r in found if 0 < r <= MAX_AVI_RATE)


def _holds(rate: Fraction, times: list[Fraction]) -> bool:
    """Every time within a millisecond of one of ``rate``'s slots."""
    return all(abs(t * rate - round(t * rate)) <= rate / 1000 for t in times)


def _frame_ticks(path: Path, offset: int, until: float | None = None) -> tuple[list[int], Fraction]:
    """The video's frame times from ``offset`` in its time base, from its packets (nothing
    decoded; an AVI's are the slots its frames are stored in), and the time base; ``until``:
    seconds on the file's clock after which (and a second more: B-frames) reading stops."""
    import av

    ticks: list[int] = []
    with open_input(path) as container:
        vs = video_stream(container, path)
        stored, tb = container.format.name == "avi", Fraction(vs.time_base or Fraction(1, 90000))
        with contextlib.suppress(av.error.FFmpegError):  # a damaged file: what reads (salvage)
            for p in demuxed(container, vs):
                t = p.dts if stored or p.pts is None else p.pts
                if t is not None:
                    ticks.append(t - offset)
                if until is not None and p.dts is not None and p.dts * tb > until + 1:
                    break
    return ticks, tb


MAX_AVI_RATE = 1000  # a finer base rate would be a time base, not frames'
