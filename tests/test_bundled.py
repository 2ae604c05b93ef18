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
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
            [7, 6, 5],
        ],
        [
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
            [6, 5, 5],
        ],
        [
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
        ],
        [
            [5, 7, 6],
            [5, 7, 6],
            [5, 7, 6],
            [5, 7, 6],
            [5, 7, 6],
            [5, 7, 5],
            [5, 7, 6],
            [5, 7, 6],
            [5, 7, 6],
        ],
        [
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 3],
            [7, 6, 2],
            [7, 7, 3],
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 3],
        ],
        [
            [18, 14, 4],
            [18, 14, 4],
            [18, 14, 4],
            [18, 14, 5],
            [23, 16, 6],
            [25, 59, 11],
            [20, 20, 6],
            [19, 15, 4],
            [18, 14, 4],
        ],
        [
            [26, 24, 12],
            [26, 24, 12],
            [26, 24, 12],
            [26, 24, 13],
            [34, 31, 17],
            [40, 32, 21],
            [48, 45, 26],
            [36, 31, 15],
            [27, 25, 13],
        ],
        [
            [32, 35, 19],
            [32, 35, 19],
            [32, 35, 19],
            [32, 36, 20],
            [38, 42, 26],
            [62, 55, 33],
            [80, 78, 54],
            [63, 54, 32],
            [34, 37, 20],
        ],
    ],
    "day": [
        [
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
            [143, 158, 174],
        ],
        [
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
            [111, 138, 156],
        ],
        [
            [103, 128, 148],
            [103, 128, 148],
            [103, 128, 148],
            [103, 128, 148],
            [102, 127, 147],
            [103, 128, 147],
            [103, 128, 148],
            [103, 128, 148],
            [103, 128, 148],
        ],
        [
            [126, 150, 170],
            [126, 150, 170],
            [126, 150, 170],
            [124, 147, 163],
            [118, 141, 150],
            [114, 140, 158],
            [123, 149, 166],
            [125, 150, 169],
            [126, 150, 170],
        ],
        [
            [98, 140, 165],
            [98, 140, 165],
            [98, 140, 165],
            [87, 121, 132],
            [37, 45, 44],
            [65, 83, 85],
            [91, 127, 136],
            [94, 135, 158],
            [98, 140, 165],
        ],
        [
            [88, 88, 78],
            [88, 88, 78],
            [88, 88, 78],
            [83, 82, 73],
            [45, 55, 44],
            [67, 68, 53],
            [74, 80, 60],
            [86, 86, 76],
            [88, 88, 77],
        ],
        [
            [64, 64, 71],
            [64, 64, 71],
            [64, 64, 71],
            [62, 62, 70],
            [54, 53, 57],
            [50, 52, 53],
            [62, 63, 62],
            [62, 62, 73],
            [63, 63, 71],
        ],
        [
            [56, 52, 55],
            [56, 52, 55],
            [56, 52, 55],
            [56, 52, 54],
            [53, 50, 52],
            [52, 52, 53],
            [52, 51, 51],
            [53, 47, 50],
            [56, 52, 54],
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
