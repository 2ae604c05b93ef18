from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SHARED, frame_image, make_video, needs_shared

from d2nvideo.cli import cli
from d2nvideo.data.scoring import Thresholds, auto_thresholds, classify, otsu_threshold, score_image
from d2nvideo.images import read_image, write_image


def _scene(day: bool, lamps: bool = False, h: int = 90, w: int = 160) -> np.ndarray:
    """A crude road scene: sky on top, road below; night is dark, lamps are small spots."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (150, 180, 230) if day else (8, 10, 20)
    img[h // 2 :] = (110, 110, 100) if day else (25, 25, 25)
    if lamps:
        for x in range(10, w, 30):
            img[h // 2 - 8 : h // 2 - 4, x : x + 3] = 255
            img[h // 2 :, x - 6 : x + 9] = (200, 170, 90)  # lit road under each lamp
    return img


def test_scores_and_thresholds() -> None:
    assert classify(_scene(True)) == "day"
    assert classify(_scene(False)) == "night"
    t = Thresholds(60, 68)
    assert [t.label(s) for s in (60, 64, 68, 68.1)] == ["night", "ambiguous", "ambiguous", "day"]


def test_sky_scorer_is_not_fooled_by_lamps_where_the_mean_is() -> None:
    lit = _scene(False, lamps=True)
    lit[lit.shape[0] // 2 :] = np.maximum(lit[lit.shape[0] // 2 :], 160)  # brightly lit street
    s = score_image(lit)
    assert s.mean > 68  # the study's rule calls this day
    assert classify(lit, "mean") == "day" and classify(lit, "sky") == "night"


def test_score_ignores_image_size() -> None:
    small = _scene(True)
    big = np.kron(small, np.ones((4, 4, 1), np.uint8))
    assert abs(score_image(small).sky - score_image(big).sky) < 3


def test_otsu_finds_the_valley() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(30, 8, 500), rng.normal(120, 15, 800)])
    assert 55 < otsu_threshold(scores) < 90
    t = auto_thresholds(scores, "mean")
    assert t.day_min - t.night_max == 8


def _write_set(root: Path) -> dict[str, list[str]]:
    names = {"day": [], "night": []}
    for i in range(6):
        for label, day in (("day", True), ("night", False)):
            name = f"{label}{i}.jpg"
            write_image(root / name, _scene(day))
            names[label].append(name)
    return names


def test_relabel_nexet_flags_wrong_labels_and_reports_bad_rows(tmp_path: Path) -> None:
    images = tmp_path / "img"
    names = _write_set(images)
    (images / "broken.jpg").write_bytes(b"nope")
    rows = ["image_filename,lighting,city"]
    rows += [f"{n},Day,nyc" for n in names["day"][:5]] + [f"{names['day'][5]},Night,sf"]
    rows += [f"{n},Night,sf" for n in names["night"][:5]] + [f"{names['night'][5]},Twilight,x"]
    rows += ["broken.jpg,Day,x", "absent.jpg,Night,x", ",Day,x"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "clean"
    result = CliRunner().invoke(
        cli,
        [
            "relabel",
            "--nexet",
            str(tmp_path / "train.csv"),
            "--images",
            str(images),
            "-o",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    table = {r["path"].split("/")[-1]: r for r in csv.DictReader((out / "labels.csv").open())}
    assert (
        table[names["day"][5]]["status"] == "relabelled" and table[names["day"][5]]["new"] == "day"
    )
    assert table[names["night"][5]]["status"] == "relabelled"
    assert table["broken.jpg"]["status"] == table["absent.jpg"]["status"] == "unreadable"
    assert "1 label rows skipped" in result.output and "1 missing" in result.output
    train = (out / "train_day.txt").read_text().splitlines()
    test = (out / "test_day.txt").read_text().splitlines()
    assert len(train) + len(test) == 6 and len(test) == 1
    assert (out / "histogram.png").is_file() and (out / "histogram_mean.png").is_file()


def test_relabel_lists_an_image_listed_twice_once(tmp_path: Path, caplog) -> None:
    # a real BDD100K list in NEXET's format names 4,260 images twice: each went into the lists
    # twice, and with --split 0.5 into train and test at once
    images = tmp_path / "img"
    names = _write_set(images)
    rows = ["image_filename,lighting"] + [f"{n},Day" for n in names["day"]] * 2
    rows += [f"{n},Night" for n in names["night"]] + [f"{names['night'][0]},Day"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    argv = ["relabel", "--nexet", tmp_path / "train.csv", "--images", images, "--split", "0.5"]
    result = CliRunner().invoke(cli, [*map(str, argv), "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["images"], summary["repeated"]) == (12, 7)
    assert "lists 7 images more than once" in caplog.text and "(1 given different" in caplog.text
    lists = {p.stem: p.read_text().splitlines() for p in (tmp_path / "o").glob("*_*.txt")}
    listed = [line for lines in lists.values() for line in lines]
    assert len(listed) == len(set(listed)) == 12
    assert not set(lists["train_day"]) & set(lists["test_day"])


def test_relabel_takes_every_folder_given_a_label(tmp_path: Path) -> None:
    # `--folder day=A --folder day=B` kept only B's images, without a word
    for i, folder in enumerate(("a", "b", "c")):
        write_image(tmp_path / folder / f"{folder}.png", _scene(day=i < 2))
    argv = [f"--folder=day={tmp_path / 'a'}", f"--folder=day={tmp_path / 'b'}"]
    argv += [f"--folder=night={tmp_path / 'c'}", f"--folder=day={tmp_path / 'a'}"]
    result = CliRunner().invoke(cli, ["relabel", *argv, "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["images"], summary["agree"], summary["repeated"]) == (3, 3, 1)


def test_relabel_bdd_json_and_auto_thresholds(tmp_path: Path) -> None:
    images = tmp_path / "img"
    names = _write_set(images)
    frames = [
        {"name": n, "attributes": {"timeofday": "daytime", "weather": "clear"}}
        for n in names["day"]
    ]
    frames += [{"name": n, "attributes": {"timeofday": "night"}} for n in names["night"]]
    frames += [{"name": "x.jpg"}]
    (tmp_path / "labels.json").write_text(json.dumps(frames))
    result = CliRunner().invoke(
        cli,
        [
            "relabel",
            "--bdd",
            str(tmp_path / "labels.json"),
            "--images",
            str(images),
            "-o",
            str(tmp_path / "o"),
            "--auto-thresholds",
            "--method",
            "mean",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "12 agree" in result.output and "auto" in result.output
    argv = ["relabel", "--bdd", str(tmp_path / "labels.json"), "--images", str(images)]
    as_json = CliRunner().invoke(cli, [*argv, "-o", str(tmp_path / "o2"), "-q", "--json"])
    summary = json.loads(as_json.stdout)
    assert (summary["images"], summary["agree"], summary["relabelled"]) == (12, 12, 0)
    assert (summary["skipped_rows"], summary["missing"]) == (1, 0)
    assert str(tmp_path / "o2" / "labels.csv") in summary["outputs"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--nexet", "MISSING", "--images", "IMG"], "does not exist"),
        (["--nexet", "BADCSV", "--images", "IMG"], "lacks column"),
        (["--bdd", "BADJSON", "--images", "IMG"], "not readable JSON"),
        (["--nexet", "GOODCSV"], "need --images"),
        (["--folder", "day"], "LABEL=DIR"),
        (["--nexet", "ALLGONE", "--images", "IMG"], "could be read"),
    ],
)
def test_relabel_bad_inputs_give_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "bad.csv").write_text("file,label\na.jpg,Day\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "good.csv").write_text("image_filename,lighting\na.jpg,Day\n")
    (tmp_path / "gone.csv").write_text("image_filename,lighting\na.jpg,Day\nb.jpg,Night\n")
    paths = {
        "MISSING": tmp_path / "no.csv",
        "BADCSV": tmp_path / "bad.csv",
        "BADJSON": tmp_path / "bad.json",
        "GOODCSV": tmp_path / "good.csv",
        "ALLGONE": tmp_path / "gone.csv",
        "IMG": tmp_path / "img",
    }
    argv = ["relabel", *[str(paths.get(a, a)) for a in args], "-o", str(tmp_path / "o"), "-q"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code in (1, 2)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_relabel_resumes_from_saved_scores(tmp_path: Path, monkeypatch) -> None:
    from d2nvideo.data import relabel as rl
    from d2nvideo.data.sources import from_folders

    images = tmp_path / "img"
    _write_set(images)
    sources = from_folders([("day", images)])
    calls = []
    real = rl.score_file
    monkeypatch.setattr(rl, "score_file", lambda p: calls.append(p) or real(p))
    partial = tmp_path / "o" / rl.PARTIAL
    partial.parent.mkdir()
    first = sources.items[0].path
    second = sources.items[1].path
    partial.write_text(
        f"path,mean,upper_p75,median,dark\n{first},100,150,90,0.1\n{second},abc,1,2,3\n"
        f"{sources.items[2].path},100,15"  # a truncated last row
    )
    rl.relabel(sources, tmp_path / "o", workers=1)
    assert first not in calls and len(calls) == len(sources.items) - 1
    assert not partial.exists()


@pytest.mark.parametrize("content", ["", "garbage\n1,2\n", "\x00\xff\xfe binary"])
def test_relabel_ignores_a_foreign_partial_file(content: str, tmp_path: Path) -> None:
    from d2nvideo.data import relabel as rl
    from d2nvideo.data.sources import from_folders

    images = tmp_path / "img"
    _write_set(images)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / rl.PARTIAL).write_text(content, errors="surrogateescape")
    result = rl.relabel(from_folders([("day", images)]), tmp_path / "o", workers=1)
    assert result.statuses["unreadable"] == 0


def test_relabel_resumes_from_an_empty_or_cut_partial_file(tmp_path: Path) -> None:
    # Killed before its first flush, the file was empty: later runs appended rows without a
    # header and never resumed. A row cut inside its last number parsed as another value.
    from d2nvideo.data import relabel as rl
    from d2nvideo.data.sources import from_folders

    images = tmp_path / "img"
    _write_set(images)
    items = from_folders([("day", images)]).items
    partial = tmp_path / rl.PARTIAL
    partial.write_text("")
    rl._score_with_resume(items[:2], partial, 1, lambda n: None)
    assert sorted(rl._read_partial(partial)[0]) == sorted(str(i.path) for i in items[:2])
    first, second = items[0].path, items[1].path
    partial.write_text(
        f"path,mean,upper_p75,median,dark\n{first},100,150,90,0.1\n{second},100,150,90,0.01"
    )
    assert list(rl._read_partial(partial)[0]) == [str(first)]
    rl._score_with_resume(items[:3], partial, 1, lambda n: None)
    done, whole = rl._read_partial(partial)
    assert whole and sorted(done) == sorted(str(i.path) for i in items[:3])
    assert done[str(second)].dark != 0.01  # scored again


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="a device whose writes fail")
def test_relabel_names_its_scores_file_when_a_write_fails(tmp_path: Path) -> None:
    # on a full disk it said "No space left on device" and no file
    from d2nvideo.data import relabel as rl
    from d2nvideo.data.sources import from_folders

    _write_set(tmp_path / "img")
    items = from_folders([("day", tmp_path / "img")]).items
    with pytest.raises(OSError, match="No space left") as caught:
        rl._score_with_resume(items[:2], Path("/dev/full"), 1, lambda n: None)
    assert caught.value.filename == "/dev/full"


def test_relabel_does_not_remember_missing_images(tmp_path: Path) -> None:
    from d2nvideo.data import relabel as rl
    from d2nvideo.data.sources import Item, Sources

    images = tmp_path / "img"
    _write_set(images)
    listed = sorted(images.iterdir())[:2]
    sources = Sources([Item(tmp_path / "later" / p.name, "day") for p in listed])
    with pytest.raises(Exception, match="could be read"):
        rl.relabel(sources, tmp_path / "o", workers=1)
    (tmp_path / "later").mkdir()
    for p in listed:
        (tmp_path / "later" / p.name).write_bytes(p.read_bytes())
    assert rl.relabel(sources, tmp_path / "o", workers=1).statuses["unreadable"] == 0


# --- extract --------------------------------------------------------------------------------


def test_extract_names_manifest_resume_and_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "clips" / "sub"
    folder.mkdir(parents=True)
    make_video(folder / "drive.mp4", frames=50, fps=25)
    (tmp_path / "clips" / "broken.mp4").write_text("not a video")
    out = tmp_path / "frames"
    argv = ["extract", str(tmp_path / "clips"), "-o", str(out), "--every", "0.4s", "-q"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1 and "broken.mp4" in result.output
    names = sorted(p.name for p in out.glob("*.jpg"))
    assert names == [f"drive_{t:010.3f}.jpg" for t in (0, 0.4, 0.8, 1.2, 1.6)]
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [float(r["pts_seconds"]) for r in rows] == [0, 0.4, 0.8, 1.2, 1.6]
    assert {r["label"] for r in rows} <= {"day", "night", "ambiguous"}
    again = CliRunner().invoke(cli, argv)
    assert "0 frames written, 5 already there" in again.output
    summary = json.loads(CliRunner().invoke(cli, [*argv, "--json"]).stdout)
    assert (summary["written"], summary["existing"], summary["videos"]) == (0, 5, 2)
    assert summary["failed"] == 1


def test_extract_tells_videos_of_one_name_apart(tmp_path: Path) -> None:
    # a dashcam's FILE0001.MP4 in two folders, and clip.mkv beside clip.mp4: frames of the
    # later ones were skipped as "already there", and the manifest named the wrong source
    clips = tmp_path / "clips"
    for rel, size in [("a/clip.mp4", (64, 48)), ("b/clip.mp4", (80, 48)), ("b/clip.mkv", (96, 48))]:
        (clips / rel).parent.mkdir(parents=True, exist_ok=True)
        make_video(clips / rel, frames=10, size=size)
    make_video(clips / "b" / "other.mp4", frames=10)
    out = tmp_path / "frames"
    argv = ["extract", str(clips), "-o", str(out), "--every", "0.2s", "-q", "--json"]
    summary = json.loads(CliRunner().invoke(cli, argv).stdout)
    assert (summary["written"], summary["existing"], summary["failed"]) == (8, 0, 0)
    rows = {r["file"]: r for r in csv.DictReader((out / "manifest.csv").open())}
    stems = {"a_clip_mp4": 64, "b_clip_mp4": 80, "b_clip_mkv": 96, "other": 64}
    for stem, width in stems.items():
        for t in (0.0, 0.2):
            row = rows[f"{stem}_{t:010.3f}.jpg"]
            assert read_image(out / row["file"]).shape[1] == int(row["width"]) == width
    # the names hold from run to run, whatever else a run takes (a review: clips/a alone wrote
    # its frames again as clip_*); a name the manifest gives another video is not taken
    again = CliRunner().invoke(cli, ["extract", str(clips / "a"), "-o", str(out), "--json"])
    assert json.loads(again.stdout)["written"] == 0
    one = tmp_path / "one"
    for sub in ("a", "b"):
        argv = ["extract", str(clips / sub / "clip.mp4"), "-o", str(one), "-q", "--frames", "1"]
        assert CliRunner().invoke(cli, argv).exit_code == 0
    widths = {p.name.split("_0")[0]: read_image(p).shape[1] for p in one.glob("*.jpg")}
    assert widths == {"clip": 64, "b_clip_mp4": 80}
    # a source that is gone is nobody: another card's clip.mp4 after the first card was moved
    (clips / "a").rename(tmp_path / "a_old")
    (tmp_path / "card2").mkdir()
    make_video(tmp_path / "card2" / "clip.mp4", frames=10, size=(32, 48))
    argv = ["extract", str(tmp_path / "card2"), "-o", str(one), "-q", "--frames", "1"]
    assert CliRunner().invoke(cli, argv).exit_code == 0
    assert sorted(read_image(p).shape[1] for p in one.glob("*.jpg")) == [32, 64, 80]


def test_extract_frames_count_size_classify_and_dedupe(tmp_path: Path) -> None:
    import av

    still = tmp_path / "still.mp4"  # a car stopped at a light: 20 identical frames, then motion
    with av.open(str(still), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            image = frame_image(0 if i < 20 else i, 64, 48)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli,
        [
            "extract",
            str(still),
            "-o",
            str(out),
            "--frames",
            "10",
            "--size",
            "32x24",
            "--dedupe",
            "--classify",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    written = list(out.rglob("*.jpg"))
    # frames 1, 4, ... 28, the middle of each tenth: the 7 of the still part collapse to 1
    assert len(written) == 4
    assert all(read_image(p).shape == (24, 32, 3) for p in written)
    assert all(p.parent.name in ("day", "night", "ambiguous") for p in written)


@pytest.mark.parametrize("first, second", [([], ["--classify"]), (["--classify"], [])])
def test_extract_refuses_to_mix_sorted_and_unsorted_frames(
    first: list[str], second: list[str], tmp_path: Path
) -> None:
    # a --classify run after a plain one into the same folder wrote every frame again under
    # day/, all listed twice in manifest.csv
    from faults import refused

    clip = make_video(tmp_path / "c.mp4", frames=6, size=(32, 32))
    out = tmp_path / "o"
    argv = ["extract", str(clip), "-o", str(out), "--frames", "3", "-q"]
    assert CliRunner().invoke(cli, [*argv, *first]).exit_code == 0
    then = "with" if first else "without"
    refused(tmp_path, 2, f"holds frames extracted {then} --classify", *argv, *second)
    assert CliRunner().invoke(cli, [*argv, *first]).exit_code == 0  # the same layout resumes


@pytest.mark.parametrize("frames, count", [(10, 10), (10, 1000), (1, 1), (30, 7)])
def test_extract_frames_takes_as_many_as_asked_up_to_every_frame(
    frames: int, count: int, tmp_path: Path
) -> None:
    # --frames 10 of a 10-frame clip gave 9 (the first passed over, the last time after the last
    # frame); --frames 1 of a one-frame clip found no frame at all
    clip = make_video(tmp_path / "c.mp4", frames=frames, fps=25)
    out = tmp_path / "o"
    argv = ["extract", str(clip), "-o", str(out), "--frames", str(count), "-q"]
    assert CliRunner().invoke(cli, argv).exit_code == 0
    assert len(list(out.glob("*.jpg"))) == min(frames, count)


@pytest.mark.parametrize(
    "window, expected",
    [(["--start", "0.35"], [4, 5, 6, 7, 8, 9]), (["--start", "0.2", "--end", "0.81"], [2, 8])],
)
def test_extract_frames_within_a_window_takes_each_frame_there(
    window: list[str], expected: list[int], tmp_path: Path
) -> None:
    # a start between two frames dropped one and asked for another twice (a review)
    clip = make_video(tmp_path / "c.mp4", frames=10, fps=10)
    out = tmp_path / "o"
    argv = ["extract", str(clip), "-o", str(out), "--frames", "100", "-q", *window]
    assert CliRunner().invoke(cli, argv).exit_code == 0
    times = sorted(round(float(p.stem.split("_")[-1]) * 10) for p in out.glob("*.jpg"))
    lo, hi = expected[0], expected[-1]
    assert times == list(range(lo, hi + 1))


def test_extract_keeps_rotated_frames_upright(media: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["extract", str(media["rotated"]), "-o", str(tmp_path), "--frames", "1", "-q"]
    )
    assert result.exit_code == 0
    (frame,) = tmp_path.glob("*.jpg")
    assert read_image(frame).shape == (64, 48, 3)  # stored 64x48, displayed 48x64


def test_a_rotated_clip_is_guessed_as_it_is_shown(tmp_path: Path) -> None:
    # a phone's clip stored sideways was judged on its stored frame, whose top is a side:
    # a dark sky over a lit road was "day", and --to auto turned it into night
    import av

    from d2nvideo.data.scoring import guess, guess_file
    from d2nvideo.video.geometry import restore

    shown = np.zeros((48, 64, 3), np.uint8)
    shown[:24], shown[24:] = 10, 170
    stored = restore(shown, 90)
    clip = tmp_path / "phone.mp4"
    with av.open(str(clip), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        vs.set_display_rotation(90)
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(stored), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    assert guess([stored]).looks_like == "day"
    assert guess_file(clip).looks_like == guess([shown]).looks_like == "night"


def test_sparse_sampling_decodes_less(tmp_path: Path) -> None:
    """--every seeks to the keyframe before each sample instead of decoding every frame."""
    from d2nvideo.video import decode

    gop = {"g": "25", "keyint_min": "25"}
    clip = make_video(tmp_path / "gop.mp4", frames=250, options=gop)
    decoded = []
    real = decode._decoded

    def counting(*args):
        for frame in real(*args):
            decoded.append(frame.pts)
            yield frame

    decode._decoded = counting
    try:
        got = list(decode.frames_at(clip, [1.6, 4.4, 7.2]))
    finally:
        decode._decoded = real
    assert [f.time for f in got] == [1.6, 4.4, 7.2]
    assert len(decoded) <= 16 + 11 + 6 + 6  # from the keyframe before each, not 181 frames


# --- the real data ---------------------------------------------------------------------------


@needs_shared()
def test_the_eight_nexet_examples_are_flagged(tmp_path: Path) -> None:
    folder = SHARED / "labeled" / "nexet_mislabeled_examples"
    rows = list(csv.DictReader((folder / "labels.csv").open()))
    for row in rows:
        image = read_image(folder / row["file"])
        new = classify(image)
        assert new != row["nexet_original_lighting"].lower(), row["file"]


@needs_shared()
def test_auto_thresholds_on_real_bdd_brightness_match_the_study() -> None:
    name = "scripts__DataClassificator__data__bdd100k_train.csv.gz"
    path = SHARED / "labeled" / "label_formats" / "solesensei_day2night" / name
    with gzip.open(path, "rt") as fh:
        scores = np.array([float(r["pixels_light"]) for r in csv.DictReader(fh)])
    t = auto_thresholds(scores, "mean")
    assert abs((t.night_max + t.day_min) / 2 - 64) <= 6  # the study: 60 / 68


def test_extract_knows_a_video_again_from_another_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the manifest kept the source as typed: from another folder it was another video (a review)
    (tmp_path / "proj" / "clips").mkdir(parents=True)
    make_video(tmp_path / "proj" / "clips" / "a.mp4", frames=10)
    monkeypatch.chdir(tmp_path / "proj")
    argv = ["extract", "clips/a.mp4", "-o", "../out", "--frames", "2", "-q", "--json"]
    assert json.loads(CliRunner().invoke(cli, argv).stdout)["written"] == 2
    monkeypatch.chdir(tmp_path)
    argv = ["extract", "proj/clips/a.mp4", "proj/clips/a.mp4", "-o", "out", "--frames", "2"]
    again = json.loads(CliRunner().invoke(cli, [*argv, "-q", "--json"]).stdout)
    assert again["written"] == 0 and sorted(
        p.name[:2] for p in (tmp_path / "out").glob("*.jpg")
    ) == ["a_", "a_"]


def test_a_frame_stem_never_reaches_the_root_of_a_path(tmp_path: Path) -> None:
    # with the shorter names taken, one became '/_tmp_..._a_mp4': a frame outside the folder
    from d2nvideo.data.frame_names import frame_stems
    from d2nvideo.errors import InputError

    video = make_video(tmp_path / "a.mp4", frames=2)
    other = make_video(tmp_path / "other.mp4", frames=2)
    parts = video.resolve().parts[1:]
    names = ["a"] + ["_".join(parts[-k - 1 :]).replace(".", "_") for k in range(1, len(parts))]
    rows = {f"{n}_{0:010.3f}.jpg": {"source": str(other)} for n in names}
    (stem,) = frame_stems([video], rows).values()
    assert isinstance(stem, InputError) or "/" not in stem


def test_extract_names_linked_videos_after_their_links(tmp_path: Path) -> None:
    # cards assembled from links (FILE0001.mp4 -> the real clips): a KeyError before
    for name, size in (("x", (64, 48)), ("y", (80, 48))):
        make_video(tmp_path / f"{name}.mp4", frames=10, size=size)
        (tmp_path / "cards" / f"d_{name}").mkdir(parents=True)
        (tmp_path / "cards" / f"d_{name}" / "FILE0001.mp4").symlink_to(tmp_path / f"{name}.mp4")
    out = tmp_path / "fr"
    argv = ["extract", str(tmp_path / "cards"), "-o", str(out), "--frames", "1", "-q"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    stems = sorted(p.name.split("_0")[0] for p in out.glob("*.jpg"))
    assert stems == ["d_x_FILE0001_mp4", "d_y_FILE0001_mp4"]


def test_two_runs_into_one_folder_refuse_each_other(tmp_path: Path) -> None:
    # two extracts into one folder: the last manifest written lost the other run's rows;
    # two relabels: the last replaced the other's lists, neither asked for --overwrite
    from d2nvideo.processes import exclusive

    video = make_video(tmp_path / "drive.mp4", frames=10)
    _write_set(tmp_path / "img")
    runs = {
        "frames": ["extract", str(video), "-o", str(tmp_path / "frames")],
        "labels": [
            "relabel",
            "--folder",
            f"day={tmp_path / 'img'}",
            "-o",
            str(tmp_path / "labels"),
        ],
    }
    for folder, argv in runs.items():
        (tmp_path / folder).mkdir()
        with exclusive(tmp_path / folder, "the other run's folder"):  # another run at work
            result = CliRunner().invoke(cli, [*argv, "-q"])
        assert result.exit_code != 0
        assert f"output folder '{tmp_path / folder}' is in use by another process" in result.output
        assert list((tmp_path / folder).iterdir()) == []
        assert CliRunner().invoke(cli, [*argv, "-q"]).exit_code == 0  # once it is done


def test_a_run_that_writes_nothing_leaves_no_folder(tmp_path: Path) -> None:
    video = make_video(tmp_path / "drive.mp4", frames=10)
    out = tmp_path / "a" / "b"
    result = CliRunner().invoke(cli, ["extract", str(video), "-o", str(out), "--start", "99"])
    assert result.exit_code == 1 and not (tmp_path / "a").exists()


def _clip(path: Path, inverted: bool = False, title: str = "") -> Path:
    """A 10-frame 64x48 clip: the test pattern, or its negative (another recording)."""
    import av

    with av.open(str(path), "w") as out:
        if title:
            out.metadata["title"] = title
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            image = frame_image(i, 64, 48)
            frame = av.VideoFrame.from_ndarray(255 - image if inverted else image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_extract_tells_a_new_recording_at_an_old_ones_path_by_its_picture(tmp_path: Path) -> None:
    # the next card mounted where the last one was: its FILE0001.MP4 took the old one's frame
    # names and its frames were skipped as "already there", silently. A size check (reverted)
    # duplicated every frame of a re-muxed file and still missed same-size recordings.
    card, out = tmp_path / "media" / "card", tmp_path / "frames"
    card.mkdir(parents=True)
    video = card / "FILE0001.MP4"
    argv = ["extract", str(card), "-o", str(out), "--frames", "2", "-q", "--json"]

    def extract() -> tuple[int, int]:
        summary = json.loads(CliRunner().invoke(cli, argv).stdout)
        return summary["written"], summary["existing"]

    _clip(video)
    assert extract() == (2, 0)
    _clip(video, title="re-muxed: the same pictures, another size")
    assert extract() == (0, 2)
    _clip(video, inverted=True)  # the next day's card
    assert extract() == (2, 0)
    assert extract() == (0, 2)
    stems = sorted({p.name.split("_0")[0] for p in out.glob("*.jpg")})
    assert stems == ["FILE0001", "card_FILE0001_MP4"]


def test_a_refused_run_removes_nothing(tmp_path: Path, monkeypatch) -> None:
    # two runs into one new folder: the refused one removed the folder the other held, and a
    # third run then got a lock of its own beside it
    import os

    from d2nvideo import processes
    from d2nvideo.errors import OutputError

    folder = tmp_path / "frames"
    with processes.folder_in_use(folder, "the first run's folder"):
        real = os.path.lexists
        monkeypatch.setattr(os.path, "lexists", lambda p: p != folder and real(p))  # it raced
        with pytest.raises(OutputError, match="in use"), processes.folder_in_use(folder, "x"):
            pass
        monkeypatch.undo()
        assert folder.is_dir()
    assert not folder.exists()  # the first run wrote nothing: its folder goes


def test_relabels_scoring_workers_start_with_ctrl_c_ignored(tmp_path: Path, monkeypatch) -> None:
    # set in their initializer, after Python's start-up and imports: a Ctrl-C then gave a
    # traceback from each
    import multiprocessing.context
    import signal

    from d2nvideo.data import relabel as rl

    seen = []

    def pool(self: object, processes: int, initializer: object = None) -> object:
        seen.append(signal.getsignal(signal.SIGINT))
        seen.append(initializer)
        raise RuntimeError("no pool needed")

    monkeypatch.setattr(multiprocessing.context.SpawnContext, "Pool", pool)
    with pytest.raises(RuntimeError, match="no pool"):
        next(rl.score_files([tmp_path / f"{i}.jpg" for i in range(64)], workers=2))
    assert seen[0] == signal.SIG_IGN and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    # a worker the pool starts to replace a dead one is started from the pool's thread, where
    # SIGINT cannot be ignored for it: its initializer ignores it
    assert callable(seen[1])
    before = signal.getsignal(signal.SIGINT)
    try:
        seen[1]()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_lock_on_a_folder_removed_and_made_again_is_refused(tmp_path: Path, monkeypatch) -> None:
    # a run that opened the folder just before its holder removed it, and locked it after,
    # held a folder nobody else had: a third run made the path again and locked that
    import fcntl

    from d2nvideo import processes
    from d2nvideo.errors import OutputError

    folder = tmp_path / "frames"
    folder.mkdir()
    real = fcntl.flock

    def meanwhile(fd: int, how: int) -> None:
        folder.rmdir()  # its holder finished with nothing written
        folder.mkdir()  # and a third run made it again
        real(fd, how)

    monkeypatch.setattr(fcntl, "flock", meanwhile)
    with pytest.raises(OutputError, match="in use"), processes.exclusive(folder, "it"):
        pass
