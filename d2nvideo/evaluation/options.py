"""What ``evaluate`` is asked to do (:class:`EvalOptions`) and whom it tells how far it has got
(:class:`Tracker`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..pipeline import WorkingSize

Images = list[np.ndarray]


@dataclass(frozen=True)
class EvalOptions:
    max_images: int = 40  # per domain
    image_max_side: int = 640  # stills are evaluated at most this size (longer side)
    resolution: WorkingSize = field(default_factory=WorkingSize)  # as convert runs it
    realism_steps: int = 400  # classifier training steps (0: skip the realism check)
    realism_day: Path | None = None  # the classifier's own real day images (default: half
    realism_night: Path | None = None  # of the evaluated folders, the other half evaluated)
    video_frames: int = 48  # frames per video for E_warp
    video_max_side: int = 480
    speed_heights: tuple[int, ...] = (180, 360, 540, 720)
    seed: int = 0
    allow_overlap: bool = False  # evaluate even where images overlap the model's training set

    def __post_init__(self) -> None:
        if (self.realism_day is None) != (self.realism_night is None):
            raise UsageError(
                "--realism-day and --realism-night go together: give both, or neither (the "
                "judge then trains on half of --day and --night)"
            )


class Tracker:
    """What ``evaluate`` reports its progress to: ``start(total)`` once the amount of work is
    known (images translated, clip frames, judges trained, frame sizes timed), then ``done(n)``
    as it goes, and ``say`` for each phase. The default does nothing."""

    def start(self, total: int) -> None:
        pass

    def done(self, n: int = 1) -> None:
        pass

    def say(self, message: str) -> None:
        pass


SILENT = Tracker()
