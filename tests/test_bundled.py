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
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
            [8, 7, 7],
        ],
        [
            [7, 6, 6],
            [7, 6, 6],
            [7, 6, 6],
            [7, 7, 6],
            [7, 7, 7],
            [7, 7, 7],
            [7, 7, 6],
            [7, 6, 6],
            [7, 6, 6],
        ],
        [
            [6, 6, 7],
            [6, 6, 7],
            [6, 6, 7],
            [6, 6, 8],
            [6, 6, 8],
            [6, 6, 8],
            [6, 6, 8],
            [6, 6, 7],
            [6, 6, 7],
        ],
        [
            [6, 7, 7],
            [6, 7, 7],
            [6, 7, 7],
            [6, 7, 7],
            [6, 8, 7],
            [5, 8, 7],
            [6, 7, 7],
            [6, 7, 7],
            [6, 7, 7],
        ],
        [
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 2],
            [6, 7, 3],
            [6, 8, 3],
            [6, 8, 3],
            [6, 8, 3],
        ],
        [
            [16, 14, 6],
            [16, 14, 6],
            [16, 14, 6],
            [16, 14, 6],
            [20, 17, 8],
            [9, 18, 5],
            [15, 15, 6],
            [17, 14, 6],
            [16, 14, 6],
        ],
        [
            [32, 28, 16],
            [32, 28, 16],
            [32, 28, 16],
            [32, 28, 16],
            [35, 32, 19],
            [28, 28, 17],
            [33, 32, 21],
            [33, 29, 16],
            [33, 28, 17],
        ],
        [
            [44, 43, 26],
            [44, 43, 26],
            [44, 43, 26],
            [44, 43, 27],
            [51, 48, 32],
            [65, 60, 38],
            [60, 58, 53],
            [53, 47, 30],
            [46, 45, 28],
        ],
    ],
    "day": [
        [
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
            [115, 139, 167],
        ],
        [
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
            [112, 140, 159],
        ],
        [
            [97, 124, 146],
            [97, 124, 146],
            [97, 124, 146],
            [97, 124, 146],
            [96, 124, 146],
            [97, 125, 146],
            [97, 124, 146],
            [97, 124, 146],
            [97, 124, 146],
        ],
        [
            [120, 149, 182],
            [120, 149, 182],
            [120, 148, 182],
            [115, 142, 166],
            [109, 140, 155],
            [104, 137, 157],
            [114, 143, 167],
            [119, 148, 180],
            [120, 149, 182],
        ],
        [
            [110, 152, 161],
            [110, 152, 161],
            [109, 151, 160],
            [88, 122, 123],
            [33, 50, 72],
            [76, 107, 168],
            [94, 134, 152],
            [106, 147, 157],
            [110, 152, 161],
        ],
        [
            [80, 88, 78],
            [80, 88, 78],
            [80, 88, 77],
            [73, 80, 73],
            [53, 60, 55],
            [89, 63, 64],
            [106, 99, 65],
            [84, 93, 85],
            [81, 89, 79],
        ],
        [
            [53, 53, 61],
            [53, 53, 61],
            [53, 53, 61],
            [50, 51, 59],
            [43, 43, 51],
            [50, 50, 55],
            [73, 93, 120],
            [57, 61, 71],
            [54, 54, 61],
        ],
        [
            [49, 48, 53],
            [49, 48, 53],
            [49, 48, 53],
            [48, 48, 53],
            [47, 46, 52],
            [49, 51, 54],
            [59, 61, 65],
            [52, 48, 52],
            [50, 49, 53],
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
