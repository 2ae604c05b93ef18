from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import frame_image, make_video
from helpers import read_video

from d2nvideo.cli import cli
from d2nvideo.images import read_image, write_image

COMMANDS = cli.list_commands(None)  # type: ignore[arg-type]
ROOT = Path(__file__).resolve().parents[1]


def run(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_command_lists_fit_80_columns_in_whole_phrases() -> None:
    # the top-level help cut each command's description mid-phrase ("(searched..."), and
    # `configs` printed 120-131-column lines cut at the end of a comment line
    runner = CliRunner(env={"COLUMNS": "80"})
    top = runner.invoke(cli, ["--help"]).output
    rows = [
        line for line in top.splitlines() if line.startswith("  ") and line.split()[0] in COMMANDS
    ]
    listed = runner.invoke(cli, ["configs"]).output
    assert len(rows) == len(COMMANDS)
    assert all(len(line) <= 80 for line in top.splitlines() + listed.splitlines())
    assert all(row.endswith(".") and not row.endswith("...") for row in rows), rows
    entries = re.split(r"\n(?=\S)", listed.strip())
    assert [e.split()[0] for e in entries] == sorted(
        p.stem for p in (ROOT / "configs").glob("*.yaml")
    )
    assert all(e.endswith(".") for e in entries), entries


def test_convert_video_default_output_and_summary(media: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "drive.mp4"
    src.write_bytes(media["audio"].read_bytes())
    result = run("convert", src, "--to", "night", "--model", media["model"], "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / "drive_night.mp4"
    assert out.is_file()
    assert "15 frames" in result.output and str(out) in result.output
    assert len(read_video(out).times) == 15


def test_convert_refuses_existing_output_then_overwrites(media: dict[str, Path], tmp_path: Path):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"keep me")
    args = ["convert", media["plain"], "--to", "day", "-o", out, "--model", media["model"], "-q"]
    result = run(*args)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert out.read_bytes() == b"keep me"
    assert run(*args, "--overwrite").exit_code == 0
    assert len(read_video(out).times) == 12


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
def test_a_warning_during_a_bar_gets_its_own_line(media, tmp_path: Path) -> None:
    # On a terminal the warning was written straight after the bar's text, on its line
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm"}
    for name in ("a.mp4", "b.mp4"):  # b's warning comes while the bar shows a's frames
        (tmp_path / name).write_bytes(media["plain"].read_bytes())
    args = ["a.mp4", "b.mp4", "--to", "day", "-o", "out", "--model", media["model"]]
    command = [sys.executable, "-m", "d2nvideo", "convert", *map(str, args)]
    proc = subprocess.Popen(command, stdout=slave, stderr=slave, env=env, cwd=tmp_path)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0
    text = out.decode(errors="replace")
    assert "24/24" in text  # a bar was drawn
    warned = [i for i in range(len(text)) if text.startswith("warning: 'b.mp4'", i)]
    assert len(warned) == 1
    assert text[: warned[0]].endswith("\r\x1b[2K")  # the bar's line cleared first


def test_info_json(media: dict[str, Path]) -> None:
    result = run("info", media["rotated"], "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["width"], data["height"], data["rotation"], data["frames"]) == (64, 48, 90, 6)
    assert data["looks_like"] in ("day", "night", "ambiguous")


def test_info_several_inputs_images_and_a_bad_one(media: dict[str, Path], tmp_path: Path):
    image = tmp_path / "still.png"
    write_image(image, frame_image(0, 40, 30))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    result = CliRunner().invoke(cli, ["info", str(media["audio"]), str(bad), str(image), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [d["kind"] for d in data] == ["video", "image"]
    assert (data[1]["width"], data[1]["height"]) == (40, 30)
    assert "broken.mp4" in result.stderr and "Traceback" not in result.output
    table = run("info", image)
    assert table.exit_code == 0 and "40x30" in table.output


def test_info_goes_on_past_an_os_error(tmp_path: Path) -> None:
    image = tmp_path / "still.png"
    write_image(image, frame_image(0, 40, 30))
    too_long = tmp_path / ("a" * 300 + ".mp4")  # stat() itself fails: ENAMETOOLONG
    result = CliRunner().invoke(cli, ["info", str(too_long), str(image), "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert [d["path"] for d in json.loads(result.stdout)] == [str(image)]
    assert result.stderr.startswith("error: File name too long: ")
    assert len(result.stderr.splitlines()) == 1


def test_info_table(media: dict[str, Path]) -> None:
    result = run("info", media["audio"])
    assert result.exit_code == 0 and "aac" in result.output and "t1" in result.output
    assert "clock starts" not in result.output


def test_info_shows_languages_and_brackets_as_they_are(tmp_path: Path) -> None:
    # the table was Rich markup: a track's '[eng]' vanished (taken for a style), and a title
    # holding '[/b]' was a MarkupError traceback; a file named 'trip[b].mkv' was 'trip.mkv'
    clip = make_video(tmp_path / "trip[b].mkv", frames=3, metadata={"title": "[/b] [day] drive"})
    result = run("info", clip)
    assert result.exit_code == 0, result.output
    assert "[/b] [day] drive" in result.output and "trip[b].mkv" in result.output
    assert "[und]" in run("info", make_video(tmp_path / "a.mp4", frames=3, audio=True)).output


def test_progress_shows_names_with_brackets_as_they_are(monkeypatch) -> None:
    # the bar's description and the lines above it were Rich markup: a file named
    # 'trip[b].mp4' showed as 'trip.mp4' in bold, and a line naming 'a[/b]/c.mp4' would
    # have been a MarkupError traceback
    import io

    from rich.console import Console

    from d2nvideo.cli import progress

    out = io.StringIO()
    monkeypatch.setattr(progress, "stderr_console", lambda: Console(file=out, width=80))
    with progress.progress_bar(3, "trip[b].mp4") as bar:
        bar.say("temporal stability: a[/b]/c.mp4 -> night")
        bar(3)
    assert "trip[b].mp4" in out.getvalue() and "a[/b]/c.mp4" in out.getvalue()


def test_info_says_where_a_late_clock_starts(tmp_path: Path) -> None:
    # --start and --at count from the first frame: a clip at 100 s on its own clock showed
    # only its length
    from fractions import Fraction

    clip = make_video(tmp_path / "late.ts", pts=list(range(2500, 2510)), time_base=Fraction(1, 25))
    result = run("info", clip)
    assert result.exit_code == 0 and "(its clock starts at 100.00 s)" in result.output


def test_convert_folder_mirrors_names_and_reports_bad_images(media, tmp_path: Path) -> None:
    src = tmp_path / "frames"
    (src / "a" / "b").mkdir(parents=True)
    write_image(src / "one.jpg", frame_image(0, 40, 30))
    write_image(src / "a" / "b" / "two.png", frame_image(1, 33, 21))
    (src / "a" / "broken.jpg").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored")
    dst = tmp_path / "frames_night"
    result = run("convert", src, "--to", "night", "-o", dst, "--model", media["model"], "-q")
    assert result.exit_code == 1
    assert "broken.jpg" in result.output
    assert read_image(dst / "one.jpg").shape == (30, 40, 3)
    assert read_image(dst / "a" / "b" / "two.png").shape == (21, 33, 3)
    assert not (dst / "notes.txt").exists()
    # A second run skips what is there, so an interrupted dataset conversion resumes.
    (src / "a" / "broken.jpg").unlink()
    again = run("convert", src, "--to", "night", "-o", dst, "--model", media["model"], "-q")
    assert again.exit_code == 0 and "all 2 outputs are already there" in again.output


def test_convert_single_image(media, tmp_path: Path) -> None:
    src = tmp_path / "x.png"
    write_image(src, frame_image(3, 50, 26))
    assert run("convert", src, "--to", "day", "--model", media["model"], "-q").exit_code == 0
    out = read_image(tmp_path / "x_day.png")
    assert out.shape == (26, 50, 3) and not np.array_equal(out, read_image(src))


# --- bad input: one line on stderr, the right exit code, nothing written -----------------


def _bad_inputs(tmp: Path, media: dict[str, Path]) -> dict[str, tuple[list[object], int, str]]:
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n")
    notes = tmp / "notes.txt"  # FFmpeg's ANSI-art reader made 31 frames of a longer one
    notes.write_text("hello world\n" * 300)
    half = tmp / "half.mp4"
    data = media["long"].read_bytes()
    half.write_bytes(data[: len(data) // 2])
    audio_only = tmp / "sound.m4a"
    _write_audio_only(audio_only)
    rnd = tmp / "random.safetensors"
    rnd.write_bytes(b"\x00" + np.random.default_rng(0).bytes(2047))  # not 0x80: a pickle
    evil = tmp / "gen_00001000.pt"
    evil.write_bytes(pickle.dumps({"a": _Evil(), "b": {}}))
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    model = media["model"]
    plain = media["plain"]
    taken = tmp / "taken.mp4"
    taken.write_bytes(b"already here")
    return {
        "missing": ([tmp / "nope.mp4", "--model", model], 2, "does not exist"),
        "text": ([text, "--model", model], 1, "not a readable video"),
        "long text": ([notes, "-o", tmp / "o.mp4", "--model", model], 1, "is text, not a video"),
        "truncated": ([half, "--model", model], 1, "truncated"),
        "audio only": ([audio_only, "--model", model], 1, "no video stream"),
        "dir as model": ([plain, "--model", tmp], 2, "is a directory"),
        "unwritable": ([plain, "-o", locked / "o.mp4", "--model", model], 1, "not writable"),
        "exists": ([plain, "-o", taken, "--model", model], 2, "exists"),
        "random model": ([plain, "--model", rnd], 1, "not a d2nvideo checkpoint"),
        "pickle model": ([plain, "--model", evil], 1, "could not be loaded safely"),
    }


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/d2nvideo-pwned",))


def _write_audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=22050)
        s.layout = "mono"
        for k in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            f.sample_rate, f.pts = 22050, k * 1024
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_unwritable_output_folder(media, tmp_path: Path) -> None:
    _check_bad(media, tmp_path, "unwritable")


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "text",
        "long text",
        "truncated",
        "audio only",
        "dir as model",
        "exists",
        "random model",
        "pickle model",
    ],
)
def test_bad_input_gives_one_line(case: str, media, tmp_path: Path) -> None:
    _check_bad(media, tmp_path, case)


def _check_bad(media, tmp_path: Path, case: str) -> None:
    cases = _bad_inputs(tmp_path, media)
    args, code, message = cases[case]
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    proc = subprocess.run(
        [sys.executable, "-m", "d2nvideo", "convert", *map(str, args), "--to", "night", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # inputs untouched, nothing new written
    assert not Path("/tmp/d2nvideo-pwned").exists()


def test_info_on_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_interrupt_leaves_nothing_at_the_output(sig: int, media, tmp_path: Path) -> None:
    # a hang-up (a closed terminal, a dropped ssh session) killed it and left its .part file
    src = make_video(tmp_path / "in.mp4", frames=400, size=(320, 240))
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "d2nvideo",
            "convert",
            str(src),
            "--to",
            "night",
            "-o",
            str(out),
            "--model",
            str(media["model"]),
            "-q",
            "--batch-size",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A job started in the background by a non-interactive shell (a CI script under
        # nohup ... &) inherits SIGINT ignored, and Python then keeps it ignored: the
        # conversion ran to the end and exited 0. Ctrl-C in a terminal finds the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.*")) and time.time() < deadline:
        time.sleep(0.01)
    # Hold it where it is and signal it there, mid-conversion however fast the machine
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None, "the clip was converted before the signal: make it longer"
    proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_sigterm_is_an_interrupt_in_every_command(media, tmp_path: Path) -> None:
    # evaluate (and train's and convert's set-up) ended silently on SIGTERM, killed by it
    for folder in ("day", "night"):
        write_image(tmp_path / folder / "a.png", frame_image(1, 64, 48))
    script = (
        "import os, runpy, signal, sys, time\n"
        "import d2nvideo.evaluation.evaluate as ev\n"
        "def load(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "ev.load_images = load\n"
        "sys.argv = ['d2nvideo', *sys.argv[1:]]\n"
        "runpy.run_module('d2nvideo', run_name='__main__')\n"
    )
    args = ["evaluate", "--day", tmp_path / "day", "--night", tmp_path / "night"]
    args += ["-o", tmp_path / "report", "--model", media["model"]]
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("interrupted")


def test_models_lists_given_files(media: dict[str, Path]) -> None:
    result = run("models", media["model"], "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    given = [r for r in rows if r["path"] == str(media["model"])]
    assert given and given[0]["arch"] == "unit" and given[0]["params"] > 0
    text = run("models", media["model"]).output.splitlines()
    assert str(media["model"]) in text  # whole on its line, never cut to a column's width
    assert sum(line.endswith(".safetensors (bundled)") for line in text) == 1


def test_models_reports_a_file_that_is_no_model_and_goes_on(
    media: dict[str, Path], tmp_path: Path
) -> None:
    # it stopped at the first unreadable file and listed none of the rest
    bad = tmp_path / "notes.safetensors"
    bad.write_text("not a model")
    result = run("models", bad, media["model"], "--json")
    assert result.exit_code == 1
    assert [r["path"] for r in json.loads(result.stdout)][-1] == str(media["model"])
    assert result.stderr.count("error: ") == 1 and "notes.safetensors" in result.stderr
    alone = run("models", bad)
    assert alone.exit_code == 1 and alone.stdout == ""


def test_convert_to_auto_goes_to_the_other_domain(media: dict[str, Path], tmp_path: Path) -> None:
    for name, value in (("bright", 190), ("dark", 12), ("dusk", 100)):
        write_image(tmp_path / f"{name}.png", np.full((60, 80, 3), value, np.uint8))
    for name, to in (("bright", "night"), ("dark", "day")):
        report = tmp_path / f"{name}.jsonl"
        args = ["--to", "auto", "--model", media["model"], "--report", report]
        result = run("convert", tmp_path / f"{name}.png", *args)
        assert result.exit_code == 0, result.output
        assert read_image(tmp_path / f"{name}_{to}.png").shape == (60, 80, 3)
        # the line and the report say which way it went (neither did)
        assert result.stdout.rstrip().endswith(f"_{to}.png ({to})"), result.stdout
        assert json.loads(report.read_text())["to"] == to
    result = CliRunner().invoke(
        cli, ["convert", str(tmp_path / "dusk.png"), "--to", "auto", "--model", str(media["model"])]
    )
    assert result.exit_code == 2 and "give --to night or --to day" in result.output


@pytest.mark.parametrize("how", ["file", "folder", "list"])
def test_already_the_target_warns_once_per_input(how, media, tmp_path, caplog) -> None:
    """A night input converted to night warns once, whether given alone, in a folder or
    among other inputs (a folder or a list never warned before)."""
    src = tmp_path / "in"
    src.mkdir()
    for name, value in (("bright", 190), ("dark", 12)):
        write_image(src / f"{name}.png", np.full((60, 80, 3), value, np.uint8))
    inputs = {"file": [src / "dark.png"], "folder": [src], "list": sorted(src.iterdir())}[how]
    out = ["-o", tmp_path / "out"] if how != "file" else []
    result = run("convert", *inputs, *out, "--to", "night", "--model", media["model"])
    assert result.exit_code == 0, result.output
    warned = [r.getMessage() for r in caplog.records if "already looks like" in r.getMessage()]
    assert len(warned) == 1 and "dark.png" in warned[0]


def _palette_png_with_trns(path: Path) -> None:
    """A 2x2 palette PNG whose first colour is transparent (colour type 3 and a tRNS chunk)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes([0, 1]) for _ in range(2))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", bytes([0, 0, 0, 200, 200, 200]))
        + chunk(b"tRNS", bytes([0]))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_an_alpha_or_16_bit_png_is_named_once(media, tmp_path, caplog, monkeypatch) -> None:
    # They were read as 8-bit RGB without a word: the output silently lost what they had.
    from d2nvideo import images

    monkeypatch.setattr(images, "_WARNED", set())
    src = tmp_path / "in"
    src.mkdir()
    rgb = np.full((30, 40, 3), 120, np.uint8)
    cv2.imwrite(str(src / "plain.png"), rgb)
    for i in range(2):
        cv2.imwrite(str(src / f"alpha{i}.png"), np.dstack([rgb, np.full((30, 40), 9, np.uint8)]))
        cv2.imwrite(str(src / f"deep{i}.png"), rgb.astype(np.uint16) * 257)
    _palette_png_with_trns(src / "palette.png")

    def warned() -> list[str]:
        return sorted(r.getMessage() for r in caplog.records if "not named" in r.getMessage())

    result = run("convert", src, "-o", tmp_path / "out", "--to", "night", "--model", media["model"])
    assert result.exit_code == 0, result.output
    assert len(warned()) == 2, warned()
    assert "alpha0.png' has transparency" in warned()[0]
    assert "deep0.png' has 16 bits a channel" in warned()[1]
    caplog.clear()
    monkeypatch.setattr(images, "_WARNED", set())
    assert run("info", src / "alpha1.png").exit_code == 0 and warned() == []  # nothing is made
    convert = ["convert", src / "palette.png", "-o", tmp_path / "p.png", "--to", "night"]
    assert run(*convert, "--model", media["model"]).exit_code == 0
    assert len(warned()) == 1 and "palette.png' has transparency" in warned()[0]
    assert read_image(tmp_path / "out" / "deep1.png").shape == (30, 40, 3)


@pytest.mark.parametrize(("code", "teardown"), [(130, False), (143, False), (2, True), (0, True)])
def test_the_program_leaves_an_interrupt_without_the_interpreters_teardown(
    code: int, teardown: bool
) -> None:
    script = (
        "import atexit, sys\n"
        "from d2nvideo.cli.shell import interrupts_leave_at_once\n"
        "atexit.register(lambda: print('teardown'))\n"
        "with interrupts_leave_at_once():\n"
        "    print('said', flush=False)\n"
        f"    sys.exit({code})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == code
    assert proc.stdout.split() == (["said", "teardown"] if teardown else ["said"])


def test_convert_to_av1_is_quiet_and_too_small_frames_give_one_line(
    media: dict[str, Path], tmp_path: Path
) -> None:
    # SVT-AV1 wrote a banner and warnings to stderr itself, --quiet or not
    from conftest import make_video

    env = {k: v for k, v in os.environ.items() if k != "SVT_LOG"}
    tiny = make_video(tmp_path / "tiny.mp4", frames=2, size=(16, 2))
    for src, code, extra in ((media["plain"], 0, []), (tiny, 1, []), (tiny, 2, ["--preset", "99"])):
        out = tmp_path / f"{src.stem}_{code}_av1.mp4"
        args = [src, "-o", out, "--to", "night", "--codec", "libsvtav1", "-q", *extra]
        args += ["--model", media["model"]]
        proc = subprocess.run(
            [sys.executable, "-m", "d2nvideo", "convert", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == code and "Svt[" not in proc.stderr, proc.stderr
        last = proc.stderr.strip().splitlines()[-1] if code else ""
        assert "Traceback" not in proc.stderr and (code == 0 or last.startswith("error: "))
        if code == 1:  # a warning about dark output may come first: one line of error
            assert "cannot encode 16x2 frames" in last and "SVT_LOG=2" in last
    assert "is not a libsvtav1 preset: 0 (slowest) to 13" in last and not out.exists()
    out = tmp_path / "named.mp4"  # an x264 name meant SVT's default, 8, without a word
    preset = ["--codec", "libsvtav1", "--preset", "veryslow", "--model", media["model"]]
    named = run("convert", media["plain"], "--to", "night", "-o", out, *preset)
    assert named.exit_code == 2 and "'veryslow' is not a libsvtav1 preset" in named.output


def test_video_options_on_images_are_named_as_ignored(media: dict[str, Path], tmp_path: Path):
    write_image(tmp_path / "a.png", np.full((24, 32, 3), 120, np.uint8))
    args = ["convert", tmp_path / "a.png", "--to", "night", "--model", media["model"], "-q"]
    result = run(*args, "-o", tmp_path / "b.png", "--start", "5", "--codec", "libx265")
    assert result.exit_code == 0
    assert "warning: --start, --codec apply to videos only: ignored" in result.stderr
    plain = run(*args, "-o", tmp_path / "c.png")
    assert plain.exit_code == 0 and "apply to videos only" not in plain.stderr


def test_day_is_with_a_d2nvideo_model_is_named_as_ignored(
    media: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_image(tmp_path / "a.png", np.full((24, 32, 3), 120, np.uint8))
    args = ["convert", tmp_path / "a.png", "--to", "night", "--model", media["model"], "-q"]
    assert run(*args, "-o", tmp_path / "b.png", "--day-is", "b").exit_code == 0
    assert "--day-is applies to official UNIT .pt files only" in caplog.text


def test_an_interrupt_as_a_single_convert_finishes_names_its_output(tmp_path: Path) -> None:
    # a signal just after the rename said "nothing was written under the output name" of a
    # complete file (interrupt hunt)
    from d2nvideo.cli.convert import _single_kept
    from d2nvideo.cli.shell import INTERRUPTED

    out = tmp_path / "o.mp4"
    out.write_bytes(b"an earlier output, replaced with --overwrite")
    os.utime(out, (1000, 1000))
    since = time.time()
    message = _single_kept(out, since)
    assert message() == INTERRUPTED  # the earlier file: not this run's
    out.unlink()
    assert message() == INTERRUPTED
    out.write_bytes(b"this run's")
    assert message() == f"interrupted as it finished: '{out}' was written whole"


def test_a_folder_run_into_an_unwritable_place_is_refused_first(media, tmp_path: Path, monkeypatch):
    # it loaded the model and failed each input in turn, "Read-only file system" each time
    # (interrupt hunt); os.access stands in for a read-only mount, which root cannot make here
    from faults import refused

    import d2nvideo.fileio as fileio

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (src / name).write_bytes(media["plain"].read_bytes())
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(
        fileio.os,
        "access",
        lambda p, m: real(p, m) and not (m & os.W_OK and locked in (Path(p), *Path(p).parents)),
    )
    args = ["convert", src, "--to", "night", "-o", locked / "out" / "deep", "--model"]
    refused(tmp_path, 1, f"output folder '{locked}' is not writable", *args, media["model"])
    done = locked / "done"  # every output there already (read-only storage): nothing to do
    done.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (done / name).write_bytes(b"converted before")
    result = run("convert", src, "--to", "night", "-o", done, "--model", media["model"], "-q")
    assert result.exit_code == 0 and "nothing to do" in result.output, result.output


@pytest.mark.skipif(sys.platform == "win32", reason="a pipe closed by its reader")
@pytest.mark.parametrize("args", [["configs"], ["models", "--json"]])
def test_a_reader_that_leaves_the_pipe_ends_it_quietly(args: list[str]) -> None:
    # `d2nvideo configs | head -c 5` said "error: Broken pipe"; `info | true` said nothing
    proc = subprocess.Popen(
        [sys.executable, "-m", "d2nvideo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before it writes: it starts slower than this
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err == "", err


def test_a_failed_single_input_is_one_line_with_its_bar_on(media, tmp_path: Path) -> None:
    # without --quiet the bar was left above the error: "half.mp4 1/1 ━━━ 1/1 eta 0:00"
    half = tmp_path / "half.mp4"
    data = media["long"].read_bytes()
    half.write_bytes(data[: len(data) // 2])
    args = ["convert", half, "--to", "night", "-o", tmp_path / "o.mp4", "--model", media["model"]]
    proc = subprocess.run(
        [sys.executable, "-m", "d2nvideo", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.rstrip("\n").split("\n") == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith("error: ") and "truncated" in proc.stderr
