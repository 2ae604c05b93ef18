"""Read a written video back for assertions."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


@dataclass
class Readback:
    times: list[Fraction]  # exact presentation times of the video frames
    width: int
    height: int
    fps: Fraction
    rotation: int
    audio: list[bytes]  # raw audio packet payloads in order
    audio_times: list[Fraction]
    images: list[np.ndarray]
    metadata: dict[str, str]


def read_video(path: Path) -> Readback:
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames = list(c.decode(vs))
        fps = vs.average_rate
        metadata = dict(c.metadata)
    audio, audio_times = [], []
    with av.open(str(path)) as c:
        if c.streams.audio:
            for pkt in c.demux(c.streams.audio[0]):
                if pkt.size:
                    audio.append(bytes(pkt))
                    audio_times.append(pkt.pts * pkt.time_base)
    return Readback(
        times=[f.pts * f.time_base for f in frames],
        width=frames[0].width,
        height=frames[0].height,
        fps=fps,
        rotation=frames[0].rotation,
        audio=audio,
        audio_times=audio_times,
        images=[f.to_ndarray(format="rgb24") for f in frames],
        metadata=metadata,
    )


@dataclass(frozen=True)
class CrashingConverter:
    """A ``convert --jobs`` worker's converter factory (picklable) for tests of a worker that
    dies: the converter ends its process, as a decoder's crash would, on an input whose name
    starts with ``crash``; on one that starts with ``once`` only while ``marker`` does not exist
    (it makes it: the OOM killer, once); on one that starts with ``warn`` it logs a warning;
    on one that starts with ``slow`` it reports 2 frames written and works 2 s on; every input
    it does not end on is "done" without work."""

    marker: Path

    def __call__(self, task: object = None, on_frames: object = None) -> object:
        if task is None:  # as the factory
            return self
        import os

        from d2nvideo.batch.run import Outcome

        name = task.src.name  # type: ignore[attr-defined]
        if name.startswith("warn"):
            import logging

            logging.getLogger("d2nvideo.pipeline").warning("'%s' looks odd", name)
        if name.startswith("slow"):
            import time

            on_frames(2)  # type: ignore[operator]
            time.sleep(2)
        if name.startswith("once") and not self.marker.exists():
            self.marker.touch()
            os._exit(9)
        if name.startswith("crash"):  # mid-write, as a decoder's crash would be
            from d2nvideo.fileio import atomic_output

            with atomic_output(task.dst) as tmp:  # type: ignore[attr-defined]
                tmp.write_bytes(b"half an output")
                os._exit(9)
        return Outcome(str(task.src), str(task.dst), "done", frames=1)  # type: ignore[attr-defined]
