"""What a run folder records about its training data, beside the training state: init.json (the
checkpoint a fine-tune started from) and data.json (counts, images per source folder, and a
fingerprint of every image the model learned from, which export copies into the checkpoint so
that ``evaluate`` can refuse a realism set that overlaps it; issue 10).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from d2nvideo.errors import InputError
from d2nvideo.images import fingerprint, read_image_reduced

from .data import DomainLists
from .state import read_json_object, write_json


def write_init(out: Path, base: dict[str, Any] | None, step: int) -> None:
    """init.json: the checkpoint a fine-tuning run started from (export adds its steps and
    names it). A fresh run without one must not inherit a stale file."""
    path = out / "init.json"
    if step > 0:
        return
    if base is None:
        path.unlink(missing_ok=True)
        return
    write_json(path, {k: v for k, v in base.items() if k != "data"})


def write_data_summary(
    out: Path, lists: DomainLists, step: int = 0, base: dict[str, Any] | None = None
) -> None:
    """data.json: counts, images per source folder, and a fingerprint of every training image,
    which export copies into the checkpoint so that evaluate can refuse a realism set that
    overlaps what the model learned from (issue 10). A run resumed on other data keeps what it
    trained on before: the earlier summaries under ``earlier`` (with the step each began to
    be replaced at) and their fingerprints in the union. A run started from a checkpoint
    (``base``, from ``warm_start``) counts that checkpoint's data as its first phase."""
    summary: dict[str, Any] = {
        "day": len(lists.day),
        "night": len(lists.night),
        "missing": lists.missing,
        "dropped": lists.dropped,
        "sources": {d: _source_counts(getattr(lists, d)) for d in ("day", "night")},
        "fingerprints": {d: _fingerprints(_seen(lists, d)) for d in ("day", "night")},
    }
    if any(lists.pairs.values()):
        summary["pairs"] = {d: len(v) for d, v in lists.pairs.items()}
    before = read_json_object(out / "data.json") if step > 0 else None
    if before is None and base is not None:
        before = _base_summary(base)
    if before is not None:
        if before.get("incomplete"):
            summary["incomplete"] = before["incomplete"]
        _keep_earlier(summary, before, step)
    write_json(out / "data.json", summary)


def _base_summary(base: dict[str, Any]) -> dict[str, Any]:
    """The data summary of the checkpoint a run started from (``warm_start``), as the run's
    first phase; one that records no training images marks the run's summary incomplete, so
    that ``evaluate`` says its overlap check cannot cover them."""
    if base.get("data") is None:
        name = base["checkpoint"]
        return {"incomplete": f"started from '{name}', which records no training images"}
    return dict(json.loads(json.dumps(base["data"])))  # a copy: _keep_earlier pops from it


def _keep_earlier(summary: dict[str, Any], before: dict[str, Any], step: int) -> None:
    """Carry the earlier data phases of ``before`` into ``summary``; when this phase's images
    differ from the last one's, that one joins them. ``fingerprints`` is then every image the
    run has seen, ``earlier_fingerprints`` those of earlier phases not in this one."""
    now = {d: list(v) for d, v in summary["fingerprints"].items()}
    union = before.pop("fingerprints", {})
    prior = before.pop("earlier_fingerprints", {})
    seen = {d: set(v) for d, v in now.items()}
    last = {d: set(union.get(d, [])) - set(prior.get(d, [])) for d in now}
    summary["earlier"] = before.pop("earlier", [])
    if any(last[d] != seen[d] for d in now):
        summary["earlier"].append({**before, "until_step": step})
        prior = union
    extra = {d: [f for f in prior.get(d, []) if f not in seen[d]] for d in now}
    summary["earlier_fingerprints"] = extra
    summary["fingerprints"] = {d: now[d] + extra[d] for d in now}


def _seen(lists: DomainLists, domain: str) -> list[Path]:
    """Every image of ``domain`` the generator learns from: its images and its frame pairs."""
    images: list[Path] = getattr(lists, domain)
    return images + [p for pair in lists.pairs[domain] for p in pair]


def _source_counts(paths: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
    return counts


def _fingerprints(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        try:
            found.append(fingerprint(read_image_reduced(path, min_side=64)))
        except InputError:
            continue  # the loader reports unreadable images when it meets them
    return found
