"""Video stages: probe, decode, encode and temporal smoothing, each over iterators of frames."""

from __future__ import annotations

from .decode import Frame, decode_frames
from .probe import VideoInfo, probe

__all__ = ["Frame", "VideoInfo", "decode_frames", "probe"]
