"""d2nvideo: day-to-night and night-to-day translation of dashcam video."""

from __future__ import annotations

__version__ = "0.1.0"
