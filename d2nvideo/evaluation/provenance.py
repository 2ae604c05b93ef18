"""Whether evaluation images overlap what a model was trained on, or what the realism judge
was trained on.

``d2nvideo export`` stores a fingerprint of every training image in the checkpoint (a 64-bit
difference hash, robust to resizing and recompression: d2nvideo.images.fingerprint). An image
within a few bits of one of them is the same picture, or a neighbouring frame of the same clip:
a realism judge trained on it would share the model's habits, and a "held-out" figure on it
would not be held out (issue 10). The same test keeps the judge's own training images out of
the held-out images its recall is measured on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..images import fingerprint
from .report import Report

log = logging.getLogger(__name__)

MAX_BITS = 3  # differing bits at or below which two fingerprints are the same picture


@dataclass
class Seen:
    """What evaluate read of one folder or clip: each image's path (a clip's frames: none) and
    fingerprint, taken at its own size, the images decoded with data missing, and why a
    clip's frames stopped before the number asked for ("": they did not)."""

    paths: list[Path] = field(default_factory=list)
    prints: list[str] = field(default_factory=list)
    damaged: list[Path] = field(default_factory=list)
    stopped: str = ""

    def named(self, index: int) -> str:
        return f", e.g. '{self.paths[index]}'" if index < len(self.paths) else ""


def training_fingerprints(meta: dict[str, Any]) -> np.ndarray | None:
    """The model's training fingerprints as ``(N,) uint64``, or None if it records none."""
    data = meta.get("data")
    found = data.get("fingerprints") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return None
    hexes = [h for domain in found.values() if isinstance(domain, list) for h in domain]
    try:
        return _codes(hexes)
    except (TypeError, ValueError, OverflowError):  # not hex, or past 64 bits
        return None


def _codes(hexes: list[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in hexes], dtype=np.uint64)


def overlapping(
    images: list[np.ndarray], known: np.ndarray, prints: list[str] | None = None
) -> list[int]:
    """Indices of ``images`` ((H, W, 3) uint8 each) whose fingerprint (``prints``, taken
    before they were shrunk, else their own) lies within MAX_BITS of one in ``known``."""
    if not images:
        return []
    return _near(prints if prints is not None else [fingerprint(im) for im in images], known)


def _near(prints: list[str], known: np.ndarray) -> list[int]:
    """Indices of ``prints`` within MAX_BITS of one in ``known``. A flat picture (a black
    frame, a lens cap) has the fingerprint 0, as every other flat picture has: it matches
    nothing."""
    known = known[known != 0]
    if not len(known) or not prints:
        return []
    codes = _codes(prints)
    xor = codes[:, None] ^ known[None, :]
    bits = np.unpackbits(xor.view(np.uint8).reshape(*xor.shape, 8), axis=-1).sum(-1)
    return [int(i) for i in np.flatnonzero((bits.min(1) <= MAX_BITS) & (codes != 0))]


def check_overlap(
    meta: dict[str, Any],
    folders: dict[str, list[np.ndarray]],
    allow: bool,
    report: Report,
    seen: dict[str, Seen] | None = None,
) -> None:
    """Refuse (or with ``allow`` record loudly) evaluation images that the model was trained
    on; note when the model records no training fingerprints to check against."""
    known = _known(meta, report)
    if known is None:
        return
    for name, images in folders.items():
        found = (seen or {}).get(name, Seen())
        hits = overlapping(images, known, found.prints or None)
        report.overlap[name] = len(hits)
        if hits:
            _overlaps(
                f"{len(hits)} of {len(images)} {name} images match the model's training images "
                f"(same picture or a neighbouring frame of the same clip{found.named(hits[0])})",
                "use images the model never saw",
                allow,
                report,
            )


def _known(meta: dict[str, Any], report: Report) -> np.ndarray | None:
    """The model's training fingerprints, with a note where it records none or only some."""
    known = training_fingerprints(meta)
    if known is None:
        report.notes.append(
            "the model records no training-image fingerprints: overlap of the evaluation and "
            "realism images with its training set was not checked"
        )
        log.warning(report.notes[-1])
        return None
    data = meta.get("data")
    if isinstance(data, dict) and data.get("incomplete"):
        report.notes.append(
            f"the model's training data is only partly recorded ({data['incomplete']}): "
            "overlap with the unrecorded images was not checked"
        )
        log.warning(report.notes[-1])
    return known


def _overlaps(message: str, instead: str, allow: bool, report: Report) -> None:
    if not allow:
        raise UsageError(
            f"{message}: {instead} (--allow-overlap evaluates anyway, and the report says so)"
        )
    report.notes.append(f"OVERLAP: {message}; figures on them are not held out")
    log.warning(report.notes[-1])


def check_judge_overlap(seen: dict[str, Seen], allow: bool, report: Report) -> None:
    """Refuse (or with ``allow`` record loudly) held-out images (--day, --night) that are among
    the realism judge's own training images (--realism-day, --realism-night): a copy of the
    held-out night stills in the judge's folder gave it a "held-out" recall of 100%."""
    for domain in ("day", "night"):
        judge, held = seen.get(f"realism {domain}"), seen.get(domain)
        if judge is None or held is None:
            continue
        hits = _near(held.prints, _codes(judge.prints))
        report.overlap[f"{domain} in realism {domain}"] = len(hits)
        if hits:
            _overlaps(
                f"{len(hits)} of {len(held.prints)} --{domain} images are among the realism "
                f"judge's own --realism-{domain} images{held.named(hits[0])}",
                f"give the judge {domain} images other than the evaluated ones",
                allow,
                report,
            )


def note_clip_overlap(meta: dict[str, Any], clip: Path, seen: Seen, report: Report) -> None:
    """Say (a note and a warning, not a refusal: a training clip's steadiness is worth
    measuring, named as such) how many of the measured frames of ``clip`` the model was
    trained on; clips were not checked at all."""
    known = training_fingerprints(meta)
    if known is None:
        return
    hits = _near(seen.prints, known)
    report.overlap[f"clip {clip.name}"] = len(hits)
    if hits:
        report.notes.append(
            f"TRAINING CLIP: {len(hits)} of the {len(seen.prints)} measured frames of "
            f"'{clip.name}' match the model's training images: its temporal figures are not "
            "held out"
        )
        log.warning(report.notes[-1])


def check_roles(folders: dict[str, Path | None]) -> None:
    """One folder in two roles measures nothing: --day as --night scored day images as night,
    and a judge trained on --night scored its recall on the images it learned from."""
    from ..errors import PathError

    seen: dict[str, str] = {}
    for option, folder in folders.items():
        if folder is None:
            continue
        key = os.path.realpath(folder)
        if key in seen:
            raise PathError(
                f"{seen[key]} and {option} name one folder ('{folder}'): give each its own images",
                folder,
            )
        seen[key] = option
