from __future__ import annotations

import cv2
import numpy as np
import pytest

from d2nvideo.evaluation.metrics import ssim
from d2nvideo.upsample import bicubic_upsample, guided_upsample


def _detailed(h: int = 180, w: int = 320, colour_detail: float = 0.0) -> np.ndarray:
    """Coarse colour and fine detail, grey as a camera's (its video carries colour at half the
    width or less) unless ``colour_detail`` gives each channel fine noise of its own."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (h // 10, w // 10, 3)).astype(np.float32), (w, h))
    fine = rng.normal(0, 18, (h, w, 1)) + rng.normal(0, colour_detail, (h, w, 3))
    return np.clip(base + fine, 0, 255).astype(np.uint8)


def _night_look(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return np.clip((x**1.8) * np.array([0.35, 0.4, 0.6]) * 255, 0, 255).astype(np.uint8)


def test_guided_upsampling_keeps_detail_that_bicubic_loses() -> None:
    full = _detailed()
    small = cv2.resize(full, (80, 45), interpolation=cv2.INTER_AREA)
    target = _night_look(full)
    guided = guided_upsample(small, _night_look(small), full)
    bicubic = bicubic_upsample(_night_look(small), (320, 180))
    assert guided.shape == full.shape and guided.dtype == np.uint8
    assert ssim(guided, target) > 0.9 > ssim(bicubic, target) + 0.1


def test_guided_upsampling_of_an_identity_is_close_to_the_input() -> None:
    full = _detailed()
    small = cv2.resize(full, (160, 90), interpolation=cv2.INTER_AREA)
    assert ssim(guided_upsample(small, small, full), full) > 0.95


def test_the_subsampled_fit_stays_close_to_the_full_size_fit() -> None:
    from d2nvideo.upsample import _coefficient_planes, apply_affine, fit_stride, guided_radius

    full = _detailed(360, 640)
    small = cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA)
    night = _night_look(small)
    radius = guided_radius(180, 320)
    assert fit_stride(180, 320, radius) == 2 and fit_stride(45, 80, 4) == 1
    a, b = _coefficient_planes(small / np.float32(255), night / np.float32(255), radius, 1e-3)
    reference = apply_affine(a, b, full)
    assert ssim(guided_upsample(small, night, full), reference) >= 0.99


def test_luma_detail_finer_than_the_working_size_is_kept_and_colour_detail_left_out() -> None:
    from d2nvideo.evaluation.metrics import ssim_gray
    from d2nvideo.upsample import _coefficient_planes, apply_affine

    def against_the_full_size_transform(colour_detail: float) -> tuple[float, float]:
        full = _detailed(360, 640, colour_detail)
        small = cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA)
        night = _night_look(small)
        half = [
            cv2.resize(x / np.float32(255), (160, 90), interpolation=cv2.INTER_AREA)
            for x in (small, night)
        ]
        exact = apply_affine(*_coefficient_planes(*half, 8, 1e-3), full)
        ours = guided_upsample(small, night, full, lights=False)
        return ssim(ours, exact), ssim_gray(ours, exact)

    grey_colour, grey_luma = against_the_full_size_transform(0.0)
    colour, luma = against_the_full_size_transform(18.0)
    assert grey_colour >= 0.99 and grey_luma >= 0.99  # grey detail: the same transform
    assert luma >= 0.99 > colour + 0.05  # per-channel detail: its luma kept, its colour not


def test_fingerprints_survive_resizing_and_tell_pictures_apart() -> None:
    import cv2
    from conftest import frame_image

    from d2nvideo.images import fingerprint, fingerprint_distance

    a = frame_image(3, 320, 180)
    smaller = cv2.resize(a, (160, 90), interpolation=cv2.INTER_AREA)
    other = frame_image(40, 320, 180)[::-1].copy()
    assert fingerprint_distance(fingerprint(a), fingerprint(smaller)) <= 4
    assert fingerprint_distance(fingerprint(a), fingerprint(other)) > 12


@pytest.mark.parametrize(
    "full_size, small_size",
    [
        ((183, 322), (80, 45)),  # odd sizes: the box filter's reflected borders, a full-size fit
        ((360, 640), (320, 180)),  # the default: the fit on 2x2 means
    ],
)
def test_the_torch_upsampler_matches_opencvs(
    full_size: tuple[int, int], small_size: tuple[int, int]
) -> None:
    import torch

    from d2nvideo.infer.frames import guided_upsample as torch_guided

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0

    full = _detailed(*full_size)
    small = cv2.resize(full, small_size, interpolation=cv2.INTER_AREA)
    night = _night_look(small)
    ours = torch_guided(tensor(small), tensor(night), tensor(full))
    ours_u8 = (ours * 255 + 0.5).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    opencv = guided_upsample(small, night, full)
    assert ssim(ours_u8, opencv) >= 0.99
    assert np.abs(ours_u8.astype(int) - opencv).max() <= 2


def test_the_box_filter_reflects_borders_as_opencv(rng_seed: int = 1) -> None:
    import torch

    from d2nvideo.infer.frames import box_filter
    from d2nvideo.upsample import _box

    x = np.random.default_rng(rng_seed).random((7, 11)).astype(np.float32)
    for r in (1, 3, 9):  # 9: wider than the image, reflected more than once
        ours = box_filter(torch.from_numpy(x)[None, None], r)[0, 0].numpy()
        assert np.allclose(ours, _box(x, r), atol=1e-5), r


def _lamp_scene(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A day frame (a textured grey sky, a lamp head of a few pixels) and a night translation
    at the same size in which the sky went dark and the lamp glows: no local affine map of the
    input makes the glow (the flat sky around the head says nothing about it)."""
    rng = np.random.default_rng(3)
    day = np.clip(rng.normal(200, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    r = max(1, h // 120)
    day[h // 2 - r : h // 2 + r, w // 2 - r : w // 2 + r] = 60
    night = np.full((h, w, 3), 12, np.uint8)
    cv2.circle(night, (w // 2, h // 2), h // 30, (250, 235, 200), -1)
    return day, cv2.GaussianBlur(night, (0, 0), h / 180)


def test_lights_the_fit_cannot_express_come_back_and_nothing_else_changes() -> None:
    import torch

    from d2nvideo.infer.frames import guided_upsample as torch_guided
    from d2nvideo.upsample import _coefficient_planes, apply_affine, find_lights

    full, _ = _lamp_scene(360, 640)
    small = cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA)
    _, night = _lamp_scene(180, 320)

    def half(image: np.ndarray) -> np.ndarray:  # the fit's 2x2 means, as guided_upsample
        return cv2.resize(image, (160, 90), interpolation=cv2.INTER_AREA) / np.float32(255)

    fit_alone = apply_affine(*_coefficient_planes(half(small), half(night), 8, 1e-3), full)
    out = guided_upsample(small, night, full)
    glow = (slice(174, 186), slice(308, 316))  # beside the lamp head, inside the glow
    # the glow (170 here), lost by the fit and back, dimmer: the spot is measured against
    # surroundings it is part of, and the threshold's worth is left out
    assert fit_alone[glow].mean() < 50 < 100 < out[glow].mean()
    corner = (slice(0, 60), slice(0, 100))
    assert np.abs(out[corner].astype(int) - fit_alone[corner]).max() <= 1  # the sky as fitted
    assert find_lights(night, night) is None  # nothing brighter than the fit: nothing added

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0

    ours = torch_guided(tensor(small), tensor(night), tensor(full))
    ours_u8 = (ours * 255 + 0.5).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert ssim(ours_u8, out) >= 0.99 and np.abs(ours_u8.astype(int) - out).max() <= 3


def test_the_networks_blur_does_not_come_back_as_halos() -> None:
    from d2nvideo.upsample import _coefficient_planes, apply_affine, apply_with_luma_detail

    full = _detailed(360, 640)
    small = cv2.resize(full, (320, 180), interpolation=cv2.INTER_AREA)
    for sigma in (1.0, 2.0, 4.0):  # a soft network output, as the pipeline upsamples it
        soft = cv2.GaussianBlur(_night_look(small), (0, 0), sigma)
        half = [  # the fit's 2x2 means, as guided_upsample takes them
            cv2.resize(x / np.float32(255), (160, 90), interpolation=cv2.INTER_AREA)
            for x in (small, soft)
        ]
        a, b = _coefficient_planes(*half, 8, 1e-3)
        fit_alone = apply_with_luma_detail(a, apply_affine(a, b, small), small, full)
        assert np.abs(guided_upsample(small, soft, full).astype(int) - fit_alone).max() <= 1


def _lit_square(side: int, *, haze: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A flat day sky at 320x180 and a night output, dark but for a lit square of ``side``
    pixels (or, with ``haze``, a bright band 120 pixels wide)."""
    day = np.full((180, 320, 3), 190, np.uint8)
    night = np.full((180, 320, 3), 20, np.uint8)
    if haze:
        night[:, 100:220] = 90
    else:
        night[90 - side // 2 : 90 + side // 2, 160 - side // 2 : 160 + side // 2] = 200
    return day, night


def test_a_wide_light_comes_back_whole_and_a_wide_haze_does_not() -> None:
    def with_and_without(day: np.ndarray, night: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        full = cv2.resize(day, (640, 360))
        lit = guided_upsample(day, night, full).astype(int)
        return lit, guided_upsample(day, night, full, lights=False).astype(int)

    lit, fit = with_and_without(*_lit_square(16))
    row = lit[180, 312:328, 0]  # across the square's middle at native size
    assert row.min() > fit[180, 312:328, 0].max() + 60  # lit through, not a hollow rim
    assert row.max() - row.min() < 10
    lit, fit = with_and_without(*_lit_square(0, haze=True))
    assert abs(lit[180, 320, 0] - fit[180, 320, 0]) <= 1  # the band's middle as fitted
    assert np.abs(lit - fit).max() <= 16  # a little at its edges at most


def test_a_frames_lights_depend_on_that_frame_alone() -> None:
    import torch

    from d2nvideo.infer.frames import _lights
    from d2nvideo.upsample import find_lights as lights

    # frame B: a faint spot (+18) inside a region the fit overshoots (-25): no light
    b_out = np.full((90, 160, 3), 100, np.uint8)
    b_fit = b_out.copy()
    b_fit[20:70, 40:120] = 125
    b_fit[44:46, 79:81] = 82
    a_out, a_fit = _lit_square(8)[1][:90, :160], np.full((90, 160, 3), 20, np.uint8)
    a_out = np.ascontiguousarray(a_out)
    a_out[40:48, 60:68] = 200  # frame A: a lamp
    assert lights(b_out, b_fit) is None and lights(a_out, a_fit) is not None
    both = np.concatenate([a_out, b_out], 1)  # the lamp beside B, in one frame
    extra = lights(both, np.concatenate([a_fit, b_fit], 1))
    assert extra is not None and extra[:, 160:].max() == 0

    def tensor(*images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0

    batched = _lights(tensor(a_out, b_out), tensor(a_fit, b_fit))
    assert _lights(tensor(b_out), tensor(b_fit)) is None
    assert batched is not None and float(batched[1].abs().max()) == 0.0


def test_the_pipeline_adds_lights_into_night_only() -> None:
    from d2nvideo.pipeline import WorkingSize, upsample_stage

    day, night = _lit_square(8)
    full = cv2.resize(day, (640, 360))
    res = WorkingSize(180, None, "guided")
    into = {to: upsample_stage([full], [day], [night], res, to)[0] for to in ("night", "day")}
    assert np.array_equal(into["night"], guided_upsample(day, night, full))
    assert np.array_equal(into["day"], guided_upsample(day, night, full, lights=False))
    assert into["night"].max() > into["day"].max() + 60  # the lit square, into night alone
