from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from d2nvideo.cli import cli
from d2nvideo.evaluation.realism import fake_night, train_realism
from d2nvideo.images import write_image


def _day(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:60] = (140 + rng.integers(-20, 20), 180, 230)  # sky
    img[60:] = (100, 100, 95)  # road
    img[60:, 70:90] = 200  # lane
    return np.clip(img.astype(int) + rng.integers(-8, 8, img.shape), 0, 255).astype(np.uint8)


def _night(seed: int) -> np.ndarray:
    """Dark, with warm street lamps and their pools of light: what a darkening lacks."""
    rng = np.random.default_rng(seed + 100)
    img = (_day(seed).astype(np.float32) * 0.12).astype(np.uint8)
    for x in rng.integers(5, 150, 4):
        img[40:46, x : x + 4] = (255, 220, 140)
        img[70:, max(0, x - 10) : x + 14] = np.maximum(
            img[70:, max(0, x - 10) : x + 14], (150, 110, 50)
        )
    return img


def test_realism_accepts_real_night_and_rejects_a_darkening() -> None:
    day = [_day(i) for i in range(24)]
    night = [_night(i) for i in range(24)]
    clf = train_realism(night[:16], day[:16], "night", steps=300, batch=16, seed=0)
    held_out = clf(night[16:])
    darkened = clf([(d * 0.2).astype(np.uint8) for d in day[16:]])
    # Over seeds 0-5 held-out night scores 0.996-0.999 and a darkening 0.03-0.34: the bounds
    # leave room for thread-count noise but not for a classifier that reads brightness alone.
    assert held_out.mean() > 0.9 and darkened.mean() < 0.5
    assert held_out.min() > darkened.max() + 0.3
    fake = fake_night(day[0], np.random.default_rng(0))
    assert fake.shape == day[0].shape and fake.mean() < day[0].mean()


def test_evaluate_writes_the_report(media: dict[str, Path], tmp_path: Path) -> None:
    for i in range(6):
        write_image(tmp_path / "day" / f"d{i}.jpg", _day(i))
        write_image(tmp_path / "night" / f"n{i}.jpg", _night(i))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--model",
            str(media["model"]),
            "--day",
            str(tmp_path / "day"),
            "--night",
            str(tmp_path / "night"),
            "--video",
            str(media["plain"]),
            "-o",
            str(out),
            "--realism-steps",
            "5",
            "--video-frames",
            "4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert json.loads(result.stdout)["quality"] == report["quality"]  # --json: the same report
    # progress on stderr: 2 judges, 3 + 3 images evaluated (half of each folder trains the
    # judges), 4 clip frames, 4 frame sizes
    assert "16/16" in result.stderr and "temporal stability" in result.stderr
    q = report["quality"]
    assert {
        "day->night",
        "night->day",
        "day->night: x0.2 darkening",
        "real night (held out): judge recall",
        "real day (held out): judge false alarms",
    } <= set(q)
    row = q["day->night"]
    for key in (
        "recon_ssim",
        "recon_psnr",
        "ssim_gray",
        "ssim_color",
        "cycle_ssim",
        "success_sky",
        "success_mean",
        "realism",
        "dark_share",
    ):
        assert 0 <= row[key] <= (100 if key == "recon_psnr" else 1), key
    assert q["day->night: x0.2 darkening"]["success_mean"] == 1.0
    (temporal,) = report["temporal"].values()
    assert temporal["frames"] == 4 and temporal["ewarp_input"] >= 0
    assert [r["height"] for r in report["speed"]] == [180, 360, 540, 720]
    for row in report["speed"]:  # the convert pipeline per stage, the network alone beside it
        assert row["pipeline_fps"] > 0 and row["fps"] > 0
        assert {"decode", "network", "encode"} <= set(row["stages_ms"])
        assert row["limit"] in ("decode", "network", "upsample", "encode")
    assert "convert frames/s" in (out / "report.md").read_text()
    assert (out / "speed.png").is_file() and "## Image quality" in (out / "report.md").read_text()


def test_evaluate_refuses_images_the_model_was_trained_on(tmp_path: Path) -> None:
    import torch
    from conftest import TINY_UNIT

    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.images import fingerprint
    from d2nvideo.model import build_generator

    for i in range(4):
        write_image(tmp_path / "day" / f"d{i}.jpg", _day(i))
        write_image(tmp_path / "night" / f"n{i}.jpg", _night(i))
    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    trained_on = {"fingerprints": {"day": [fingerprint(_day(2))], "night": []}}
    save_checkpoint(model, build_generator(TINY_UNIT), TINY_UNIT, {"data": trained_on})
    args = ["evaluate", "--model", str(model), "--day", str(tmp_path / "day"), "--night"]
    args += [str(tmp_path / "night"), "-o", str(tmp_path / "r"), "--realism-steps", "2", "-q"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2
    assert "1 of 4 day images match the model's training images" in refused.output
    loud = CliRunner().invoke(cli, args[:-1])  # with its bar, not yet drawn: no blank line
    assert loud.exit_code == 2 and loud.stderr.startswith("error: 1 of 4 day"), loud.stderr
    allowed = CliRunner().invoke(cli, [*args, "--allow-overlap"])
    assert allowed.exit_code == 0, allowed.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["overlap"]["day"] == 1 and "OVERLAP" in report["notes"][0]


def test_the_overlap_check_looks_at_images_before_they_are_shrunk(tmp_path: Path, monkeypatch):
    # fitted to --image-size 32 first, a quarter of real stills moved more than the check
    # allows, and training images passed as held out; here shrinking changes them entirely
    import torch
    from conftest import TINY_UNIT

    import d2nvideo.evaluation.evaluate as evaluate_module
    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.images import fingerprint
    from d2nvideo.model import build_generator

    for i in range(2):
        write_image(tmp_path / "day" / f"d{i}.png", _day(i))
        write_image(tmp_path / "night" / f"n{i}.png", _night(i))
    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    trained_on = {"fingerprints": {"day": [], "night": [fingerprint(_night(1))]}}
    save_checkpoint(model, build_generator(TINY_UNIT), TINY_UNIT, {"data": trained_on})
    monkeypatch.setattr(evaluate_module, "fit_within", lambda image, side: 255 - image)
    args = ["evaluate", "--model", str(model), "--day", str(tmp_path / "day"), "--night"]
    args += [str(tmp_path / "night"), "-o", str(tmp_path / "r"), "--realism-steps", "0", "-q"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2, refused.output
    assert "1 of 2 night images match the model's training images" in refused.output


def test_a_one_frame_clip_is_an_input_error_and_fingerprints_are_counted(media) -> None:
    import pytest

    from d2nvideo.errors import InputError
    from d2nvideo.evaluation.evaluate import EvalOptions, _without_fingerprints
    from d2nvideo.evaluation.temporal import temporal_quality
    from d2nvideo.registry import load_translator

    tr = load_translator(media["model"], device="cpu")
    with pytest.raises(InputError, match="fewer than 2 decodable frames"):
        temporal_quality(tr, media["one"], "night", EvalOptions())
    meta = {"steps": 3, "data": {"day": 2, "fingerprints": {"day": ["a", "b"], "night": ["c"]}}}
    assert _without_fingerprints(meta)["data"] == {"day": 2, "fingerprints": {"day": 2, "night": 1}}
    assert meta["data"]["fingerprints"]["day"] == ["a", "b"]  # the model's own is left as it is
    # garbage in a model's metadata: a TypeError after the whole evaluation, no report
    garbage = {"data": {"fingerprints": {"day": 5, "night": "x", "dusk": ["a"]}}}
    assert _without_fingerprints(garbage)["data"] == {"fingerprints": {"dusk": 1}}


def test_fingerprints_that_are_not_64_bit_hex_are_no_fingerprints() -> None:
    from d2nvideo.evaluation.provenance import training_fingerprints

    for bad in (["f" * 20], ["-1"], ["xyz"], [5]):  # past 64 bits: an OverflowError
        assert training_fingerprints({"data": {"fingerprints": {"day": bad}}}) is None
    assert training_fingerprints({"data": {"fingerprints": {"day": ["ff"]}}}).tolist() == [255]


def test_the_report_is_strict_json_when_a_figure_is_infinite() -> None:
    from d2nvideo.evaluation.report import Report, report_json

    report = Report(model={"device": "cpu"})
    report.quality["day->night"] = {"recon_psnr": float("inf"), "ssim_gray": 0.5}
    data = json.loads(report_json(report), parse_constant=lambda c: pytest.fail(c))
    assert data["quality"]["day->night"] == {"recon_psnr": None, "ssim_gray": 0.5}


def test_the_report_says_how_the_stills_were_translated() -> None:
    import numpy as np

    from d2nvideo.evaluation.evaluate import _sizes_note
    from d2nvideo.pipeline import WorkingSize

    work = WorkingSize(work_size=180)
    big = [np.zeros((720, 1280, 3), np.uint8)] * 3
    assert _sizes_note("day stills", big, work) == (
        "day stills: 3, median 1280x720, translated at 320x180 and upsampled (guided) as "
        "convert does"
    )
    small = [*big[:1], np.zeros((180, 320, 3), np.uint8), np.zeros((120, 200, 3), np.uint8)]
    note = _sizes_note("night stills", small, work)
    assert note.startswith("night stills: 3, median 320x180; 2 no larger than the working size")


@pytest.fixture()
def folders(tmp_path: Path) -> Path:
    for i in range(3):
        write_image(tmp_path / "day" / f"d{i}.jpg", _day(i))
        write_image(tmp_path / "night" / f"n{i}.jpg", _night(i))
    write_image(tmp_path / "one" / "n.jpg", _night(9))
    for i in range(2):
        write_image(tmp_path / "day2" / f"e{i}.jpg", _day(i + 5))
    (tmp_path / "notes.txt").write_text("mine")
    _cuts_only(tmp_path / "cuts.mp4")
    return tmp_path


def _cuts_only(path: Path) -> None:
    """A clip with a scene cut between every two frames: nothing for E_warp to measure."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            image = np.full((48, 64, 3), 255 * (i % 2), np.uint8)
            image[: 8 * (i + 1)] = (40 * i, 200 - 40 * i, 90)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--realism-day", "{t}/day"], 2, "--realism-day and --realism-night go together"),
        (["--realism-day", "{t}/gone", "--realism-night", "{t}/night"], 2, "does not exist"),
        (["--realism-day", "{t}/day2", "--realism-night", "{t}/one"], 1, "needs at least 2"),
        # a judge scored on what it learned from; day images scored as night
        (
            ["--realism-day", "{t}/day2", "--realism-night", "{t}/night"],
            2,
            "--night and --realism-night name one folder",
        ),
        (["--night", "{t}/day/."], 2, "--day and --night name one folder"),
        (["--realism-day", "{t}/notes.txt", "--realism-night", "{t}/night"], 2, "not a folder"),
        # a clip that is missing or no video was found after the images' minutes of work
        (["--video", "{t}/gone.mp4"], 2, "gone.mp4' does not exist"),
        (["--video", "night={t}/notes.txt"], 1, "is not a readable video"),
        (["--video", "{t}/day/d0.jpg"], 1, "is a still image, not a clip to measure"),
        (["--video", "{t}/cuts.mp4"], 1, "a scene cut comes between each of its first 4"),
        (["-o", "{t}/notes.txt"], 2, "is a file; choose a folder"),
        (["-o", "{t}/kept"], 2, "holds a report already (report.json)"),
        (["-o", "{t}/day", "--overwrite"], 2, "must lie outside the image folder"),  # its images
        (["-o", "{t}/night/r"], 2, "must lie outside the image folder"),
        (["--realism-day", "{t}/r", "--realism-night", "{t}/one"], 2, "must lie outside"),
    ],
)
def test_evaluate_refuses_bad_folders_before_measuring(
    extra: list[str], code: int, message: str, media, folders: Path
) -> None:
    from faults import refused

    (folders / "kept").mkdir()
    (folders / "kept" / "report.json").write_text("{}")
    args = ["evaluate", "--model", media["model"], "--day", folders / "day", "--night"]
    args += [folders / "night", "-o", folders / "r", "--realism-steps", "2", "-q"]
    args += [a.replace("{t}", str(folders)) for a in extra]
    refused(folders, code, message, *args)


def test_a_report_that_cannot_be_written_whole_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a full disk at speed.png left report.json and report.md: the next run was refused
    import d2nvideo.evaluation.report as report_module
    from d2nvideo.evaluation.report import Report, check_report_folder, write_report

    def full(path: Path, *args: object) -> None:
        raise OSError(28, "No space left on device", str(path))

    report = Report(model={"device": "cpu"})
    report.speed = [{"height": 180.0, "width": 320.0, "fps": 9.0, "peak_mb": 1.0}]
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(report_module, "line_png", full)
    with pytest.raises(OSError, match="No space"):
        write_report(report, tmp_path / "new")  # the folder it made for the report goes too
    with pytest.raises(OSError, match="No space"):
        write_report(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    check_report_folder(tmp_path, overwrite=False)  # a second run may write there
    monkeypatch.undo()
    write_report(report, tmp_path)  # and with --overwrite a failure keeps the old one whole
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    report.notes.append("a second run")
    monkeypatch.setattr(report_module, "line_png", full)
    with pytest.raises(OSError, match="No space"):
        write_report(report, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    report.speed = []  # an old plot beside a report without speed rows passed for its own
    write_report(report, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "report.json", "report.md"]


def test_judge_overlap_training_clips_and_damaged_images_are_told(media, tmp_path: Path) -> None:
    # the audit of evaluate (a helper): a copy of a held-out night still among the judge's own
    # gave it a "held-out" recall on what it learned from; a training clip was measured as
    # held out; a damaged still counted without a word; report.json named no input
    import shutil

    import av
    import torch
    from conftest import TINY_UNIT, frame_image

    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.images import fingerprint
    from d2nvideo.model import build_generator

    for i in range(4):
        write_image(tmp_path / "day" / f"d{i}.jpg", _day(i))
        write_image(tmp_path / "night" / f"n{i}.jpg", _night(i))
        write_image(tmp_path / "judge_day" / f"d{i}.jpg", frame_image(9 * i, 160, 120))
        write_image(tmp_path / "judge_night" / f"n{i}.jpg", frame_image(9 * i + 4, 160, 120) // 6)
    shutil.copy(tmp_path / "night" / "n1.jpg", tmp_path / "judge_night" / "copy.jpg")
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    write_image(tmp_path / "day" / "cut.jpg", noise)
    data = (tmp_path / "day" / "cut.jpg").read_bytes()
    (tmp_path / "day" / "cut.jpg").write_bytes(data[: len(data) // 2])
    with av.open(str(media["plain"])) as clip:
        first = next(clip.decode(video=0)).to_ndarray(format="rgb24")
    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    trained_on = {"fingerprints": {"day": [fingerprint(first)], "night": []}}
    save_checkpoint(model, build_generator(TINY_UNIT), TINY_UNIT, {"data": trained_on})
    args = ["evaluate", "--model", model, "--day", tmp_path / "day", "--night", tmp_path / "night"]
    args += ["--realism-day", tmp_path / "judge_day", "--realism-night", tmp_path / "judge_night"]
    args += ["-o", tmp_path / "r", "--realism-steps", "2", "--video", media["plain"], "-q"]
    args += ["--video-frames", "3"]
    refused = CliRunner().invoke(cli, list(map(str, args)))
    assert refused.exit_code == 2, refused.output
    assert "1 of 4 --night images are among the realism judge's own --realism-night" in (
        refused.stderr
    )
    assert "n1.jpg" in refused.stderr and not (tmp_path / "r").exists()
    allowed = CliRunner().invoke(cli, [*map(str, args), "--allow-overlap"])
    assert allowed.exit_code == 0, allowed.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    notes = "\n".join(report["notes"])
    assert "TRAINING CLIP: 1 of the 3 measured frames of 'plain.mp4'" in notes
    assert report["overlap"]["night in realism night"] == 1
    assert "1 damaged image (data missing, decoded grey) is in the figures" in notes
    files = report["inputs"]["images"]
    assert files["day"]["files"] == ["cut.jpg", "d0.jpg", "d1.jpg", "d2.jpg", "d3.jpg"]
    assert len(files["realism night"]["files"]) == 5
    assert report["inputs"]["video_frames"] == 3


def test_flat_pictures_are_not_the_same_picture() -> None:
    # every flat picture fingerprints to 0: a black frame matched a grey one (a review)
    from d2nvideo.evaluation.provenance import overlapping, training_fingerprints
    from d2nvideo.images import fingerprint

    black, grey = np.zeros((90, 160, 3), np.uint8), np.full((90, 160, 3), 90, np.uint8)
    prints = {"fingerprints": {"day": [fingerprint(grey), fingerprint(_day(1))], "night": []}}
    known = training_fingerprints({"data": prints})
    assert known is not None
    assert overlapping([black, _day(1), _day(2)], known) == [1]
