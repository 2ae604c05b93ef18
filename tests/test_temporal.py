from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import frame_image

from d2nvideo.errors import UsageError
from d2nvideo.evaluation.metrics import (
    psnr,
    scene_cuts,
    shot_starts,
    ssim,
    ssim_gray,
    warp_error,
)
from d2nvideo.video.decode import Frame
from d2nvideo.video.smooth import make_smoother


def _texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random texture (trackable by optical flow): (H, W, 3) uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(
        np.uint8
    )


def _panning(n: int = 8, shift: int = 3, h: int = 96, w: int = 128) -> list[np.ndarray]:
    big = _texture(h, w + n * shift)
    return [np.ascontiguousarray(big[:, i * shift : i * shift + w]) for i in range(n)]


def test_ssim_and_psnr_agree_with_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    for shape in [(40, 50), (33, 47, 3)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-50, 50, shape), 0, 255).astype(np.uint8)
        axis = -1 if len(shape) == 3 else None
        assert ssim(a, b) == pytest.approx(
            structural_similarity(a, b, data_range=255, channel_axis=axis), abs=1e-9
        )
        assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    assert ssim_gray(a, a) == pytest.approx(1.0)


def test_warp_error_of_a_static_video_is_about_zero() -> None:
    frames = [_texture()] * 5
    assert warp_error(frames, frames) < 1e-6


def test_a_known_global_shift_is_compensated() -> None:
    frames = _panning()
    compensated = warp_error(frames, frames)
    uncompensated = float(
        np.mean(
            [((a / 255.0 - b / 255.0) ** 2).sum(-1).mean() for a, b in itertools.pairwise(frames)]
        )
    )
    assert compensated < 0.1 * uncompensated


def test_flicker_scores_worse_than_its_smooth_version() -> None:
    inputs = _panning()
    flicker = [
        np.clip(f.astype(int) + (25 if i % 2 else -25), 0, 255).astype(np.uint8)
        for i, f in enumerate(inputs)
    ]
    assert warp_error(inputs, flicker) > 10 * warp_error(inputs, inputs)


def _smoothed(mode: str, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> list[np.ndarray]:
    frames = [Frame(o, i, None, i, source=s) for i, (s, o) in enumerate(zip(inputs, outputs))]
    return [f.image for f in make_smoother(mode, 0.6)(iter(frames))]


@pytest.mark.parametrize(
    ("mode", "h", "w"), [("flow", 96, 128), ("ema", 96, 128), ("flow", 272, 704)]
)
def test_smoothing_reduces_flicker_and_keeps_the_picture(mode: str, h: int, w: int) -> None:
    inputs = _panning(10, h=h, w=w)  # 704 wide: the flow is estimated smaller than the frame
    flicker = [
        np.clip(f.astype(int) // 2 + (12 if i % 2 else -12) + 40, 0, 255).astype(np.uint8)
        for i, f in enumerate(inputs)
    ]
    smooth = _smoothed(mode, inputs, flicker)
    assert warp_error(inputs, smooth) < 0.7 * warp_error(inputs, flicker)
    assert np.mean([ssim(a, b) for a, b in zip(smooth, flicker)]) > 0.8
    assert smooth[0].dtype == np.uint8 and smooth[0].shape == flicker[0].shape


def test_the_occlusion_test_at_the_flows_working_size_finds_what_full_size_finds() -> None:
    import cv2

    from d2nvideo.video.flow import FlowEstimator, gray, occlusion

    background, square = _texture(600, 1000, seed=3), _texture(160, 160, seed=4)

    def frame(t: int) -> np.ndarray:  # the background pans left, a square moves right
        image = np.ascontiguousarray(background[:, 40 + 6 * t : 940 + 6 * t])
        image[200:360, 400 - 10 * t : 560 - 10 * t] = square
        return gray(image)

    a, b = frame(0), frame(1)
    flow = FlowEstimator()  # 480 a side: about half this size
    small_a, small_b = flow.shrink(a), flow.shrink(b)
    fw, bw = flow.small(small_a, small_b), flow.small(small_b, small_a)
    full = occlusion(flow.enlarge(fw, a.shape), flow.enlarge(bw, a.shape))
    small = occlusion(fw, bw, a.shape[1] / small_a.shape[1])
    enlarged = cv2.resize(small.astype(np.float32), (a.shape[1], a.shape[0])) > 0.5
    assert 0.002 < full.mean() < 0.05  # the square's trailing edge and the frame's edge
    assert (enlarged & full).sum() / (enlarged | full).sum() > 0.6


def test_warp_error_leaves_out_pairs_across_a_scene_cut() -> None:
    first = _panning(5)
    second = [np.ascontiguousarray(f[::-1]) // 4 for f in _panning(5, shift=2)]  # another shot
    flicker = [f // 2 + (20 if i % 2 else 0) for i, f in enumerate(second)]  # a flickering output
    both, out = first + second, first + flicker
    assert scene_cuts(both) == 1 and scene_cuts(first) == 0
    expected = (4 * warp_error(first, first) + 4 * warp_error(second, flicker)) / 8
    assert warp_error(both, out) == pytest.approx(expected, rel=1e-6)


def test_drift_is_measured_within_shots() -> None:
    from d2nvideo.evaluation.temporal import brightness_spread

    bright, dark = _texture(seed=1), _texture(seed=2) // 4  # two steady shots
    frames = [bright] * 4 + [dark] * 4
    starts = shot_starts(frames)
    assert starts == [0, 4]
    assert brightness_spread(frames, starts) == 0.0 < 0.5 < brightness_spread(frames)
    wobbly = [bright] * 4 + [dark, dark // 2, dark, dark // 2]
    assert brightness_spread(wobbly, starts) > 0.1  # within a shot it still counts


def test_smoothing_resets_at_a_scene_cut() -> None:
    a, b = _texture(seed=1), _texture(seed=2) // 4
    out = _smoothed("flow", [a, a, b], [a, a, b])
    assert np.array_equal(out[2], b)  # nothing of the previous shot leaks in


def test_none_is_the_identity_and_bad_modes_are_usage_errors() -> None:
    frames = [frame_image(i, 32, 24) for i in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(_smoothed("none", frames, frames), frames))
    with pytest.raises(UsageError):
        make_smoother("median")
    with pytest.raises(UsageError):
        make_smoother("flow", 1.0)
