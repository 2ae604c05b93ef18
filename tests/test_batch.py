"""Many inputs in one convert: folders, globs, stdin lists, reports, resume, --jobs, torchrun."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import frame_image, make_video
from helpers import read_video

from d2nvideo.batch.plan import expand, plan
from d2nvideo.cli import cli
from d2nvideo.errors import UsageError
from d2nvideo.images import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


def run(*args: object, stdin: str | None = None) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin, catch_exceptions=False)


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 inputs: 14 short clips and 5 images in nested folders, one corrupt clip, and an
    earlier output and a text file that are not inputs."""
    root = tmp_path_factory.mktemp("drive") / "drive"
    for sub in ("day0", "day1", "day2"):
        (root / sub).mkdir(parents=True)
    for i in range(14):
        make_video(root / f"day{i % 3}" / f"clip{i:02d}.mp4", frames=3 + i % 4, size=(48, 32))
    for i in range(5):
        write_image(root / "stills" / f"still{i}.jpg", frame_image(i, 40 + 2 * i, 30))
    (root / "day1" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(500))
    make_video(root / "day0" / "clip00_night.mp4", frames=2, size=(48, 32))
    (root / "notes.txt").write_text("not an input")
    return root


def test_a_folder_of_mixed_inputs_converts_in_one_command(drive, media, tmp_path: Path):
    out, report = tmp_path / "out", tmp_path / "run.jsonl"
    args = ["convert", drive, "--to", "night", "-o", out, "--model", media["model"], "-q"]
    t0 = time.perf_counter()
    result = run(*args, "--report", report, "--json")
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0]
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(rows) == 20
    # the run's time, not the sum of its inputs' (53 s for a 35-s run with --jobs 2)
    took = json.loads(result.output.strip().splitlines()[-1])["seconds"]
    assert sum(r["seconds"] for r in rows) < took <= elapsed
    assert sorted(r["status"] for r in rows).count("done") == 19
    assert {"status", "frames", "seconds", "fps", "output", "error"} <= set(rows[0])
    outputs = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(outputs) == 19 and Path("day1/clip01.mp4") in outputs
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # no temporary files left
    assert len(read_video(out / "day1" / "clip01.mp4").times) == 4
    assert read_image(out / "stills" / "still2.jpg").shape == (30, 44, 3)
    again = run(*args, "--json")
    assert again.exit_code == 1  # the broken clip still fails
    summary = json.loads(again.output.strip().splitlines()[-1])
    assert summary["converted"] == 0 and summary["skipped"] == 19 and summary["failed"] == 1


def test_the_report_never_replaces_a_file_of_the_run_nor_one_of_the_users(media, tmp_path):
    src, model = tmp_path / "in.mp4", tmp_path / "m.safetensors"
    make_video(src, frames=2, size=(32, 32))
    model.write_bytes(media["model"].read_bytes())
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    before = {p: p.read_bytes() for p in (src, model, notes)}
    base = ["convert", src, "--to", "night", "--model", model, "-q"]
    for report, out in [(src, "a.mp4"), (model, "b.mp4"), (tmp_path / "c.mp4", "c.mp4")]:
        result = run(*base, "-o", tmp_path / out, "--report", report)
        assert result.exit_code == 2 and "is one of this run's files" in result.output
    refused = run(*base, "-o", tmp_path / "d.mp4", "--report", notes)
    assert refused.exit_code == 2 and "is not a convert report" in refused.output
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "d.mp4").exists()
    report = tmp_path / "run.jsonl"
    assert run(*base, "-o", tmp_path / "e.mp4", "--report", report).exit_code == 0
    assert run(*base, "-o", tmp_path / "f.mp4", "--report", report).exit_code == 0
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [Path(r["output"]).name for r in rows] == ["e.mp4", "f.mp4"]  # a resumed run appends
    report.write_text(report.read_text().rstrip("\n"))  # an earlier report cut short
    (tmp_path / "logs").mkdir()
    link = tmp_path / "logs" / "link.jsonl"
    link.symlink_to(report)
    assert run(*base, "-o", tmp_path / "h.mp4", "--report", link).exit_code == 0
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [Path(r["output"]).name for r in rows] == ["e.mp4", "f.mp4", "h.mp4"]
    assert link.is_symlink()  # written through the link, as any log would be
    replaced = run(*base, "-o", tmp_path / "g.mp4", "--report", notes, "--overwrite")
    assert replaced.exit_code == 0 and json.loads(notes.read_text())["status"] == "done"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files


def test_a_second_run_converts_nothing_and_says_so(media, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        make_video(src / f"c{i}.mp4", frames=2, size=(32, 32))
    args = ["convert", src, "--to", "day", "-o", tmp_path / "o", "--model", media["model"], "-q"]
    assert run(*args).exit_code == 0
    again = run(*args[:-1])  # with its bar, which stood at "files 2/2 0/4 eta ?" above
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert again.stderr == "", again.stderr
    (tmp_path / "o" / "c1.mp4").unlink()  # as if the run had been killed on this file
    third = run(*args[:-1], "--json")
    assert json.loads(third.stdout)["converted"] == 1
    assert "2/2" in third.stderr and "0/2 " not in third.stderr  # c0's 2 frames off the total


def test_outputs_reached_through_a_link_and_folders_in_an_outputs_place(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a link inside the input folder to the output folder: each run converted the last one's
    # outputs again (out/outlink/outlink/a.mp4...); a folder where an output goes was "already
    # there", so its input was never converted and the run said nothing to do
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_video(src / "a.mp4", frames=2, size=(32, 32))
    (src / "outlink").symlink_to(out)
    args = ["convert", src, "--to", "day", "-o", out, "--model", media["model"], "-q"]
    for _ in range(2):
        assert run(*args, "--overwrite").exit_code == 0
    assert "outlink/a.mp4': a link leads there into the output folder" in caplog.text
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.mp4"]
    (out / "a.mp4").unlink()
    (out / "a.mp4").mkdir()
    taken = run(*args)
    assert taken.exit_code == 1 and "output '" in taken.output and "is a folder" in taken.output
    # an input folder kept inside the output folder is no link: it converts (a review)
    (out / "raw").mkdir()
    make_video(out / "raw" / "b.mp4", frames=2, size=(32, 32))
    kept = run("convert", out / "raw", "--to", "day", "-o", out, "--model", media["model"], "-q")
    assert kept.exit_code == 0 and (out / "b.mp4").is_file()
    # ... but not onto itself or another input: out/raw/raw/c.mp4 would replace out/raw/c.mp4
    (out / "raw" / "raw").mkdir()
    make_video(out / "raw" / "raw" / "c.mp4", frames=2, size=(32, 32))
    make_video(out / "raw" / "c.mp4", frames=2, size=(32, 32))
    onto = run("convert", out / "raw", "--to", "day", "-o", out, "--model", media["model"])
    assert onto.exit_code == 2 and "which is the input" in onto.output


def test_globs_stdin_and_several_inputs(drive: Path, tmp_path: Path) -> None:
    clips = expand([str(drive / "day0" / "clip0*.mp4")])
    assert clips == sorted(clips) and all(p.name.startswith("clip0") for p in clips)
    listed = expand(["-"], stdin=[f"{drive / 'stills' / 'still1.jpg'}\n", "\n"])
    assert listed == [drive / "stills" / "still1.jpg"]
    tasks = plan([drive / "stills", clips[0]], "night", tmp_path / "o")
    assert {t.dst.relative_to(tmp_path / "o").parts[0] for t in tasks} == {"stills", clips[0].name}
    with pytest.raises(UsageError, match="-o"):
        plan([clips[0], clips[1]], "night", None)
    with pytest.raises(UsageError, match="named like a file"):  # made a folder called f.mp4
        plan([drive], "night", tmp_path / "f.mp4")
    with pytest.raises(UsageError, match="named like a file"):
        plan([clips[0], clips[1]], "night", tmp_path / "g.jpg")
    with pytest.raises(UsageError, match="outside"):
        plan([drive], "night", drive / "converted")
    twin = tmp_path / "x" / "clip00.mp4"
    twin.parent.mkdir()
    twin.write_bytes((drive / "day0" / "clip00.mp4").read_bytes())
    with pytest.raises(UsageError, match="both"):
        plan([drive / "day0" / "clip00.mp4", twin], "night", tmp_path / "o2")
    names = {t.src.name for t in plan([drive], "night", tmp_path / "o3")}
    assert "clip00_night.mp4" not in names and "notes.txt" not in names


def test_a_folder_s_earlier_output_beside_it_is_not_converted_again(tmp_path: Path, caplog) -> None:
    # 'convert small/dusk' writes small/dusk_night/ with the files' own names: a run on
    # small/ then converted small/dusk_night/* again; a folder so named with no folder of
    # that name beside it is the user's, and converts
    from d2nvideo.images import write_image

    for folder in ("dusk", "dusk_night", "highway_day", "highway_day/deep_night"):
        (tmp_path / "small" / folder).mkdir(parents=True)
        write_image(tmp_path / "small" / folder / "a.png", np.zeros((8, 8, 3), np.uint8))
    with caplog.at_level("WARNING"):
        tasks = plan([tmp_path / "small"], "night", tmp_path / "o")
    taken = sorted(t.src.relative_to(tmp_path / "small").parent.as_posix() for t in tasks)
    assert taken == ["dusk", "highway_day", "highway_day/deep_night"]
    assert "skipped 1 file(s) such as" in caplog.text and "dusk_night" in caplog.text


def test_a_folder_named_like_an_output_of_other_files_is_converted(tmp_path: Path) -> None:
    # a folder of one's own named drive_day/ beside drive/ was skipped whole with a warning,
    # as an earlier output of drive/; an output keeps its input's names, and these are others
    from d2nvideo.images import write_image

    for name in ("drive/a.png", "drive_day/b.png", "drive_day/sub/a.png", "dusk/x/a.png"):
        (tmp_path / "top" / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / "top" / name, np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "top" / "dusk_night" / "x" / "a.png", np.zeros((8, 8, 3), np.uint8))
    tasks = plan([tmp_path / "top"], "night", tmp_path / "o")
    taken = sorted(t.src.relative_to(tmp_path / "top").as_posix() for t in tasks)
    assert taken == ["drive/a.png", "drive_day/b.png", "drive_day/sub/a.png", "dusk/x/a.png"]


def test_stdin_list_on_the_command_line(drive: Path, media, tmp_path: Path) -> None:
    paths = "\n".join(str(p) for p in sorted((drive / "stills").glob("*.jpg"))[:2])
    out = tmp_path / "o"
    result = run("convert", "-", "--to", "night", "-o", out, "--model", media["model"], stdin=paths)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["still0.jpg", "still1.jpg"]
    # a listed file that went away fails alone (it stopped the whole run before any work)
    paths += f"\n{tmp_path / 'gone.jpg'}\n" + str(drive / "stills" / "still2.jpg")
    result = run("convert", "-", "--to", "night", "-o", out, "--model", media["model"], stdin=paths)
    assert result.exit_code == 1 and "gone.jpg' does not exist" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["still0.jpg", "still1.jpg", "still2.jpg"]


def test_one_input_into_a_folder_named_with_a_slash(media, tmp_path: Path) -> None:
    # "-o out/" for one input said "output 'out' has no suffix" (pathlib drops the slash)
    out = tmp_path / "new" / "out"
    args = ["--to", "night", "--model", media["model"], "-q"]
    result = run("convert", media["plain"], "-o", f"{out}/", *args)
    assert result.exit_code == 0, result.output
    assert len(read_video(out / media["plain"].name).times) == 12
    assert run("convert", media["plain"], "-o", out, *args).exit_code == 2  # no slash: a file


def test_one_input_into_a_new_folder_makes_it_only_for_the_work(media, tmp_path: Path) -> None:
    # "-o new/" made the folder before any check: a refused run left it behind, empty
    out = tmp_path / "new"
    args = ["--to", "night", "--model", media["model"], "-q", "-o", f"{out}/"]
    assert run("convert", media["plain"], "--codec", "nonesuch", *args).exit_code == 2
    assert not out.exists()
    result = run("convert", "-", *args, stdin=f"{tmp_path / 'gone.mp4'}\n")  # went away
    assert result.exit_code == 1 and "gone.mp4' does not exist" in result.output
    assert not out.exists()
    (tmp_path / "file").touch()
    result = run("convert", media["plain"], *args[:-1], f"{tmp_path / 'file'}/")
    assert result.exit_code != 0 and "is not a folder" in result.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_ctrl_c_stops_every_jobs_worker_and_leaves_no_partial_file(
    sig: int, media, tmp_path: Path
) -> None:
    # A hang-up (a closed terminal) killed the parent and the resource tracker: the workers
    # printed "Signal 15 ignored due to race condition" and a new tracker a KeyError traceback
    # for each semaphore. Ctrl-C reaches the whole process group. The workers took it as a
    # task's error, went on to the next queued input and outlived the run, converting (a
    # finished output appeared after "interrupted"), and the parent waited 10 s for them.
    # (Whether it happened depended on which thread the kernel gave the signal to: the tests
    # above pin each cause down.)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        make_video(src / f"c{i}.mp4", frames=400, size=(320, 240))
    args = ["convert", src, "--to", "night", "-o", out, "--model", media["model"], "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "d2nvideo", *map(str, args), "--jobs", "2", "--batch-size", "1"],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # see test_cli
    )
    group = proc.pid
    try:
        deadline = time.time() + 120
        while len(list(out.glob(".*"))) < 2 and time.time() < deadline:
            time.sleep(0.01)
        os.killpg(group, signal.SIGSTOP)  # both workers mid-clip, however fast the machine
        assert proc.poll() is None, "the clips were converted before the signal"
        os.killpg(group, sig)
        os.killpg(group, signal.SIGCONT)
        _, err = proc.communicate(timeout=60)  # the pipe closes when its last holder ends
        assert proc.returncode == (130 if sig == signal.SIGINT else 129), err
        assert "interrupted" in err and "Traceback" not in err and "leaked" not in err, err
        assert "Signal" not in err, err
        assert not _group_alive(group, seconds=10), "a worker outlived the run"
        assert list(out.iterdir()) == []  # no partial file, and nothing finished after
    finally:
        if _group_alive(group, seconds=0):
            os.killpg(group, signal.SIGKILL)


_WORKER_SCRIPT = """
import signal, sys, time
from d2nvideo.batch import run

class Slow:
    def __call__(self, task, on_frames):
        try:
            print("converting", flush=True)
            time.sleep(60)
        finally:
            print("cleaning", flush=True)
            time.sleep(0.5)
            print("temporary file removed", flush=True)
            if sys.argv[1] == "failing":
                raise BrokenPipeError("the encoder's pipe, closing")

signal.signal(signal.SIGTERM, run._on_terminate)
run._WORKER["converter"] = Slow()
run._WORKER["shared"] = run._Shared([0], [0])
if sys.argv[1] == "idle":
    print("idle", flush=True)
    time.sleep(60)
try:
    run._work(None, 0)
finally:
    print("back in the pool's loop", flush=True)
"""


@pytest.mark.parametrize("state", ["busy", "twice", "failing", "idle"])
def test_a_stopped_jobs_worker_cleans_up_and_ends(state: str) -> None:
    # The pool's worker loop catches every exception a task raises and takes the next task:
    # a worker told to stop must end itself, after its task's cleanup, which a second SIGTERM
    # (the group's, then the parent's own) must not cut short, and an error of the cleanup
    # itself, which replaces the interrupt, must not send back to the pool's loop.
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER_SCRIPT, state], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() in ("converting", "idle")
    proc.send_signal(signal.SIGTERM)
    if state == "twice":
        assert proc.stdout.readline().strip() == "cleaning"
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143
    removed = ["temporary file removed"] if state != "idle" else []
    assert [line for line in out.splitlines() if line != "cleaning"] == removed


def test_the_jobs_wait_hears_ctrl_c_that_another_thread_received() -> None:
    # An untimed wait in the main thread never saw a SIGINT that the kernel gave to another of
    # the process's threads: the run went on until a worker finished a whole input.
    script = (
        "import signal, threading, time\n"
        "from concurrent.futures import Future\n"
        "from d2nvideo.batch import run\n"
        "threading.Thread(target=time.sleep, args=(120,), daemon=True).start()\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # not the main thread\n"
        "try:\n"
        "    print('waiting', flush=True)\n"
        "    list(run._as_completed([Future()], lambda: None))\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
        time.sleep(1)  # into the wait (sooner, the signal is seen on the way to it: no test)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert out.strip() == "interrupted"
    finally:
        proc.kill()


def test_a_jobs_worker_that_dies_is_one_line(media, tmp_path: Path) -> None:
    # the OOM killer, or a user's kill of one worker: BrokenProcessPool's traceback before
    import functools

    from d2nvideo.batch.run import run_pool
    from d2nvideo.errors import D2NError

    task = plan([media["plain"]], "night", tmp_path / "out.mp4")[0]
    dies = functools.partial(os._exit, 9)
    with pytest.raises(D2NError, match="a worker process ended unexpectedly"):
        run_pool([task], dies, 1, [1], lambda n: None, lambda o: None)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("names", [["a", "crash", "c", "d"], ["crash", "a", "b", "crash2"]])
def test_a_jobs_worker_that_dies_fails_only_its_input(tmp_path: Path, caplog, names) -> None:
    # A decoder's crash on one damaged file broke the pool: the whole batch stopped, and a
    # rerun stopped at the same file again. Its input fails; the others are converted.
    from helpers import CrashingConverter

    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import CRASHED, run_pool

    tasks = [Task(tmp_path / f"{n}.mp4", tmp_path / f"{n}_night.mp4", "video") for n in names]
    seen: list[str] = []
    factory = CrashingConverter(tmp_path / "marker")
    outcomes = run_pool(tasks, factory, 2, [1] * 4, lambda n: None, lambda o: seen.append(o.input))
    assert [Path(o.input).stem for o in outcomes] == names  # task order, each once
    assert sorted(seen) == sorted(o.input for o in outcomes)
    for o in outcomes:
        crashed = Path(o.input).stem.startswith("crash")
        assert (o.status, o.error) == (("failed", CRASHED) if crashed else ("done", ""))
    assert "ended unexpectedly while converting" in caplog.text
    assert f"'{tmp_path / 'crash.mp4'}'" in caplog.text
    assert not list(tmp_path.glob(".*part*")), list(tmp_path.iterdir())  # its partial output


def test_jobs_workers_warnings_are_logged_in_the_parent(tmp_path: Path, caplog) -> None:
    # each worker wrote its warnings to the terminal itself, onto the progress bar's line;
    # a caller of the library never saw them in its logging
    from helpers import CrashingConverter

    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import run_pool

    names = ["warn1", "a", "warn2", "crash"]
    tasks = [Task(tmp_path / f"{n}.mp4", tmp_path / f"{n}_n.mp4", "video") for n in names]
    factory = CrashingConverter(tmp_path / "marker")
    with caplog.at_level(logging.WARNING):
        outcomes = run_pool(tasks, factory, 2, [1] * 4, lambda k: None, lambda o: None)
    assert [o.status for o in outcomes] == ["done", "done", "done", "failed"]
    said = [(r.name, r.getMessage()) for r in caplog.records if "looks odd" in r.getMessage()]
    assert sorted(said) == [
        ("d2nvideo.pipeline", f"'{n}.mp4' looks odd") for n in ("warn1", "warn2")
    ]


def test_jobs_progress_counts_frames_as_the_workers_write_them(tmp_path: Path) -> None:
    # the bar moved only as a file ended: '0/240, 0:00' for a whole run of two files, then
    # a jump and a rate of 115 fps for 7
    from helpers import CrashingConverter

    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import run_pool

    task = Task(tmp_path / "slow.mp4", tmp_path / "slow_n.mp4", "video")
    seen: list[object] = []
    factory = CrashingConverter(tmp_path / "marker")
    run_pool([task], factory, 1, [3], seen.append, lambda o: seen.append(o.status))
    assert seen == [2, 1, "done"]  # 2 while it worked, the 1 left as it ended


def test_a_relayed_warning_keeps_its_traceback(caplog) -> None:
    # "Exception in initializer:" came without the exception that said why the worker failed
    import multiprocessing as mp

    from d2nvideo.batch.relay import Relay, ToParent

    relay = Relay(mp.get_context("spawn"))
    handler, name = ToParent(relay.writer), "concurrent.futures.test"  # as in a worker
    try:
        raise RuntimeError("CUDA out of memory while loading the model")
    except RuntimeError:
        failed = sys.exc_info()
    with caplog.at_level(logging.WARNING):
        handler.handle(logging.makeLogRecord(
            {"name": name, "levelno": logging.ERROR, "msg": "Exception in initializer:",
             "exc_info": failed}
        ))  # fmt: skip
        bad = {"name": name, "levelno": logging.WARNING, "msg": "%d frames", "args": ("x",)}
        handler.handle(logging.makeLogRecord(bad))  # logging's own report, not a raise
        relay.close()
    (record,) = [r for r in caplog.records if r.name == "concurrent.futures.test"]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("Exception in initializer:\nTraceback")
    assert record.getMessage().endswith("RuntimeError: CUDA out of memory while loading the model")


@pytest.mark.slow
def test_a_long_jobs_batch_does_not_hang(tmp_path: Path) -> None:
    # the workers told the parent each task they started through a queue it read only after
    # a crash: after ~3,500 inputs (a resumed folder run skips them fast) its pipe was full and
    # every worker blocked writing to it, for good
    from helpers import CrashingConverter

    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import run_pool

    n = 4000
    tasks = [Task(tmp_path / f"{i}.mp4", tmp_path / f"{i}_n.mp4", "video") for i in range(n)]
    factory = CrashingConverter(tmp_path / "marker")
    outcomes = run_pool(tasks, factory, 2, [1] * n, lambda k: None, lambda o: None)
    assert len(outcomes) == n and {o.status for o in outcomes} == {"done"}


@pytest.mark.slow
def test_a_jobs_input_whose_worker_died_once_is_converted_alone(tmp_path: Path) -> None:
    # the OOM killer took a worker beside another: alone, the input converts
    from helpers import CrashingConverter

    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import run_pool

    tasks = [Task(tmp_path / f"{n}.mp4", tmp_path / f"{n}_n.mp4", "video") for n in "abc"]
    tasks.insert(1, Task(tmp_path / "once.mp4", tmp_path / "once_n.mp4", "video"))
    factory = CrashingConverter(tmp_path / "marker")
    outcomes = run_pool(tasks, factory, 2, [1] * 4, lambda n: None, lambda o: None)
    assert [o.status for o in outcomes] == ["done"] * 4
    assert (tmp_path / "marker").exists()  # it did die once


def _group_alive(group: int, seconds: float) -> bool:
    """Whether a process of ``group`` runs (zombies, which a container's PID 1 may never reap,
    are not running) within ``seconds``."""
    deadline = time.time() + seconds
    while True:
        if not _running_in(group):
            return False
        if time.time() >= deadline:
            return True
        time.sleep(0.1)


def _running_in(group: int) -> bool:
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def test_jobs_give_the_same_outputs(media, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):  # each its own length: a mixed-up output shows
        make_video(src / f"c{i}.mp4", frames=3 + i, size=(32, 32))
    # Both runs with the workers' thread count: a convolution's float sums may depend on it,
    # and this test is about the work split, not about threads.
    from d2nvideo.batch.run import worker_threads

    threads = torch.get_num_threads()
    torch.set_num_threads(worker_threads(2))
    try:
        for jobs in (1, 2):
            out = tmp_path / f"j{jobs}"
            args = ["convert", src, "--to", "night", "-o", out, "--model", media["model"], "-q"]
            assert run(*args, "--jobs", jobs, "--backend", "torch").exit_code == 0
    finally:
        torch.set_num_threads(threads)
    # Near-identical, not bit-identical: in full runs of the suite (never alone) one run's
    # frames have differed from the other's, though threads, model and flags are the same;
    # float noise that a rounding to uint8 and x264's decisions can turn into small differences
    # (once 36.5 dB on a 32x32 frame, 2026-11-29). A mixed-up output is far below 30: a plain
    # inversion of a frame scores 5 dB.
    for i in range(3):
        a, b = read_video(tmp_path / "j1" / f"c{i}.mp4"), read_video(tmp_path / "j2" / f"c{i}.mp4")
        assert len(a.images) == len(b.images) == 3 + i
        for x, y in zip(a.images, b.images, strict=True):
            mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
            assert mse == 0 or 10 * np.log10(255**2 / mse) >= 30, f"c{i}: {mse}"


def test_torchrun_two_processes_convert_each_file_once(media, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        make_video(src / f"c{i}.mp4", frames=2 + i, size=(32, 32))
    base = ["convert", str(src), "--to", "night", "--model", str(media["model"]), "-q"]
    base += ["--backend", "torch"]  # auto may pick another runtime per thread count
    # The one-process reference runs with the ranks' thread count: a convolution's float
    # sums depend on it, and this test is about the work split, not about threads.
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = [sys.executable, "-m", "d2nvideo", *base, "-o", str(tmp_path / "one")]
    assert subprocess.run(single, capture_output=True, timeout=240, env=one_thread).returncode == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    report = tmp_path / "run.jsonl"  # an earlier run's report, which this run adds to
    report.write_text(json.dumps({"input": "old.mp4", "output": "o", "status": "done"}) + "\n")
    proc = subprocess.run(
        [*torchrun, "-m", "d2nvideo", *base, "-o", str(tmp_path / "two"), "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=240,
        env=one_thread,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    old, *rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert old["input"] == "old.mp4"
    assert sorted(Path(r["input"]).name for r in rows) == [f"c{i}.mp4" for i in range(5)]
    assert all(r["status"] == "done" for r in rows)
    for i in range(5):
        a = read_video(tmp_path / "one" / f"c{i}.mp4")
        b = read_video(tmp_path / "two" / f"c{i}.mp4")
        assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images, strict=True))


def test_progress_totals_count_only_the_segment_converted(tmp_path: Path) -> None:
    from d2nvideo.batch.plan import plan
    from d2nvideo.batch.run import frame_counts

    clip = make_video(tmp_path / "c.mp4", frames=50, fps=25)  # 2 s
    tasks = plan([clip], "night", None)
    assert frame_counts(tasks) == [50]
    assert frame_counts(tasks, 0.0, 1.0) == [25]
    assert frame_counts(tasks, 1.6, None) == [10]
    assert frame_counts(tasks, 1.6, 5.0) == [10]  # the clip ends first


def test_a_folder_of_one_file_in_a_subfolder_is_converted_as_a_tree(media, tmp_path: Path) -> None:
    (tmp_path / "in" / "monday").mkdir(parents=True)
    make_video(tmp_path / "in" / "monday" / "c.mp4", frames=3, size=(32, 32))
    out = tmp_path / "out"  # neither it nor out/monday exists yet
    args = ["convert", tmp_path / "in", "--to", "night", "-o", out, "--model", media["model"], "-q"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert len(read_video(out / "monday" / "c.mp4").images) == 3
    again = run(*args)  # a tree run skips what is there, where one file would be refused
    assert again.exit_code == 0 and "already there" in again.output


def test_nothing_to_convert_and_outputs_that_are_inputs_are_refused(media, tmp_path: Path):
    from faults import refused

    (tmp_path / "empty").mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_video(tmp_path / name, frames=2, size=(32, 32))
    base = ["--to", "night", "--model", media["model"], "-q"]
    refused(tmp_path, 1, "no video or image files to convert", "convert", tmp_path / "empty", *base)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    refused(tmp_path, 2, "which is the input", "convert", a, b, "-o", tmp_path, *base)


def test_a_jobs_worker_gives_its_codecs_its_share_of_the_cores(monkeypatch) -> None:
    # Each worker's torch took its share; its encoders and decoders took every core
    import importlib
    import signal

    import av

    from d2nvideo.batch import relay
    from d2nvideo.batch import run as batch_run

    probe = importlib.import_module("d2nvideo.video.probe")  # the package's `probe` is a function

    monkeypatch.setattr(probe, "_codec_threads", [0])
    monkeypatch.setattr(batch_run, "_die_with_parent", lambda sig, parent: None)
    monkeypatch.setattr(relay, "install", lambda conn: None)  # this process's logging stays
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    threads, handlers = torch.get_num_threads(), [signal.getsignal(s) for s in signals]
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # under nohup: a hang-up ended the workers
        batch_run._start_worker(lambda: None, 1, os.getppid(), None, None)  # type: ignore[arg-type, return-value]
        assert torch.get_num_threads() == 1
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is batch_run._on_terminate
    finally:
        torch.set_num_threads(threads)
        for sig, handler in zip(signals, handlers, strict=True):
            signal.signal(sig, handler)
    with av.open(os.devnull, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        probe.use_threads(stream.codec_context)
        assert stream.codec_context.thread_count == 1
        assert stream.codec_context.thread_type.name == "AUTO"
    from d2nvideo.video.codecs import EncodeSettings, codec_options

    assert "pools=1" in codec_options("libx265", EncodeSettings())["x265-params"]  # its pool


def test_the_jobs_wait_does_not_poll_every_pending_input(monkeypatch) -> None:
    # waking twice a second, it called wait() on every pending future: quadratic in inputs
    # (22 s of the parent's CPU for 20,000)
    import concurrent.futures
    from concurrent.futures import Future

    from d2nvideo.batch import run as batch_run

    def polled(*args: object, **kwargs: object) -> None:
        raise AssertionError("wait() over the pending futures")

    monkeypatch.setattr(concurrent.futures, "wait", polled)
    futures: list[Future[int]] = [Future() for _ in range(3)]
    for i, future in enumerate(futures):
        future.set_result(i)
    assert sorted(f.result() for f in batch_run._as_completed(futures, lambda: None)) == [0, 1, 2]


def test_a_rank_joins_its_group_with_sigterms_default_action(monkeypatch) -> None:
    # with SIGTERM caught, a rank stuck in the rendezvous (never back in Python) outlived
    # torchrun's stop until its SIGKILL, 30 s later
    import signal

    import torch.distributed

    from d2nvideo.batch import dist

    seen = []
    monkeypatch.setattr(
        torch.distributed,
        "init_process_group",
        lambda backend: seen.append(signal.getsignal(signal.SIGTERM)),
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        dist.join(dist.World(0, 2, 0))
        assert seen == [signal.SIG_DFL]
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # given back
    finally:
        signal.signal(signal.SIGTERM, before)


def test_outcomes_that_come_in_as_a_pool_stops_are_reported() -> None:
    # a worker that finished its input as Ctrl-C came had written its output, and the report
    # had no line for it (a resumed run then skipped the file)
    from concurrent.futures import Future

    from d2nvideo.batch.run import Outcome, late_outcomes

    done, failed, cancelled, running, recorded = (Future() for _ in range(5))
    done.set_result(Outcome("b.mp4", "b_night.mp4", "done", 10, 1.0))
    failed.set_exception(RuntimeError("a worker died"))
    cancelled.cancel()
    recorded.set_result(Outcome("a.mp4", "a_night.mp4", "done", 10, 1.0))
    futures = {recorded: 0, done: 1, failed: 2, cancelled: 3, running: 4}
    reported: list[tuple[int, Outcome]] = []
    late_outcomes(futures, {0}, lambda i, o: reported.append((i, o)))
    assert reported == [(1, done.result())]


def test_an_os_error_without_a_file_is_not_blamed_on_the_input(monkeypatch, tmp_path) -> None:
    # swscale's EAGAIN under a memory limit read "Resource temporarily unavailable: clip.mp4"
    import errno

    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import Converter

    def fails(self: object, task: Task, on_frames: object) -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(Converter, "_convert", fails)
    task = Task(tmp_path / "clip.mp4", tmp_path / "o.mp4", "video")
    outcome = Converter(None, None, "night", False)(task, lambda n: None)  # type: ignore[arg-type]
    assert outcome.error == f"Resource temporarily unavailable (converting '{task.src}')"
