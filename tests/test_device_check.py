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


def test_an_unknown_check_to_skip_is_refused_before_any_work(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "device_check.py"
    cmd = [sys.executable, str(script), "--dry-run", "--out", str(tmp_path / "dc"), "--skip"]
    proc = subprocess.run([*cmd, "convert"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "'convert speed'" in proc.stderr and not (tmp_path / "dc").exists()
    help_text = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "torchrun 1 GPU" in " ".join(help_text.split())


def test_a_failed_torchrun_keeps_the_childs_own_error() -> None:
    saved = list(sys.path)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from device_check import child_said
    finally:
        sys.path[:] = saved  # _clip adds examples/ too
    launcher = [
        "E1201 16:44:52.987000 18641 torch/distributed/elastic/multiprocessing/api.py:1002] "
        "failed (exitcode: 2)",
        "Traceback (most recent call last):",
        '  File "torch/distributed/run.py", line 1142, in <module>',
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "=" * 60,
        "train.py FAILED",
        *["  padding" * 20] * 40,
    ]
    said = ["Traceback (most recent call last):", '  File "x.py"', "ValueError: boom"]
    assert child_said("\n".join([*said, *launcher])) == "\n".join(said)
    assert child_said("\n".join(["error: config 'x' does not exist", *launcher])) == (
        "error: config 'x' does not exist"
    )
    assert child_said("no banner") == "no banner"
