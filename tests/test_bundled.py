"""The shipped model, pinned: a fixed input's output is compared with a stored slice, so a change
that silently alters what every user gets by default fails here (diffusers' habit). After a
deliberate change of the bundled model or of the default pipeline, regenerate the slice with
``python tests/test_bundled.py`` and say why in the commit."""

from __future__ import annotations

import sys

import numpy as np

from d2nvideo.pipeline import translate_images, working_size
from d2nvideo.registry import load_translator

# output[::23, ::37, :] of the fixed input below, for each direction (uint8)
EXPECTED = {
    "night": [
        [
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
            [8, 6, 6],
        ],
        [
            [7, 6, 6],
            [7, 6, 6],
            [7, 6, 6],
            [7, 6, 6],
            [7, 7, 7],
            [7, 6, 6],
            [7, 6, 6],
            [7, 6, 6],
            [7, 6, 6],
        ],
        [
            [6, 6, 7],
            [6, 6, 7],
            [6, 6, 7],
            [6, 6, 7],
            [6, 6, 7],
            [5, 6, 7],
            [6, 6, 7],
            [6, 6, 7],
            [6, 6, 7],
        ],
        [
            [6, 8, 7],
            [6, 8, 7],
            [6, 8, 7],
            [6, 8, 7],
            [6, 7, 6],
            [5, 7, 6],
            [6, 8, 7],
            [6, 8, 7],
            [6, 8, 7],
        ],
        [
            [7, 9, 3],
            [7, 9, 3],
            [7, 9, 3],
            [7, 9, 3],
            [7, 7, 2],
            [9, 8, 3],
            [7, 9, 3],
            [7, 9, 3],
            [7, 9, 3],
        ],
        [
            [20, 17, 6],
            [20, 17, 6],
            [20, 17, 6],
            [20, 17, 6],
            [23, 18, 7],
            [14, 32, 7],
            [22, 20, 8],
            [20, 17, 6],
            [20, 17, 6],
        ],
        [
            [32, 29, 16],
            [32, 29, 16],
            [32, 29, 16],
            [32, 29, 17],
            [36, 32, 18],
            [30, 28, 18],
            [49, 46, 30],
            [38, 32, 18],
            [33, 29, 17],
        ],
        [
            [42, 40, 25],
            [42, 40, 25],
            [42, 40, 25],
            [42, 40, 25],
            [48, 46, 30],
            [57, 54, 36],
            [75, 67, 52],
            [67, 57, 38],
            [44, 43, 26],
        ],
    ],
    "day": [
        [
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
            [126, 149, 170],
        ],
        [
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
            [111, 140, 159],
        ],
        [
            [101, 128, 149],
            [101, 128, 149],
            [101, 128, 149],
            [101, 128, 149],
            [100, 126, 148],
            [101, 128, 149],
            [101, 128, 149],
            [101, 128, 149],
            [101, 128, 149],
        ],
        [
            [129, 153, 174],
            [129, 153, 174],
            [129, 153, 174],
            [121, 146, 163],
            [114, 140, 152],
            [110, 139, 157],
            [121, 148, 165],
            [128, 152, 172],
            [129, 153, 174],
        ],
        [
            [115, 148, 155],
            [115, 148, 155],
            [115, 148, 154],
            [94, 122, 123],
            [32, 42, 49],
            [66, 96, 115],
            [86, 117, 115],
            [106, 137, 142],
            [115, 148, 154],
        ],
        [
            [87, 85, 74],
            [87, 85, 74],
            [87, 85, 74],
            [78, 76, 66],
            [41, 50, 41],
            [67, 66, 55],
            [82, 84, 60],
            [85, 84, 76],
            [87, 85, 74],
        ],
        [
            [58, 61, 68],
            [58, 61, 68],
            [58, 61, 68],
            [55, 58, 66],
            [47, 49, 52],
            [51, 53, 55],
            [69, 76, 80],
            [60, 62, 74],
            [58, 61, 68],
        ],
        [
            [53, 51, 53],
            [53, 51, 53],
            [53, 51, 53],
            [52, 51, 52],
            [50, 49, 51],
            [49, 51, 52],
            [53, 55, 54],
            [53, 49, 50],
            [53, 51, 53],
        ],
    ],
}


def fixed_input() -> np.ndarray:
    """A 180x320 road-like scene: sky gradient above, grey road with a lane line below."""
    y, x = np.mgrid[0:180, 0:320].astype(np.float32)
    image = np.zeros((180, 320, 3), np.float32)
    sky = y < 80
    image[sky] = np.stack([90 + y[sky], 140 + y[sky], 230 - 0.3 * y[sky]], -1)
    road = ~sky
    image[road] = (70 + 0.4 * (y[road] - 80))[:, None]
    image[(np.abs(x - 160 - 0.9 * (y - 80)) < 3) & road] = 235
    return np.clip(image, 0, 255).astype(np.uint8)


def outputs() -> dict[str, np.ndarray]:
    tr = load_translator(None, device="cpu")
    size = working_size("auto", None, None, "guided", tr.meta)
    return {
        to: translate_images([fixed_input()], tr, to, size)[0][::23, ::37, :]
        for to in ("night", "day")
    }


def test_the_bundled_model_gives_the_pinned_output() -> None:
    for to, got in outputs().items():
        expected = np.array(EXPECTED[to], np.int16)
        assert got.shape == expected.shape, to
        assert np.abs(got.astype(np.int16) - expected).max() <= 2, to


if __name__ == "__main__":
    for to, got in outputs().items():
        print(f"    {to!r}: {got.tolist()},", file=sys.stdout)
