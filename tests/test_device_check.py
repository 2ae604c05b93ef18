"""benchmarks/device_check.py's dry run: the GPU check, rehearsed on the CPU with tiny sizes, so
it works the first time a GPU is at hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_device_check_dry_run_passes(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "device_check.py"
    # the gpu-marked tests are this suite's own: running pytest inside pytest adds nothing here
    cmd = [sys.executable, str(script), "--dry-run", "--out", str(tmp_path), "--skip"]
    proc = subprocess.run([*cmd, "gpu-marked tests"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    status = {row["check"]: row["status"] for row in results["checks"]}
    assert status.pop("gpu-marked tests") == "skipped"
    assert set(status.values()) == {"ok"}, results["checks"]
    assert len(status) == 7 and results["env"]["dry_run"] is True
    table = next(row["table"] for row in results["checks"] if row["check"] == "convert speed")
    assert {r["model"] for r in table} == {"bundled", "full-size UNIT"}
    assert all(r["fps"] > 0 for r in table)
    assert "| convert speed | ok |" in (tmp_path / "results.md").read_text()
