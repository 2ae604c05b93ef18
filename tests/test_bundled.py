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
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
            [8, 5, 5],
        ],
        [
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
            [6, 6, 6],
        ],
        [
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 7],
            [5, 5, 7],
            [5, 5, 6],
            [5, 5, 6],
            [5, 5, 6],
        ],
        [
            [5, 6, 6],
            [5, 6, 6],
            [5, 6, 6],
            [5, 6, 6],
            [5, 7, 6],
            [4, 6, 6],
            [5, 6, 6],
            [5, 6, 6],
            [5, 6, 6],
        ],
        [
            [5, 7, 2],
            [5, 7, 2],
            [5, 7, 2],
            [5, 7, 2],
            [5, 7, 2],
            [6, 6, 3],
            [5, 7, 2],
            [5, 7, 2],
            [5, 7, 2],
        ],
        [
            [15, 13, 5],
            [15, 13, 5],
            [15, 13, 5],
            [15, 13, 5],
            [18, 16, 7],
            [9, 20, 5],
            [16, 15, 6],
            [16, 14, 5],
            [15, 13, 5],
        ],
        [
            [26, 24, 14],
            [26, 24, 14],
            [26, 24, 14],
            [27, 24, 14],
            [30, 27, 16],
            [30, 32, 20],
            [44, 39, 26],
            [30, 28, 14],
            [28, 25, 15],
        ],
        [
            [34, 34, 20],
            [34, 34, 20],
            [34, 34, 20],
            [35, 34, 20],
            [40, 39, 24],
            [55, 53, 34],
            [73, 72, 63],
            [57, 49, 30],
            [38, 37, 23],
        ],
    ],
    "day": [
        [
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
            [119, 145, 170],
        ],
        [
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
            [117, 146, 163],
        ],
        [
            [100, 127, 147],
            [100, 127, 147],
            [100, 127, 147],
            [100, 127, 147],
            [99, 126, 147],
            [101, 128, 147],
            [100, 127, 147],
            [100, 127, 147],
            [100, 127, 147],
        ],
        [
            [121, 150, 177],
            [121, 150, 177],
            [121, 149, 177],
            [118, 145, 166],
            [114, 143, 156],
            [109, 142, 160],
            [116, 147, 167],
            [121, 149, 175],
            [121, 150, 177],
        ],
        [
            [100, 152, 172],
            [100, 152, 172],
            [99, 151, 172],
            [77, 118, 127],
            [31, 42, 62],
            [62, 96, 163],
            [77, 126, 134],
            [96, 147, 164],
            [100, 152, 172],
        ],
        [
            [91, 94, 90],
            [91, 94, 90],
            [90, 94, 89],
            [84, 88, 87],
            [65, 73, 77],
            [91, 66, 58],
            [104, 102, 71],
            [94, 99, 100],
            [91, 95, 91],
        ],
        [
            [61, 59, 68],
            [61, 59, 68],
            [61, 59, 68],
            [59, 57, 66],
            [49, 47, 55],
            [54, 55, 58],
            [77, 94, 110],
            [67, 67, 79],
            [62, 60, 69],
        ],
        [
            [51, 51, 54],
            [51, 51, 54],
            [51, 51, 54],
            [51, 51, 54],
            [48, 48, 52],
            [51, 54, 58],
            [58, 61, 63],
            [56, 51, 51],
            [52, 52, 54],
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
