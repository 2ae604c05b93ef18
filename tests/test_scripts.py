"""The benchmarks' and examples' scripts on bad input: one line on stderr, exit 2 for a usage
error (1 at run time), no traceback, and no file written or changed. Each run stops before
any real work, so a test takes the seconds of a Python start and an import."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(script: str, *args: str, folder: Path, code: int = 2) -> str:
    """Run ``script`` (under the repository) with ``args``: it must exit ``code`` with one
    line on stderr and leave ``folder`` as it was. Returns that line."""
    before = snapshot(folder)
    cmd = [sys.executable, str(ROOT / script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=folder)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert snapshot(folder) == before
    return lines[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-frame synthetic clip."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    cmd = [sys.executable, str(ROOT / "examples" / "make_test_clip.py"), str(path)]
    cmd += ["--seconds", "0.34", "--size", "64x48"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return path


def test_bench_convert_never_keeps_its_output_over_the_clip_or_a_file(clip, tmp_path) -> None:
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(clip.read_bytes())
    other = tmp_path / "other.mp4"
    other.write_bytes(b"mine")
    script = "benchmarks/bench_convert.py"
    for keep, extra in ((mine, []), (tmp_path / "." / "mine.mp4", ["--overwrite"]), (other, [])):
        line = refused(script, "--clip", str(mine), "--keep", str(keep), *extra, folder=tmp_path)
        assert "--keep" in line


@pytest.mark.parametrize(
    "args",
    [["--sizes", "160"], ["--frames", "0"], ["--naive-frames", "-1"], ["--heights", "8"]],
)
def test_bench_convert_refuses_bad_arguments(args, tmp_path) -> None:
    refused("benchmarks/bench_convert.py", *args, folder=tmp_path)


def test_bench_convert_refuses_a_missing_clip(tmp_path) -> None:
    line = refused("benchmarks/bench_convert.py", "--clip", "gone.mp4", folder=tmp_path)
    assert line.startswith("error: --clip") and "does not exist" in line


@pytest.mark.parametrize(
    "args",
    [["--jobs", "0"], ["--clips", "0"], ["--size", "160"], ["--seconds", "inf"]],
)
def test_bench_batch_refuses_bad_arguments(args, tmp_path) -> None:
    refused("benchmarks/bench_batch.py", *args, folder=tmp_path)


def test_bench_batch_refuses_a_missing_model(tmp_path) -> None:
    line = refused("benchmarks/bench_batch.py", "--model", "gone.safetensors", folder=tmp_path)
    assert line == "error: --model 'gone.safetensors' does not exist"


@pytest.mark.parametrize("args", [["--seconds", "0"], ["--fps", "0"], ["--size", "160"]])
def test_bench_memory_refuses_bad_arguments(args, tmp_path) -> None:
    refused("benchmarks/bench_memory.py", *args, folder=tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        ["sizes", "--config", "nope"],
        ["sizes", "--steps", "0"],
        ["sizes", "--sizes", "30"],
        ["sizes", "--config", "tiny", "--device", "BAD"],  # was the child's failure, exit 1
        ["recipes", "--steps", "0"],
        ["split", "--steps", "-1"],
    ],
)
def test_bench_train_refuses_bad_arguments(args, tmp_path) -> None:
    refused("benchmarks/bench_train.py", *args, folder=tmp_path)


def test_bench_train_says_why_a_size_failed_not_the_child_script(tmp_path) -> None:
    args = ["sizes", "--config", "tiny", "--steps", "1", "--sizes", "30x30"]
    line = refused("benchmarks/bench_train.py", *args, folder=tmp_path, code=1)
    assert line.startswith("error: the 30x30 run failed (exit 1): ") and "import" not in line


def test_bench_smooth_needs_two_frames(clip, tmp_path) -> None:
    script = "benchmarks/bench_smooth.py"
    refused(script, "--clip", str(clip), "--frames", "1", folder=tmp_path)
    one = tmp_path / "one.mp4"
    cmd = [sys.executable, str(ROOT / "examples" / "make_test_clip.py"), str(one)]
    subprocess.run([*cmd, "--seconds", "0.04", "--fps", "25", "--size", "64x48"], check=True)
    line = refused(
        script, "--clip", str(one), "--frames", "3", "--heights", "32", folder=tmp_path, code=1
    )
    assert line.endswith("has 1 frame(s): timing needs 2")


@pytest.mark.parametrize("args", [["--images", "0"], ["--shared", "gone"]])
def test_bench_relabel_refuses_bad_arguments(args, tmp_path) -> None:
    refused("benchmarks/bench_relabel.py", *args, folder=tmp_path)


@pytest.mark.parametrize(
    "args",
    [["sub/x.mp4"], ["x.mp4", "--seconds", "inf"], ["x.mp4", "--seconds", "nan"]],
)
def test_make_test_clip_refuses_what_it_cannot_write(args, tmp_path) -> None:
    line = refused("examples/make_test_clip.py", *args, folder=tmp_path)
    assert line.startswith("make_test_clip.py: error: ")


def test_make_test_clip_replaces_only_with_overwrite(tmp_path) -> None:
    out = tmp_path / "x.mp4"
    out.write_bytes(b"mine")
    line = refused("examples/make_test_clip.py", "x.mp4", folder=tmp_path)
    assert line.endswith("exists; pass --overwrite to replace it (see --help)")
    cmd = [sys.executable, str(ROOT / "examples" / "make_test_clip.py"), str(out)]
    cmd += ["--seconds", "0.2", "--size", "32x32", "--overwrite"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert out.read_bytes()[4:8] == b"ftyp"  # a whole MP4 now
    assert [p.name for p in tmp_path.iterdir()] == ["x.mp4"]


def test_make_test_clip_calls_a_dangling_link_taken(tmp_path) -> None:
    # it said "the folder of 'x.mp4' does not exist: make it first" (a review)
    (tmp_path / "x.mp4").symlink_to(tmp_path / "gone" / "y.mp4")
    line = refused("examples/make_test_clip.py", "x.mp4", folder=tmp_path)
    assert "exists; pass --overwrite to replace it" in line


def test_make_test_clip_writes_beside_its_output_and_renames(tmp_path) -> None:
    """It wrote the output in place: an interrupted run left half a clip under the name."""
    cmd = [sys.executable, str(ROOT / "examples" / "make_test_clip.py"), "x.mp4"]
    cmd += ["--seconds", "600", "--size", "32x32"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # frames being written
        assert [p.name.startswith(".x.") for p in tmp_path.iterdir()] == [True]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and stderr.decode().strip() == "interrupted", stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["examples/gallery.py", "examples/prepare_shared_data.py"])
def test_the_examples_refuse_a_missing_shared_folder_or_model(script, tmp_path) -> None:
    line = refused(script, "gone", "out", folder=tmp_path)
    assert line == "error: shared folder 'gone' does not exist"
    (tmp_path / "shared").mkdir()
    (tmp_path / "taken").write_bytes(b"mine")
    assert "not a folder" in refused(script, "shared", "taken", folder=tmp_path)
    if script.endswith("gallery.py"):
        line = refused(script, "shared", "out", "--model", "gone.pt", folder=tmp_path)
        assert line == "error: --model 'gone.pt' does not exist"


def test_prepare_shared_data_refuses_a_short_side_under_16(tmp_path) -> None:
    (tmp_path / "shared").mkdir()
    for side in ("0", "-3", "15"):
        args = ["shared", "out", "--short-side", side]
        assert "--short-side" in refused("examples/prepare_shared_data.py", *args, folder=tmp_path)


def test_the_gallery_keeps_images_that_may_not_be_shared_out_of_the_repository(tmp_path) -> None:
    (tmp_path / "shared").mkdir()
    for out in (ROOT / "docs" / "gallery", ROOT / "docs" / ".." / "new"):
        line = refused("examples/gallery.py", "shared", str(out), "--all", folder=tmp_path)
        assert "may not be redistributed" in line
    assert not (ROOT / "new").exists()


@pytest.mark.parametrize(
    "script",
    [
        "benchmarks/bench_convert.py",
        "benchmarks/bench_relabel.py",
        "benchmarks/bench_smooth.py",
        "benchmarks/device_check.py",
        "examples/gpu_train.py",
    ],
)
def test_help_describes_the_script_in_whole_sentences(script) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split("\n\n")[1].split())  # the description
    assert text.endswith("."), text
