"""What ``extract`` names a video's frames: ``<stem>_<seconds>.jpg``, with a stem that stays the
same from one run into an output folder to the next and is never another video's.

A video keeps the stem that ``manifest.csv`` already gives its frames. A new one takes its own
file stem, unless that stem belongs to another video: one named in the manifest, or another of
this run with the same stem (a dashcam's ``FILE0001.MP4`` in several folders, ``clip.mp4``
beside ``clip.mkv``; letter case ignored, for file systems that ignore it). Then it is named
after the end of its path, separators and dots as ``_`` (``2026-11-01_FILE0001_MP4``), as
much of the path as it takes to be nobody else's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError

FRAME_NAME = re.compile(r"(?P<stem>.+)_\d{6,}\.\d{3}\.[A-Za-z]+")  # as frame_name writes them


def frame_name(stem: str, seconds: float, fmt: str) -> str:
    """``drive_000012.345.jpg``: the frame's presentation time in seconds, zero-padded."""
    return f"{stem}_{max(0.0, seconds):010.3f}.{fmt}"


def frame_stems(
    videos: list[Path], rows: dict[str, dict[str, str]]
) -> dict[Path, str | InputError]:
    """The stem each of ``videos`` names its frames with, given the manifest's ``rows``; an
    InputError for a video that no part of its path names apart from the others."""
    listed = _listed_stems(rows)
    known = {video: _known(video, listed) for video in videos}
    counts: dict[str, int] = {}
    for video in {v.resolve(): v for v in videos}.values():  # a video given twice is one
        counts[video.stem.casefold()] = counts.get(video.stem.casefold(), 0) + 1
    taken = {stem.casefold(): source for stem, source in listed}
    stems: dict[Path, str | InputError] = {}
    for video in sorted(videos, key=lambda v: known[v] is None):  # known ones first
        stem = known[video] or _new_stem(video, counts, taken)
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
        named = FRAME_NAME.fullmatch(Path(file).name)
        if named and row.get("source"):
            found[(named["stem"], row["source"])] = None
    return list(found)


def _known(video: Path, listed: list[tuple[str, str]]) -> str | None:
    """The stem the manifest already gives ``video``'s frames, if any."""
    return next((stem for stem, source in listed if same_file(source, video)), None)


def _new_stem(video: Path, counts: dict[str, int], taken: dict[str, str]) -> str | None:
    """The shortest name from the end of ``video``'s path that nobody else has: its stem when
    no other video of the run shares it, else its folder's name and more."""
    parts = Path(source_of(video)).parts[1:]  # as given, links kept; never the root ('/')
    names = [] if counts.get(video.stem.casefold(), 0) > 1 else [video.stem]
    deepest = min(7, len(parts) - 1)
    names += ["_".join(parts[-k - 1 :]).replace(".", "_") for k in range(1, deepest + 1)]
    for name in names:
        owner = taken.get(name.casefold())
        if owner is None or same_file(owner, video):
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
