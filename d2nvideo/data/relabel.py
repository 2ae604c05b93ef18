"""Clean day/night labels by image brightness (the study found over 5,000 wrong NEXET labels).

Reads NEXET's train.csv, BDD100K's label JSON or labelled folders; scores every image in worker
processes at reduced decode size; writes labels.csv, cleaned train/test lists, a histogram of
the score per original label with the thresholds drawn, and returns a summary. Scores are
saved as they come, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import math
import multiprocessing as mp
import os
import random
import signal
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..choices import ScoreMethod
from ..errors import InputError, PathError
from ..fileio import NAME_ERRORS, atomic_output, within
from ..images import read_image_reduced
from ..processes import folder_in_use, sigint_ignored
from .plots import histogram_png
from .scoring import (
    DEFAULT_THRESHOLDS,
    THUMB_WIDTH,
    Scores,
    Thresholds,
    auto_thresholds,
    score_image,
)
from .sources import Item, Sources

STAT_FIELDS = tuple(f.name for f in dataclasses.fields(Scores))  # what a Scores holds
SCORE_COLUMNS = ("mean", "sky", *STAT_FIELDS[1:])  # labels.csv: the stats and the sky score
PARTIAL = ".scores.partial.csv"
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)  # a write's own failures
PARTIAL_COLUMNS = ("path", *STAT_FIELDS)
LISTS = tuple(f"{part}_{domain}.txt" for domain in ("day", "night") for part in ("train", "test"))


# --- scoring ----------------------------------------------------------------------------------


def score_file(path: Path) -> Scores | str:
    """Scores of one image file, decoded at reduced size; an error message if unreadable."""
    if not path.is_file():
        return "missing"
    try:
        return score_image(read_image_reduced(path, min_width=2 * THUMB_WIDTH))
    except Exception as exc:  # one bad file must not stop 100k others
        return f"unreadable ({exc})"


def ignore_sigint() -> None:
    """A scoring worker's start: Ctrl-C is the parent's to act on. The first workers start
    with it ignored already; one the pool starts to replace a worker that died is started from
    the pool's own thread, where the parent cannot ignore it for the child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def score_files(paths: list[Path], workers: int) -> Generator[Scores | str, None, None]:
    """Scores in input order; ``workers`` > 1 spreads decoding over processes."""
    if workers <= 1 or len(paths) < 64:
        yield from map(score_file, paths)
        return
    with sigint_ignored():  # the workers leave Ctrl-C to us (each printed a traceback)
        pool = mp.get_context("spawn").Pool(workers, initializer=ignore_sigint)
    with pool:
        yield from pool.imap(score_file, paths, chunksize=32)


# --- the whole job ----------------------------------------------------------------------------


@dataclass
class RelabelResult:
    thresholds: Thresholds
    table: Counter[tuple[str, str]]  # (original, new) -> count
    statuses: Counter[str]
    missing: int
    outputs: list[Path]


def relabel(
    sources: Sources,
    out: Path,
    method: ScoreMethod = "sky",
    thresholds: Thresholds | None = None,
    auto: bool = False,
    split: float = 0.9,
    seed: int = 0,
    workers: int = 2,
    on_item: Callable[[int], None] = lambda n: None,
    overwrite: bool = False,
) -> RelabelResult:
    """Score, relabel and write every output into ``out`` (see :func:`check_outputs`, which
    runs first: an existing output is replaced only if ``overwrite``). Another run into ``out``
    at the same time is refused (they replaced each other's outputs)."""
    check_outputs(sources, out, method, overwrite)
    with folder_in_use(out, f"output folder '{out}'"):
        check_outputs(sources, out, method, overwrite)  # what a run before this one wrote
        return _relabel(sources, out, method, thresholds, auto, split, seed, workers, on_item)


def _relabel(
    sources: Sources,
    out: Path,
    method: ScoreMethod,
    thresholds: Thresholds | None,
    auto: bool,
    split: float,
    seed: int,
    workers: int,
    on_item: Callable[[int], None],
) -> RelabelResult:
    scores = _score_with_resume(sources.items, out / PARTIAL, workers, on_item)
    usable = [s for s in scores.values() if isinstance(s, Scores)]
    if not usable:
        raise InputError(f"none of the {len(sources.items)} listed images could be read")
    if auto:
        thresholds = auto_thresholds(np.array([s.score(method) for s in usable]), method)
    t = thresholds or DEFAULT_THRESHOLDS[method]
    rows = [_row(item, scores[str(item.path)], method, t) for item in sources.items]
    outputs = [_write_labels(out / "labels.csv", rows)]
    outputs += _write_lists(out, rows, split, seed)
    outputs += _write_histograms(out, sources.items, scores, method, t)
    (out / PARTIAL).unlink(missing_ok=True)
    return RelabelResult(
        thresholds=t,
        table=Counter((r["original_normal"], r["new"]) for r in rows),
        statuses=Counter(r["status"] for r in rows),
        missing=sum(1 for s in scores.values() if s == "missing"),
        outputs=outputs,
    )


def output_names(method: ScoreMethod) -> list[str]:
    """The files relabel writes into its output folder, besides its own PARTIAL state."""
    return ["labels.csv", *LISTS, *(name for name, _, _ in _plots(method, Thresholds()))]


def check_outputs(sources: Sources, out: Path, method: ScoreMethod, overwrite: bool) -> None:
    """PathError, before any work, for an output folder that is a file, an output that would
    replace one of the inputs (a listed image, the label file) and an existing output unless
    ``overwrite``. The PARTIAL scores of an interrupted run are resumed, not refused, and the
    outputs such a run had written before it stopped (PARTIAL goes last) are its own to replace."""
    if out.exists() and not out.is_dir():
        raise PathError(f"output '{out}' is a file; relabel writes a folder", out)
    for folder in sources.folders:  # its histograms became images of that label next time
        if within(out, folder):
            raise PathError(
                f"output '{out}' lies inside the input folder '{folder}', whose images it "
                "would join (the histograms); choose another -o",
                out,
            )
    targets = [out / name for name in output_names(method)]
    _refuse_inputs(sources, targets)
    replace = overwrite or (out / PARTIAL).is_file()
    for target in targets:
        if target.is_dir():
            raise PathError(f"output '{target}' is a folder; move it away", target)
        if os.path.lexists(target) and not replace:
            raise PathError(f"output '{target}' exists; pass --overwrite to replace it", target)


def _refuse_inputs(sources: Sources, targets: list[Path]) -> None:
    """Only inputs named like an output, or linked, can be one: the rest are not resolved."""
    names = {t.name for t in targets}
    real = {os.path.realpath(t): t for t in targets}
    inputs = [item.path for item in sources.items]
    inputs += [sources.label_file] if sources.label_file is not None else []
    for path in inputs:
        if path.name in names or path.is_symlink():
            target = real.get(os.path.realpath(path))
            if target is not None:
                raise PathError(
                    f"output '{target}' would replace the input '{path}'; choose another -o",
                    target,
                )


def _score_with_resume(
    items: list[Item], partial: Path, workers: int, on_item: Callable[[int], None]
) -> dict[str, Scores | str]:
    """Scores of every item, resuming from (and appending to) the ``partial`` file."""
    done, clean = _read_partial(partial)
    if not clean:  # an empty file (killed before its first flush), a row cut short: afresh
        _rewrite_partial(partial, done)
    on_item(sum(1 for i in items if str(i.path) in done))
    todo = [i.path for i in items if str(i.path) not in done]
    new_file = not partial.is_file()
    try:
        with (
            partial.open("a", newline="", encoding="utf-8", errors=NAME_ERRORS) as fh,
            contextlib.closing(score_files(todo, workers)) as scores,  # its pool ends on Ctrl-C
        ):
            writer = csv.writer(fh)
            if new_file:
                writer.writerow(PARTIAL_COLUMNS)
            for n, (path, result) in enumerate(zip(todo, scores, strict=True)):
                done[str(path)] = result
                if isinstance(result, Scores):  # only real scores are resumed: a missing or
                    writer.writerow([path, *_stats(result)])  # unreadable file is tried again
                if n % 256 == 255:
                    fh.flush()
                on_item(1)
    except OSError as exc:  # a full disk's write names no file: "No space left on device"
        if exc.filename or exc.errno not in WRITE_ERRNOS:  # not the scores file's (a fork's)
            raise
        raise OSError(exc.errno, exc.strerror, str(partial)) from exc
    return done


def _stats(scores: Scores) -> list[float]:
    return [getattr(scores, name) for name in STAT_FIELDS]


def _read_partial(partial: Path) -> tuple[dict[str, Scores | str], bool]:
    """The scores an interrupted run saved, and whether the file is whole: rows that do not
    parse (a foreign file) and a last line without its newline (cut inside its last number,
    it parsed as another) are dropped and scored again rather than trusted."""
    done: dict[str, Scores | str] = {}
    if not partial.is_file():
        return done, True
    try:
        text = partial.read_text(encoding="utf-8", errors=NAME_ERRORS)
    except (OSError, UnicodeDecodeError):
        return {}, False
    whole = text.endswith("\n")
    reader = csv.reader(io.StringIO(text[: text.rfind("\n") + 1]))
    try:
        if next(reader, None) != list(PARTIAL_COLUMNS):
            return done, False
        for row in reader:
            parsed = _parse_partial_row(row)
            whole = whole and parsed is not None
            if parsed is not None:
                done[parsed[0]] = parsed[1]
    except csv.Error:
        return {}, False
    return done, whole


def _rewrite_partial(partial: Path, done: dict[str, Scores | str]) -> None:
    """The partial file anew: its header and the rows that were whole."""
    with (
        atomic_output(partial, overwrite=True) as tmp,
        tmp.open("w", newline="", encoding="utf-8", errors=NAME_ERRORS) as fh,
    ):
        writer = csv.writer(fh)
        writer.writerow(PARTIAL_COLUMNS)
        for path, result in done.items():
            if isinstance(result, Scores):
                writer.writerow([path, *_stats(result)])


def _parse_partial_row(row: list[str]) -> tuple[str, Scores] | None:
    if len(row) != len(PARTIAL_COLUMNS) or not row[0]:
        return None
    try:
        values = [float(v) for v in row[1:]]
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return row[0], Scores(**dict(zip(STAT_FIELDS, values, strict=True)))


def _row(item: Item, result: Scores | str, method: ScoreMethod, t: Thresholds) -> dict[str, str]:
    row = {"path": str(item.path), "original": item.original, "original_normal": item.normal}
    if not isinstance(result, Scores):
        row.update(
            {c: "" for c in SCORE_COLUMNS}, score="", new="", status="unreadable", note=result
        )
        return row
    score = result.score(method)
    new = t.label(score)
    status = new if new == "ambiguous" else ("agree" if new == item.normal else "relabelled")
    row.update({c: f"{getattr(result, c):.2f}" for c in SCORE_COLUMNS})
    row.update(score=f"{score:.2f}", new=new, status=status, note="")
    return row


def _write_labels(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = ["path", "original", *SCORE_COLUMNS, "score", "new", "status", "note"]
    with (
        atomic_output(path) as tmp,
        tmp.open("w", newline="", encoding="utf-8", errors=NAME_ERRORS) as fh,
    ):
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_lists(out: Path, rows: list[dict[str, str]], split: float, seed: int) -> list[Path]:
    """Seeded train/test split of the confidently labelled images, per domain."""
    written = []
    for domain in ("day", "night"):
        paths = sorted(r["path"] for r in rows if r["new"] == domain)
        random.Random(f"{seed}-{domain}").shuffle(paths)
        cut = round(len(paths) * split)
        for name, part in (("train", paths[:cut]), ("test", paths[cut:])):
            path = out / f"{name}_{domain}.txt"
            with atomic_output(path) as tmp:
                text = "".join(f"{p}\n" for p in part)
                tmp.write_text(text, encoding="utf-8", errors=NAME_ERRORS)
            written.append(path)
    return written


def _write_histograms(
    out: Path,
    items: list[Item],
    scores: dict[str, Scores | str],
    method: ScoreMethod,
    t: Thresholds,
) -> list[Path]:
    """histogram.png: the deciding score per original label with its thresholds drawn; with
    the sky scorer also histogram_mean.png, the study's gamma (its figure 15)."""
    plots = _plots(method, t)
    for name, m, th in plots:
        series: dict[str, list[float]] = {}
        for item in items:
            s = scores[str(item.path)]
            if isinstance(s, Scores):
                series.setdefault(item.original, []).append(s.score(m))
        histogram_png(
            out / name,
            {k: np.array(v) for k, v in sorted(series.items())},
            f"{'gamma (mean pixel value)' if m == 'mean' else 'sky score'} by original label",
            "score (0-255)",
            marks={"night <=": th.night_max, "day >": th.day_min},
        )
    return [out / name for name, _, _ in plots]


def _plots(method: ScoreMethod, t: Thresholds) -> list[tuple[str, ScoreMethod, Thresholds]]:
    """The histograms to draw: file name, score and thresholds."""
    plots: list[tuple[str, ScoreMethod, Thresholds]] = [("histogram.png", method, t)]
    if method != "mean":
        plots.append(("histogram_mean.png", "mean", DEFAULT_THRESHOLDS["mean"]))
    return plots
