"""What ``extract`` names a video's frames: ``<stem>_<seconds>.jpg``, with a stem that stays the
same from one run into an output folder to the next and is never another video's.

A video keeps the stem that ``manifest.csv`` already gives its frames (while its picture is the
one saved for them: :class:`SameRecording`). A new one takes its own
file stem, unless that stem belongs to another video: one named in the manifest, or another of
this run with the same stem (a dashcam's ``FILE0001.MP4`` in several folders, ``clip.mp4``
beside ``clip.mkv``; letter case ignored, for file systems that ignore it). Then it is named
after the end of its path, separators and dots as ``_`` (``2026-11-01_FILE0001_MP4``), as
much of the path as it takes to be nobody else's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError

FRAME_NAME = re.compile(r"(?P<stem>.+)_\d{6,}\.\d{3}\.[A-Za-z]+")  # as frame_name writes them


def frame_name(stem: str, seconds: float, fmt: str) -> str:
    """``drive_000012.345.jpg``: the frame's presentation time in seconds, zero-padded."""
    return f"{stem}_{max(0.0, seconds):010.3f}.{fmt}"


Matches = Callable[[str, Path], bool]  # whether a listed stem's frames are of this video


def frame_stems(
    videos: list[Path], rows: dict[str, dict[str, str]], matches: Matches | None = None
) -> dict[Path, str | InputError]:
    """The stem each of ``videos`` names its frames with, given the manifest's ``rows``; an
    InputError for a video that no part of its path names apart from the others. A stem
    listed for a video's path is that video's only where ``matches(stem, video)`` (by default
    always: the path alone decides)."""
    listed = _listed_stems(rows)
    same = matches or (lambda stem, video: True)

    def owns(stem: str, source: str, video: Path) -> bool:
        return same_file(source, video) and same(stem, video)

    known = {video: _known(video, listed, owns) for video in videos}
    counts: dict[str, int] = {}
    for video in {v.resolve(): v for v in videos}.values():  # a video given twice is one
        counts[video.stem.casefold()] = counts.get(video.stem.casefold(), 0) + 1
    taken = {stem.casefold(): source for stem, source in listed}
    stems: dict[Path, str | InputError] = {}
    for video in sorted(videos, key=lambda v: known[v] is None):  # known ones first
        stem = known[video] or _new_stem(video, counts, taken, owns)
        stems[video] = stem or InputError(
            f"every name for the frames of '{video}' is taken by other videos (of this run "
            "or in manifest.csv): extract it into another folder",
            video,
        )
        if stem:
            taken.setdefault(stem.casefold(), source_of(video))
    return stems


def _listed_stems(rows: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    """(stem, source) of each video the manifest lists."""
    found: dict[tuple[str, str], None] = {}
    for file, row in rows.items():
        stem = _stem_of(file)
        if stem and row.get("source"):
            found[(stem, row["source"])] = None
    return list(found)


def _known(
    video: Path, listed: list[tuple[str, str]], owns: Callable[[str, str, Path], bool]
) -> str | None:
    """The stem the manifest already gives ``video``'s frames, if any."""
    return next((stem for stem, source in listed if owns(stem, source, video)), None)


def _new_stem(
    video: Path,
    counts: dict[str, int],
    taken: dict[str, str],
    owns: Callable[[str, str, Path], bool],
) -> str | None:
    """The shortest name from the end of ``video``'s path that nobody else has: its stem when
    no other video of the run shares it, else its folder's name and more."""
    parts = Path(source_of(video)).parts[1:]  # as given, links kept; never the root ('/')
    names = [] if counts.get(video.stem.casefold(), 0) > 1 else [video.stem]
    deepest = min(7, len(parts) - 1)
    names += ["_".join(parts[-k - 1 :]).replace(".", "_") for k in range(1, deepest + 1)]
    for name in names:
        owner = taken.get(name.casefold())
        if owner is None or owns(name, owner, video):
            return name
    return None


def source_of(video: Path) -> str:
    """What the manifest records as a frame's source: the video's absolute path (links kept),
    so that a run from another working folder knows it again."""
    return os.path.abspath(video)


def same_file(listed: str, source: Path) -> bool:
    """Whether a manifest's ``source`` is ``source``: the same file, both present. A source
    that is gone (a card taken out, a folder moved) is nobody: another card's ``FILE0001.MP4``
    must not inherit its frames. (A new recording at the very path of an old one cannot be
    told from it.) Sources are written absolute; a relative one, from a manifest of an earlier
    version, was relative to a working folder that is not known: where it is not found from
    this one, the same file name is taken for the same video, as that version did."""
    try:
        return Path(listed).samefile(source)
    except OSError:
        return not Path(listed).is_absolute() and Path(listed).name == source.name


class SameRecording:
    """``matches`` for :func:`frame_stems` by picture: a listed stem's frames are of a video at
    their path when the frame at a listed time, decoded from it again, is the picture saved
    for it (a difference hash within a few bits: resizing and JPEG leave it so). The next card
    mounted where the last one was holds a new recording at the old one's path, whose frames
    were skipped as 'already there' under the old one's names. Where no saved frame is left
    to compare, the path alone decides, as before."""

    def __init__(self, rows: dict[str, dict[str, str]], out: Path, rotations: dict[Path, int]):
        self.out, self.rotations = out, rotations
        self.by_stem: dict[str, list[dict[str, str]]] = {}  # each stem's rows, by file name
        for file in sorted(rows):
            self.by_stem.setdefault(_stem_of(file) or "", []).append(rows[file])
        self.seen: dict[tuple[str, Path], bool] = {}

    def __call__(self, stem: str, video: Path) -> bool:
        if (stem, video) not in self.seen:
            self.seen[(stem, video)] = self._same(stem, video)
        return self.seen[(stem, video)]

    def _same(self, stem: str, video: Path) -> bool:
        from ..errors import D2NError
        from ..images import fingerprint, fingerprint_distance, read_image
        from ..video.decode import frames_at
        from ..video.geometry import upright

        row = self._saved_row(stem)
        if row is None:
            return True
        try:
            saved, t = read_image(self.out / row["file"]), float(row["pts_seconds"])
            frame = next(iter(frames_at(video, [t])), None)
        except (D2NError, OSError, ValueError):
            return True  # nothing to tell them apart by
        if frame is None or abs(frame.time - t) > 1e-3:
            return False  # the recording listed had a frame there
        image = upright(frame.image, self.rotations.get(video, 0))
        return fingerprint_distance(fingerprint(image), fingerprint(saved)) <= SAME_PICTURE

    def _saved_row(self, stem: str) -> dict[str, str] | None:
        """A row of ``stem`` whose frame is still saved (the middle one of them)."""
        mine = self.by_stem.get(stem, [])
        mine = [r for r in mine if r.get("pts_seconds") and (self.out / r["file"]).is_file()]
        return mine[len(mine) // 2] if mine else None


SAME_PICTURE = 10  # differing bits of 64 under which two difference hashes are one picture


def _stem_of(file: str) -> str | None:
    named = FRAME_NAME.fullmatch(Path(file).name)
    return named["stem"] if named else None
