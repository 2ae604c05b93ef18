"""Fault injection for training (issue 14): bad configs, run folders that hold state, damaged
states and pointers, two trainings at once, exports over their own input, interruptions,
SIGKILL leftovers, and resuming from another working directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import frame_image
from faults import fails, invoke, refused, run_cli, snapshot

from d2nvideo.images import write_image

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for i in range(3):
        write_image(root / "day" / f"d{i}.jpg", frame_image(i, 48, 40))
        write_image(root / "night" / f"n{i}.png", frame_image(i + 5, 48, 40) // 6)
    return root


def _train(data: Path, out: Path, *extra: object) -> object:
    return invoke(
        "train",
        TINY,
        "--day",
        data / "day",
        "--night",
        data / "night",
        "--out",
        out,
        "-q",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.log_every=1",
        *extra,
    )


@pytest.fixture(scope="module")
def run4(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of 2 steps with states at steps 1 and 2."""
    out = tmp_path_factory.mktemp("runs") / "run"
    result = _train(data, out, "--steps", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "state").glob("*.pt")) == [
        "step_00000001.pt",
        "step_00000002.pt",
    ]
    return out


@pytest.fixture()
def run(run4: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run4, copy)
    return copy


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


# --- configs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text, overrides, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", [], "not valid YAML"),
        (b"", [], "is empty"),
        (b"# only a comment\n", [], "is empty"),
        (b"{}", ["optim.lr=-1"], "'optim.lr' must be > 0"),
        (b"{}", ["optim.beta1=1.5"], "'optim.beta1' must be in [0, 1)"),
        (b"{}", ["loss.gan=-1"], "'loss.gan' must be >= 0"),
        (b"{}", ["data.resize=-3"], "'data.resize' must be >= 0"),
        (b"{}", ["optim.lr=.nan"], "'optim.lr' must be > 0"),
        (b"{}", ["optim.lr=[1"], "no valid YAML value"),
        (b"model:\n  width: four\n", [], "width must be an integer, got 'four'"),
        (b"model: [1, 2]\n", [], "'model' must be a mapping"),
        (b"model:\n  width: 4\n  width: 8\n", [], "key 'width' is given twice"),
        (b"model:\n  ? [a, b]\n  : 1\n", [], "a key must be a plain value"),
        (b"train:\n  steps: " + b"9" * 5000 + b"\n", [], "holds a number too long to read"),
        (b"train:\n  steps: 2024-02-30\n", [], "cannot be read (day is out of range for month)"),
        (b"{}", ["train.steps=2024-02-30"], "'train.steps' holds a value that cannot be read"),
    ],
)
def test_bad_configs(yaml_text: bytes, overrides: list[str], message: str, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_bytes(yaml_text)
    sets = [a for o in overrides for a in ("--set", o)]
    refused(tmp_path, 2, message, "train", config, "--out", tmp_path / "r", *sets)


# --- run folders that hold state ------------------------------------------------------------


def test_a_fresh_run_never_writes_into_a_folder_with_state(data: Path, run: Path) -> None:
    (run / "state" / "step_00000002.pt").unlink()  # latest.json now names a missing file
    (run / ".lock").unlink()  # not even the lock is written
    refused(
        run.parent,
        2,
        "already holds training state",
        "train",
        TINY,
        "--day",
        data / "day",
        "--night",
        data / "night",
        "--out",
        run,
        "-q",
    )


@pytest.mark.parametrize("name", ["log.jsonl", "samples"])
def test_a_fresh_run_never_writes_over_what_a_run_trained(name: str, data: Path, run: Path):
    # without state/ (deleted to save space), a new run replaced the log, config and records
    # and mixed its sample grids with the old run's
    shutil.rmtree(run / "state")
    for other in {"log.jsonl", "samples", "tensorboard"} - {name}:
        path = run / other
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    message = f"holds what a run trained ({name}"
    refused(run.parent, 2, message, "train", TINY, "--day", data / "day", "--night",
            data / "night", "--out", run, "-q")  # fmt: skip


def test_a_start_that_failed_can_be_run_again(data: Path, tmp_path: Path) -> None:
    # the records a start wrote before failing (unreadable images) made every rerun and
    # resume in that folder refused
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"x")
    out = tmp_path / "r"
    args = ["train", TINY, "--day", data / "day", "--out", out, "-q", "--steps", "1"]
    fails(invoke(*args, "--night", tmp_path / "bad"), 2, "can be read")
    assert (out / "config.yaml").is_file() and not (out / "state").exists()
    again = invoke(*args, "--night", data / "night")
    assert again.exit_code == 0, again.output
    assert json.loads((out / "data.json").read_text())["night"] == 3
    (tmp_path / "p" / "samples").mkdir(parents=True)  # a folder merely called samples/
    assert invoke(*args, "--night", data / "night", "--out", tmp_path / "p").exit_code == 0


@pytest.mark.parametrize("inside", ["day", "day/run", "linked/run"])
def test_a_run_folder_inside_a_data_folder_is_refused(inside: str, data: Path, tmp_path: Path):
    # its sample grids became day images of the next resume, without a word
    shutil.copytree(data, tmp_path / "d")
    (tmp_path / "d" / "linked").symlink_to(tmp_path / "d" / "day")
    out = tmp_path / "d" / inside
    refused(tmp_path, 2, "lies inside the data folder", "train", TINY, "--day",
            tmp_path / "d" / "day", "--night", tmp_path / "d" / "night", "--out", out)  # fmt: skip


def test_a_run_folder_may_lie_among_the_images_a_label_file_names(data: Path, tmp_path: Path):
    # --images is where a label file's names are looked up: the grids are never among them
    shutil.copytree(data, tmp_path / "img")
    rows = ["image_filename,lighting"] + [f"day/d{i}.jpg,Day" for i in range(3)]
    rows += [f"night/n{i}.png,Night" for i in range(3)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    args = ["--nexet", tmp_path / "train.csv", "--images", tmp_path / "img"]
    result = invoke("train", TINY, *args, "--out", tmp_path / "img" / "run", "--steps", "1", "-q")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name, kind", [("samples", "folder"), ("log.jsonl", "file")])
def test_a_resume_finds_what_is_in_its_way_before_training(
    name: str, kind: str, data: Path, run: Path
) -> None:
    # a file named samples (a folder named log.jsonl) stopped the run at its first grid (its
    # first step), the steps since lost
    path = run / name
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.write_text("in the way") if kind == "folder" else path.mkdir()
    result = _train(data, run, "--steps", "4", "--resume")
    fails(result, 2, f"'{path}' is not a {kind}")
    assert not (run / "state" / "step_00000003.pt").exists()


def test_the_last_step_is_logged(data: Path, tmp_path: Path) -> None:
    # log.jsonl held the first step and every log_every-th: a 3-step run logged step 1 only
    result = _train(data, tmp_path / "r", "--steps", "3", "--set", "train.log_every=100")
    assert result.exit_code == 0, result.output
    assert _steps(tmp_path / "r") == [1, 3]


def test_a_run_stopped_by_its_budget_logs_its_last_step(data: Path, tmp_path: Path) -> None:
    # only a finished run logged its last step: one that its time budget stopped at step 9
    # of 1000 ended log.jsonl at step 1, while the terminal showed step 9's losses
    run = tmp_path / "r"
    result = _train(
        data, run, "--steps", "1000", "--max-minutes", "0.03", "--set", "train.log_every=500"
    )
    assert result.exit_code == 0 and "(time budget)" in result.output, result.output
    stopped = int(result.output.split("step ", 1)[1].split()[0])
    assert _steps(run)[-1] == stopped  # a step or two here, ~15 on a GPU


def test_a_run_whose_budget_ends_on_its_last_step_has_finished(data: Path, tmp_path: Path):
    # it said "step 1 (time budget)", as if steps were left
    result = _train(data, tmp_path / "r", "--steps", "1", "--max-minutes", "0.000001")
    assert result.exit_code == 0 and "step 1 (finished)" in result.output, result.output
    last = result.output[result.output.index("step 1 (finished)") :]  # 125 characters, once
    assert "losses: " in last and max(map(len, last.splitlines())) <= 80 + len(str(tmp_path))


def test_resume_at_or_past_its_steps_is_refused(data: Path, run: Path) -> None:
    # it said "step 2 (finished)" and rewrote config.yaml and phases.json with steps 1
    before = snapshot(run)
    fails(_train(data, run, "--steps", "1", "--resume"), 2, "at step 2 already")
    assert snapshot(run) == before


def test_data_given_twice_is_used_once_and_one_folder_as_both_domains_refused(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "r"
    again = f"{data / 'day'}/."
    result = _train(data, out, "--steps", "1", "--day", again, "--day", data / "day")
    assert result.exit_code == 0, result.output
    assert "6 day images are listed more than once" in caplog.text  # 3 folders: 9 listed
    assert json.loads((out / "data.json").read_text())["day"] == 3
    args = ["train", TINY, "--day", data / "day", "--night", data / "day", "--out", tmp_path / "x"]
    refused(tmp_path, 2, "3 images are in both the day and the night data", *args)


def test_resume_names_settings_of_an_edited_config_it_does_not_take(
    data: Path, run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the edited loss weight was ignored without a word
    mine = tmp_path / "mine.yaml"
    mine.write_text(TINY.read_text().replace("recon_x: 10.0", "recon_x: 9.0"))
    assert "recon_x: 9.0" in mine.read_text()
    result = invoke("train", mine, "--out", run, "--resume", "--steps", "3", "-q")
    assert result.exit_code == 0, result.output
    assert "loss.recon_x 9.0 here, 10.0 in the run" in caplog.text
    caplog.clear()
    shipped = invoke("train", TINY, "--out", run, "--resume", "--steps", "4", "-q")
    assert shipped.exit_code == 0 and "differ" not in caplog.text


def test_resume_falls_back_to_the_newest_readable_state(data: Path, run: Path, caplog) -> None:
    (run / "state" / "step_00000002.pt").write_bytes(b"PK\x03\x04 cut short by a power loss")
    result = _train(data, run, "--steps", "2", "--resume")
    assert result.exit_code == 0, result.output
    assert "step_00000002.pt' could not be read (the file is cut short" in caplog.text
    assert "step 2 (finished)" in result.output
    assert _steps(run) == [1, 2]  # from the state at 1: step 2 redone, and logged once


@pytest.mark.parametrize("pointer", ['{"latest": "step_0000', "[1, 2]"], ids=["cut", "list"])
def test_a_damaged_pointer_still_exports(pointer: str, data: Path, run: Path) -> None:
    (run / "state" / "latest.json").write_text(pointer)
    model = run.parent / "m.safetensors"
    exported = invoke("export", run, "-o", model)
    assert exported.exit_code == 0 and "step 2" in exported.output, exported.output
    # train --resume with a damaged pointer: test_a_killed_run_resumes_...


def test_nothing_to_resume(data: Path, tmp_path: Path) -> None:
    refused(
        tmp_path,
        2,
        "nothing to resume",
        "train",
        TINY,
        "--out",
        tmp_path / "new",
        "--day",
        data / "day",
        "--night",
        data / "night",
        "--resume",
    )


@pytest.mark.parametrize("record", ["data.json", "phases.json", "init.json"])
def test_a_record_that_is_not_a_file_refuses_the_resume_before_anything_changes(
    data: Path, run: Path, record: str
) -> None:
    (run / record).unlink(missing_ok=True)
    (run / record).mkdir()
    before = snapshot(run)
    result = _train(data, run, "--steps", "6", "--resume", "--set", "loss.struct=7")
    fails(result, 2, "is not a file")
    assert snapshot(run) == before  # config.yaml not rewritten with the refused --set


def test_two_trainings_never_share_a_run_folder(data: Path, run: Path) -> None:
    from d2nvideo.processes import exclusive

    with exclusive(run / ".lock", "the other training"):
        before = snapshot(run)
        result = _train(data, run, "--steps", "6", "--resume")
        fails(result, 1, "in use by another process")
        assert snapshot(run) == before


@pytest.mark.parametrize(
    "target, message",
    [
        ("state/step_00000002.pt", "state folder"),
        ("state/new.pt", "state folder"),
        ("config.yaml", "is the input"),
        ("phases.json", "is the input"),
    ],
)
def test_export_never_overwrites_what_it_reads(target: str, message: str, run: Path) -> None:
    refused(run.parent, 2, message, "export", run, "-o", run / target, "--overwrite")


@pytest.mark.parametrize("name", ["m.onnx", "m.pt", "m"])
def test_export_writes_only_safetensors_names(name: str, run: Path) -> None:
    """'-o model.onnx' wrote safetensors bytes that ONNX Runtime then refused (found by a
    helper); the graphs come with --onnx, beside the model."""
    hint = ": add --onnx" if name.endswith(".onnx") else ""
    refused(
        run.parent,
        2,
        f"must be named *.safetensors (the model's format){hint}",
        "export",
        run,
        "-o",
        run.parent / name,
    )


def test_export_raw_of_a_run_without_an_average_says_it_changes_nothing(run: Path) -> None:
    """--raw exports the generator instead of its moving average; a run with no average
    (train.ema 0) exported the same weights and said nothing."""
    result = run_cli("export", run, "-o", "m.safetensors", "--raw", cwd=run.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --raw changes nothing"), lines
    assert "step 2" in lines[0] and "train.ema" in lines[0]
    assert (run.parent / "m.safetensors").is_file()
    plain = run_cli("export", run, "-o", "p.safetensors", cwd=run.parent)
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr


def test_export_and_train_say_what_a_file_given_for_a_folder_is(data: Path, tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a run")
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    refused(tmp_path, 2, "is a file, not a run folder", "export", clip, "-o", "z.safetensors")
    refused(tmp_path, 1, "clip.mp4", "export", clip, "--onnx")  # not a model file either
    z = tmp_path / "z.safetensors"
    refused(tmp_path, 2, "leave -o out", "export", model, "--onnx", "-o", z)
    refused(tmp_path, 2, "run folder", "export", tmp_path / "gone", "-o", z)
    # a mistyped name was told it "needs -o/--output"
    gone = tmp_path / "gone.safetensors"
    refused(
        tmp_path, 2, f"'{gone}' does not exist (a run folder, or a model", "export", gone, "--onnx"
    )
    refused(tmp_path, 2, f"'{gone}' does not exist", "export", gone)
    day = ["train", TINY, "--day", clip, "--night", data / "night", "--out", tmp_path / "r"]
    refused(tmp_path, 2, f"data.day folder '{clip}' is not a folder", *day, "--steps", "1")


# --- interruptions, kills, working directories --------------------------------------------


@pytest.mark.parametrize("to", ["process", "group", "hang-up"])
def test_an_interrupted_training_exits_non_zero(to: str, data: Path, tmp_path: Path) -> None:
    # to the whole group (a scheduler's stop, kill -- -PGID), the data-loading workers died of
    # it and the run failed with 'DataLoader worker ... is killed by signal', saving nothing
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "d2nvideo",
            "train",
            str(TINY),
            "--day",
            str(data / "day"),
            "--night",
            str(data / "night"),
            "--out",
            str(out),
            "--steps",
            "100000",
            "-q",
            "--set",
            "train.log_every=1",
            "--set",
            "data.workers=2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not (out / "log.jsonl").is_file() and time.time() < deadline:
        time.sleep(0.05)
    if to == "group":
        os.killpg(proc.pid, signal.SIGTERM)
    elif to == "hang-up":  # a closed terminal: the run died, steps since the last save lost
        os.killpg(proc.pid, signal.SIGHUP)
    else:
        proc.send_signal(signal.SIGTERM)  # it finishes the step and saves: no time limit here,
    stdout, stderr = proc.communicate(timeout=240)  # which a loaded machine could cross
    assert proc.returncode == (129 if to == "hang-up" else 143), stderr
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: stopped at step")
    assert list((out / "state").glob("step_*.pt"))


def test_a_training_that_fails_with_loading_workers_exits(data: Path, tmp_path: Path) -> None:
    # with its data-loading workers ignoring SIGTERM, an unhandled error (a GPU out of memory,
    # a bug) left the trainer waiting for them at exit, forever
    script = (
        "import runpy, sys, torch\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('a bug while saving')\n"
        "torch.save = broken\n"
        "sys.argv = ['d2nvideo', *sys.argv[1:]]\n"
        "runpy.run_module('d2nvideo', run_name='__main__')\n"
    )
    args = ["train", TINY, "--day", data / "day", "--night", data / "night"]
    args += ["--out", tmp_path / "run", "--steps", "4", "-q", "--set", "data.workers=2"]
    args += ["--set", "train.checkpoint_every=2"]
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=240,
        start_new_session=True,
    )
    assert proc.returncode not in (0, 130, 143), proc.stderr
    assert "a bug while saving" in proc.stderr


def test_a_killed_run_resumes_without_repeated_logs_or_leftovers(data: Path, run: Path) -> None:
    # As SIGKILL at step 4 leaves it: a step past the state at 2 logged, a half-written line,
    # and a temporary file of the state being saved.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    leftover = run / "state" / f".step_00000004.{dead}-0a1b2c3d.part.pt"
    leftover.touch()
    (run / "state" / "latest.json").write_text('{"latest": "step_000')  # cut short too
    with (run / "log.jsonl").open("a") as fh:
        fh.write('{"step": 3, "total": 1.0}\n{"step": 4, "tot')
    result = _train(data, run, "--steps", "3", "--resume")
    assert result.exit_code == 0, result.output
    assert _steps(run) == [1, 2, 3]
    assert not leftover.exists()


def test_resume_does_not_depend_on_the_working_directory(data: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copytree(data, first / "data")
    run = tmp_path / "run"
    cwd = Path.cwd()
    try:
        os.chdir(first)  # relative data paths, and the shipped config by its name
        result = invoke(
            "train",
            "tiny",
            "--day",
            "data/day",
            "--night",
            "data/night",
            "--out",
            run,
            "--steps",
            "1",
            "-q",
        )
        assert result.exit_code == 0, result.output
        os.chdir(second)
        again = invoke("train", TINY, "--out", run, "--steps", "2", "--resume", "-q")
    finally:
        os.chdir(cwd)
    assert again.exit_code == 0, again.output
    assert str(first / "data" / "day") in (run / "config.yaml").read_text()


# --- hostile pointers, damaged records, configs that pass the types and fail later ---------


def test_a_hostile_pointer_deletes_nothing_outside_the_state_folder(
    data: Path, run: Path, tmp_path: Path
) -> None:
    beside, far = run.parent / "victim.txt", tmp_path / "far" / "victim.txt"
    far.parent.mkdir()
    for victim in (beside, far):
        victim.write_text("the user's")
    pointer = run / "state" / "latest.json"
    names = ["../../victim.txt", "../victim.txt", str(far), "step_00000002.pt"]
    pointer.write_text(json.dumps({**json.loads(pointer.read_text()), "history": names}))
    result = _train(data, run, "--steps", "3", "--resume", "--set", "train.keep_checkpoints=1")
    assert result.exit_code == 0, result.output
    assert beside.read_text() == far.read_text() == "the user's"
    assert sorted(p.name for p in (run / "state").glob("*.pt")) == ["step_00000003.pt"]


def test_a_new_run_never_rewrites_its_own_config(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(TINY, out / "config.yaml")
    refused(
        tmp_path,
        2,
        "is the file this run would write",
        "train",
        out / "config.yaml",
        "--out",
        out,
        "--day",
        data / "day",
        "--night",
        data / "night",
        "--set",
        "optim.lr=0.5",
    )


@pytest.mark.parametrize("record", ["data.json", "init.json"])  # phases.json: unrecorded
@pytest.mark.parametrize("damage", [b"{cut", b"\xff\xfe", b"[1]"], ids=["cut", "bytes", "list"])
def test_a_damaged_record_is_one_line_for_export_and_resume(
    data: Path, run: Path, record: str, damage: bytes
) -> None:
    (run / record).write_bytes(damage)
    model = run.parent / "m.safetensors"
    refused(run.parent, 1, f"'{run / record}' is damaged", "export", run, "-o", model)
    before = snapshot(run)
    fails(_train(data, run, "--steps", "3", "--resume"), 1, f"'{run / record}' is damaged")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    "damage", ["no_trainer", "rng", "text"], ids=["no trainer", "rng zeros", "text entry"]
)
def test_a_state_with_foreign_contents_is_one_line_for_resume(
    data: Path, run: Path, damage: str
) -> None:
    # a file torch reads with weights_only that is not what train saved: tracebacks before
    import torch

    path = run / "state" / "step_00000002.pt"
    payload = torch.load(path, weights_only=True)
    if damage == "no_trainer":
        payload["trainer"] = {}
    elif damage == "rng":
        payload["rng"] = {"torch": torch.zeros(3)}
    else:
        payload["trainer"][next(iter(payload["trainer"]))] = "text"
    torch.save(payload, path)
    before = snapshot(run)
    fails(_train(data, run, "--steps", "3", "--resume"), 1, "cannot be resumed")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.seed=99999999999999999999999", "'train.seed' must be in [0, 4294967295]"),
        ("train.seed=-1", "'train.seed' must be in [0, 4294967295]"),
        ("data.crop=[33,35]", "'data.crop' must be multiples of 4"),
        ("data.crop=[32,1000000]", "of at most 16384 pixels"),
        ("data.resize=1000000", "'data.resize' must be at most 16384"),
        ("dis.n_layers=10", "must be at least 2**n_layers = 1024"),
        ("dis.num_scales=10", "smallest scale (1 px) must be at least 2**n_layers = 4"),
        ("model.out_kernel=31 data.crop=[16,16]", "'model.out_kernel' (31) must be at most 16"),
        ("model.up_kernel=19", "'model.up_kernel' (19) must be at most 16"),
        ("model.width=1000000000000", "4096"),  # the model's own check may speak first
        ("dis.width=1000000000000", "'dis.width' must be at most 4096"),
        ("model.width=2048", "makes 8192 channels"),
        ("model.n_downsample=1000000000", "n_downsample"),
        ("loss.shift=1 data.crop=[16,16]", "must be larger than 24"),
        # from a fuzzing helper: 1e30 workers forked until the machine stopped; a batch of 1e30
        # overflowed torch's sampler, one of 1e8 ran out of memory after 10 minutes
        ("data.workers=1000000000000000000000000000000", "'data.workers' must be from 0 to"),
        ("train.batch_size=100000000", "'train.batch_size' must be at most 4096"),
        ("train.steps=99999999999999999999999", "'train.steps' must be at most 2,147,483,647"),
        ("train.max_minutes=" + "9" * 400, "'train.max_minutes' is too large"),  # OverflowError
        ("train.steps=" + "9" * 5000, "'train.steps' holds a number too long to read"),
        ("train.steps=0x" + "f" * 5000, "must be at most 2,147,483,647, got an integer of 6,021"),
    ],
)
def test_values_that_would_fail_inside_torch_are_refused_first(
    override: str, message: str, data: Path, tmp_path: Path
) -> None:
    sets = [a for o in override.split() for a in ("--set", o)]
    refused(tmp_path, 2, message, "train", TINY, "--out", tmp_path / "r", *sets)


def test_a_run_saved_with_many_workers_loads_on_a_small_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The workers' bound was this machine's 4 a core: a run saved with 12 on a larger one
    could not be resumed or exported here (found by a review). The config takes up to 256;
    the loader uses at most 4 a core, and says so."""
    import os

    from d2nvideo.training.config import load_config
    from d2nvideo.training.data import workers_here

    config = tmp_path / "c.yaml"
    config.write_text("data:\n  workers: 12\n")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert load_config(config).data.workers == 12
    assert workers_here(12) == 8 and workers_here(3) == 3
    assert "data.workers is 12; this machine has 2 cores: using 8" in caplog.text


def test_the_discriminator_depth_check_is_the_networks_real_limit() -> None:
    import torch
    from d2nvideo.training.config import DataConfig, DisConfig, TrainConfig
    from d2nvideo.training.discriminators import MultiScaleDiscriminator

    from d2nvideo.errors import ConfigError

    crop = (32, 32)
    for layers, scales in [(2, 4), (3, 3), (4, 2), (5, 1), (3, 4), (5, 2), (6, 1)]:
        dis = DisConfig(width=1, n_layers=layers, num_scales=scales)
        try:
            TrainConfig(dis=dis, data=DataConfig(crop=crop))
        except ConfigError:
            refused_here = True
        else:
            refused_here = False
        try:
            MultiScaleDiscriminator(dis)(torch.zeros(1, 3, *crop))
        except RuntimeError:
            fails_there = True
        else:
            fails_there = False
        assert refused_here == fails_there, (layers, scales)


@pytest.mark.parametrize("where", ["file", "set"])
def test_deeply_nested_yaml_is_one_line(where: str, tmp_path: Path) -> None:
    deep = "[" * 50000 + "]" * 50000
    config = tmp_path / "deep.yaml"
    config.write_text(f"model: {deep}\n" if where == "file" else "{}\n")
    sets = ["--set", f"data.day={deep}"] if where == "set" else []
    refused(tmp_path, 2, "nests too deeply", "train", config, "--out", tmp_path / "r", *sets)


def test_a_missing_relabel_folder_is_named_missing(tmp_path: Path) -> None:
    # it said the folder "has no train_day.txt"
    refused(tmp_path, 2, f"relabel folder '{tmp_path / 'gone'}' does not exist", "train", TINY,
            "--relabeled", tmp_path / "gone", "--out", tmp_path / "r")  # fmt: skip


def test_the_loader_blames_only_what_the_file_causes(caplog: pytest.LogCaptureFixture) -> None:
    import torch
    from d2nvideo.training.data import first_readable

    from d2nvideo.errors import D2NError, InputError

    def load(i: int) -> torch.Tensor:
        if i == 0:
            raise InputError("'a.jpg' is not a readable image")
        return torch.zeros(1)

    names = [Path("a.jpg"), Path("b.jpg")]
    assert first_readable(2, 0, load, names.__getitem__, "training image").shape == (1,)
    assert "skipping unreadable training image a.jpg" in caplog.text

    def no_memory(i: int) -> torch.Tensor:
        raise MemoryError("OpenCV(4.9) error: Insufficient memory\nin function 'OutOfMemory'")

    with pytest.raises(D2NError) as caught:
        first_readable(2, 0, no_memory, names.__getitem__, "training image")
    assert not isinstance(caught.value, InputError)
    assert str(caught.value) == (
        "preparing training image 'a.jpg' failed, though it reads: "
        "OpenCV(4.9) error: Insufficient memory"
    )

    def unreadable(i: int) -> torch.Tensor:  # "no readable training image in this domain"
        raise InputError(f"'{names[i]}' is not a readable image")

    with pytest.raises(D2NError, match=r"no training image of the 2 in the data with 'b\.jpg'"):
        first_readable(2, 1, unreadable, names.__getitem__, "training image")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n not weights", "not a PyTorch file of tensors alone"),
        (None, "its weights do not fit VGG16"),
    ],
)
def test_vgg_weights_that_are_not_vgg16_are_one_short_line(
    content: bytes | None, message: str, data: Path, tmp_path: Path
) -> None:
    import torch

    pytest.importorskip("torchvision")  # an extra ('d2nvideo[vgg]'), not in CI's install
    weights = tmp_path / "vgg16.pth"
    if content is None:
        torch.save({"x": torch.zeros(2)}, weights)
    else:
        weights.write_bytes(content)
    result = _train(
        data, tmp_path / "r", "--set", "loss.vgg=1", "--set", f"loss.vgg_weights={weights}"
    )
    fails(result, 2, message)
    assert not (tmp_path / "r").exists()


def test_yaml_merge_keys_still_load(tmp_path: Path) -> None:
    from d2nvideo.training.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text("dis:\n  <<: {width: 4}\n  n_layers: 2\n")
    assert (load_config(config).dis.width, load_config(config).dis.n_layers) == (4, 2)
    config.write_text("dis:\n  <<: {width: 8, n_layers: 2}\n  width: 16\n")  # overridden
    assert (load_config(config).dis.width, load_config(config).dis.n_layers) == (16, 2)
