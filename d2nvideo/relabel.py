"""Clean day/night labels by image brightness (the study found over 5,000 wrong NEXET labels).

Reads NEXET's train.csv, BDD100K's label JSON or labelled folders; scores every image in worker
processes at reduced decode size; writes labels.csv, cleaned train/test lists, a histogram of
the score per original label with the thresholds drawn, and returns a summary. Scores are
saved as they come, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .fileio import atomic_output
from .images import list_images, read_image_reduced
from .labels import (
    DEFAULT_THRESHOLDS,
    THUMB_WIDTH,
    Scores,
    Thresholds,
    auto_thresholds,
    score_image,
)
from .plots import histogram_png

NORMAL = {
    "day": "day",
    "daytime": "day",
    "night": "night",
    "twilight": "twilight",
    "dawn/dusk": "twilight",
    "dusk": "twilight",
    "dawn": "twilight",
}
SCORE_COLUMNS = ("mean", "sky", "upper_p75", "median", "dark")
PARTIAL = ".scores.partial.csv"


@dataclass(frozen=True)
class Item:
    path: Path
    original: str  # the label as the source spells it ("Day", "daytime", a folder name...)

    @property
    def normal(self) -> str:
        return NORMAL.get(self.original.strip().lower(), "other")


@dataclass
class Sources:
    items: list[Item] = field(default_factory=list)
    skipped_rows: int = 0  # rows without a usable name or label


def from_nexet(csv_path: Path, images: Path) -> Sources:
    """NEXET train.csv: image_filename, lighting (Day|Night|Twilight), city."""
    rows = _read_table(csv_path, ("image_filename", "lighting"))
    out = Sources()
    for row in rows:
        name, label = (row.get("image_filename") or "").strip(), (row.get("lighting") or "").strip()
        if name and label:
            out.items.append(Item(images / name, label))
        else:
            out.skipped_rows += 1
    return out


def from_bdd(json_path: Path, images: Path) -> Sources:
    """BDD100K labels: a JSON list of {name, attributes: {timeofday, ...}}."""
    try:
        frames = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"BDD100K labels '{json_path}' are not readable JSON: {exc}") from exc
    if not isinstance(frames, list):
        raise InputError(f"BDD100K labels '{json_path}' must be a JSON list of frames", json_path)
    out = Sources()
    for entry in frames:
        try:
            out.items.append(Item(images / entry["name"], entry["attributes"]["timeofday"]))
        except (KeyError, TypeError):
            out.skipped_rows += 1
    return out


def from_folders(folders: dict[str, Path]) -> Sources:
    out = Sources()
    for label, folder in folders.items():
        if not folder.is_dir():
            raise InputError(f"folder '{folder}' for label '{label}' does not exist", folder)
        out.items += [Item(p, label) for p in list_images(folder)]
    return out


def _read_table(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(f"label file '{path}' does not exist", path)
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise InputError(
                    f"'{path}' lacks column(s) {', '.join(missing)}; it has: {', '.join(header)}"
                )
            return list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"'{path}' is not a readable CSV file: {exc}", path) from exc


# --- scoring ----------------------------------------------------------------------------------


def score_file(path: Path) -> Scores | str:
    """Scores of one image file, decoded at reduced size; an error message if unreadable."""
    if not path.is_file():
        return "missing"
    try:
        return score_image(read_image_reduced(path, min_width=2 * THUMB_WIDTH))
    except Exception as exc:  # one bad file must not stop 100k others
        return f"unreadable ({exc})"


def score_files(paths: list[Path], workers: int) -> Iterator[Scores | str]:
    """Scores in input order; ``workers`` > 1 spreads decoding over processes."""
    if workers <= 1 or len(paths) < 64:
        yield from map(score_file, paths)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
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
    method: str = "sky",
    thresholds: Thresholds | None = None,
    auto: bool = False,
    split: float = 0.9,
    seed: int = 0,
    workers: int = 2,
    on_item: Callable[[int], None] = lambda n: None,
) -> RelabelResult:
    out.mkdir(parents=True, exist_ok=True)
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


def _score_with_resume(
    items: list[Item], partial: Path, workers: int, on_item: Callable[[int], None]
) -> dict[str, Scores | str]:
    done: dict[str, Scores | str] = {}
    if partial.is_file():
        with partial.open(newline="") as fh:
            for row in csv.DictReader(fh):
                done[row["path"]] = (
                    Scores(*(float(row[c]) for c in ("mean", "upper_p75", "median", "dark")))
                    if row["error"] == ""
                    else row["error"]
                )
        on_item(sum(1 for i in items if str(i.path) in done))
    todo = [i.path for i in items if str(i.path) not in done]
    new_file = not partial.is_file()
    with partial.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(["path", "mean", "upper_p75", "median", "dark", "error"])
        for n, (path, result) in enumerate(zip(todo, score_files(todo, workers), strict=True)):
            done[str(path)] = result
            if isinstance(result, Scores):
                stats = [result.mean, result.upper_p75, result.median, result.dark]
                writer.writerow([path, *stats, ""])
            else:
                writer.writerow([path, "", "", "", "", result])
            if n % 256 == 255:
                fh.flush()
            on_item(1)
    return done


def _row(item: Item, result: Scores | str, method: str, t: Thresholds) -> dict[str, str]:
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
    with atomic_output(path) as tmp, tmp.open("w", newline="") as fh:
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
                tmp.write_text("".join(f"{p}\n" for p in part))
            written.append(path)
    return written


def _write_histograms(
    out: Path, items: list[Item], scores: dict[str, Scores | str], method: str, t: Thresholds
) -> list[Path]:
    """histogram.png: the study's gamma per original label (its figure 15), thresholds drawn;
    histogram_<method>.png too when the method is not the mean."""
    written = []
    for name, m in (("histogram.png", "mean"), (f"histogram_{method}.png", method)):
        if name != "histogram.png" and method == "mean":
            continue
        th = t if m == method else DEFAULT_THRESHOLDS["mean"]
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
        written.append(out / name)
    return written
