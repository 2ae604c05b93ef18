"""The source's chapters in a new file: shifted as its frames are (the output's 0) and cut to a
segment. Matroska, WebM, MP4 and MOV keep them; a container that cannot (.avi, .ts) is named in
a warning. An MP4's chapter titles are stored as a text track that FFmpeg reads as a data
stream: that track is the chapters, not a stream left out."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..fileio import output_name

log = logging.getLogger(__name__)

Window = tuple[float | None, float | None]


def copy_chapters(src: Any, out: Any, window: Window, origin: Fraction) -> int:
    """Give ``out`` the chapters of ``src`` that show within ``window`` (seconds on the
    source's clock; None: unbounded), each cut to it and moved so that ``origin`` is 0 (in
    milliseconds); the number given. They went missing from every output without a word."""
    start, end = window
    low = max(Fraction(0), Fraction(start) - origin if start is not None else Fraction(0))
    high = Fraction(end) - origin if end is not None else None
    kept: list[dict[str, Any]] = []
    for chapter in src.chapters():
        tb = Fraction(chapter["time_base"])
        first, last = max(low, chapter["start"] * tb - origin), chapter["end"] * tb - origin
        last = min(last, high) if high is not None else last
        if last > first or (last == first and chapter["start"] == chapter["end"]):
            ms = [round(t * 1000) for t in (first, last)]
            kept.append({"id": len(kept) + 1, "start": ms[0], "end": ms[1]})
            kept[-1].update(time_base=Fraction(1, 1000), metadata=dict(chapter["metadata"]))
    if kept:
        out.set_chapters(kept)
    return len(kept)


def is_chapter_track(stream: Any) -> bool:
    """Whether a data stream is an MP4/MOV's chapter titles (a text track FFmpeg gives as
    data, one sample a chapter, and marks as not to be read), which the chapters copy; it was
    named as a stream left out. A count alone took a timecode track (one sample) in a clip of
    one chapter for it: the timecode went missing without a word."""
    from av.stream import Discard

    chapters = stream.container.chapters()
    iso = "mp4" in stream.container.format.name
    unread = stream.discard == Discard.all  # FFmpeg's mark on the chapter track
    return bool(iso and chapters and unread and stream.frames == len(chapters))


def warn_if_dropped(path: Path, written: Any, count: int) -> None:
    """Name chapters given to ``path`` that ``written`` (it, read back) does not hold (an .avi
    or .ts keeps none)."""
    if not count or written.chapters():
        return
    log.warning(
        "the %s file could not keep the clip's %d chapter%s: .mkv, .mp4 and .mov keep them",
        output_name(path).suffix,
        count,
        "" if count == 1 else "s",
    )
