"""The synthetic clip the benchmarks run on when no --clip is given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_clip(path: Path, seconds: float, size: str = "1280x720") -> Path:
    """Write examples/make_test_clip.py's driving clip (with audio) to ``path``."""
    script = ROOT / "examples" / "make_test_clip.py"
    cmd = [sys.executable, str(script), str(path), "--seconds", str(seconds), "--size", size]
    subprocess.run(cmd, check=True, capture_output=True)
    return path
