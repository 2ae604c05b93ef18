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
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
            [23, 10, 9],
        ],
        [
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
            [30, 12, 10],
        ],
        [
            [61, 19, 10],
            [61, 19, 10],
            [61, 19, 10],
            [62, 19, 10],
            [67, 19, 9],
            [67, 20, 10],
            [61, 19, 10],
            [61, 19, 10],
            [61, 19, 10],
        ],
        [
            [123, 89, 53],
            [123, 89, 53],
            [123, 89, 53],
            [126, 91, 54],
            [130, 84, 45],
            [134, 99, 62],
            [123, 89, 52],
            [123, 89, 53],
            [123, 89, 53],
        ],
        [
            [16, 13, 13],
            [16, 13, 13],
            [16, 13, 13],
            [16, 13, 13],
            [11, 16, 13],
            [9, 20, 9],
            [15, 13, 12],
            [16, 13, 13],
            [16, 13, 13],
        ],
        [
            [20, 7, 11],
            [20, 7, 11],
            [20, 7, 11],
            [20, 7, 11],
            [21, 8, 13],
            [94, 50, 33],
            [21, 11, 16],
            [20, 7, 11],
            [20, 7, 11],
        ],
        [
            [19, 7, 8],
            [19, 7, 8],
            [19, 7, 8],
            [19, 7, 8],
            [20, 7, 9],
            [30, 15, 21],
            [77, 51, 34],
            [21, 9, 11],
            [19, 7, 8],
        ],
        [
            [16, 9, 6],
            [16, 9, 6],
            [16, 9, 6],
            [16, 9, 6],
            [16, 9, 6],
            [23, 14, 7],
            [57, 49, 28],
            [41, 34, 20],
            [16, 9, 6],
        ],
    ],
    "day": [
        [
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
            [176, 200, 220],
        ],
        [
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
            [178, 197, 214],
        ],
        [
            [173, 203, 225],
            [173, 203, 225],
            [173, 203, 225],
            [173, 203, 225],
            [172, 202, 225],
            [173, 203, 225],
            [173, 203, 225],
            [173, 203, 225],
            [173, 203, 225],
        ],
        [
            [204, 205, 201],
            [204, 205, 201],
            [204, 205, 201],
            [204, 205, 201],
            [206, 206, 198],
            [199, 198, 195],
            [204, 205, 201],
            [204, 205, 201],
            [204, 205, 201],
        ],
        [
            [111, 112, 128],
            [111, 112, 128],
            [111, 112, 128],
            [111, 112, 128],
            [137, 127, 136],
            [75, 83, 70],
            [111, 114, 126],
            [110, 111, 127],
            [111, 112, 128],
        ],
        [
            [168, 155, 137],
            [168, 155, 137],
            [168, 155, 137],
            [169, 155, 137],
            [164, 147, 125],
            [124, 142, 141],
            [166, 138, 113],
            [165, 152, 135],
            [168, 155, 137],
        ],
        [
            [135, 165, 193],
            [135, 165, 193],
            [135, 165, 193],
            [135, 165, 192],
            [131, 162, 186],
            [145, 176, 192],
            [152, 115, 118],
            [131, 158, 182],
            [135, 165, 192],
        ],
        [
            [126, 164, 198],
            [126, 164, 198],
            [126, 164, 198],
            [125, 164, 198],
            [124, 163, 197],
            [122, 161, 193],
            [166, 155, 164],
            [124, 160, 182],
            [125, 164, 198],
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
