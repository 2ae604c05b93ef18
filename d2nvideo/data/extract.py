"""``d2nvideo extract``: frames out of videos to build datasets.

Frames are named ``<video-stem>_<seconds>.jpg`` from their exact presentation time (videos of
one stem are told apart by their paths: ``frame_names.py``), written
atomically, listed in ``manifest.csv`` with their brightness and day/night label; a second run
skips frames already written. Sparse sampling seeks instead of decoding everything.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..choices import ImageFormat, ScoreMethod
from ..errors import D2NError, InputError, PathError, UsageError
from ..fileio import NAME_ERRORS, atomic_output, files_under
from ..images import is_image, write_image
from ..processes import folder_in_use
from ..video.decode import frames_at
from ..video.geometry import compare_thumb, fit_within, relative_difference, upright
from ..video.probe import VideoInfo, probe
from .frame_names import SameRecording, frame_name, frame_stems, same_file, source_of
from .scoring import DEFAULT_THRESHOLDS, score_image

VIDEO_SUFFIXES = (
    ".mp4",
    ".mov",
    ".mkv",
    ".avi",
    ".webm",
    ".m4v",
    ".ts",
    ".mts",
    ".m2ts",
    ".3gp",
    ".flv",
    ".wmv",
    ".mpg",
    ".mpeg",
)
log = logging.getLogger(__name__)
MAX_TIMES = 100_000  # sample times planned at most per clip (or ten per frame, if more)
MAX_PLANNED = 4_000_000  # and never more than this (a header can claim any length)
MANIFEST_COLUMNS = ("file", "source", "pts_seconds", "width", "height", "brightness", "label")


@dataclass(frozen=True)
class Sampling:
    every: float | None = 1.0  # seconds between frames
    fps: float | None = None  # frames per second (instead of every)
    count: int | None = None  # this many frames spread over the range (instead of every)
    start: float = 0.0  # seconds
    end: float | None = None  # seconds; None: the end of the video
    max_frames: int | None = None  # at most this many per video


@dataclass(frozen=True)
class ExtractOptions:
    sampling: Sampling = Sampling()
    size: tuple[int, int] | None = None  # (width, height): resize exactly
    max_side: int | None = None  # or: longer side at most this, aspect kept
    fmt: ImageFormat = "jpg"
    quality: int = 95  # JPEG quality
    dedupe: float | None = None  # drop frames whose thumbnail differs by less (share of contrast)
    classify: bool = False  # write into day/, night/, ambiguous/
    method: ScoreMethod = "sky"  # the relabeler's scorer for brightness and label


@dataclass
class ExtractResult:
    written: int = 0
    existing: int = 0  # already there from an earlier run
    duplicates: int = 0  # dropped by --dedupe
    failed: list[tuple[Path, str]] | None = None


def find_videos(inputs: list[Path]) -> list[Path]:
    """Files as given, folders searched recursively for video files, in sorted order."""
    found: list[Path] = []
    for item in inputs:
        if not item.exists():
            raise PathError(f"input '{item}' does not exist", item)
        if item.is_dir():
            found += sorted(p for p in files_under(item) if p.suffix.lower() in VIDEO_SUFFIXES)
        elif is_image(item):  # FFmpeg reads it as a clip of one frame: "2 of 2 videos"
            raise UsageError(f"'{item}' is an image: extract takes frames from videos", item)
        else:
            found.append(item)
    return found


def sample_times(info: VideoInfo, s: Sampling) -> list[float]:
    """Times (seconds, in the file's timeline) to take frames at, in ascending order.

    ``max_frames`` applies before the list is built. ``count`` spreads at most as many times
    as the clip has frames (twice its estimate where the count is not exact); a rate never
    plans more than MAX_TIMES or ten times the clip's frames, whichever is more: a rate finer
    than that (``--fps 1e8``) takes every frame anyway (a time landing on a frame already
    taken yields nothing), even in a variable-frame-rate clip's bursts; nor more than
    MAX_PLANNED whatever the header claims (a length of 10^9 s filled 24 GB)."""
    first = info.start_time + s.start
    last = info.start_time + (info.duration if s.end is None else min(s.end, info.duration))
    if last <= first:
        return []
    span, limit = last - first, max(MAX_TIMES, min(10 * info.frames, MAX_PLANNED))
    if s.count:
        times = _count_times(info, s.count, first, span)
        return times[: s.max_frames] if s.max_frames else times
    wanted = 1.0 / s.fps if s.fps else (s.every or 1.0)
    step = max(wanted, span / limit)
    n = max(1, math.ceil(span / step - 1e-9))
    n = min(n, s.max_frames) if s.max_frames else n
    return [first + step * i for i in range(n)]


def visited(info: VideoInfo, times: list[float]) -> int:
    """How many frames sampling at ``times`` yields, for the progress bar: one per time, but
    no more than the clip holds between the first and the last (at its average rate, and a
    variable-rate clip's estimate twice over): a rate finer than the clip's (``--fps 120``
    on a 30-fps clip) yields each frame once, and the bar counted times, not frames."""
    if not times or not info.fps:
        return len(times)
    frames = math.ceil((times[-1] - times[0]) * float(info.fps) - 1e-6) + 1
    if info.frames_exact:
        return min(len(times), frames, info.frames)
    return min(len(times), 2 * frames)


def _count_times(info: VideoInfo, count: int, first: float, span: float) -> list[float]:
    """``count`` frames spread evenly over ``[first, first + span)``: the middle frame of each
    of ``count`` equal parts of the frames there, numbered at the clip's average rate from its
    start, each asked for half a frame early (``frames_at`` takes the first frame at or after a
    time). Asked for at the parts' middle times, a 10-frame clip's ``--frames 10`` gave 9. In
    a variable-rate clip the average rate places them approximately."""
    rate = float(info.fps) or 30.0
    offset = first - info.start_time
    k0 = math.ceil(offset * rate - 1e-6)  # the first frame in the span, and one past the last
    total = max(1, math.ceil((offset + span) * rate - 1e-6) - k0)
    n = min(count, info.frames * (1 if info.frames_exact else 2))
    picked = [k0 + int((i + 0.5) * total / n) for i in range(n)]
    return [info.start_time + max(0.0, k - 0.5) / rate for k in picked]


def _resize(image: np.ndarray, opts: ExtractOptions) -> np.ndarray:
    if not opts.size:
        return fit_within(image, opts.max_side) if opts.max_side else image
    h, w = image.shape[:2]
    shrink = opts.size[0] * opts.size[1] < w * h
    return cv2.resize(image, opts.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


LOWER_THRESHOLD = "if they differ, lower --dedupe-threshold"


def extract_video(
    path: Path,
    info: VideoInfo,
    out: Path,
    opts: ExtractOptions,
    rows: dict[str, dict[str, str]],
    result: ExtractResult,
    on_frame: Callable[[int], None],
    stem: str | None = None,
) -> None:
    """Extract one video's frames into ``out``, named after ``stem`` (its own by default),
    with their manifest rows in ``rows``; InputError if none decodes (a still, ``start`` past
    the end) or the manifest gives a frame's name to another video."""
    times = sample_times(info, opts.sampling)
    if not times:
        raise InputError(_nothing_to_sample(path, info, opts.sampling), path)
    previous: np.ndarray | None = None
    done = kept = 0
    visits = visited(info, times)
    for frame in frames_at(path, times, name_damage=True):
        done += 1
        on_frame(1 if done <= visits else 0)
        image = _resize(np.ascontiguousarray(upright(frame.image, info.rotation)), opts)
        if opts.dedupe is not None:
            thumb = compare_thumb(image)
            if previous is not None and relative_difference(thumb, previous) < opts.dedupe:
                result.duplicates += 1
                continue
            previous = thumb
        kept += 1
        name = frame_name(stem or path.stem, frame.time - info.start_time, opts.fmt)
        row = _save(image, name, out, opts, result, rows, path)
        rows[row["file"]] = {**row, "source": source_of(path), "pts_seconds": f"{frame.time:.6f}"}
    on_frame(max(0, visits - done))  # frames past a short video's real end
    if not done:
        raise InputError(f"'{path}' has no decodable frame at the sampled times", path)
    if opts.dedupe is not None and kept == 1 and done > 1:
        log.warning("'%s': --dedupe kept 1 of %d frames; %s", path.name, done, LOWER_THRESHOLD)


def _nothing_to_sample(path: Path, info: VideoInfo, s: Sampling) -> str:
    if info.still:
        return f"'{path}' is a still image, not a video: there are no frames to extract"
    return f"'{path}' has no frames to extract from {s.start:g} s: it lasts {info.duration:.2f} s"


def _save(
    image: np.ndarray,
    name: str,
    out: Path,
    opts: ExtractOptions,
    result: ExtractResult,
    rows: dict[str, dict[str, str]] | None = None,
    source: Path | None = None,
) -> dict[str, str]:
    """Write one frame (unless an earlier run did) and return its manifest fields. A frame
    name that ``rows`` (the manifest) gives to a video other than ``source`` is an InputError:
    two videos of one name in one folder."""
    score = score_image(image).score(opts.method)
    label = DEFAULT_THRESHOLDS[opts.method].label(score)
    relative = f"{label}/{name}" if opts.classify else name
    target = out / relative
    listed = (rows or {}).get(relative)
    if listed and source and not same_file(listed.get("source", ""), source):
        raise InputError(
            f"'{target}' holds a frame of '{listed['source']}' (manifest.csv), not of "
            f"'{source}': extract videos of the same name into separate folders",
            source,
        )
    if target.exists():
        result.existing += 1
    else:
        write_image(target, image, opts.quality)
        result.written += 1
    return {
        "file": relative,
        "width": str(image.shape[1]),
        "height": str(image.shape[0]),
        "brightness": f"{score:.2f}",
        "label": label,
    }


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The rows of an earlier run's manifest.csv (none if there is none, or an empty one that
    an older d2nvideo left); PathError for a file of that name that d2nvideo did not write,
    which is left as it is."""
    if not os.path.lexists(path) or (path.is_file() and path.stat().st_size == 0):
        return {}
    try:
        with path.open(newline="", encoding="utf-8", errors=NAME_ERRORS) as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != list(MANIFEST_COLUMNS):
                raise PathError(_foreign_manifest(path, "its header is not a manifest's"), path)
            return {row["file"]: row for row in reader if row.get("file")}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PathError(_foreign_manifest(path, str(exc)[:120]), path) from exc


CLASSES = ("day", "night", "ambiguous")  # --classify's subfolders


def check_layout(rows: dict[str, dict[str, str]], classify: bool, out: Path) -> None:
    """PathError when an earlier run's frames in ``out`` (its manifest ``rows``) were sorted
    into class folders and these are not to be, or the other way round: a --classify run
    after a plain one wrote every frame a second time, under day/ and beside it."""
    sorted_before = {f.split("/", 1)[0] in CLASSES and "/" in f for f in rows}
    if sorted_before and sorted_before != {classify}:
        then, now = ("with", "add") if not classify else ("without", "leave off")
        raise PathError(
            f"'{out}' holds frames extracted {then} --classify (manifest.csv): {now} "
            "--classify, or extract into another folder",
            out,
        )


def _foreign_manifest(path: Path, why: str) -> str:
    return (
        f"'{path}' is not a manifest that d2nvideo wrote ({why}); move it away or choose another -o"
    )


def write_manifest(path: Path, rows: dict[str, dict[str, str]]) -> None:
    with (
        atomic_output(path) as tmp,
        tmp.open("w", newline="", encoding="utf-8", errors=NAME_ERRORS) as fh,
    ):
        writer = csv.DictWriter(fh, MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows))


Plan = tuple[Path, VideoInfo | str]  # a video and its probe, or why it cannot be read


def plan(videos: list[Path]) -> list[Plan]:
    """Probe every video; a truncated one (a dashcam that lost power) gives what it holds."""
    plans: list[Plan] = []
    for video in videos:
        try:
            info = probe(video, salvage=True)
        except D2NError as exc:
            plans.append((video, str(exc)))
            continue
        if info.missing_bytes:
            log.warning("'%s' is truncated: extracting the frames it holds", video)
        plans.append((video, info))
    return plans


def planned_frames(plans: list[Plan], sampling: Sampling) -> int:
    """Frames the run will visit, for the progress bar."""
    infos = [i for _, i in plans if isinstance(i, VideoInfo)]
    return sum(visited(i, sample_times(i, sampling)) for i in infos)


def extract_all(
    plans: list[Plan],
    out: Path,
    opts: ExtractOptions,
    on_frame: Callable[[int], None],
    on_error: Callable[[Path, str], None],
) -> ExtractResult:
    """Extract every planned video; a failing one is reported through ``on_error`` and the
    others go on. The manifest is written even when the run is interrupted, and not at all
    (nor the folder) when there is nothing to list."""
    with folder_in_use(out, f"output folder '{out}'"):  # two runs' manifests: one lost
        manifest = out / "manifest.csv"
        rows = read_manifest(manifest)
        check_layout(rows, opts.classify, out)
        listed = bool(rows)
        result = ExtractResult(failed=[])
        failed: list[tuple[Path, str]] = []
        rotations = {v: info.rotation for v, info in plans if isinstance(info, VideoInfo)}
        matches = SameRecording(rows, out, rotations)
        stems = frame_stems([video for video, _ in plans], rows, matches)
        try:
            for video, info in plans:
                try:
                    stem = stems[video]
                    if isinstance(info, str):
                        raise D2NError(info)
                    if isinstance(stem, D2NError):
                        raise stem
                    extract_video(video, info, out, opts, rows, result, on_frame, stem)
                except D2NError as exc:
                    failed.append((video, str(exc)))
                    on_error(video, str(exc))
        finally:
            result.failed = failed
            if rows or listed:
                write_manifest(manifest, rows)
    return result
