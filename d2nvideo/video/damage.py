"""How a video file is damaged, where its bytes tell: an MP4/MOV index missing or cut short,
an index that lists samples past the file's end, and FFmpeg's reason for a failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def ffmpeg_reason(exc: Exception) -> str:
    import av

    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc)


def is_mp4_family(path: Path) -> bool:
    """ISO-BMFF files (mp4, mov, m4v, 3gp) start with a box whose type is 'ftyp'."""
    with path.open("rb") as fh:
        return fh.read(12)[4:8] == b"ftyp"


def unreadable_mp4(path: Path, exc: Exception) -> str:
    return index_cut(path) or (
        f"'{path}' is an MP4/MOV file that cannot be read: it is truncated or corrupt "
        f"({ffmpeg_reason(exc)})"
    )


def index_cut(path: Path) -> str | None:
    """Why an MP4/MOV file's index cannot be read, where its top-level boxes tell: none there
    (a camera that lost power mid-recording writes it last), or cut short by the file's end."""
    if not is_mp4_family(path):
        return None
    boxes, size = _top_boxes(path), path.stat().st_size
    index = [(at, length) for kind, at, length in boxes if kind in (b"moov", b"moof")]
    if not index:
        return (
            f"'{path}' is a truncated MP4/MOV file without its index (no 'moov' box): the "
            "recording stopped before it was finished (a camera that lost power?), and without "
            "the index no frame can be found, --salvage or not; tools such as untrunc rebuild "
            "it from a good file from the same camera"
        )
    at, length = next(((at, n) for kind, at, n in boxes if kind == b"moov"), (0, 0))
    if at + length > size:  # (a fragmented file's last fragment cut short is salvageable)
        return (
            f"'{path}' is truncated: its index ('moov' box) is cut short ({size - at:,} of "
            f"{length:,} bytes), and no frame can be found without it, --salvage or not"
        )
    return None


def _top_boxes(path: Path) -> list[tuple[bytes, int, int]]:
    """An ISO-BMFF file's top-level boxes (type, offset, length), read from their headers."""
    boxes: list[tuple[bytes, int, int]] = []
    with path.open("rb") as fh:
        size, at = path.stat().st_size, 0
        while at + 8 <= size:
            fh.seek(at)
            head = fh.read(16)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if length == 1 and len(head) == 16:  # a 64-bit size follows the type
                length = int.from_bytes(head[8:16], "big")
            if length < 8:  # 0: the box runs to the end of the file
                length = size - at
            boxes.append((kind, at, length))
            at += length
    return boxes


def index_end(container: Any, tail: int = 64) -> int | None:
    """The byte where the last indexed sample ends (the index of an MP4/MOV lists every
    sample; MKV cues list keyframes), from each stream's last ``tail`` entries; None
    without an index."""
    end = None
    for stream in container.streams:
        try:
            entries = stream.index_entries
            n = len(entries)
            last = [entries[i] for i in range(max(0, n - tail), n)]
        except (AttributeError, TypeError):
            continue
        for e in last:
            if e.pos >= 0 and e.size > 0:
                end = max(end or 0, e.pos + e.size)
    return end


def truncation_message(path: Path, size: int, index_end: int) -> str:
    share = 100 * (index_end - size) / index_end
    return (
        f"'{path}' is truncated: its index runs to byte {index_end:,} but the file ends at "
        f"{size:,} ({share:.0f}% missing); --salvage converts the frames that are there"
    )


def demuxed(container: Any, streams: Any) -> Iterator[Any]:
    """``container.demux(streams)`` for a file that adds a stream part-way (an FLV can). PyAV's
    demux skips that stream's packets, but at the end, after the flush packets of the streams
    it lists (every stream asked for among them), it raises IndexError at the one it does not
    (a traceback in every command): by then all is read and flushed."""
    try:
        yield from container.demux(streams)
    except IndexError:
        return
