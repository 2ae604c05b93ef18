"""Run logs: JSON lines and sample-grid JPEGs always; TensorBoard when it is installed; a
console line per log interval unless quiet. Only rank 0 writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import torch


class RunLogger:
    """``say`` prints a console line (the caller routes it above its progress bar); ``files``
    writes log.jsonl, sample grids and TensorBoard events."""

    def __init__(self, out: Path, say: Callable[[str], None], files: bool) -> None:
        self.out = out
        self.say = say
        self.files = files
        self.tb: Any = None

    def __enter__(self) -> RunLogger:
        if self.files:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out / "tensorboard"))
            except ImportError:
                self.tb = None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.tb is not None:
            self.tb.close()

    def info(self, message: str) -> None:
        self.say(message)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.files:
            with (self.out / "log.jsonl").open("a") as fh:
                fh.write(json.dumps({"step": step, **values}) + "\n")
            if self.tb is not None:
                for key, value in values.items():
                    self.tb.add_scalar(f"loss/{key}" if key != "lr" else "lr", value, step)
        self.say(f"step {step}: " + " ".join(f"{k} {v:.4g}" for k, v in values.items()))

    def images(self, step: int, grid_images: torch.Tensor, labels: list[str]) -> None:
        """``grid_images``: ``(rows, B, 3, h, w)`` in [-1, 1], one row per kind of image, each
        row named by ``labels`` on the left of the grid."""
        if not self.files:
            return
        from d2nvideo.images import write_image

        image = sample_grid(grid_images, labels)
        write_image(self.out / "samples" / f"step_{step:08d}.jpg", image, quality=90)
        if self.tb is not None:
            self.tb.add_image("samples", image, step, dataformats="HWC")


def trim_log(out: Path, step: int) -> None:
    """Keep only the records of log.jsonl up to ``step``, the step a run starts (or resumes)
    from: a run killed after its last checkpoint logged steps that the resumed run repeats.
    A record cut short by the kill is dropped too."""
    path = out / "log.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("step"), int)
            and record["step"] <= step
        ):
            kept.append(line + "\n")
    from d2nvideo.fileio import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text("".join(kept))


def sample_grid(images: torch.Tensor, labels: list[str], pad: int = 2) -> np.ndarray:
    """``(rows, B, 3, h, w)`` in [-1, 1] -> ``(H, W, 3) uint8``: rows of tiles on a black
    ground, with each row's label in a column on the left."""
    rows, per_row, _, h, w = images.shape
    tiles = ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
    label_w = 8 * max(len(t) for t in labels) + 2 * pad if labels else 0
    out = np.zeros((rows * (h + pad) + pad, label_w + per_row * (w + pad) + pad, 3), np.uint8)
    for r in range(rows):
        y = pad + r * (h + pad)
        for c in range(per_row):
            x = label_w + pad + c * (w + pad)
            out[y : y + h, x : x + w] = tiles[r, c].transpose(1, 2, 0)
        if r < len(labels):
            cv2.putText(
                out, labels[r], (pad, y + h // 2), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255)
            )
    return out
