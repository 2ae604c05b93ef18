"""Labelled image lists from the formats the relabeler and training read: NEXET's train.csv,
BDD100K's label JSON, and folders named by label. Parsing only: no scoring, no torch."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, PathError
from ..fileio import NAME_ERRORS, not_a_folder, require_file
from ..images import list_images

log = logging.getLogger(__name__)

NORMAL = {
    "day": "day",
    "daytime": "day",
    "night": "night",
    "twilight": "twilight",
    "dawn/dusk": "twilight",
    "dusk": "twilight",
    "dawn": "twilight",
}


@dataclass(frozen=True)
class Item:
    path: Path
    original: str  # the label as the source spells it ("Day", "daytime", a folder name...)

    @property
    def normal(self) -> str:
        if not isinstance(self.original, str):  # the parsers skip these; a caller's own Item
            return "other"
        return NORMAL.get(self.original.strip().lower(), "other")


@dataclass
class Sources:
    items: list[Item] = field(default_factory=list)
    skipped_rows: int = 0  # rows without a usable name or label
    label_file: Path | None = None  # the CSV or JSON the items come from, an input too
    repeated: int = 0  # listings of an image after its first, dropped (see ``_once``)
    folders: list[Path] = field(default_factory=list)  # the folders read whole (--folder)


def _once(out: Sources, where: str) -> Sources:
    """Each image once, with its first label. A label file that lists a name twice (4,260
    names of a real 110,000-row BDD100K list in NEXET's format) put the image in the lists
    twice, in the train and the test list at once; a label given twice in ``--folder`` kept
    only its last folder. Warns with the count, and how many had different labels."""
    first: dict[str, Item] = {}
    differing = set()
    for item in out.items:
        key = os.path.abspath(item.path)
        kept = first.setdefault(key, item)
        if kept is not item:
            out.repeated += 1
            if kept.normal != item.normal:
                differing.add(key)
    if out.repeated:
        out.items = list(first.values())
        log.warning(
            "%s lists %d image%s more than once: each is kept once, with its first label "
            "(%d given different labels)",
            where,
            out.repeated,
            "" if out.repeated == 1 else "s",
            len(differing),
        )
    return out


def from_nexet(csv_path: Path, images: Path) -> Sources:
    """NEXET train.csv: image_filename, lighting (Day|Night|Twilight), city."""
    rows = _read_table(csv_path, ("image_filename", "lighting"))
    out = Sources(label_file=csv_path)
    for row in rows:
        name, label = (row.get("image_filename") or "").strip(), (row.get("lighting") or "").strip()
        if _usable(name) and _usable(label):
            out.items.append(Item(images / name, label))
        else:
            out.skipped_rows += 1
    return _once(out, f"'{csv_path.name}'")


def from_bdd(json_path: Path, images: Path) -> Sources:
    """BDD100K labels: a JSON list of {name, attributes: {timeofday, ...}}."""
    require_file(json_path, "BDD100K labels")
    try:
        frames = json.loads(json_path.read_text())
    except RecursionError:  # json.loads recurses once per nesting level
        raise InputError(
            f"BDD100K labels '{json_path}' are nested too deeply to be a label file", json_path
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"BDD100K labels '{json_path}' are not readable JSON: {exc}", json_path
        ) from exc
    if not isinstance(frames, list):
        raise InputError(f"BDD100K labels '{json_path}' must be a JSON list of frames", json_path)
    out = Sources(label_file=json_path)
    for entry in frames:
        name, label = _bdd_fields(entry)
        if _usable(name) and _usable(label):
            out.items.append(Item(images / name, label))
        else:
            out.skipped_rows += 1
    return _once(out, f"'{json_path.name}'")


def _usable(text: str) -> bool:
    """Not blank, and writable to the lists and labels.csv: JSON can name a lone surrogate
    ("\\ud800"), which no file name holds and no UTF-8 writer takes (a traceback at the end
    of a relabel run)."""
    try:
        text.encode("utf-8", NAME_ERRORS)
    except UnicodeEncodeError:
        return False
    return bool(text.strip())


def _bdd_fields(entry: object) -> tuple[str, str]:
    """A BDD100K frame's name and time of day; ("", "") unless both are strings: a number,
    null or a list in either makes the frame a skipped row, as a missing key does."""
    if not isinstance(entry, dict):
        return "", ""
    attributes = entry.get("attributes")
    name = entry.get("name")
    label = attributes.get("timeofday") if isinstance(attributes, dict) else None
    if not isinstance(name, str) or not isinstance(label, str):
        return "", ""
    return name, label


def from_folders(folders: Iterable[tuple[str, Path]]) -> Sources:
    """(label, folder) pairs; a label may come with several folders."""
    out = Sources()
    for label, folder in folders:
        if not folder.is_dir():
            raise PathError(f"folder '{folder}' for label '{label}' {not_a_folder(folder)}", folder)
        out.items += [Item(p, label) for p in list_images(folder)]
        out.folders.append(folder)
    return _once(out, "the --folder folders")


def _read_table(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.exists():
        raise PathError(f"label file '{path}' does not exist", path)
    require_file(path, "label file")
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
