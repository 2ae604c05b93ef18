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
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
            [10, 9, 10],
        ],
        [
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
            [9, 10, 9],
        ],
        [
            [8, 8, 8],
            [8, 8, 8],
            [8, 8, 8],
            [8, 8, 8],
            [8, 8, 9],
            [8, 8, 8],
            [8, 8, 8],
            [8, 8, 8],
            [8, 8, 8],
        ],
        [
            [7, 11, 11],
            [7, 11, 11],
            [7, 11, 11],
            [7, 11, 12],
            [8, 11, 11],
            [8, 11, 10],
            [7, 11, 11],
            [7, 11, 11],
            [7, 11, 11],
        ],
        [
            [9, 11, 5],
            [9, 11, 5],
            [9, 11, 5],
            [9, 11, 5],
            [13, 13, 8],
            [15, 11, 12],
            [10, 12, 5],
            [9, 11, 5],
            [9, 11, 5],
        ],
        [
            [16, 15, 5],
            [16, 15, 5],
            [16, 15, 5],
            [17, 16, 5],
            [27, 20, 6],
            [29, 36, 32],
            [19, 21, 6],
            [17, 15, 5],
            [16, 15, 5],
        ],
        [
            [19, 21, 9],
            [19, 21, 9],
            [19, 21, 9],
            [19, 21, 9],
            [34, 29, 15],
            [56, 42, 17],
            [106, 74, 80],
            [27, 27, 13],
            [19, 21, 9],
        ],
        [
            [23, 23, 12],
            [23, 23, 12],
            [23, 23, 12],
            [23, 23, 12],
            [33, 31, 19],
            [75, 65, 38],
            [128, 103, 101],
            [49, 45, 25],
            [24, 23, 12],
        ],
    ],
    "day": [
        [
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
            [125, 153, 175],
        ],
        [
            [119, 142, 164],
            [119, 142, 164],
            [119, 142, 164],
            [120, 142, 164],
            [119, 142, 164],
            [119, 142, 164],
            [119, 142, 164],
            [119, 142, 164],
            [119, 142, 164],
        ],
        [
            [98, 111, 123],
            [98, 111, 123],
            [98, 111, 123],
            [98, 111, 123],
            [97, 111, 124],
            [97, 111, 124],
            [98, 111, 123],
            [98, 111, 123],
            [98, 111, 123],
        ],
        [
            [159, 169, 190],
            [159, 169, 190],
            [159, 169, 190],
            [154, 162, 179],
            [140, 151, 154],
            [180, 181, 188],
            [156, 170, 194],
            [159, 170, 191],
            [159, 169, 190],
        ],
        [
            [195, 189, 182],
            [195, 189, 182],
            [194, 189, 182],
            [178, 172, 164],
            [54, 81, 98],
            [170, 178, 229],
            [231, 232, 239],
            [205, 201, 197],
            [195, 189, 182],
        ],
        [
            [108, 79, 66],
            [108, 79, 66],
            [108, 79, 66],
            [103, 75, 61],
            [55, 57, 51],
            [125, 119, 156],
            [109, 100, 118],
            [153, 114, 89],
            [107, 78, 66],
        ],
        [
            [81, 79, 69],
            [81, 79, 69],
            [81, 79, 69],
            [82, 78, 71],
            [71, 66, 67],
            [55, 61, 52],
            [67, 81, 68],
            [78, 77, 70],
            [82, 79, 70],
        ],
        [
            [70, 66, 66],
            [70, 66, 66],
            [70, 66, 66],
            [70, 66, 66],
            [68, 65, 66],
            [63, 64, 65],
            [63, 67, 69],
            [64, 62, 62],
            [70, 66, 66],
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
