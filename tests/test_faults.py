"""Fault injection (issue 14): every bad input and every fault gives one clear line and the
right exit code, loses nothing, leaves nothing under the output name and hangs nothing. Each
test builds its own bad input. Training's faults are in test_faults_training.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_UNIT, frame_image, make_video
from faults import fails, invoke, one_error, refused, run_cli, snapshot
from helpers import read_video

from d2nvideo.errors import CheckpointError, InputError, OutputError, UsageError
from d2nvideo.images import write_image
from d2nvideo.model import build_generator

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def image(tmp_path: Path) -> Path:
    return _png(tmp_path / "in.png")


def _png(path: Path) -> Path:
    write_image(path, frame_image(0, 40, 24))
    return path


def _add_picture(out, codec: str = "libx264", rate=25, pix_fmt: str = "yuv420p", **options: str):
    """A 64x48 video stream of ``out`` (add any other stream before muxing, as FFmpeg asks)."""
    vs = out.add_stream(codec, rate=rate, options=options)
    vs.width, vs.height, vs.pix_fmt = 64, 48, pix_fmt
    return vs


def _mux_pictures(out, vs, count: int, pts=lambda i: i, image=None, time_base=None) -> None:
    """``count`` frames (``frame_image`` by default) at ``pts(i)``, then the encoder's rest."""
    import av

    for i in range(count):
        picture = frame_image(i, 64, 48) if image is None else image(i)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = pts(i)
        if time_base is not None:
            frame.time_base = time_base
        out.mux(vs.encode(frame))
    out.mux(vs.encode())


def _mux_silence(out, sound, blocks, samples: int = 1024, fmt: str = "fltp") -> None:
    """Silent mono blocks of ``samples`` at each index of ``blocks`` (the encoder's rate)."""
    import av

    dtype = np.int16 if fmt.startswith("s16") else np.float32
    for k in blocks:
        tone = av.AudioFrame.from_ndarray(np.zeros((1, samples), dtype), fmt, "mono")
        tone.sample_rate, tone.pts = sound.codec_context.sample_rate, k * samples
        out.mux(sound.encode(tone))


# --- the shell: usage errors, devices, numbers --------------------------------------------


def test_no_command_prints_help() -> None:
    result = invoke()
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "x.mp4", "--to", "dusk"], "--help"),
        (["convert", "x.mp4", "--to", "night", "--start", "inf"], "not a finite number"),
        (["convert", "x.mp4", "--to", "night", "--start", "nan"], "not a finite number"),
        (["preview", "x.mp4", "--to", "night", "-o", "p.png", "--at", "inf"], "finite"),
        (["extract", "x.mp4", "-o", "f", "--size", "100000x100000"], "--size takes"),
        (["configs", "--dump", "nope"], "no shipped config 'nope'"),
        (["preview", "x.mp4", "-o", "p.png"], "Missing option '--to'. Choose from: night, day"),
        (["convert", "x.mp4", "--to", "night", "--smooth-strength", "0.3"], "needs --smooth"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    refused(tmp_path, 2, message, *args)


@pytest.mark.parametrize("device", ["mps", "meta", "cpu:1"])
def test_unsupported_devices(device: str, media, image: Path) -> None:
    refused(image.parent, 2, device, "convert", image, "--to", "night", "--device", device, "-q")


# --- non-seekable inputs: refused at once, never waited on ---------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["convert", "FIFO", "--to", "night", "-q"],
        ["preview", "FIFO", "--to", "night", "-o", "p.mp4", "-q"],
        ["info", "FIFO"],
        ["extract", "FIFO", "-o", "frames", "-q"],
    ],
)
def test_a_named_pipe_is_refused_without_blocking(command: list[str], tmp_path: Path) -> None:
    fifo = tmp_path / "f.mp4"
    os.mkfifo(fifo)  # nobody writes: opening it for reading would wait forever
    before = snapshot(tmp_path)
    args = [str(fifo) if a == "FIFO" else a for a in command]
    proc = run_cli(*args, cwd=tmp_path, timeout=60)
    assert proc.returncode in (1, 2), proc.stderr
    one_error(proc.stderr, "not a regular file")
    assert snapshot(tmp_path) == before


# --- outputs: format, encoder, atomic and no-clobber ---------------------------------------


@pytest.mark.parametrize(
    "name, settings, message",
    [
        ("x.xyz", {}, "not a video format"),
        ("noext", {}, "has no suffix"),
        ("x.gif", {}, "preview"),
        ("x.png", {}, "preview --at"),
        ("x.mp4", {"codec": "aac"}, "audio encoder"),
        ("x.webm", {"codec": "libx264"}, "cannot go into"),
        ("x.ogg", {}, r"cannot take libx264, the codec written by default: choose another"),
        ("x.flac", {}, r"cannot take libx264"),  # its own codec wrote no video (a review)
        ("x.mpg", {"codec": "mpeg2video"}, r"a \.mpg file; for \.mpg leave --codec out"),
        ("x.mov", {"codec": "libvpx-vp9"}, r"a \.mov file; for \.mov leave --codec out"),
        ("x.mp4", {"codec": "libvpx"}, r"a \.mp4 file; for \.mp4 leave --codec out"),
        ("x.mp4", {"preset": "bogus"}, "preset 'bogus'"),
        ("x.mp4", {"pix_fmt": "bogus"}, "does not exist"),
        ("x.mp4", {"pix_fmt": "rgb24"}, "cannot encode pixel format 'rgb24'"),
    ],
)
def test_output_and_encoder_checks(name: str, settings: dict, message: str, tmp_path: Path):
    from d2nvideo.video.codecs import EncodeSettings, check_encode

    with pytest.raises(UsageError, match=message):
        check_encode(tmp_path / name, EncodeSettings(**settings))


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("out.xyz", [], "not a video format"),
        ("noext", [], "noext' has no suffix"),
        ("out.png", [], "preview --at"),
        ("out.mp4", ["--preset", "bogus"], "preset 'bogus'"),
        ("out.mp4", ["--pix-fmt", "rgb24"], "rgb24"),
        ("out.mp4", ["--codec", "aac"], "audio encoder"),
    ],
)
def test_convert_refuses_what_cannot_be_encoded(name, args, message, media, tmp_path: Path):
    src = tmp_path / "in.mp4"
    src.write_bytes(media["plain"].read_bytes())
    before = snapshot(tmp_path)
    result = invoke(
        "convert",
        src,
        "--to",
        "night",
        "-o",
        tmp_path / name,
        "--model",
        media["model"],
        "-q",
        *args,
    )
    # 2 where convert checks the output before any work (check_encode), else 1 from the encoder
    assert result.exit_code in (1, 2), result.output
    one_error(result.stderr, message)
    assert snapshot(tmp_path) == before


def test_an_input_without_a_suffix_and_the_default_output(media, tmp_path: Path) -> None:
    src = tmp_path / "clip"
    src.write_bytes(media["plain"].read_bytes())
    before = snapshot(tmp_path)
    result = invoke("convert", src, "--to", "night", "--model", media["model"], "-q")
    assert result.exit_code in (1, 2), result.output
    one_error(result.stderr, "'" + str(tmp_path / "clip_night") + "' has no suffix")
    assert snapshot(tmp_path) == before


def test_encoder_refuses_a_bad_preset_before_writing(media, tmp_path: Path) -> None:
    from d2nvideo.video.codecs import EncodeSettings
    from d2nvideo.video.encode import encode_frames
    from d2nvideo.video.probe import probe

    with pytest.raises(UsageError, match="preset"):
        encode_frames(
            iter([]), tmp_path / "o.mp4", probe(media["plain"]), EncodeSettings(preset="x")
        )
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_removed_while_written_is_named(tmp_path: Path) -> None:
    # the error named the hidden temporary file ('.x.665-b787338c.part.mp4')
    import shutil

    from d2nvideo.fileio import atomic_output

    folder = tmp_path / "out" / "sub"
    folder.mkdir(parents=True)
    with pytest.raises(OutputError) as caught, atomic_output(folder / "x.mp4") as tmp:
        tmp.write_bytes(b"frames")
        shutil.rmtree(tmp_path / "out")
    assert (
        str(caught.value)
        == f"the folder of output '{folder / 'x.mp4'}' went away while it was written"
    )


def test_atomic_output_keeps_the_umask_and_never_clobbers(tmp_path: Path) -> None:
    from d2nvideo.fileio import atomic_output

    old = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "a.txt") as tmp:
            tmp.write_text("mine")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    old = os.umask(0o002)
    try:  # a writer that replaces the temporary file with its own (safetensors: 0600)
        with atomic_output(tmp_path / "c.bin") as tmp:
            tmp.unlink()
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    finally:
        os.umask(old)
    assert (tmp_path / "c.bin").stat().st_mode & 0o777 == 0o664
    (tmp_path / "c.bin").unlink()
    # Another writer of the same name finishes first: its output stays, ours is refused.
    with pytest.raises(OutputError, match="appeared while"), atomic_output(tmp_path / "b.txt") as t:
        t.write_text("late")
        (tmp_path / "b.txt").write_text("first")
    assert (tmp_path / "b.txt").read_text() == "first"
    with atomic_output(tmp_path / "b.txt") as tmp:  # there before: the caller chose to replace
        tmp.write_text("replaced")
    with pytest.raises(OutputError), atomic_output(tmp_path / "b.txt", overwrite=False) as tmp:
        tmp.write_text("refused")
    assert (tmp_path / "b.txt").read_text() == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_atomic_output_keeps_the_output_where_chmod_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from d2nvideo.fileio import atomic_output

    def fat_chmod(path: object, mode: int) -> None:  # FAT, exFAT: files read 0755, chmod refused
        raise PermissionError(errno.EPERM, "Operation not permitted", str(path))

    with atomic_output(tmp_path / "clip_night.mp4") as tmp:
        tmp.write_text("hours of work")
        tmp.chmod(0o755)
        monkeypatch.setattr(os, "chmod", fat_chmod)
    assert (tmp_path / "clip_night.mp4").read_text() == "hours of work"


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 0"),
        OSError("1118149 requested and 49152 written"),  # NumPy's tofile: no errno
        OSError(28, "No space left on device"),  # no file named
    ],
    ids=["torch.save", "numpy", "write"],
)
def test_a_full_disk_is_named_whatever_the_writer_raised(
    failure: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    from types import SimpleNamespace

    from d2nvideo.fileio import atomic_output

    def fail(free: int) -> None:
        monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_bavail=free, f_frsize=1))
        with atomic_output(tmp_path / "state.pt") as tmp:
            tmp.write_bytes(b"half")
            raise failure

    final = str(tmp_path / "state.pt")
    with pytest.raises(OSError) as full:
        fail(4096)
    assert full.value.errno == errno.ENOSPC and full.value.filename == final
    # with room left it is not the disk, but a failed write all the same, named (a file-size
    # limit printed torch's 68-line traceback; found by a helper)
    import resource

    for limit, code in ((resource.RLIM_INFINITY, errno.EIO), (4096, errno.EFBIG)):
        monkeypatch.setattr(resource, "getrlimit", lambda which, limit=limit: (limit, limit))
        with pytest.raises(OSError) as other:
            fail(2**40)
        enospc = getattr(failure, "errno", None) == errno.ENOSPC
        assert other.value.errno == (errno.ENOSPC if enospc else code)
        assert other.value.filename == final
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="a file-size limit (RLIMIT_FSIZE)")
def test_an_image_whose_write_fails_leaves_nothing(tmp_path: Path) -> None:
    # NumPy's tofile lost the failed last write: a cut-short image under the final name, exit
    # 0, and a resumed run skipped it as done (a full disk; found by a helper)
    code = (
        "import sys, resource, numpy as np; from pathlib import Path; "
        "from d2nvideo.images import write_image; "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); "
        "noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8); "
        "write_image(Path(sys.argv[1]), noise)"
    )
    out = tmp_path / "o.png"
    result = subprocess.run([sys.executable, "-c", code, out], capture_output=True, text=True)
    assert result.returncode != 0 and f"File too large: '{out}'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_write_error_names_the_output_not_its_temporary_file(tmp_path: Path) -> None:
    # "No space left on device: .o.22441-f7b03961.part.mp4" (and in --report's lines)
    import errno

    from d2nvideo.fileio import atomic_output

    with pytest.raises(OSError) as failed, atomic_output(tmp_path / "o.mp4") as tmp:
        raise OSError(errno.EFBIG, "File too large", str(tmp))
    assert failed.value.errno == errno.EFBIG and failed.value.filename == str(tmp_path / "o.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("CUDA out of memory"), KeyError("gen"), OSError("cannot write mode RGBA")],
)
def test_other_failures_are_never_taken_for_a_full_disk(
    failure: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a bug or an out-of-memory while an output is open on a nearly full card
    from types import SimpleNamespace

    from d2nvideo.fileio import atomic_output

    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_bavail=0, f_frsize=4096))
    with pytest.raises(type(failure)) as raised, atomic_output(tmp_path / "o.mp4"):
        raise failure
    assert raised.value is failure


def test_leftovers_of_a_killed_writer_are_swept(tmp_path: Path) -> None:
    from d2nvideo.fileio import atomic_output

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f".clip.{dead}-0123abcd.part.mp4"  # SIGKILL left it, 0 bytes
    stale.touch()
    live = tmp_path / f".other.{os.getpid()}-89abcdef.part.mp4"  # a writer still at work
    live.touch()
    with atomic_output(tmp_path / "clip.mp4") as tmp:
        tmp.write_bytes(b"video")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clip.mp4", live.name])


# --- checkpoints ---------------------------------------------------------------------------


def _safetensors(path: Path, state=None, **header: str) -> Path:
    from safetensors.torch import save_file

    if state is None:
        state = {k: v.contiguous() for k, v in build_generator(TINY_UNIT).state_dict().items()}
    meta = {
        "format": "d2nvideo.generator",
        "format_version": "1",
        "model": json.dumps(asdict(TINY_UNIT)),
        "meta": "{}",
        **header,
    }
    save_file(state, str(path), metadata=meta)
    return path


def _unit(**change: int) -> str:
    """A model header of absurd sizes, such as a damaged or hostile file might carry."""
    return json.dumps({**asdict(TINY_UNIT), **change})


def _bad_checkpoints(tmp: Path) -> dict[str, tuple[Path, str]]:
    import datetime

    state = {k: v.contiguous() for k, v in build_generator(TINY_UNIT).state_dict().items()}
    key = next(k for k in state if k.endswith("weight"))
    shaped = {**state, key: torch.zeros(3, 1)}
    nan = {**state, key: torch.full_like(state[key], float("nan"))}
    torch.save({"a": 5, "b": 5}, tmp / "gen_5.pt")
    torch.save({"a": {"w": datetime.date(2020, 1, 1)}, "b": {}}, tmp / "gen_dt.pt")
    torch.save({"format": "d2nvideo.training", "step": 2, "trainer": {}, "rng": {}}, tmp / "s.pt")
    return {
        "shape": (_safetensors(tmp / "shape.safetensors", shaped), "has shape"),
        "version": (_safetensors(tmp / "v.safetensors", format_version="one"), "format_version"),
        "model list": (_safetensors(tmp / "m.safetensors", model="[1, 2]"), "model config"),
        "meta list": (_safetensors(tmp / "meta.safetensors", meta="[]"), "metadata"),
        "nan": (_safetensors(tmp / "nan.safetensors", nan), "non-finite weights"),
        "work size": (_safetensors(tmp / "w.safetensors", meta='{"work_size": 0}'), "work_size"),
        "work size 0.5": (_safetensors(tmp / "h.safetensors", meta='{"work_size": 0.5}'), "whole"),
        "deep": (_safetensors(tmp / "d.safetensors", model=_unit(n_downsample=70)), "0-8"),
        "wide": (_safetensors(tmp / "x.safetensors", model=_unit(width=10**30)), "1-4096"),
        "kernel": (_safetensors(tmp / "k.safetensors", model=_unit(up_kernel=10**30 + 1)), "1-31"),
        "official ints": (tmp / "gen_5.pt", "not a state dict of tensors"),
        "unsafe": (tmp / "gen_dt.pt", "could not be loaded safely"),
        "training state": (tmp / "s.pt", "d2nvideo export"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "shape",
        "version",
        "model list",
        "meta list",
        "nan",
        "work size",
        "work size 0.5",
        "deep",
        "wide",
        "kernel",
        "official ints",
        "unsafe",
        "training state",
    ],
)
def test_bad_checkpoints_are_refused_at_load(case: str, tmp_path: Path, image: Path) -> None:
    model, message = _bad_checkpoints(tmp_path)[case]
    result = refused(
        tmp_path, 1, message, "convert", image, "--to", "night", "--model", model, "-q"
    )
    assert "weights_only" not in result.stderr and "safe_globals" not in result.stderr
    from d2nvideo.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(model)


# --- images --------------------------------------------------------------------------------


def _huge_png(path: Path) -> Path:
    """A PNG whose header claims 60000x60000 pixels (decoding it would need 10 GB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_an_oversized_image_alone_is_one_line(media, tmp_path: Path) -> None:
    src = _huge_png(tmp_path / "huge.png")
    refused(
        tmp_path, 1, "60000x60000", "convert", src, "--to", "night", "--model", media["model"], "-q"
    )


def test_an_oversized_image_in_a_folder_is_skipped(media, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    _huge_png(folder / "huge.png")
    result = invoke(
        "convert", folder, "--to", "night", "-o", tmp_path / "out", "--model", media["model"], "-q"
    )
    assert result.exit_code == 1
    assert "huge.png" in result.stderr and "Traceback" not in result.output
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "out" / "huge.png").exists()


# --- video: tiny frames, HDR, audio, truncated and corrupt files ---------------------------


@pytest.mark.parametrize("command", ["convert", "preview"])
def test_flow_smoothing_on_a_one_pixel_video(command: str, media, tmp_path: Path) -> None:
    src = make_video(tmp_path / "dot.mp4", frames=4, size=(1, 1))
    out = tmp_path / "o.mp4"
    result = invoke(
        command,
        src,
        "--to",
        "night",
        "-o",
        out,
        "--smooth",
        "flow",
        "--model",
        media["model"],
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert len(read_video(out).times) == 4


def _hdr_clip(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        vs = _add_picture(out, pix_fmt="yuv420p10le")
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 9, 16, 9, 1  # PQ
        _mux_pictures(out, vs, 4)
    return path


def test_hdr_keeps_its_colour_tags_and_warns_once(
    media, tmp_path: Path, monkeypatch, caplog
) -> None:
    import importlib

    from d2nvideo.video.codecs import EncodeSettings
    from d2nvideo.video.decode import decode_frames
    from d2nvideo.video.encode import encode_frames

    probe_module = importlib.import_module("d2nvideo.video.probe")  # the package hides it
    monkeypatch.setattr(probe_module, "_WARNED", set())
    src = _hdr_clip(tmp_path / "hdr.mp4")
    info = probe_module.probe(src)
    assert info.color.hdr
    for name in ("a.mp4", "b.mkv"):
        encode_frames(decode_frames(src), tmp_path / name, info, EncodeSettings())
        assert probe_module.probe(tmp_path / name).color == info.color
    warned = [r for r in caplog.records if "trained on SDR" in r.getMessage()]
    assert len(warned) == 1
    # 10 bits a channel were rounded to 8 without a word
    deep = [r for r in caplog.records if "10 bits a channel (yuv420p10le)" in r.getMessage()]
    assert len(deep) == 1 and "translated at 8 bits" in deep[0].getMessage()
    plain = media["plain"]
    encode_frames(
        decode_frames(plain), tmp_path / "c.mp4", probe_module.probe(plain), EncodeSettings()
    )
    assert not [r for r in caplog.records if "bits a channel" in r.getMessage() and r not in deep]


def _onset(path: Path) -> float:
    """When the first audible sample plays, from the first frame (seconds)."""
    import av

    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        start = float(first.pts * first.time_base)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            loud = np.nonzero(np.abs(frame.to_ndarray().astype(np.float64)).max(axis=0) > 0.1)[0]
            if len(loud):
                return float(frame.pts * frame.time_base) + loud[0] / frame.sample_rate - start
    raise AssertionError(f"nothing audible in {path}")


@pytest.mark.parametrize("sound_from", [11025, 0], ids=["with", "before"])
def test_an_avi_of_a_clip_that_starts_late_keeps_its_sound_with_the_picture(
    sound_from: int, media, tmp_path: Path
) -> None:
    # picture and sound from 0.5 s: the AVI kept the picture at 0.5 s, its sound (which has
    # no times there) played from 0, half a second early; sound from 0 before a picture from
    # 0.5 s must keep its first half second (found by reviews)
    import av

    clip = tmp_path / "late.mp4"
    with av.open(str(clip), "w") as out:
        vs = _add_picture(out)
        sound = out.add_stream("aac", rate=22050)
        sound.layout = "mono"
        _mux_pictures(out, vs, 25, pts=lambda i: 500 + 40 * i, time_base=Fraction(1, 1000))
        for k in range(22):
            tone = np.zeros((1, 1024), np.float32)
            tone[0, :] = 0.5 if 4 <= k < 8 else 0.0  # loud from about 0.19 s after 0.5 s
            block = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            block.sample_rate, block.pts = 22050, sound_from + k * 1024
            block.time_base = Fraction(1, 22050)
            out.mux(sound.encode(block))
        out.mux(sound.encode())
    before = _onset(clip)
    converted = tmp_path / "o.avi"
    args = ["convert", clip, "--to", "night", "-o", converted, "--model", media["model"], "-q"]
    assert invoke(*args).exit_code == 0
    assert abs(_onset(converted) - before) < 0.08, (_onset(converted), before)


@pytest.mark.parametrize("suffix", [".mp4", ".ts", ".webm"])
def test_re_encoded_sound_starts_with_the_picture(suffix: str, media, tmp_path: Path) -> None:
    # the encoder's priming samples (1,024 for AAC) were stamped from the first sound's time
    # and heard first: a cheap dashcam's 8 kHz ADPCM came 128 ms late
    import av

    clip = tmp_path / "cam.avi"
    with av.open(str(clip), "w") as out:
        vs = _add_picture(out, "mjpeg", pix_fmt="yuvj420p")
        sound = out.add_stream("adpcm_ima_wav", rate=8000)
        sound.layout = "mono"
        _mux_pictures(out, vs, 10)
        click = np.zeros((1, 3200), np.int16)
        click[0, 800:1600] = 20000  # loud from 0.1 s
        block = av.AudioFrame.from_ndarray(click, format="s16", layout="mono")
        block.sample_rate, block.pts = 8000, 0
        out.mux(sound.encode(block))
        out.mux(sound.encode())
    before = _onset(clip)
    converted = tmp_path / f"o{suffix}"
    args = ["convert", clip, "--to", "night", "-o", converted, "--model", media["model"], "-q"]
    assert invoke(*args).exit_code == 0
    assert abs(_onset(converted) - before) < 0.01, (_onset(converted), before)


@pytest.mark.parametrize("suffix, codec", [(".ts", "aac"), (".webm", "opus")])
def test_audio_goes_into_ts_and_webm(suffix: str, codec: str, media, tmp_path: Path) -> None:
    from d2nvideo.video.codecs import EncodeSettings
    from d2nvideo.video.decode import decode_frames
    from d2nvideo.video.encode import encode_frames
    from d2nvideo.video.probe import probe

    src = media["audio"]
    out = tmp_path / f"o{suffix}"
    encode_frames(decode_frames(src), out, probe(src), EncodeSettings())
    assert [s.codec for s in probe(out).audio] == [codec]
    back = read_video(out)
    assert len(back.times) == 15 and back.audio
    assert abs(float(back.audio_times[-1] - back.times[-1])) < 0.1


def _faststart(path: Path, frames: int = 60) -> Path:
    """An MP4 with its index first, as dashcams write them: cut short, it still opens."""
    import av

    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        _mux_pictures(out, _add_picture(out, g="10"), frames)
    return path


def test_truncation_is_found_at_open_and_salvage_decodes_what_is_there(tmp_path: Path) -> None:
    from d2nvideo.video.decode import Salvage, decode_frames
    from d2nvideo.video.probe import probe

    data = _faststart(tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"truncated.*% missing"):
        probe(cut)
    info = probe(cut, salvage=True)
    assert info.missing_bytes > 0 and info.frames == 60
    with pytest.raises(InputError, match="truncated"):
        list(decode_frames(cut, expect_frames=info.frames))
    lost = Salvage()
    frames = list(decode_frames(cut, expect_frames=info.frames, salvage=lost))
    assert 0 < len(frames) < 60 and lost.lost == 60 - len(frames)
    result = invoke("info", cut)
    assert result.exit_code == 0 and "truncated" in result.output


def test_evaluate_measures_a_truncated_clip_on_the_frames_that_are_there(
    tmp_path: Path, caplog
) -> None:
    # it was refused, advising a --salvage that evaluate does not have
    from d2nvideo.evaluation.evaluate import EvalOptions, _check_clip
    from d2nvideo.evaluation.report import Report
    from d2nvideo.evaluation.temporal import clip_start

    data = _faststart(tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    opts = EvalOptions(video_frames=60)
    _check_clip(cut, opts, {}, Report())
    assert "'cut.mp4' is truncated (" in caplog.text
    frames = clip_start(cut, opts)
    assert 2 <= len(frames) < 60 and all(frame.std() > 0 for frame in frames)
    # a packet that does not decode ends the frames measured, said once (it was said by the
    # check before the work and again by the measurement)
    data = bytearray(_faststart(tmp_path / "full.mp4").read_bytes())
    middle = (data.find(b"mdat") + len(data)) // 2
    data[middle : middle + 400] = bytes(400)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    _check_clip(damaged, opts, {}, Report())
    clip_start(damaged, opts)
    assert caplog.text.count("before one that does not decode") == 1


def _cut_after_the_first(i: int) -> np.ndarray:
    """The moving gradient, but frame 1 dark and inverted: a scene cut between 0 and 1."""
    return frame_image(i, 64, 48) if i != 1 else 255 - frame_image(i, 64, 48) // 3


def test_evaluate_names_the_damage_that_leaves_a_clip_too_few_frames(tmp_path: Path) -> None:
    # cut short two frames in, a clip whose first two frames are a cut was refused as "a scene
    # cut comes between each of its first 2 frames", as if the clip were all cuts
    import av

    from d2nvideo.evaluation.evaluate import EvalOptions, _check_clip
    from d2nvideo.evaluation.report import Report

    full = tmp_path / "full.mp4"
    with av.open(str(full), "w", options={"movflags": "+faststart"}) as out:
        _mux_pictures(out, _add_picture(out, g="1"), 40, image=_cut_after_the_first)
    with av.open(str(full)) as clip:
        ends = [p.pos + p.size for p in clip.demux(video=0) if p.size]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: ends[1] + 10])
    with pytest.raises(InputError, match="only its first 2 frames can be read") as caught:
        _check_clip(cut, EvalOptions(video_frames=10), {}, Report())
    assert "scene cut" in str(caught.value)


def test_a_truncated_file_is_guessed_and_counted_from_what_it_holds(tmp_path: Path) -> None:
    """``--to auto`` guesses from the frames before the cut (a sampled time past it raised,
    refusing a file --salvage converts); progress counts what the index lists."""
    from d2nvideo.batch.plan import Task
    from d2nvideo.batch.run import frame_counts
    from d2nvideo.data.scoring import guess_file

    data = _faststart(tmp_path / "full.mp4").read_bytes()
    for share in range(30, 100, 10):
        cut = tmp_path / f"cut{share}.mp4"
        cut.write_bytes(data[: len(data) * share // 100])
        assert guess_file(cut).scored_frames >= 1
    task = Task(tmp_path / "cut50.mp4", tmp_path / "o.mp4", "video")
    assert frame_counts([task]) == [1] and frame_counts([task], salvage=True) == [60]


def test_salvage_skips_corrupt_packets(tmp_path: Path) -> None:
    from d2nvideo.video.decode import Salvage, decode_frames

    data = bytearray(_faststart(tmp_path / "full.mp4").read_bytes())
    start = data.find(b"mdat") + 8
    rng = np.random.default_rng(0)
    for k in rng.integers(start, len(data), len(data) // 100):  # 1% of the bytes
        data[k] = rng.integers(0, 256)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError):
        list(decode_frames(bad, expect_frames=60))
    lost = Salvage()
    frames = list(decode_frames(bad, expect_frames=60, salvage=lost))
    assert len(frames) > 30 and lost.lost > 0 and lost.reason


def test_salvage_counts_the_frames_a_failed_keyframe_takes_with_it(tmp_path: Path) -> None:
    """A keyframe that fails takes the frames that refer to it along without an error of their
    own; in a long file they fit in the count's slack, and --salvage reported the one packet
    ("1 frame" for 6)."""
    import av

    from d2nvideo.video.decode import Salvage, decode_frames

    src = _faststart(tmp_path / "long.mp4", frames=1400)  # a slack of 7 frames
    with av.open(str(src)) as c:
        keys = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size and p.is_keyframe]
    pos, size = keys[3]
    data = bytearray(src.read_bytes())
    data[pos : pos + size] = bytes(size)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    lost = Salvage()
    frames = list(decode_frames(bad, expect_frames=1400, salvage=lost))
    assert 1400 - 7 <= len(frames) < 1400 - 1
    assert lost.lost == 1400 - len(frames)


def test_an_mp4_cut_before_its_index_says_so(media, tmp_path: Path) -> None:
    """Most cameras write the MP4 index ('moov') last: a recording cut by a power loss has
    none, and --salvage, whose help named that case, refused it as "truncated or corrupt"."""
    data = make_video(tmp_path / "whole.mp4", frames=30).read_bytes()
    (tmp_path / "whole.mp4").unlink()
    moov = data.find(b"moov") - 4
    out = tmp_path / "o.mp4"

    def convert(src: Path, *extra: str) -> tuple[object, ...]:
        return ("convert", src, "--to", "night", "-o", out, "--model", media["model"], "-q", *extra)

    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:moov])
    for extra in ([], ["--salvage"]):
        refused(tmp_path, 1, "without its index (no 'moov' box)", *convert(cut, *extra))
    refused(tmp_path, 1, "without its index", "info", cut)
    for share in (1, 50, 90):  # the index cut short: said "no video stream" or a traceback
        short = tmp_path / f"short{share}.mp4"
        short.write_bytes(data[: moov + (len(data) - moov) * share // 100])
        refused(tmp_path, 1, "truncated: its index ('moov' box) is cut short", "info", short)
        refused(tmp_path, 1, "is cut short", *convert(short, "--salvage"))


def _flv_adding_a_stream(path: Path) -> Path:
    """A video-only FLV with one audio tag at 9 s, past what opening the file reads: FFmpeg
    adds a stream there, part-way, that PyAV's stream list never holds."""
    data = make_video(path.with_name("plain.flv"), frames=100, fps=10, size=(32, 32)).read_bytes()
    pos, late = 13, None  # after the header and the first previous-tag size
    while late is None:
        size, ms = int.from_bytes(data[pos + 1 : pos + 4], "big"), data[pos + 4 : pos + 7]
        late = pos if data[pos] == 9 and int.from_bytes(ms, "big") >= 9000 else None
        pos += 11 + size + 4
    payload = bytes([0x2F]) + bytes(16)  # MP3, 44 kHz, 16 bits, stereo: silence
    head = bytes([8]) + len(payload).to_bytes(3, "big") + data[late + 4 : late + 8] + bytes(3)
    tag = head + payload + (11 + len(payload)).to_bytes(4, "big")
    path.write_bytes(data[:late] + tag + data[late:])
    return path


def test_a_stream_added_part_way_is_no_traceback(media, tmp_path: Path) -> None:
    """PyAV's demux raised IndexError at the end of such a file, in every command."""
    src = _flv_adding_a_stream(tmp_path / "added.flv")
    out = tmp_path / "o.mp4"
    model = ["--model", media["model"], "-q"]
    result = invoke("convert", src, "--to", "night", "-o", out, *model)
    assert result.exit_code == 0, result.output
    assert len(read_video(out).times) == 100
    result = invoke("extract", src, "-o", tmp_path / "frames", "--every", "1", "-q")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "frames").rglob("*.jpg"))) == 10
    assert invoke("preview", src, "--to", "night", "-o", tmp_path / "p.png", *model).exit_code == 0


def _noisy_ts(path: Path, frames: int = 40) -> Path:
    """An MPEG-TS whose frames span many TS packets (noise does not compress)."""
    import av

    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"g": "20"})
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    return path


def test_damage_in_an_mpeg_ts_is_named(tmp_path: Path, caplog) -> None:
    """TS packets lost mid-file: the H.264 decoder hides the damage and raises nothing, and the
    file was converted without a word (an MP4 with the same damage is refused)."""
    from d2nvideo.video.decode import decode_frames

    data = _noisy_ts(tmp_path / "whole.ts").read_bytes()
    cut = len(data) // 2 // 188 * 188
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data[:cut] + data[cut + 188 * 20 :])  # 20 TS packets lost
    assert len(list(decode_frames(tmp_path / "whole.ts"))) == 40
    assert not [r for r in caplog.records if "damaged" in r.getMessage()]
    frames = list(decode_frames(damaged))
    assert len(frames) > 30
    warned = [r.getMessage() for r in caplog.records if "damaged video packet" in r.getMessage()]
    assert len(warned) == 1 and "damaged.ts' has 1 damaged video packet, the first at" in warned[0]


def test_extract_and_preview_name_damage_in_an_mpeg_ts(media, tmp_path: Path, caplog) -> None:
    # only convert said it: frames extracted for a dataset came with the decoder's blocks
    data = _noisy_ts(tmp_path / "whole.ts").read_bytes()
    cut = len(data) // 2 // 188 * 188
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data[:cut] + data[cut + 188 * 20 :])
    result = invoke("extract", damaged, "-o", tmp_path / "frames", "--every", "1", "-q")
    assert result.exit_code == 0, result.output
    result = invoke("extract", tmp_path / "whole.ts", "-o", tmp_path / "f2", "--every", "1", "-q")
    assert result.exit_code == 0, result.output
    at = str(len(list((tmp_path / "frames").rglob("*.jpg"))) / 2 / 25)  # past the damage
    model = ["--model", media["model"], "-q"]
    result = invoke(
        "preview", damaged, "--to", "night", "-o", tmp_path / "p.png", "--at", at, *model
    )
    assert result.exit_code == 0, result.output
    warned = [r.getMessage() for r in caplog.records if "damaged video packet" in r.getMessage()]
    assert len(warned) == 2 and all("damaged.ts' has 1 damaged video packet" in w for w in warned)


def test_an_mpeg_ts_cut_short_is_said(media, tmp_path: Path, caplog) -> None:
    # a TS has no index to tell: one cut to 60% converted 37 of 60 frames, exit 0, no word
    data = _noisy_ts(tmp_path / "whole.ts").read_bytes()
    (tmp_path / "cut.ts").write_bytes(data[: len(data) * 6 // 10 // 188 * 188 + 100])
    (tmp_path / "cut192.ts").write_bytes(data[: 192 * 100])  # 188-byte packets, cut at 19200
    model = ["--model", media["model"], "-q"]
    for name in ("whole", "cut", "cut192"):
        out = tmp_path / f"{name}_n.mp4"
        args = ["convert", tmp_path / f"{name}.ts", "--to", "night", "-o", out, *model]
        assert invoke(*args).exit_code == 0
    said = [r.getMessage() for r in caplog.records if "MPEG-TS packet" in r.getMessage()]
    assert len(said) == 2 and said[0].startswith("'cut.ts' ends part-way through"), said
    assert said[1].startswith("'cut192.ts' ends")  # a multiple of 192: cut all the same


def test_convert_refuses_a_truncated_file_at_once(media, tmp_path: Path) -> None:
    data = _faststart(tmp_path / "full.mp4").read_bytes()
    (tmp_path / "full.mp4").unlink()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    refused(
        tmp_path,
        1,
        "truncated",
        "convert",
        cut,
        "--to",
        "night",
        "-o",
        tmp_path / "o.mp4",
        "--model",
        media["model"],
        "-q",
    )


def test_convert_warns_of_a_matroska_file_that_ends_early(media, tmp_path: Path, caplog) -> None:
    """Matroska has no frame count to check a truncated file against: its header's duration
    is what the frames should reach (a cut file converted a part with no word)."""
    whole = make_video(tmp_path / "whole.mkv", frames=50, fps=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    for src, warned in ((whole, False), (cut, True)):
        caplog.clear()
        out = tmp_path / f"o_{src.name}"
        result = invoke("convert", src, "--to", "night", "-o", out, "--model", media["model"])
        assert result.exit_code == 0, result.output
        assert ("may be truncated" in caplog.text) is warned, caplog.text
        assert (len(read_video(out).times) == 50) is not warned
    # audio that lasts longer than the video is no truncation (a review)
    caplog.clear()
    longer = _video_with_longer_audio(tmp_path / "audio_longer.mkv")
    args = ["convert", longer, "--to", "night", "-o", tmp_path / "o.mkv", "--model", media["model"]]
    assert invoke(*args).exit_code == 0
    assert "may be truncated" not in caplog.text


def _video_with_longer_audio(path: Path) -> Path:
    """3 s of video at 10 frames/s and 5 s of audio in one Matroska file."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        aus = out.add_stream("aac", rate=22050)
        aus.layout = "mono"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(frame_image(i, 32, 32), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        for k in range(5 * 22050 // 1024):
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            sound.sample_rate, sound.pts = 22050, k * 1024
            out.mux(aus.encode(sound))
        out.mux(aus.encode())
    return path


@pytest.mark.parametrize("command", ["convert", "preview.mp4", "preview.gif", "preview.png"])
def test_salvage_converts_what_a_truncated_file_holds(command, media, tmp_path, caplog):
    """``--salvage`` is the same for convert and each kind of preview: the frames that are
    there are translated and the loss is one warning (preview refused it before)."""
    from d2nvideo.video.probe import probe

    data = _faststart(tmp_path / "full.mp4").read_bytes()
    (tmp_path / "full.mp4").unlink()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    name, _, suffix = command.partition(".")
    out = tmp_path / f"o.{suffix or 'mp4'}"
    args = [name, cut, "--to", "night", "-o", out, "--model", media["model"], "-q", "--salvage"]
    result = invoke(*args)  # a still: by default the middle of what the file holds
    assert result.exit_code == 0, result.output
    assert out.is_file() and cut.read_bytes() == data[: len(data) // 2]
    lost = [r for r in caplog.records if "left out (--salvage)" in r.getMessage()]
    assert len(lost) == (suffix != "png")
    if suffix in ("", "mp4"):
        assert 0 < probe(out).frames < 60
    if suffix == "png":  # a time past the cut is said to be so
        late = invoke(*args, "--at", "2.2", "--overwrite")
        assert late.exit_code == 1 and "of what decodes: the file is cut short" in late.output


# --- extract ---------------------------------------------------------------------------------


def test_extract_of_a_still_image_says_so(tmp_path: Path) -> None:
    still = _png(tmp_path / "still.png")
    refused(tmp_path, 2, "is an image: extract takes", "extract", still, "-o", tmp_path / "f", "-q")


def test_extract_past_the_end_says_so(media, tmp_path: Path) -> None:
    refused(
        tmp_path,
        1,
        "no frames to extract from 60 s",
        "extract",
        media["plain"],
        "-o",
        tmp_path / "frames",
        "--start",
        "60",
        "-q",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "--start", "1e300", "-o", "out.mp4"], "no frames in the requested range"),
        (["preview", "--at", "1e300", "-o", "out.png"], "has no frame at 1e+300 s"),
        (["preview", "--start", "1e20", "-o", "out.gif"], "no frames in the requested range"),
    ],
)
def test_a_start_past_any_end_says_so(args: list[str], message: str, media, tmp_path: Path):
    src = tmp_path / "in.mp4"
    src.write_bytes(media["plain"].read_bytes())
    args = [args[0], src, "--to", "night", *args[1:-1], tmp_path / args[-1], "-q"]
    refused(tmp_path, 1, message, *args)


@pytest.mark.parametrize(
    "content", [b"not,a\nmanifest\n", bytes(range(256)) * 4], ids=["csv", "binary"]
)
def test_extract_never_overwrites_a_foreign_manifest(content: bytes, media, tmp_path: Path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "manifest.csv").write_bytes(content)
    refused(tmp_path, 2, "not a manifest that d2nvideo wrote", "extract", media["plain"], "-o", out)


def test_extract_replaces_the_empty_manifest_older_versions_left(media, tmp_path: Path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "manifest.csv").write_bytes(b"")
    result = invoke("extract", media["plain"], "-o", out, "--frames", "2", "-q")
    assert result.exit_code == 0, result.output
    assert len((out / "manifest.csv").read_text().splitlines()) == 3


def _oncoming(i: int) -> np.ndarray:
    """A dim frame where a small light moves (an oncoming car's lights)."""
    image = np.full((48, 64, 3), 12, np.uint8)
    image[20:28, 8 + 10 * i : 16 + 10 * i] = 40
    return image


def test_dedupe_is_relative_to_contrast_and_warns_on_one_frame(tmp_path: Path, caplog) -> None:
    import av

    from d2nvideo.data.extract import ExtractOptions, ExtractResult, Sampling, extract_video
    from d2nvideo.video.probe import probe

    night = tmp_path / "night.mp4"  # dim frames where a small light moves: they differ
    with av.open(str(night), "w") as out:
        _mux_pictures(out, _add_picture(out, rate=5, crf="10"), 5, image=_oncoming)
    opts = ExtractOptions(sampling=Sampling(every=0.2), dedupe=0.06)
    result = ExtractResult()
    extract_video(night, probe(night), tmp_path / "a", opts, {}, result, lambda n: None)
    assert result.written == 5 and result.duplicates == 0
    still = make_video(tmp_path / "still.mp4", frames=5, fps=5)
    frozen = tmp_path / "frozen.mp4"
    with av.open(str(frozen), "w") as out:
        _mux_pictures(out, _add_picture(out, rate=5), 5, image=lambda i: frame_image(0, 64, 48))
    result = ExtractResult()
    extract_video(frozen, probe(frozen), tmp_path / "b", opts, {}, result, lambda n: None)
    assert result.written == 1 and result.duplicates == 4
    assert any("kept 1 of 5 frames" in r.getMessage() for r in caplog.records)
    assert still.is_file()


# --- relabel -------------------------------------------------------------------------------


def test_relabel_of_a_deeply_nested_json(tmp_path: Path) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text("[" * 100_000 + "]" * 100_000)
    refused(
        tmp_path,
        1,
        "nested too deeply",
        "relabel",
        "--bdd",
        labels,
        "--images",
        tmp_path,
        "-o",
        tmp_path / "out",
        "-q",
    )


# --- configs shipped with the package, and the example clip ---------------------------------


def test_configs_are_listed_written_out_and_shipped(tmp_path: Path) -> None:
    import tomllib

    listed = invoke("configs")
    assert listed.exit_code == 0 and "tiny" in listed.output
    out = tmp_path / "mine.yaml"
    assert invoke("configs", "--dump", "tiny", "-o", out).exit_code == 0
    assert out.read_text() == (ROOT / "configs" / "tiny.yaml").read_text()
    refused(tmp_path, 2, "exists", "configs", "--dump", "tiny", "-o", out)
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["package-dir"]["d2nvideo.configs"] == "configs"
    assert "d2nvideo.configs" in setup["packages"]
    assert setup["package-data"]["d2nvideo.configs"] == ["*.yaml"]


def test_the_example_clip_takes_an_odd_size(tmp_path: Path) -> None:
    from d2nvideo.video.probe import probe

    clip = tmp_path / "c.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "make_test_clip.py"),
            str(clip),
            "--size",
            "321x179",
            "--seconds",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (probe(clip).width, probe(clip).height) == (321, 179)
    # no frame (it printed the name and wrote nothing, or an audio-only file), a text name
    # (a traceback), an existing file (replaced)
    script = [sys.executable, str(ROOT / "examples" / "make_test_clip.py")]
    for args in (["z.mp4", "--seconds", "0"], ["z.mp4", "--fps", "0"], ["z.txt"], [clip.name]):
        proc = subprocess.run([*script, *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2 and "error:" in proc.stderr, proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]


@pytest.mark.parametrize(
    "args",
    [
        ["info", ""],
        ["convert", "", "--to", "night"],
        ["convert", "{src}", "--to", "night", "-o", ""],
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(args, media, tmp_path: Path):
    src = tmp_path / "in.mp4"
    src.write_bytes(media["plain"].read_bytes())
    args = [a.replace("{src}", str(src)) for a in args]
    refused(tmp_path, 2, "empty", *args, "--quiet" if args[0] == "convert" else "--json")


def test_a_path_from_stdin_keeps_its_spaces(media, tmp_path: Path, monkeypatch) -> None:
    from d2nvideo.batch.plan import expand

    (tmp_path / " lead.mp4").write_bytes(media["plain"].read_bytes())
    monkeypatch.chdir(tmp_path)
    assert expand(["-"], [" lead.mp4\r\n", "  \n"]) == [Path(" lead.mp4")]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (
            ["evaluate", "--video", "night=", "--day", "{t}", "--night", "{t}", "-o", "{t}/r"],
            2,
            "'night=' names no clip after '='",
        ),
        (
            ["evaluate", "--video", "dusk=x.mp4", "--day", "{t}", "--night", "{t}", "-o", "{t}/r"],
            2,
            "'dusk=' is not a domain: use day= or night= before the clip",
        ),
        (["extract", "{clip}", "-o", "{t}/afile"], 1, "'{t}/afile' is a file where a folder is"),
        (
            ["preview", "{clip}", "--to", "night", "-o", "{t}/afile/x.png"],
            1,
            "output folder '{t}/afile' is not a folder",
        ),
        (
            ["relabel", "--folder", "day={t}/afile", "-o", "{t}/r"],
            2,
            "'{t}/afile' for label 'day' is not a folder",
        ),
        (
            ["convert", "{clip}", "--to", "night", "-o", "{t}/o.mp4", "--report", "{t}"],
            2,
            "--report '{t}' is a directory",
        ),
    ],
    ids=[
        "video without clip",
        "video domain",
        "extract into a file",
        "preview into a file",
        "relabel a file",
        "report a folder",
    ],
)
def test_misplaced_paths_are_named_for_what_they_are(
    args: list[str], code: int, message: str, media, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("mine")
    clip = make_video(tmp_path / "c.mp4", frames=2, size=(32, 32))
    where = {"{t}": str(tmp_path), "{clip}": str(clip)}

    def filled(text: str) -> str:
        for key, value in where.items():
            text = text.replace(key, value)
        return text

    model = ["--model", str(media["model"])] if args[0] in ("convert", "preview") else []
    refused(tmp_path, code, filled(message), *map(filled, args), *model, "-q")


def test_a_folder_named_like_a_shipped_config_does_not_hide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a run folder called 'tiny' where train runs: "config 'tiny' is a directory"
    for domain in ("day", "night"):
        for i in range(2):
            write_image(tmp_path / domain / f"{i}.png", frame_image(i, 48, 40))
    (tmp_path / "tiny").mkdir()
    monkeypatch.chdir(tmp_path)
    args = ["train", "tiny", "--out", "run", "--day", "day", "--night", "night", "--steps", "1"]
    result = invoke(*args, "-q", "--set", "data.resize=40", "--set", "data.crop=[32, 32]")
    assert result.exit_code == 0, result.output


def test_a_broken_png_is_our_one_line_without_opencvs(tmp_path: Path) -> None:
    # OpenCV printed '[ WARN...] read_chunk...' and '[ERROR...] readHeader...' before it
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(200))
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    result = run_cli("info", broken, cwd=tmp_path, env=env)
    assert result.returncode == 1
    one_error(result.stderr, "is not a readable image")


def test_a_dangling_link_at_the_output_is_not_replaced_unasked(media, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=2, size=(32, 32))
    (tmp_path / "o.mp4").symlink_to(tmp_path / "gone" / "o.mp4")
    args = ["convert", clip, "--to", "night", "-o", tmp_path / "o.mp4", "--model", media["model"]]
    refused(tmp_path, 2, "exists; pass --overwrite", *args, "-q")
    assert (tmp_path / "o.mp4").is_symlink()


def test_a_fifo_at_the_output_is_not_replaced_even_when_asked(media, tmp_path: Path) -> None:
    """--overwrite renamed the finished file over a FIFO (a reader waiting on it got nothing,
    and the FIFO was gone)."""
    clip = make_video(tmp_path / "c.mp4", frames=2, size=(32, 32))
    fifo = tmp_path / "o.mp4"
    os.mkfifo(fifo)
    args = ["convert", clip, "--to", "night", "-o", fifo, "--model", media["model"], "-q"]
    for extra in ([], ["--overwrite"]):
        result = invoke(*args, *extra)
        assert result.exit_code == 2 and fifo.is_fifo(), result.output
    fails(result, 2, "is a FIFO, not a file")


@pytest.mark.parametrize("command", ["extract", "relabel", "train", "evaluate"])
def test_an_output_folder_under_a_link_to_nothing_names_the_link(
    command: str, images: Path, media, tmp_path: Path
) -> None:
    # commands that make their output folder said only 'No such file or directory:
    # dangling/sub' (extract, relabel) or 'File exists: dangling' (train, evaluate)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    clip = make_video(tmp_path / "c.mp4", frames=2, size=(32, 32))
    day, night = images / "day", images / "night"
    source = {
        "extract": [clip, "-o"],
        "relabel": ["--folder", f"day={day}", "-o"],
        "train": ["tiny", "--day", day, "--night", night, "--steps", "1", "--out"],
        "evaluate": ["--day", day, "--night", night, "--model", media["model"], "-o"],
    }[command]
    refused(tmp_path, 1, "is a link to", command, *source, tmp_path / "dangling" / "sub", "-q")
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("command", ["convert", "preview", "extract", "evaluate"])
def test_an_output_under_a_link_loop_is_one_line(
    command: str, images: Path, media, tmp_path: Path
) -> None:
    # Path.resolve() raised RuntimeError('Symlink loop from ...'): a traceback (convert,
    # preview, export, evaluate)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    clip = make_video(tmp_path / "c.mp4", frames=2, size=(32, 32))
    model = ["--model", media["model"]]
    args = {
        "convert": [clip, "--to", "night", *model, "-o", tmp_path / "loop" / "o.mp4"],
        "preview": [clip, "--to", "night", *model, "-o", tmp_path / "loop" / "o.png"],
        "extract": [clip, "-o", tmp_path / "loop"],
        "evaluate": ["--day", images / "day", "--night", images / "night", *model, "-o"],
    }[command]
    if command == "evaluate":
        args.append(tmp_path / "loop")
    refused(tmp_path, 1, "loop", command, *args, "-q")


def _packet_times(path: Path, kind: str) -> list[int]:
    import av

    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [p.pts for p in container.demux(stream) if p.size]


def _packet_dts(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [p.dts for p in container.demux(video=0) if p.size]


def test_an_avi_into_an_avi_keeps_its_audio_times(media, tmp_path: Path) -> None:
    # AAC copied from an AVI into an AVI kept the block size its reader read, and the output's
    # reader timed it by bytes (0, 0, 1, 1, 1, 2...); converting that file again was a traceback
    clip = make_video(tmp_path / "a.avi", frames=10, audio=True)
    assert _packet_times(clip, "audio") == list(range(10))
    model = ["--model", media["model"], "-q"]
    once, twice = tmp_path / "once.avi", tmp_path / "twice.mp4"
    assert invoke("convert", clip, "--to", "night", "-o", once, *model).exit_code == 0
    times = _packet_times(once, "audio")
    assert times == sorted(set(times)) and len(times) >= 10
    result = invoke("convert", once, "--to", "night", "-o", twice, *model)
    assert result.exit_code == 0, result.output


def test_an_mp4_into_an_avi_counts_frames_at_the_clips_rate(media, tmp_path: Path) -> None:
    # an AVI counts frames: given the MP4's 1/12800 its muxer wrote 24 empty chunks a frame
    from fractions import Fraction

    from d2nvideo.video.probe import probe

    pts = [512 * i for i in range(12)]  # 25 fps
    clip = make_video(tmp_path / "a.mp4", pts=pts, time_base=Fraction(1, 12800))
    out = tmp_path / "o.avi"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    info = probe(out)
    assert (info.time_base, info.frames, info.fps) == (Fraction(1, 25), 12, 25)


@pytest.mark.parametrize("name", ["a.mpd", "a.m3u8", "a.exr"])
def test_convert_refuses_outputs_written_with_files_beside_them(
    name: str, media, tmp_path: Path
) -> None:
    # DASH wrote init-stream0.m4s and chunk-stream0-*.m4s beside the .mpd, outside the
    # temporary-file-and-rename: a second run's replaced the first's unasked
    clip = make_video(tmp_path / "a.mp4", frames=4)
    args = ["convert", clip, "--to", "night", "-o", tmp_path / name, "-q"]
    refused(tmp_path, 2, "written with others beside it", *args, "--model", media["model"])


def _two_videos(path: Path, sizes: list[tuple[int, int]], frames: list[int]) -> Path:
    import av

    with av.open(str(path), "w") as out:
        streams = []
        for width, height in sizes:
            s = out.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = width, height, "yuv420p"
            streams.append(s)
        for i in range(max(frames)):
            for s, n in zip(streams, frames, strict=True):
                if i < n:
                    image = frame_image(i, s.width, s.height)
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    frame.pts = i
                    out.mux(s.encode(frame))
        for s in streams:
            out.mux(s.encode())
    return path


def test_convert_takes_the_largest_video_stream_and_says_what_it_leaves(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the first stream alone was converted, whatever it was: here a one-frame 32x24 picture
    # stored before the 10-frame video, and nothing said the video was left out
    import logging

    clip = _two_videos(tmp_path / "two.mkv", [(32, 24), (64, 48)], [1, 10])
    out = tmp_path / "o.mkv"
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"])
    assert result.exit_code == 0, result.output
    info = read_video(out)
    assert (len(info.times), info.width) == (10, 64)
    assert "2 video streams: stream 1 (64x48) is the one used, stream 0 left out" in caplog.text


def _with_cover(path: Path) -> Path:
    """A 10-frame MP4 with a cover image (a JPEG with the attached-picture disposition)."""
    import av

    with av.open(str(path), "w") as out:
        vs, cover = _add_picture(out), out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(frame_image(0, 32, 32), format="rgb24")
        picture.pts = 0
        out.mux([*cover.encode(picture), *cover.encode()])
        _mux_pictures(out, vs, 10)
    return path


def test_a_cover_image_and_a_second_video_are_named_not_dropped_without_a_word(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # an MP4's cover image went missing from the output without a word, and info listed
    # neither it nor a rear camera's second video stream
    import logging

    clip, out = _with_cover(tmp_path / "cover.mp4"), tmp_path / "o.mp4"
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"])
    assert result.exit_code == 0, result.output
    assert "video stream 1 (a cover image) is left out" in caplog.text
    assert "mjpeg (cover image, not converted)" in invoke("info", clip).output
    rear = _two_videos(tmp_path / "two.mkv", [(64, 48), (32, 24)], [3, 3])
    assert "h264 (not converted)" in invoke("info", rear).output


def test_convert_names_a_data_stream_it_leaves_out(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a camera's GPS or timecode track went missing from the output without a word
    import logging
    from fractions import Fraction

    import av

    clip = tmp_path / "gps.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        data = out.add_data_stream("bin_data")
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(frame_image(i, 64, 48), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            packet = av.Packet(b"gps %d" % i)
            packet.stream, packet.pts, packet.dts = data, i, i
            packet.time_base = Fraction(1, 25)
            out.mux(packet)
        out.mux(video.encode())
    with caplog.at_level(logging.WARNING):
        result = invoke(
            "convert", clip, "--to", "night", "-o", tmp_path / "o.mp4", "--model", media["model"]
        )
    assert result.exit_code == 0, result.output
    assert "data stream 1" in caplog.text and "left out" in caplog.text


def _with_mp3(path: Path) -> Path:
    """A 1-s 25-fps clip with an MP3 track (the codec's decoder is named "mp3float")."""
    import av

    with av.open(str(path), "w") as out:
        vs, sound = _add_picture(out), out.add_stream("mp3", rate=44100)
        sound.layout = "mono"
        _mux_pictures(out, vs, 25)
        _mux_silence(out, sound, range(44100 // 1152 + 1), 1152, "s16p")
        out.mux(sound.encode())
    return path


def test_an_mp3_track_is_copied_into_an_mpegts(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the copier asked for its decoder's name, "mp3float", which MPEG-TS's list of codecs
    # does not hold: the MP3 was re-encoded to AAC with a warning naming "mp3float"; info
    # called it "mp3float" too
    import logging

    import av

    from d2nvideo.video.probe import probe

    clip, out = _with_mp3(tmp_path / "a.mp4"), tmp_path / "o.ts"
    assert probe(clip).audio[0].codec == "mp3"
    with caplog.at_level(logging.WARNING):
        result = invoke(
            "convert",
            clip,
            "--to",
            "night",
            "-o",
            out,
            "--model",
            media["model"],
        )
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as written:
        assert written.streams.audio[0].codec_context.codec.canonical_name == "mp3"
    assert "re-encoded" not in caplog.text and "mp3float" not in caplog.text


def _two_sounds(path: Path) -> Path:
    """A 1-s clip with two silent AAC tracks: a commentary first, the main sound (default,
    German, titled) second, as a film's or a dashcam's edit may have them."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w") as out:
        vs, sounds = _add_picture(out), [out.add_stream("aac", rate=8000) for _ in range(2)]
        sounds[0].disposition, sounds[1].disposition = Disposition.comment, Disposition.default
        sounds[1].metadata.update(language="deu", title="main")
        for sound in sounds:
            sound.layout = "mono"
        _mux_pictures(out, vs, 25)
        for sound in sounds:
            _mux_silence(out, sound, range(9))
            out.mux(sound.encode())
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_copied_and_re_encoded_tracks_keep_their_dispositions(
    suffix: str, media, tmp_path: Path
) -> None:
    # every track was written unmarked: a player took the first, the commentary, for the
    # sound, and a forced subtitle was no longer shown by itself
    import av

    out = tmp_path / f"o{suffix}"
    clip = _two_sounds(tmp_path / "two.mkv")
    result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q")
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as written:
        first, second = (s.disposition for s in written.streams.audio)
    mark = av.stream.Disposition
    assert second & mark.default and not first & mark.default
    assert suffix == ".webm" or first & mark.comment  # WebM has no commentary flag


@pytest.mark.parametrize(
    "suffix, lost",
    [(".mkv", None), (".ts", "title 'main'"), (".mov", None), (".avi", "'deu'")],
)
def test_a_track_tag_the_output_cannot_keep_is_named(
    suffix: str, lost: str | None, media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # README says tracks keep their language and title; a .ts dropped the title, an .avi the
    # language, each without a word; a .mov lost 'deu' (QuickTime lists German as 'ger')
    import logging

    import av

    clip, out = _two_sounds(tmp_path / "two.mkv"), tmp_path / f"o{suffix}"
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"])
    assert result.exit_code == 0, result.output
    warned = [r.getMessage() for r in caplog.records if "could not keep the" in r.getMessage()]
    expected = [] if lost is None else [m for m in warned if f"{lost} of track 2" in m]
    assert warned == expected and len(expected) == (lost is not None), warned
    with av.open(str(out)) as written:
        language = written.streams.audio[1].metadata.get("language")
    assert language == {".mov": "ger", ".avi": None}.get(suffix, "deu")


def _silent_first(path: Path) -> Path:
    """A 4-s MKV with two AAC tracks: an English one that stops after a second (a commentary
    of the start), then the main, German one throughout."""
    import av

    with av.open(str(path), "w") as out:
        vs, sounds = _add_picture(out), [out.add_stream("aac", rate=8000) for _ in range(2)]
        sounds[0].metadata["language"], sounds[1].metadata["language"] = "eng", "deu"
        for sound in sounds:
            sound.layout = "mono"
        _mux_pictures(out, vs, 100)
        for sound, blocks in zip(sounds, (7, 33), strict=True):
            _mux_silence(out, sound, range(blocks))
            out.mux(sound.encode())
    return path


def test_a_track_left_empty_by_a_segment_does_not_move_the_others_tags(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # an MP4 leaves out a track given no packet, so the tracks after it moved up: the German
    # sound, kept as track 1, was said to have lost its language, and the English track's
    # loss was told as its language's
    import logging

    import av

    clip, out = _silent_first(tmp_path / "two.mkv"), tmp_path / "o.mp4"
    model = ["--model", media["model"], "--start", "2", "--duration", "1"]
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", clip, "--to", "night", "-o", out, *model)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as written:
        assert [s.metadata.get("language") for s in written.streams.audio] == ["deu"]
    assert "could not keep" not in caplog.text
    assert "the .mp4 file leaves out track 1: nothing in it fell within" in caplog.text


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_the_video_stream_keeps_its_title_language_and_mark(
    suffix: str, media, tmp_path: Path
) -> None:
    # a front camera's video track lost its title and language (an .mp4's read "und"), and
    # its default mark, while its sound's were kept
    import av

    clip, out = tmp_path / "front.mkv", tmp_path / f"o{suffix}"
    with av.open(str(clip), "w") as written:
        vs = _add_picture(written)
        vs.metadata.update(title="front", language="deu")
        vs.disposition = av.stream.Disposition.default
        _mux_pictures(written, vs, 5)
    result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q")
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as written:
        video = written.streams.video[0]
        tags = (
            video.metadata.get("title") or video.metadata.get("name"),
            video.metadata["language"],
        )
        assert tags == ("front", "deu") and video.disposition & av.stream.Disposition.default


def test_a_timecode_track_is_not_taken_for_the_chapter_track(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a data stream of as many samples as the clip has chapters was taken for an MP4's
    # chapter titles: a timecode track (one sample) in a clip of one chapter went missing
    # without a word
    import logging

    import av

    clip, out = tmp_path / "tc.mp4", tmp_path / "o.mkv"
    with av.open(str(clip), "w") as written:
        vs = _add_picture(written)
        vs.metadata["timecode"] = "01:00:00:00"
        chapter = {"id": 1, "start": 0, "end": 2000, "time_base": Fraction(1, 1000)}
        written.set_chapters([{**chapter, "metadata": {"title": "a"}}])
        _mux_pictures(written, vs, 50)
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"])
    assert result.exit_code == 0, result.output
    assert "(TimeCodeHandler) is left out" in caplog.text


def test_a_segment_does_not_take_its_source_s_timecode(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the video's tags were copied with its timecode, the source's first frame's: a segment
    # from --start 2 read 01:00:00:00 (its first frame is the source's 01:00:02:00), while its
    # timecode track was named as left out
    import logging

    import av

    clip, out = tmp_path / "tc.mp4", tmp_path / "o.mp4"
    with av.open(str(clip), "w") as written:
        vs = _add_picture(written)
        vs.metadata["timecode"] = "01:00:00:00"
        _mux_pictures(written, vs, 100)
    model = ["--model", media["model"], "--start", "2", "--duration", "1"]
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", clip, "--to", "night", "-o", out, *model)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as written:
        assert "timecode" not in written.streams.video[0].metadata
    assert "data stream 1 (TimeCodeHandler) is left out" in caplog.text


def _with_chapters(path: Path) -> Path:
    """A 2-s clip with two chapters, 'a' to 1.2 s and 'b' after (an MP4 stores their titles
    as a text track, which FFmpeg reads back as a data stream)."""
    import av

    ms = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        vs = _add_picture(out)
        out.set_chapters(
            [
                {"id": 1, "start": 0, "end": 1200, "time_base": ms, "metadata": {"title": "a"}},
                {"id": 2, "start": 1200, "end": 2000, "time_base": ms, "metadata": {"title": "b"}},
            ]
        )
        _mux_pictures(out, vs, 50)
    return path


def test_chapters_are_kept_and_cut_to_a_segment(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # every output lost the clip's chapters without a word, and an MP4's chapter track was
    # named as a "data stream (SubtitleHandler)" left out
    import logging

    import av

    clip, model = _with_chapters(tmp_path / "c.mp4"), ["--model", media["model"], "-q"]
    runs = {".mkv": [], ".mp4": ["--start", "1", "--duration", "0.6"], ".ts": []}
    with caplog.at_level(logging.WARNING):
        for suffix, cut in runs.items():
            out = tmp_path / f"o{suffix}"
            assert invoke("convert", clip, "--to", "night", "-o", out, *model, *cut).exit_code == 0
    found = {}
    for suffix in (".mkv", ".mp4"):
        with av.open(str(tmp_path / f"o{suffix}")) as written:
            found[suffix] = [
                (
                    c["metadata"]["title"],
                    float(c["start"] * c["time_base"]),
                    float(c["end"] * c["time_base"]),
                )
                for c in written.chapters()
            ]
    assert found == {
        ".mkv": [("a", 0, 1.2), ("b", 1.2, 2)],
        ".mp4": [("a", 0, 0.2), ("b", 0.2, 0.6)],
    }
    assert "data stream" not in caplog.text
    assert "the .ts file could not keep the clip's 2 chapters" in caplog.text


def test_a_variable_rate_clip_into_an_avi_keeps_its_fast_frames_apart(
    media, tmp_path: Path
) -> None:
    # 1 s at 30 fps, then 1 s at 10 fps (a phone in the dark): at the average rate's tick
    # (1/22) the fast frames were pushed a tick on each, half a second behind the sound
    from fractions import Fraction

    from d2nvideo.video.probe import probe

    pts = [round(i * 1000 / 30) for i in range(30)] + [1000 + 100 * i for i in range(10)]
    clip = make_video(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 1000))
    out = tmp_path / "o.avi"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    # the stored (decoding) times: an AVI stores no others, and FFmpeg's reader guesses the
    # presentation time of H.264 there as the next frame's
    stored = _packet_dts(out)
    assert probe(out).time_base == Fraction(1, 30)
    assert stored == list(range(30)) + [30 + 3 * i for i in range(10)]


def test_an_mpegts_with_audio_converts_into_an_avi(media, tmp_path: Path) -> None:
    # its AAC (ADTS, no codec header) copied into the AVI made the muxer refuse the file: a
    # traceback ending in 'Invalid argument'
    clip = make_video(tmp_path / "a.ts", frames=10, audio=True)
    out = tmp_path / "o.avi"
    result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q")
    assert result.exit_code == 0, result.output
    assert len(read_video(out).audio) > 0


def test_a_muxer_refusing_a_packet_is_one_line(
    media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what no check foresees (an MPEG-TS's AAC into an AVI was one) ended in a traceback
    import av

    import d2nvideo.video.encode as encode

    def refuse(*args: object) -> None:
        raise av.error.ArgumentError(22, "Invalid argument")

    monkeypatch.setattr(encode._Writer, "_mux", refuse)
    clip = make_video(tmp_path / "a.mp4", frames=4)
    out = tmp_path / "o.mp4"
    args = ["convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q"]
    result = invoke(*args)
    fails(result, 1, f"writing '{out}' failed: Invalid argument")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_an_mp4_with_audio_into_an_avi_keeps_its_frames_in_their_slots(
    media, tmp_path: Path
) -> None:
    # the AAC's priming packet (before 0) made FFmpeg shift the video behind it by writing
    # empty frames: two after the first, the picture a tenth of a second late
    clip = make_video(tmp_path / "a.mp4", frames=12, audio=True)
    out = tmp_path / "o.avi"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    assert _packet_dts(out) == list(range(12))
    assert len(read_video(out).audio) > 0


def test_an_avi_with_b_frames_shows_each_frame_in_its_slot(tmp_path: Path) -> None:
    # each frame came out of the decoder with the slot of the packet that let it out, two
    # later: every frame two slots late, behind its sound (found by a helper). (With gaps
    # between frames an AVI's B-frames cannot be timed at all: its slots are in decode order.)
    from d2nvideo.video.decode import decode_frames, frames_at

    clip = make_video(tmp_path / "b.avi", frames=20, options={"bf": "2", "g": "8"})
    assert [f.pts for f in decode_frames(clip)] == list(range(20))
    assert [f.pts for f in decode_frames(clip, 0.4, 0.2)] == [10, 11, 12, 13, 14]
    assert [f.pts for f in frames_at(clip, [0.2, 0.6])] == [5, 15]


@pytest.mark.parametrize(
    "ms, tick",
    [
        ([0, 40, 80, 200, 240, 500, 700, 1000], Fraction(1, 50)),  # FFmpeg's rate: 30
        ([*(round(i * 1000 / 30) for i in range(30)), *range(1000, 3000, 200)], Fraction(1, 30)),
    ],
    ids=["gap", "phone"],
)
def test_an_avi_holds_a_variable_rate_clips_times(
    ms: list[int], tick: Fraction, media, tmp_path: Path, caplog
) -> None:
    """An AVI counts frames at one rate: FFmpeg's base rate (30 for the first clip) or the
    average moved frames by up to 47 ms (found by a helper); now the lowest rate whose slots
    hold every time within a millisecond."""
    clip = make_video(tmp_path / "v.mkv", pts=ms, time_base=Fraction(1, 1000), fps=25)
    out = tmp_path / "o.avi"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    import av

    with av.open(str(out)) as container:
        assert container.streams.video[0].time_base == tick
    moved = [abs(float(d * tick) - m / 1000) for d, m in zip(_packet_dts(out), ms, strict=True)]
    assert max(moved) <= 0.0015
    assert not [r for r in caplog.records if "no AVI frame rate" in r.getMessage()]


def test_a_variable_rate_avi_converts_again(media, tmp_path: Path) -> None:
    # an AVI's header counts slots, the empty ones too: d2nvideo's own variable-rate .avi
    # (8 frames in 51 slots) was refused as "decoded 8 of 51 frames", after all the work
    from d2nvideo.video.probe import probe

    ms = [0, 40, 80, 200, 240, 500, 700, 1000]
    clip = make_video(tmp_path / "v.mkv", pts=ms, time_base=Fraction(1, 1000), fps=25)
    avi, back = tmp_path / "o.avi", tmp_path / "back.mp4"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", avi, *model).exit_code == 0
    info = probe(avi)
    assert (info.frames, info.frames_exact) == (8, True)
    result = invoke("convert", avi, "--to", "day", "-o", back, *model)
    assert result.exit_code == 0, result.output
    assert len(read_video(back).times) == 8


def test_an_avi_whose_writer_stopped_has_no_count_from_its_first_packets(
    tmp_path: Path,
) -> None:
    # a dashcam's AVI cut off by a power loss has no count in its header (0) and no index:
    # the few packets FFmpeg had read to open it were taken for the index, "41 frames" (not
    # estimated) for a clip of 60
    from d2nvideo.video.probe import probe

    data = bytearray(make_video(tmp_path / "whole.avi", frames=60).read_bytes())
    for tag, at in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames, dwLength: not yet written
        i = data.find(tag) + 8 + at
        data[i : i + 4] = bytes(4)
    i = data.rfind(b"idx1")
    data[i : i + 4] = b"JUNK"  # the index is written last
    clip = tmp_path / "cut.avi"
    clip.write_bytes(data)
    assert not probe(clip).frames_exact


def test_an_avi_cut_in_its_index_keeps_its_headers_count(tmp_path: Path) -> None:
    # a copy that lost the last bytes of an AVI lost the end of its index, the last thing
    # written: the index, short of the last frame by one slot, was taken as whole ("299",
    # not estimated, for 300 frames that all decode; the bar ended at 300/299)
    from d2nvideo.video.probe import probe

    data = make_video(tmp_path / "whole.avi", frames=300).read_bytes()
    clip = tmp_path / "cut.avi"
    clip.write_bytes(data[:-16])  # an index entry is 16 bytes
    info = probe(clip)
    assert (info.frames, info.frames_exact) == (300, True)


def test_a_container_that_takes_no_h264_gets_its_own_codecs(media, tmp_path: Path) -> None:
    # a .mpg was refused ("cannot take libx264"), and with --codec mpeg1video it failed with
    # "Invalid argument" on a 30-fps clip timed in 1/30000 s: MPEG-1 counts frames at a rate
    # of its list; its sound went missing (AAC "cannot go into mpeg; left out")
    clip = make_video(
        tmp_path / "v.mp4",
        pts=[i * 1000 for i in range(9)],
        time_base=Fraction(1, 30000),
        fps=30,
        audio=True,
    )
    out = tmp_path / "o.mpg"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    import av

    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg1video"
        assert container.streams.audio[0].codec_context.name == "mp2"
    back, source = read_video(out), read_video(clip)
    assert [t - back.times[0] for t in back.times] == source.times


def test_a_clip_no_mpeg_rate_holds_is_refused_before_any_work(media, tmp_path: Path) -> None:
    model = ["--model", media["model"]]
    args = ("convert", media["vfr"], "--to", "night", "-o", tmp_path / "o.mpg", *model)
    refused(
        tmp_path,
        1,
        "MPEG-1 video (mpeg1video) plays its frames evenly at one of these rates",
        *args,
    )


@pytest.mark.parametrize(
    "ms, args, fps",
    [
        ([i * 1000 // 15 for i in range(12)], [], None),  # 15 fps: written at 30, ran double
        ([*range(0, 440, 40), *range(470, 800, 40)], ["--duration", "0.3"], 25),  # a segment
        ([*range(0, 440, 40), *range(470, 800, 40)], [], None),  # the whole: a jump at 0.44 s
        # --start just after a frame: judged as the decoder takes frames (within half a tick)
        (
            [*range(0, 480, 40), *range(470, 800, 40)],
            ["--start", "0.4405", "--duration", "0.3"],
            25,
        ),
    ],
    ids=["15fps", "even-segment", "uneven-whole", "start-after-a-frame"],
)
def test_mpeg_takes_frames_that_follow_one_of_its_rates_evenly(
    ms: list[int], args: list[str], fps: int | None, media, tmp_path: Path
) -> None:
    # a review: every time on a slot was enough, so a 15-fps clip was written at 30 with every
    # other slot empty and played at double speed (MPEG-1 video has no time for most frames);
    # and the whole file was judged, so an even segment of an uneven clip was refused
    ticks = [m * 90 for m in sorted(set(ms))]
    clip = make_video(tmp_path / "v.mp4", pts=ticks, time_base=Fraction(1, 90000), fps=25)
    out = tmp_path / "o.mpg"
    result = invoke("convert", clip, "--to", "night", "-o", out, "--model", media["model"], *args)
    if fps is None:
        fails(result, 1, "do not follow one of them evenly")
        assert not out.exists()
        return
    assert result.exit_code == 0, result.output
    times = read_video(out).times
    assert len(times) in (7, 8)  # 0.3 s at 25 fps
    assert [t - times[0] for t in times] == [Fraction(k, fps) for k in range(len(times))]


def test_mpeg_takes_an_mpeg_ps_and_a_stream_without_times(media, tmp_path: Path) -> None:
    # a second review: FFmpeg's MPEG-PS reader gives a picture now and then its neighbour's
    # time (two a slot, then none), so a .mpg (d2nvideo's own too) was refused as uneven;
    # and a raw H.264 stream, whose packets hold no times, went out at 60 with slots empty
    import av

    ps = tmp_path / "in.mpg"
    with av.open(str(ps), "w") as out:
        _mux_pictures(out, _add_picture(out, "mpeg1video", Fraction(30000, 1001)), 400)
    raw = make_video(tmp_path / "in.h264", frames=20, fps=25)
    model = ["--model", media["model"], "-q"]
    for clip, count, fps in ((ps, 400, Fraction(30000, 1001)), (raw, 20, Fraction(25))):
        out = tmp_path / f"o_{clip.suffix[1:]}.mpg"
        result = invoke("convert", clip, "--to", "night", "-o", out, *model)
        assert result.exit_code == 0, result.output
        with av.open(str(out)) as back:
            assert back.streams.video[0].average_rate == fps
            assert sum(1 for _ in back.decode(video=0)) == count


def test_a_first_frame_half_a_slot_off_leaves_no_slot_empty() -> None:
    from types import SimpleNamespace

    from d2nvideo.video.ticks import Clock

    clock = Clock(0, Fraction(1, 30), from_first=True)  # MPEG's; an AVI's is unchanged
    stamped = []
    for k in range(6):  # frames at 1/60 + k/30 s: half a slot off the 1/30 grid
        frame = SimpleNamespace(pts=1 + 2 * k, time_base=Fraction(1, 60))
        stamped.append(clock.stamp(SimpleNamespace(), frame).pts)  # type: ignore[arg-type]
    assert stamped == [1, 2, 3, 4, 5, 6]  # round half to even gave 0, 2, 3, 4, 5, 6


def test_crf_sets_the_quality_of_ffmpegs_mpeg_encoders(media, tmp_path: Path) -> None:
    # --crf went to x264/x265/VP9/AV1 only: MPEG-4 in an .avi came out at FFmpeg's 200 kbit/s
    model = ["--model", media["model"], "-q", "--codec", "mpeg4"]
    sizes = []
    for crf in (4, 40):
        out = tmp_path / f"o{crf}.avi"
        clip = media["long"]
        assert (
            invoke("convert", clip, "--to", "night", "-o", out, "--crf", crf, *model).exit_code == 0
        )
        sizes.append(out.stat().st_size)
    assert sizes[0] > 2 * sizes[1]


def _clip_with_sound(path: Path, codec: str, rate: int) -> Path:
    """A Matroska clip of ``media``'s kind whose sound is ``codec`` at ``rate`` Hz."""
    import av

    with av.open(str(path), "w") as out:
        vs = _add_picture(out)
        sound = out.add_stream(codec, rate=rate)
        sound.layout = "mono"
        _mux_pictures(out, vs, 10)
        for k in range(rate * 4 // 10 // 960):
            samples = np.full((1, 960), 0.1 * (k % 2), np.float32)
            chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = rate, k * 960
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    return path


@pytest.mark.parametrize(
    "suffix, source, codec, rate",
    [(".mov", ("libopus", 48000), "aac", 48000), (".mpg", ("aac", 8000), "mp2", 16000)],
    ids=["opus-mov", "8kHz-mpg"],
)
def test_sound_a_container_refuses_is_re_encoded_at_a_rate_it_takes(
    suffix: str, source: tuple[str, int], codec: str, rate: int, media, tmp_path: Path
) -> None:
    # an MKV's Opus into .mov failed with "Invalid argument" (FFmpeg lists Opus as a MOV codec
    # and refuses it there); MP2 takes no 8 kHz sound
    clip = _clip_with_sound(tmp_path / "v.mkv", *source)
    out = tmp_path / f"o{suffix}"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    import av

    with av.open(str(out)) as container:
        sound = container.streams.audio[0].codec_context
        assert (sound.name, sound.sample_rate) == (codec, rate)
        assert sum(f.samples for f in container.decode(audio=0)) >= 0.35 * rate


def test_an_avi_of_jittered_times_says_it_moves_them(media, tmp_path: Path, caplog) -> None:
    # times a few ms off any rate: no AVI rate holds them, and the frames move to its slots
    ticks = [0, 347, 653, 1021, 1318, 1689, 2017, 2356, 2671, 3012]  # of 1/10000 s
    clip = make_video(tmp_path / "v.mp4", pts=ticks, time_base=Fraction(1, 10000), fps=30)
    out = tmp_path / "o.avi"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    warned = [r.getMessage() for r in caplog.records if "no AVI frame rate" in r.getMessage()]
    assert len(warned) == 1 and "'v.mp4' has frame times" in warned[0]
    assert "moved by less than one" in warned[0]
    assert len(read_video(out).times) == len(ticks)
    import av

    with av.open(str(out)) as container:
        tick = container.streams.video[0].time_base
    moved = [abs(float(d * tick) - t / 10000) for d, t in zip(_packet_dts(out), ticks, strict=True)]
    assert 0.001 < max(moved) < float(tick)  # moved, by less than a slot


def test_an_avi_of_a_clip_whose_sound_starts_first_is_not_called_jittered(
    media, tmp_path: Path, caplog
) -> None:
    # an MPEG-TS's AAC begins 46 ms before its picture, so the AVI's 0 is the sound's and
    # the even 25-fps frames sat off its grid: "no AVI frame rate holds" them, for every such .ts
    clip, out = _ts_from(tmp_path / "late.ts", 10 * 3600 * 90000), tmp_path / "o.avi"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    assert not [r for r in caplog.records if "no AVI frame rate" in r.getMessage()]
    # slots 1 to 20, a slot after the sound as in the clip (FFmpeg's reader gives an H.264
    # AVI's first frame dts 0 whatever slot it is stored in)
    assert _packet_dts(out)[1:] == list(range(2, 21))


def test_an_avi_s_frames_are_read_at_the_slots_they_are_stored_in(media, tmp_path: Path) -> None:
    # FFmpeg guesses an H.264 frame's time in an AVI as the next frame's slot: every frame was
    # read one slot late, and each AVI to AVI conversion added a slot
    from d2nvideo.video.decode import decode_frames

    clip = make_video(tmp_path / "a.mp4", frames=8)
    model = ["--model", media["model"], "-q"]
    once, twice = tmp_path / "once.avi", tmp_path / "twice.avi"
    assert invoke("convert", clip, "--to", "night", "-o", once, *model).exit_code == 0
    assert [f.pts for f in decode_frames(once)] == list(range(8)) == _packet_dts(once)
    assert invoke("convert", once, "--to", "night", "-o", twice, *model).exit_code == 0
    assert [f.pts for f in decode_frames(twice)] == list(range(8))


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate"),
        MemoryError(),
    ],
)
def test_running_out_of_memory_is_one_line(
    error: BaseException, media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 4K frame at --quality full takes 4.6 GB: on a smaller machine, torch's allocator
    # error (or ONNX Runtime's) was a traceback
    import d2nvideo.pipeline

    def exhausted(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(d2nvideo.pipeline, "convert_video", exhausted)
    clip = make_video(tmp_path / "a.mp4", frames=2)
    args = ["convert", clip, "--to", "night", "-o", tmp_path / "o.mp4", "-q"]
    fails(invoke(*args, "--model", media["model"]), 1, "out of memory: use smaller frames")


def test_a_stream_whose_frame_size_changes_converts_at_the_first_size(
    media, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # two recordings joined (a camera switching mode): the bar detection indexed a row the
    # smaller frames do not have, a traceback
    import logging

    parts = [
        make_video(tmp_path / f"{i}.h264", frames=6, size=size)
        for i, size in enumerate([(96, 64), (64, 48)])
    ]
    joined = tmp_path / "joined.h264"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    out = tmp_path / "o.mp4"
    with caplog.at_level(logging.WARNING):
        result = invoke("convert", joined, "--to", "night", "-o", out, "--model", media["model"])
    assert result.exit_code == 0, result.output
    video = read_video(out)
    assert (len(video.times), video.width, video.height) == (12, 96, 64)
    assert "changes its frame size part-way (96x64 to 64x48)" in caplog.text


@pytest.mark.parametrize("audio", [False, True])
def test_mpegts_files_joined_end_to_end_are_refused_in_one_line(
    audio: bool, media, tmp_path: Path
) -> None:
    # the clock restarts part-way: the second part's frames were squashed into one instant
    # (a tick apart), and with audio the writer refused the file in a line that said nothing
    part = make_video(tmp_path / "part.ts", frames=25, audio=audio)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)
    args = ["convert", joined, "--to", "night", "-o", tmp_path / "o.mp4", "-q"]
    refused(
        tmp_path, 1, "in time part-way: files joined end to end?", *args, "--model", media["model"]
    )


def test_a_segment_reads_its_sound_no_further_than_it_needs(media, tmp_path: Path) -> None:
    # the copier read the sound to the end of the file for every segment (an hour of it for
    # a second at the start of a long clip), and so a segment of the first of two recordings
    # joined end to end was refused for the second's clock, which its picture never reached
    import av

    part = tmp_path / "part.ts"  # 40 s at 2 fps, its sound interleaved
    with av.open(str(part), "w") as out:
        vs, sound = _add_picture(out, rate=2), out.add_stream("aac", rate=8000)
        sound.layout = "mono"
        for i in range(80):
            picture = av.VideoFrame.from_ndarray(frame_image(i, 64, 48), format="rgb24")
            picture.pts = i
            out.mux(vs.encode(picture))
            _mux_silence(out, sound, range(i * 4000 // 1024, (i + 1) * 4000 // 1024))
        out.mux([*vs.encode(), *sound.encode()])
    joined, out_path = tmp_path / "joined.ts", tmp_path / "o.mp4"
    joined.write_bytes(part.read_bytes() * 2)
    model = ["--model", media["model"], "--start", "1", "--duration", "1", "-q"]
    result = invoke("convert", joined, "--to", "night", "-o", out_path, *model)
    assert result.exit_code == 0, result.output
    with av.open(str(out_path)) as written:
        assert written.streams.audio[0].frames > 0


def _ts_from(path: Path, first: int, frames: int = 20) -> Path:
    """An MPEG-TS at 25 fps whose clock reads ``first`` (90 kHz ticks, taken modulo 2**33 as
    the format does) at its first frame, with a tone that starts with the picture."""
    import av

    with av.open(str(path), "w") as out:
        vs = _add_picture(out)
        a = out.add_stream("aac", rate=22050)
        a.layout = "mono"
        _mux_pictures(out, vs, frames, pts=lambda i: first + i * 3600, time_base=Fraction(1, 90000))
        for k in range(frames * 22050 // 25 // 1024 + 1):
            tone = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            tone.sample_rate = 22050
            tone.pts, tone.time_base = first + k * 1024 * 90000 // 22050, Fraction(1, 90000)
            out.mux(a.encode(tone))
        out.mux(a.encode())
    return path


def test_a_matroska_clip_lasts_as_long_as_its_picture(tmp_path: Path) -> None:
    # a sound (or a GPS subtitle) that outlasts the picture set the clip's duration: info
    # said 5 s and an estimated 50 frames for 30, and preview's middle frame was none
    from d2nvideo.video.probe import probe

    info = probe(_video_with_longer_audio(tmp_path / "a.mkv"))
    assert abs(info.duration - 3.0) < 0.01 and info.frames == 30, (info.duration, info.frames)


def test_a_clock_that_starts_below_zero_keeps_every_frame_and_the_sound_in_step(
    media, tmp_path: Path
) -> None:
    # an MPEG-TS whose 33-bit clock wraps part-way reads from -0.4 s: the sound came 0.4 s
    # late in every output, and an .mp4's edit list hid the frames before 0 (12 of 20 played)
    import av

    clip = _ts_from(tmp_path / "wrap.ts", 2**33 - 10 * 3600)
    for suffix in (".mp4", ".mkv"):
        out = tmp_path / f"o{suffix}"
        assert (
            invoke(
                "convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q"
            ).exit_code
            == 0
        )
        with av.open(str(out)) as container:
            firsts = {}
            for packet in container.demux():
                if packet.pts is not None:
                    firsts.setdefault(packet.stream.type, float(packet.pts * packet.time_base))
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 20
        assert abs(firsts["audio"] - firsts["video"]) < 0.05, firsts


def test_a_writer_that_fails_and_then_fails_to_close_is_one_output_error(
    media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # joined MPEG-TS files, their jump ahead let through: the MP4 muxer failed on the sound,
    # then again at close, and the second failure, raised from the first one's cleanup, was a
    # traceback
    import d2nvideo.video.decode

    monkeypatch.setattr(d2nvideo.video.decode, "AHEAD_S", 1e9)
    a, b = _ts_from(tmp_path / "a.ts", 100 * 90000), _ts_from(tmp_path / "b.ts", 126000)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    args = ["convert", joined, "--to", "night", "-o", tmp_path / "o.mp4", "-q"]
    refused(tmp_path, 1, "o.mp4' failed: ", *args, "--model", media["model"])


def test_a_parking_mode_clips_hour_between_frames_is_kept(tmp_path: Path) -> None:
    # the refusal of a clock that jumps an hour ahead (an MPEG-TS's restart read as a wrap)
    # refused a motion-triggered Matroska clip, info and --salvage included
    from d2nvideo.video.decode import decode_frames

    ms = [*range(0, 400, 40), *range(3_660_000, 3_660_400, 40)]
    clip = make_video(tmp_path / "parked.mkv", pts=ms, time_base=Fraction(1, 1000))
    assert [f.pts for f in decode_frames(clip)] == ms


def test_mpegts_files_joined_with_a_clock_read_as_a_wrap_are_refused(media, tmp_path: Path) -> None:
    # a's clock at 100 s, b's restarting at 1.4 s: FFmpeg reads the step back as a 33-bit wrap,
    # 26.5 h ahead; a .mkv of 26.5 hours was written, and a .mp4 failed with a traceback
    a, b = _ts_from(tmp_path / "a.ts", 100 * 90000), _ts_from(tmp_path / "b.ts", 126000)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    for suffix in (".mp4", ".mkv"):
        args = ["convert", joined, "--to", "night", "-o", tmp_path / f"o{suffix}", "-q"]
        refused(
            tmp_path,
            1,
            "jumps 26.5 h ahead in time between two frames",
            *args,
            "--model",
            media["model"],
        )


def test_the_output_is_tagged_with_the_matrix_it_was_converted_with(media, tmp_path: Path) -> None:
    # RGB frames go to YUV by BT.601 and the output was untagged: a player took an HD clip
    # for BT.709 and shifted its hues
    import av

    clip = make_video(tmp_path / "a.mp4", frames=3)
    out = tmp_path / "o.mp4"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (int(frame.colorspace), int(frame.color_range)) == (6, 1)


def test_anamorphic_pixels_keep_their_aspect_ratio(media, tmp_path: Path) -> None:
    # a DV or anamorphic clip's sample aspect ratio was dropped: it played at the wrong width
    from fractions import Fraction

    import av

    from d2nvideo.video.probe import probe

    clip = tmp_path / "sar.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.sample_aspect_ratio = Fraction(8, 9)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(frame_image(i, 64, 48), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
    assert probe(clip).sar == Fraction(8, 9)
    out_path = tmp_path / "o.mp4"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out_path, *model).exit_code == 0
    assert probe(out_path).sar == Fraction(8, 9)
    shown = invoke("info", out_path)  # the table said nothing of it (only --json had it)
    assert "not square (8:9): plays as 57x48" in shown.output, shown.output
    assert "not square" not in invoke("info", media["plain"]).output


def test_interlaced_input_is_said(media, tmp_path: Path, monkeypatch, caplog) -> None:
    """Two fields a frame were translated as one picture and written as progressive frames
    without a word."""
    import importlib

    monkeypatch.setattr(importlib.import_module("d2nvideo.video.probe"), "_WARNED", set())
    options = {"flags": "+ildct+ilme", "x264-params": "interlaced=1"}
    clip = make_video(tmp_path / "fields.mp4", frames=3, options=options)
    out_path = tmp_path / "o.mp4"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out_path, *model).exit_code == 0
    warned = [r.getMessage() for r in caplog.records if "interlaced" in r.getMessage()]
    assert len(warned) == 1 and "fields.mp4' is interlaced" in warned[0]
    assert " scan " in invoke("info", clip).output
    assert " scan " not in invoke("info", out_path).output  # written as progressive frames


@pytest.mark.parametrize(
    "matrix", [[0] * 9, [0x10000, 0, 0, 0, 0, 0, 0, 0, 0x40000000]], ids=["zero", "degenerate"]
)
def test_a_display_matrix_that_is_no_turn_is_ignored(
    matrix: list[int], media, tmp_path: Path, monkeypatch, caplog
) -> None:
    """PyAV reads such a matrix as INT_MIN degrees: info showed it, and convert wrote a display
    rotation of -127 degrees that the input never had (found by a fuzzing helper)."""
    import importlib
    import struct

    from d2nvideo.video.probe import probe

    monkeypatch.setattr(importlib.import_module("d2nvideo.video.probe"), "_WARNED", set())
    data = bytearray(make_video(tmp_path / "plain.mp4", frames=3).read_bytes())
    at = data.find(b"tkhd") - 4 + 48  # version 0: the matrix follows 44 bytes of fields
    data[at : at + 36] = struct.pack(">9i", *matrix)
    clip = tmp_path / "skewed.mp4"
    clip.write_bytes(bytes(data))
    assert probe(clip).rotation == 0
    warned = [r.getMessage() for r in caplog.records if "display matrix" in r.getMessage()]
    assert len(warned) == 1 and "not a turn by a multiple of 90 degrees" in warned[0]
    out = tmp_path / "o.mp4"
    model = ["--model", media["model"], "-q"]
    assert invoke("convert", clip, "--to", "night", "-o", out, *model).exit_code == 0
    assert probe(out).rotation == 0


def test_a_damaged_keyframe_index_is_read_from_the_start(
    media, tmp_path: Path, monkeypatch, caplog
) -> None:
    """An MP4 whose keyframe table names a sample past its end: FFmpeg refuses every seek
    (EPERM: 'Operation not permitted: X', as if the file were not readable) and leaves the
    demuxer stuck. Such a file is read from its first frame instead (found by a fuzzing
    helper)."""
    import importlib
    import struct

    monkeypatch.setattr(importlib.import_module("d2nvideo.video.probe"), "_WARNED", set())
    whole = make_video(tmp_path / "whole.mp4", frames=30)
    data = bytearray(whole.read_bytes())
    at = data.find(b"stss")
    assert struct.unpack(">I", data[at + 8 : at + 12]) == (1,)  # one keyframe: sample 1
    data[at + 12 : at + 16] = struct.pack(">I", 31)  # of 30
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    model = ["--model", media["model"], "-q"]
    for src in (whole, damaged):
        out = tmp_path / f"o_{src.name}"
        cut = ["--start", "0.7", "--duration", "0.4"]
        result = invoke("convert", src, "--to", "night", "-o", out, *cut, *model)
        assert result.exit_code == 0, result.output
        assert len(read_video(out).times) == 10
    outputs = [read_video(tmp_path / f"o_{n}").images for n in ("whole.mp4", "damaged.mp4")]
    assert np.array_equal(outputs[0], outputs[1])
    warned = [r.getMessage() for r in caplog.records if "cannot be sought" in r.getMessage()]
    assert len(warned) == 1 and "damaged.mp4' cannot be sought in" in warned[0]
    # once a seek has failed, frames_at reads on: it went back to the start for every time
    # asked more than 2 s ahead (the damaged index lists no keyframe to go by)
    import d2nvideo.video.decode as decode

    long = make_video(tmp_path / "long.mp4", frames=60, fps=5)  # 12 s
    data = bytearray(long.read_bytes())
    at = data.find(b"stss")
    data[at + 12 : at + 16] = struct.pack(">I", 61)
    (tmp_path / "long_damaged.mp4").write_bytes(bytes(data))
    times = [0.5, 3.0, 5.5, 8.0, 10.5]
    healthy = [f.time for f in decode.frames_at(long, times)]
    decoded, packets = [], decode._packets_decoded

    def counted(*args: object) -> Iterator[object]:
        for frame in packets(*args):
            decoded.append(frame)
            yield frame

    monkeypatch.setattr(decode, "_packets_decoded", counted)
    assert [f.time for f in decode.frames_at(tmp_path / "long_damaged.mp4", times)] == healthy
    assert len(decoded) <= 60  # the file once, not once a time asked


def test_a_damaged_image_is_one_line_of_ours(tmp_path: Path) -> None:
    """libpng and libjpeg write to stderr themselves: "libpng error: PNG input buffer is
    incomplete" came twice before the error line, and a JPEG whose data ends before its
    declared size was taken grey below after "Corrupt JPEG data" lines, exit 0, without a word
    of ours (found by a fuzzing helper)."""
    import zlib

    import cv2

    y, x = np.mgrid[0:64, 0:64]
    picture = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    png = cv2.imencode(".png", noise)[1].tobytes()  # cut in its image data
    (tmp_path / "cut.png").write_bytes(png[: len(png) * 9 // 10])
    jpg = bytearray(cv2.imencode(".jpg", picture)[1].tobytes())
    sof = jpg.find(b"\xff\xc0")  # baseline frame header: height and width follow at +5
    jpg[sof + 5 : sof + 9] = (128).to_bytes(2, "big") * 2  # says 128x128; the data is 64x64
    (tmp_path / "short.jpg").write_bytes(bytes(jpg))
    result = run_cli("info", "cut.png", cwd=tmp_path)
    assert result.returncode == 1
    one_error(result.stderr, "'cut.png' is not a readable image (PNG input buffer is incomplete)")
    result = run_cli("info", "short.jpg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warning: 'short.jpg' is damaged (Corrupt JPEG data"), lines
    # a JPEG whose file ends early: OpenCV 5 refuses it from memory (the README said taken)
    whole = cv2.imencode(".jpg", noise)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) * 8 // 10])
    result = run_cli("info", "cut.jpg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: 'cut.jpg' is damaged (Prem"), lines
    # cut in its header, the decoder says nothing: the error did not say why either
    (tmp_path / "head.png").write_bytes(png[:30])
    result = run_cli("info", "head.png", cwd=tmp_path)
    one_error(result.stderr, "'head.png' is not a readable image (its PNG data is damaged or cut")
    # libpng's warnings (a colour profile it does not take) leave the picture whole: not damage
    # (a first version said so, found by a review)
    profile = zlib.compress(bytes(200))
    chunk = b"iCCP" + b"icc\x00\x00" + profile
    iccp = len(chunk[4:]).to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")
    (tmp_path / "profile.png").write_bytes(png[:33] + iccp + png[33:])  # after the IHDR
    result = run_cli("info", "profile.png", cwd=tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_libx265_is_refused_for_tiny_frames(media, tmp_path: Path) -> None:
    """libx265 opens for a 33x17 frame, then corrupts its heap: the process aborted with
    glibc's message and no line of ours, and with --jobs the whole batch stopped (found by a
    helper). Refused before any frame is encoded."""
    clip = make_video(tmp_path / "tiny.mp4", frames=3, size=(33, 17))
    out = tmp_path / "o.mp4"
    args = ["convert", clip, "--to", "night", "-o", out, "--model", media["model"], "-q"]
    result = invoke(*args, "--codec", "libx265")
    assert result.exit_code != 0
    one_error(result.output, "libx265 is not safe for 33x17 frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.mp4"]
