"""Black letterbox and pillarbox bars: found only as pairs, and kept black in the output."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import frame_image
from helpers import read_video

from d2nvideo import pipeline
from d2nvideo.errors import UsageError
from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video, translate_images
from d2nvideo.translator import Translator
from d2nvideo.video.bars import FILL_FRAMES, BarKeeper, Bars, find_bars

W, H, BAR = 128, 72, 16


def boxed(i: int, top: int = 0, bottom: int = 0, left: int = 0, right: int = 0) -> np.ndarray:
    """A test frame with black bars of these widths."""
    image = frame_image(i, W, H)
    image[:top], image[H - bottom :], image[:, :left], image[:, W - right :] = 0, 0, 0, 0
    return image


def test_pairs_of_black_bars_are_found() -> None:
    assert find_bars([boxed(0, left=BAR, right=BAR)]) == Bars(left=BAR, right=BAR)
    assert find_bars([boxed(0, top=9, bottom=8)]) == Bars(top=9, bottom=8)  # an odd split
    both = find_bars([boxed(i, top=6, bottom=6, left=BAR, right=BAR) for i in range(3)])
    assert both == Bars(6, 6, BAR, BAR)


@pytest.mark.parametrize(
    "sides",
    [
        {"top": 20},  # a black night sky, nothing at the bottom: scene
        {"left": 10, "right": 30},  # two dark edges of different widths: scene
        {"left": 40, "right": 40},  # more than a quarter of the frame each
        {"left": 1, "right": 1},  # too thin to matter
    ],
)
def test_one_sided_uneven_or_huge_dark_edges_are_scene(sides: dict[str, int]) -> None:
    assert not find_bars([boxed(0, **sides)])


def _every_line(images: list[np.ndarray]) -> Bars:
    """find_bars as it was first written: every line of every frame looked at."""
    from functools import reduce

    from d2nvideo.video.bars import BLACK, FLAT, _pair

    brightest = [im.max(axis=2) for im in images]
    peak = reduce(np.maximum, brightest)
    mean = sum(b.astype(np.float32) for b in brightest) / len(images)
    rows = _pair((peak.max(axis=1) <= BLACK) & (mean.mean(axis=1) <= FLAT))
    cols = _pair((peak.max(axis=0) <= BLACK) & (mean.mean(axis=0) <= FLAT))
    return Bars(*rows, *cols)


def test_looking_at_the_edges_only_finds_what_every_line_does() -> None:
    rng = np.random.default_rng(7)
    found = 0
    for case in range(300):
        h, w = int(rng.integers(4, 160)), int(rng.integers(4, 160))  # bars past one SCAN too
        frames = []
        for _ in range(int(rng.integers(1, 4))):
            image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            for side in range(4):  # bars of random widths, black, dim (not flat) or noisy
                width = int(rng.integers(0, max(h, w) // 2))
                value = rng.choice([0, 1, 3, 16, 40])
                ends = [image[:width], image[h - width :], image[:, :width], image[:, w - width :]]
                if width:
                    ends[side][...] = rng.integers(0, value + 1, ends[side].shape)
            frames.append(image)
        if case % 3 == 0:  # identical pairs, as real bars come
            for image in frames:
                k = int(rng.integers(0, h // 4 + 1))
                image[:k], image[h - k :] = 0, 0
        expected = _every_line(frames)
        assert find_bars(frames) == expected, case
        found += bool(expected)
    assert found > 20  # the cases reach the paths that find bars, not only the early exit


def test_black_frames_have_no_bars() -> None:
    assert not find_bars([np.zeros((H, W, 3), np.uint8)])
    assert not find_bars([])


def test_dark_scene_edges_are_not_bars() -> None:
    rng = np.random.default_rng(0)
    image = boxed(0, left=BAR, right=BAR)
    noise = rng.integers(0, 9, (H, BAR, 3), dtype=np.uint8)  # a night's dark edges: 0-8, not 0
    image[:, :BAR], image[:, W - BAR :] = noise, noise[:, ::-1]
    assert not find_bars([image])


def test_the_picture_filling_the_bars_ends_them_for_the_clip() -> None:
    bars = Bars(left=BAR, right=BAR)
    ringing = boxed(0, left=BAR, right=BAR)
    ringing[:, BAR - 2 : BAR] = 40  # compression ringing next to the picture
    subtitle = boxed(0, left=BAR, right=BAR)
    subtitle[30:36, 3:12] = 230  # a small logo inside a bar
    assert bars.still_bars([ringing]) and bars.still_bars([subtitle])
    full = frame_image(0, W, H)  # the clip goes full frame
    assert not bars.still_bars([full])
    keeper = BarKeeper()
    assert keeper.bars_of([boxed(0, left=BAR, right=BAR)]) == bars
    assert keeper.bars_of([subtitle]) == bars  # kept: the logo comes back as it was
    flash = np.full((H, W, 3), 255, np.uint8)
    assert keeper.bars_of([flash, flash]) == bars  # a flash does not end them
    assert keeper.bars_of([boxed(1, left=BAR, right=BAR)]) == bars
    kept = [keeper.bars_of([full, full]) for _ in range(FILL_FRAMES // 2 + 1)]
    assert kept[0] == bars and not kept[-1]  # the picture stays in them: given up
    assert not keeper.bars_of([boxed(1, left=BAR, right=BAR)])  # not back and forth
    assert not BarKeeper(enabled=False).bars_of([boxed(0, left=BAR, right=BAR)])


def test_bars_beside_a_dark_night_picture_are_measured_to_the_black() -> None:
    rng = np.random.default_rng(1)
    image = np.zeros((H, W, 3), np.uint8)
    image[:, BAR:-BAR] = rng.integers(0, 12, (H, W - 2 * BAR, 3))  # a dark night, 0-11
    image[20:30, 50:60] = 200  # a lamp
    assert find_bars([image]) == Bars(left=BAR, right=BAR)


def test_a_thin_bar_needs_black_on_both_sides() -> None:
    image = frame_image(0, W, H)
    image[:3], image[H - 2 :] = 0, 12  # 3 black rows above, 2 dark grey rows below
    assert not find_bars([image])
    image[H - 2 :] = 0
    assert find_bars([image]) == Bars(top=3, bottom=2)


def test_bars_are_looked_for_until_found() -> None:
    keeper = BarKeeper()
    black = np.zeros((H, W, 3), np.uint8)
    assert not keeper.bars_of([black, black])  # a fade from black: nothing to see yet
    assert keeper.bars_of([boxed(2, left=BAR, right=BAR)]) == Bars(left=BAR, right=BAR)
    plain = BarKeeper()
    for i in range(0, 60, 2):  # a clip without bars stops being looked at
        assert not plain.bars_of([frame_image(i, W, H), frame_image(i + 1, W, H)])
    assert plain.bars == Bars()
    assert not plain.bars_of([boxed(0, left=BAR, right=BAR)])


class Grey:
    """A network that turns everything, black bars included, mid-grey."""

    def __call__(self, x: torch.Tensor, to: str) -> torch.Tensor:
        return torch.zeros_like(x)


class WhiteBars:
    """A network that turns black white and everything else dark grey (64): a whole-frame
    guided fit would carry the white into the picture's edges."""

    def __call__(self, x: torch.Tensor, to: str) -> torch.Tensor:
        black = (x < -0.85).all(dim=1, keepdim=True).expand_as(x)
        return torch.where(black, torch.ones_like(x), torch.full_like(x, -0.5))


@pytest.fixture()
def grey(media: dict[str, Path]) -> Translator:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    tr.network = Grey()  # type: ignore[assignment]
    return tr


@pytest.fixture()
def white_bars(media: dict[str, Path]) -> Translator:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    tr.network = WhiteBars()  # type: ignore[assignment]
    return tr


@pytest.mark.parametrize("work", [None, 36])  # native size; a working size: the guided fit
@pytest.mark.parametrize("device_path", [False, True])  # OpenCV, or the torch (GPU) path
def test_translate_images_keeps_bars_only_when_asked(
    work: int | None, device_path: bool, white_bars: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "on_device", lambda translator: device_path)
    image = boxed(0, left=BAR, right=BAR)
    bars = find_bars([image])
    size = WorkingSize(work_size=work)
    (kept,) = translate_images([image], white_bars, "day", size, bars)
    (whole,) = translate_images([image], white_bars, "day", size)
    assert kept[:, :BAR].max() == 0 and kept[:, W - BAR :].max() == 0
    assert whole[:, : BAR - 4].min() > 200  # translated as scene, the bars came out white
    picture = kept[:, BAR:-BAR].astype(int)
    assert np.abs(picture - 64).max() <= 2  # nothing of it in the picture, to its edges


def _boxed_video(path: Path, frames: int = 6) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        for i in range(frames):
            image = boxed(i, left=BAR, right=BAR)
            out.mux(vs.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(vs.encode())
    return path


@pytest.mark.parametrize("mode", ["keep", "translate"])
def test_convert_keeps_pillarbox_bars_black(mode: str, grey: Translator, tmp_path: Path) -> None:
    src = _boxed_video(tmp_path / "boxed.mp4")
    dst = tmp_path / f"{mode}.mp4"
    convert_video(src, dst, grey, ConvertOptions("day", batch_size=2, bars=mode))  # type: ignore[arg-type]
    out = read_video(dst)
    assert len(out.images) == 6
    for image in out.images:
        side = np.concatenate([image[:, : BAR - 2], image[:, W - BAR + 2 :]], axis=1)
        if mode == "keep":
            assert side.max() <= 8  # black, give or take the encoder
        else:
            assert side.mean() > 100


def test_bars_scale_outward_to_an_even_picture() -> None:
    bars = Bars(left=79, right=79)
    small = bars.scaled((360, 640), (180, 320))
    assert small.left >= 39.5 and small.right >= 39.5  # never a bar column inside the picture
    assert (320 - small.left - small.right) % 2 == 0 and small.top == small.bottom == 0
    assert Bars(9, 8).scaled((72, 128), (36, 64)) == Bars(5, 5, 0, 0)  # 26 rows between


def test_the_day_night_guess_looks_between_the_bars(tmp_path: Path) -> None:
    from d2nvideo.data.scoring import guess, guess_file
    from d2nvideo.images import write_image

    image = boxed(0, left=BAR, right=BAR)
    write_image(tmp_path / "boxed.png", image)
    picture = Bars(left=BAR, right=BAR).inner(image)
    assert guess_file(tmp_path / "boxed.png") == guess([picture]) != guess([image])


def test_bars_that_leave_no_picture_at_the_working_size_fall_back(grey: Translator) -> None:
    image = np.full((100, 2000, 3), 128, np.uint8)
    image[:20], image[80:] = 0, 0
    bars = find_bars([image])
    assert bars == Bars(top=20, bottom=20)
    (out,) = translate_images([image], grey, "day", WorkingSize(max_size=16), bars)
    assert out.shape == image.shape and out[:20].max() == 0 and out[80:].max() == 0


def test_the_api_keeps_bars_as_convert_does(white_bars: Translator) -> None:
    image = boxed(0, left=BAR, right=BAR)
    assert white_bars.translate(image, "day")[:, :BAR].max() == 0
    assert white_bars.translate(image, "day", bars="translate")[:, : BAR - 4].min() > 200
    with pytest.raises(UsageError, match=r"^bars must be one of"):
        white_bars.translate(image, "day", bars="Keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bars"):
        ConvertOptions("day", bars="off")  # type: ignore[arg-type]
