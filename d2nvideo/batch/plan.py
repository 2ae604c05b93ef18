"""From command-line inputs (files, folders, globs, ``-`` for paths on stdin) to conversion
tasks, each an input and the output it goes to. No torch, no decoding: names only.

- One file: its output is ``-o`` if given, else ``<stem>_<to><ext>`` beside it.
- Otherwise ``-o`` is a folder (required for several inputs; ``<folder>_<to>`` beside a single
  folder by default). A single folder's tree is mirrored into it; with several inputs each
  file keeps its name and each folder becomes a subfolder of that name.
- Folders are searched recursively for videos and images; files named like earlier outputs
  (``*_night.*``, ``*_day.*``) are not taken as inputs, and the output folder may not lie
  inside an input folder.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..choices import DOMAINS
from ..data.extract import VIDEO_SUFFIXES
from ..errors import InputError, PathError, UsageError
from ..fileio import files_under, within
from ..images import IMAGE_SUFFIXES

Kind = Literal["video", "image"]
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Task:
    src: Path
    dst: Path
    kind: Kind


def kind_of(path: Path) -> Kind | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def default_output(src: Path, to: str) -> Path:
    """``drive.mp4`` -> ``drive_night.mp4``; ``frames/`` -> ``frames_night/``."""
    if src.is_dir():
        return src.resolve().with_name(f"{src.resolve().name}_{to}")
    return src.with_name(f"{src.stem}_{to}{src.suffix}")


def looks_like_output(path: Path) -> bool:
    """``drive_night.mp4``: named as d2nvideo names its outputs."""
    return any(path.stem.endswith(f"_{d}") for d in DOMAINS)


def expand(inputs: Iterable[str], stdin: Iterable[str] | None = None) -> list[Path]:
    """Inputs as paths: globs expanded (``**`` recursive), ``-`` read as one path per line
    from ``stdin``; each must exist, but for a listed one (it fails alone: one file that went
    away between a ``find`` and the conversion stopped the whole run before any work)."""
    found: list[Path] = []
    for item in inputs:
        if not item:
            raise PathError("an input path is empty ('')", item)
        if item == "-":  # a line is a path as it is, spaces and all, less its line ending
            lines = stdin if stdin is not None else sys.stdin
            found += [Path(line.rstrip("\r\n")) for line in lines if line.strip()]
        elif any(c in item for c in GLOB_CHARS) and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise PathError(f"no file matches '{item}'", item)
            found += [Path(m) for m in matches]
        else:
            path = Path(item)
            if not path.exists():
                raise PathError(f"input '{item}' does not exist", item)
            found.append(path)
    return found


def plan(inputs: list[Path], to: str, output: Path | None) -> list[Task]:
    """The tasks for ``inputs`` (already expanded) converted to ``to``."""
    if not inputs:
        raise UsageError("no inputs given")
    if len(inputs) == 1 and not inputs[0].is_dir():
        return [_single(inputs[0], to, output)]
    if output is None and len(inputs) > 1:
        raise UsageError("several inputs need -o OUTPUT_FOLDER")
    out = output if output is not None else default_output(inputs[0], to)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output '{out}' is a file; several outputs need a folder", out)
    if not out.exists() and kind_of(out) is not None:  # a folder named f.mp4 was made
        raise UsageError(
            f"output '{out}' is named like a file, but several outputs (or a folder's) go into "
            "a folder: name one without a video or image suffix",
            out,
        )
    tasks: list[Task] = []
    for src in inputs:
        _check_outside(src, out)
        if src.is_dir():
            root = out if len(inputs) == 1 else out / src.resolve().name
            tasks += _tree(src, root, out)
        else:
            tasks.append(_file(src, out / src.name))
    if not tasks:
        names = ", ".join(f"'{p}'" for p in inputs[:3])
        raise InputError(
            f"no video or image files to convert under {names} (files named like earlier "
            "outputs, *_night.* and *_day.*, are not taken as inputs)",
            inputs[0],
        )
    return _unique(tasks, [src for src in inputs if not src.is_dir()])


def _single(src: Path, to: str, output: Path | None) -> Task:
    if output is not None and output.is_dir():
        output = output / src.name
    return _file(src, output or default_output(src, to))


def _file(src: Path, dst: Path) -> Task:
    kind = kind_of(src)
    if kind is None:
        kind = "video"  # an unknown suffix is probed as a video: a non-video fails there
    return Task(src, dst, kind)


def _tree(root: Path, out: Path, output: Path) -> list[Task]:
    """The tasks of the folder ``root``, written under ``out``; files that a link under
    ``root`` reaches inside the ``output`` folder are outputs, not inputs (each run converted
    the last one's outputs again, and with --overwrite replaced its own inputs)."""
    tasks, linked, earlier = [], [], []
    inside = os.path.join(os.path.realpath(output), "")
    root_inside = os.path.join(os.path.realpath(root), "").startswith(inside)  # inputs kept there
    for path in sorted(files_under(root)):
        kind = kind_of(path)
        if kind is None or looks_like_output(path) or path.name.startswith("."):
            continue
        if not root_inside and os.path.realpath(path).startswith(inside):
            linked.append(path)
        elif _in_earlier_output(path, root):
            earlier.append(path)
        else:
            tasks.append(Task(path, out / path.relative_to(root), kind))
    log = logging.getLogger(__name__)
    if linked:
        log.warning(
            "skipped %d file(s) such as '%s': a link leads there into the output folder '%s'",
            len(linked),
            linked[0],
            output,
        )
    if earlier:
        log.warning(
            "skipped %d file(s) such as '%s': taken for earlier outputs, as a file of the "
            "same name is in the folder beside theirs without _night/_day (name their folder "
            "on the command line to convert them)",
            len(earlier),
            earlier[0],
        )
    return tasks


def _in_earlier_output(path: Path, root: Path) -> bool:
    """Whether a folder below ``root`` on the way to ``path`` is an earlier run's output of the
    folder beside it (``dusk_night/`` beside ``dusk/``: ``convert dusk`` wrote it, and a run on
    their parent converted its files again, as they keep their names). Only a file whose
    input is there, by the same name, is one: a folder of one's own named ``drive_day/``
    beside ``drive/`` was skipped whole."""
    for folder in path.relative_to(root).parents:
        name = folder.name
        if folder == Path(".") or not any(name.endswith(f"_{d}") for d in DOMAINS):
            continue
        source = root / folder.parent / name.rsplit("_", 1)[0]
        if (source / path.relative_to(root / folder)).is_file():
            return True
    return False


def _check_outside(src: Path, out: Path) -> None:
    if not src.is_dir():
        return
    if within(out, src):
        raise UsageError(f"output folder '{out}' must lie outside the input folder '{src}'", out)


def _unique(tasks: list[Task], files: list[Path]) -> list[Task]:
    """Refuse two inputs that would write the same output, and an output that is an input:
    one of ``files`` given one by one, or any task's (an input folder kept inside the output
    folder maps its files onto themselves or onto each other)."""
    seen: dict[Path, Path] = {}
    sources = {src.resolve(): src for src in [*files, *(task.src for task in tasks)]}
    for task in tasks:
        key = task.dst.resolve()
        if key in sources:
            raise UsageError(
                f"'{task.src}' would be written to '{task.dst}', which is the input "
                f"'{sources[key]}'; choose another -o",
                task.dst,
            )
        if key in seen and seen[key] != task.src:
            raise UsageError(
                f"'{seen[key]}' and '{task.src}' would both be written to '{task.dst}'", task.dst
            )
        seen[key] = task.src
    return tasks
