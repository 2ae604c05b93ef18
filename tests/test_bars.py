"""Black letterbox and pillarbox bars: found only as pairs, and kept black in the output."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import frame_image
from helpers import read_video

from d2nvideo.pipeline import ConvertOptions, convert_video, translate_images
from d2nvideo.translator import Translator
from d2nvideo.video.bars import BarKeeper, Bars, find_bars

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


def test_black_frames_have_no_bars() -> None:
    assert not find_bars([np.zeros((H, W, 3), np.uint8)])
    assert not find_bars([])


def test_bars_stop_counting_when_something_bright_enters_them() -> None:
    bars = Bars(left=BAR, right=BAR)
    ringing = boxed(0, left=BAR, right=BAR)
    ringing[:, BAR - 2 : BAR] = 40  # compression ringing next to the picture
    assert bars.still_black([ringing])
    title = boxed(0, left=BAR, right=BAR)
    title[10:40, 2:12] = 200  # something drawn inside the bar
    assert not bars.still_black([title])
    keeper = BarKeeper()
    assert keeper.bars_of([boxed(0, left=BAR, right=BAR)]) == bars
    assert not keeper.bars_of([title])  # this batch is translated whole
    assert keeper.bars_of([boxed(1, left=BAR, right=BAR)]) == bars  # and the next kept again
    assert not BarKeeper(enabled=False).bars_of([boxed(0, left=BAR, right=BAR)])


class Grey:
    """A network that turns everything, black bars included, mid-grey."""

    def __call__(self, x: torch.Tensor, to: str) -> torch.Tensor:
        return torch.zeros_like(x)


@pytest.fixture()
def grey(media: dict[str, Path]) -> Translator:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    tr.network = Grey()  # type: ignore[assignment]
    return tr


def test_translate_images_keeps_bars_only_when_asked(grey: Translator) -> None:
    image = boxed(0, left=BAR, right=BAR)
    bars = find_bars([image])
    (kept,) = translate_images([image], grey, "day", ConvertOptions("day").resolution, bars)
    (whole,) = translate_images([image], grey, "day", ConvertOptions("day").resolution)
    assert kept[:, :BAR].max() == 0 and kept[:, W - BAR :].max() == 0
    assert whole[:, :BAR].min() > 100  # the network's grey
    assert np.array_equal(kept[:, BAR:-BAR], whole[:, BAR:-BAR])  # the picture is the same


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
