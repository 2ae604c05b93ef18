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
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
            [5, 5, 5],
        ],
        [
            [4, 4, 5],
            [4, 4, 5],
            [4, 4, 5],
            [4, 4, 5],
            [4, 4, 5],
            [4, 3, 5],
            [4, 4, 5],
            [4, 4, 5],
            [4, 4, 5],
        ],
        [
            [5, 6, 4],
            [5, 6, 4],
            [5, 6, 4],
            [5, 6, 4],
            [5, 6, 4],
            [4, 6, 4],
            [5, 6, 4],
            [5, 6, 4],
            [5, 6, 4],
        ],
        [
            [5, 6, 2],
            [5, 6, 2],
            [5, 6, 2],
            [5, 6, 2],
            [11, 8, 3],
            [11, 6, 3],
            [5, 7, 2],
            [5, 6, 2],
            [5, 6, 2],
        ],
        [
            [14, 11, 3],
            [14, 11, 3],
            [14, 11, 3],
            [15, 11, 3],
            [30, 15, 6],
            [20, 85, 24],
            [28, 21, 7],
            [16, 12, 3],
            [15, 11, 3],
        ],
        [
            [16, 15, 6],
            [16, 15, 6],
            [16, 15, 6],
            [17, 16, 6],
            [32, 27, 12],
            [65, 41, 33],
            [69, 57, 33],
            [39, 31, 12],
            [17, 16, 7],
        ],
        [
            [17, 15, 7],
            [17, 15, 7],
            [17, 15, 7],
            [17, 15, 7],
            [26, 22, 12],
            [51, 39, 24],
            [68, 75, 49],
            [51, 40, 18],
            [20, 18, 10],
        ],
    ],
    "day": [
        [
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
            [149, 173, 186],
        ],
        [
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
            [114, 150, 170],
        ],
        [
            [96, 115, 135],
            [96, 115, 135],
            [96, 115, 135],
            [96, 115, 135],
            [95, 114, 133],
            [94, 115, 135],
            [96, 115, 136],
            [96, 115, 135],
            [96, 115, 135],
        ],
        [
            [154, 160, 176],
            [154, 160, 176],
            [154, 160, 176],
            [150, 153, 165],
            [125, 126, 129],
            [140, 146, 162],
            [158, 168, 191],
            [155, 161, 179],
            [154, 160, 176],
        ],
        [
            [117, 133, 160],
            [117, 133, 160],
            [117, 133, 160],
            [109, 125, 153],
            [75, 90, 105],
            [125, 133, 177],
            [132, 153, 171],
            [118, 135, 162],
            [117, 133, 160],
        ],
        [
            [44, 57, 71],
            [44, 57, 71],
            [44, 57, 71],
            [44, 55, 67],
            [42, 47, 47],
            [75, 72, 65],
            [65, 82, 77],
            [47, 62, 76],
            [44, 58, 72],
        ],
        [
            [54, 61, 65],
            [54, 61, 65],
            [54, 61, 65],
            [54, 60, 67],
            [45, 52, 57],
            [41, 45, 44],
            [90, 90, 105],
            [56, 62, 71],
            [55, 61, 66],
        ],
        [
            [52, 51, 51],
            [52, 51, 51],
            [52, 51, 51],
            [52, 51, 51],
            [51, 50, 51],
            [50, 51, 50],
            [39, 37, 41],
            [45, 43, 45],
            [52, 51, 51],
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
