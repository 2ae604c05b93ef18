"""Whether evaluation images overlap what a model was trained on.

``d2nvideo export`` stores a fingerprint of every training image in the checkpoint (a 64-bit
difference hash, robust to resizing and recompression: d2nvideo.images.fingerprint). An image
within a few bits of one of them is the same picture, or a neighbouring frame of the same clip:
a realism judge trained on it would share the model's habits, and a "held-out" figure on it
would not be held out (issue 10).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..images import fingerprint

MAX_BITS = 3  # differing bits at or below which two fingerprints are the same picture


def training_fingerprints(meta: dict[str, Any]) -> np.ndarray | None:
    """The model's training fingerprints as ``(N,) uint64``, or None if it records none."""
    data = meta.get("data")
    found = data.get("fingerprints") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return None
    hexes = [h for domain in found.values() if isinstance(domain, list) for h in domain]
    try:
        return np.array([int(h, 16) for h in hexes], dtype=np.uint64)
    except (TypeError, ValueError, OverflowError):  # not hex, or past 64 bits
        return None


def overlapping(
    images: list[np.ndarray], known: np.ndarray, prints: list[str] | None = None
) -> list[int]:
    """Indices of ``images`` ((H, W, 3) uint8 each) whose fingerprint (``prints``, taken
    before they were shrunk, else their own) lies within MAX_BITS of one in ``known``."""
    if not len(known) or not images:
        return []
    hexes = prints if prints is not None else [fingerprint(im) for im in images]
    codes = np.array([int(h, 16) for h in hexes], dtype=np.uint64)
    xor = codes[:, None] ^ known[None, :]
    bits = np.unpackbits(xor.view(np.uint8).reshape(*xor.shape, 8), axis=-1).sum(-1)
    return [int(i) for i in np.flatnonzero(bits.min(1) <= MAX_BITS)]
