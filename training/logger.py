"""Run logs: JSON lines and sample-grid JPEGs always; TensorBoard when it is installed; a
console line per log interval unless quiet. Only rank 0 writes."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from d2nvideo.progress import stderr_console


class RunLogger:
    def __init__(self, out: Path, enabled: bool, files: bool) -> None:
        self.out = out
        self.enabled = enabled
        self.files = files
        self.console = stderr_console()
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
        if self.enabled:
            self.console.print(message, highlight=False)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.files:
            with (self.out / "log.jsonl").open("a") as fh:
                fh.write(json.dumps({"step": step, **values}) + "\n")
            if self.tb is not None:
                for key, value in values.items():
                    self.tb.add_scalar(f"loss/{key}" if key != "lr" else "lr", value, step)
        if self.enabled:
            text = " ".join(f"{k} {v:.4g}" for k, v in values.items())
            self.console.print(f"step {step}: {text}", highlight=False)

    def images(self, step: int, grid_images: torch.Tensor) -> None:
        """``grid_images``: ``(rows, B, 3, h, w)`` in [-1, 1], one row per kind of image."""
        if not self.files:
            return
        from torchvision.utils import make_grid

        from d2nvideo.images import write_image

        _rows, per_row = grid_images.shape[:2]
        grid = make_grid((grid_images.flatten(0, 1) + 1) / 2, nrow=per_row, padding=2)
        image = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        write_image(self.out / "samples" / f"step_{step:08d}.jpg", image, quality=90)
        if self.tb is not None:
            self.tb.add_image("samples", grid, step)
