"""Return a low-resolution translation to native resolution with detail from the input frame.

The network runs at a working size; a per-pixel affine colour transform (a 3x4 matrix mapping
input RGB to output RGB) is fitted on the low-resolution input->output pair by local linear
regression (the colour guided filter of He et al., "Guided Image Filtering", TPAMI 2013) and
brought to native size (the "fast guided filter", He and Sun 2015): the fit applied at working
size is upsampled bilinearly, and the luma detail of the native frame that the working size lost
is added, times each output channel's response to a grey change (:func:`apply_with_luma_detail`;
the same as applying the upsampled coefficients to the native frame where its fine detail is
grey, as in camera video, at half the cost). With the default wide window the fit itself runs on
the working-size pair averaged 2x2 (the fast guided filter's subsampling; coefficients box-
averaged over 33x33 windows hardly change: SSIM >= 0.995 to the full-size fit on real translated
frames, at a third of the cost). Edges and texture come from the input; colour and light from
the network. What no local affine function of the input can express (a lamp lit where the day
sky was flat, a lit window in a dark facade: brightness the input did not have) is lost by the
fit, so into night the compact part of the network's output brighter than the fit's by more than
``LIGHT_THRESHOLD`` comes back on top, upsampled bilinearly (:func:`find_lights`); below the
threshold, the network's blur stays out. ``bicubic`` is the plain alternative it is compared
with.

Everything works on single-channel planes with OpenCV's vectorised kernels writing into
preallocated buffers (issue 11: splitting multi-channel float images and allocating a fresh
720p array per operation took three quarters of the time). ``infer/frames.py`` holds the same
filter in torch for the GPU path.
"""

from __future__ import annotations

import cv2
import numpy as np

RADIUS_FRACTION = 0.09
LIGHT_THRESHOLD = 20.0  # of 255: a residual the fit leaves below this is the network's blur
_CHANNEL_MEAN = np.full((1, 3), 1 / 3, np.float32)
Planes = list[np.ndarray]  # (h, w) float arrays, one per colour channel


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_radius(height: int, width: int) -> int:
    """The default window radius at a working size: 9% of the shorter side (16 at 180)."""
    return max(2, round(RADIUS_FRACTION * min(height, width)))


def fit_stride(height: int, width: int, radius: int) -> int:
    """How much the fit subsamples the working-size pair: 2 when the window is wide (radius
    >= 4) and the size even (exact 2x2 means, the same in torch), else 1."""
    return 2 if radius >= 4 and height % 2 == 0 and width % 2 == 0 else 1


def _inverse_sym3(cov: dict[tuple[int, int], np.ndarray]) -> dict[tuple[int, int], np.ndarray]:
    """Inverses of symmetric positive-definite 3x3 matrices given as planes ``cov[i, j]``
    (i <= j), by the adjugate in float64 (several times faster than a batched LAPACK solve for
    millions of tiny systems); returns the planes of the inverse, both triangles."""
    a, b, c = (cov[0, 0].astype(np.float64), cov[0, 1].astype(np.float64), cov[0, 2])
    d, e, f = cov[1, 1].astype(np.float64), cov[1, 2].astype(np.float64), cov[2, 2]
    c, f = c.astype(np.float64), f.astype(np.float64)
    co = [d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e, a * d - b * b]
    inv_det = 1.0 / (a * co[0] + b * co[1] + c * co[2])
    at = {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 1): 3, (1, 2): 4, (2, 2): 5}
    out = {}
    for (i, j), k in at.items():
        out[i, j] = out[j, i] = co[k] * inv_det
    return out


def affine_coefficients(
    guide: np.ndarray, target: np.ndarray, radius: int = 2, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Local affine fits ``target ~ A @ guide + b`` over (2r+1)^2 windows, box-averaged.

    ``guide`` and ``target`` are ``(h, w, 3) float32`` on [0, 1]. Returns ``A`` of shape
    ``(h, w, 3, 3)`` (output channel, input channel) and ``b`` of shape ``(h, w, 3)``.
    ``eps`` regularises flat areas towards a constant colour.
    """
    a_planes, b_planes = _coefficient_planes(guide, target, radius, eps)
    h, w = guide.shape[:2]
    a_mat = np.stack([np.stack(row, -1) for row in a_planes], -2).reshape(h, w, 3, 3)
    return a_mat, np.stack(b_planes, -1)


def _coefficient_planes(
    guide: np.ndarray, target: np.ndarray, radius: int, eps: float
) -> tuple[list[Planes], Planes]:
    """:func:`affine_coefficients` as planes: ``A[o][i]`` and ``b[o]``, ``(h, w) float32``."""
    g, t = cv2.split(guide), cv2.split(target)
    mean_i, mean_p = [_box(x, radius) for x in g], [_box(x, radius) for x in t]
    cov_ii = {}
    for a in range(3):
        for b in range(a, 3):
            cov_ii[a, b] = _box(g[a] * g[b], radius) - mean_i[a] * mean_i[b]
        cov_ii[a, a] += np.float32(eps)
    inv = _inverse_sym3(cov_ii)
    cov_ip = [
        [_box(g[i] * t[o], radius) - mean_i[i] * mean_p[o] for i in range(3)] for o in range(3)
    ]
    a_out: list[Planes] = []
    b_out: Planes = []
    for o in range(3):
        row = [_dot3([inv[i, k] for k in range(3)], cov_ip[o]).astype(np.float32) for i in range(3)]
        b = mean_p[o] - _dot3(row, mean_i)
        a_out.append([_box(x, radius) for x in row])
        b_out.append(_box(b, radius))
    return a_out, b_out


def _dot3(x: Planes, y: Planes) -> np.ndarray:
    """``x[0] * y[0] + x[1] * y[1] + x[2] * y[2]``, plane by plane, in that order."""
    return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]  # type: ignore[no-any-return]


def apply_affine(a_planes: list[Planes], b_planes: Planes, full_in: np.ndarray) -> np.ndarray:
    """Upsample the coefficient planes bilinearly to ``full_in``'s size and apply them:
    ``(H, W, 3) uint8`` in, ``(H, W, 3) uint8`` out (rounded, clipped)."""
    h, w = full_in.shape[:2]
    planes = [p.astype(np.float32) for p in cv2.split(np.ascontiguousarray(full_in))]
    acc = np.empty((h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    out = []
    for o in range(3):
        # the offset in 0-255 units, +0.5 so that the final truncation rounds
        cv2.resize(b_planes[o] * np.float32(255.0) + np.float32(0.5), (w, h), acc)
        for i in range(3):
            cv2.resize(a_planes[o][i], (w, h), tmp)
            cv2.accumulateProduct(tmp, planes[i], acc)
        np.clip(acc, 0, 255, out=acc)
        out.append(acc.astype(np.uint8))
    return cv2.merge(out)


def apply_with_luma_detail(
    a_planes: list[Planes], fitted: np.ndarray, low_in: np.ndarray, full_in: np.ndarray
) -> np.ndarray:
    """The affine fit at native size, as :func:`apply_affine` would give it, from the fit at
    working size: ``fitted`` (``apply_affine`` on ``low_in``) upsampled bilinearly, plus the luma
    detail of ``full_in`` that the working size lost, times each output channel's gain for a
    grey change (the sum of its row of ``A``). Where the detail is grey and the coefficients
    are locally constant this is the same transform; what it leaves out is colour detail finer
    than the working size (a quarter of 720p's width; camera video carries chroma at half
    its width). It takes half the full-size planes of applying ``A`` itself: about 3.5 ms less
    CPU a 720p frame in the whole pipeline here, and SSIM >= 0.996 to it on held-out frames
    (benchmarks/README.md)."""
    h, w = full_in.shape[:2]
    detail = cv2.cvtColor(np.ascontiguousarray(full_in), cv2.COLOR_RGB2GRAY).astype(np.float32)
    low_grey = cv2.cvtColor(np.ascontiguousarray(low_in), cv2.COLOR_RGB2GRAY).astype(np.float32)
    cv2.subtract(detail, cv2.resize(low_grey, (w, h)), detail)
    base = cv2.split(fitted.astype(np.float32) + np.float32(0.5))  # +0.5: truncation rounds
    acc, gain = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
    out = []
    for o in range(3):
        cv2.resize(base[o], (w, h), acc)
        row = a_planes[o]
        cv2.resize(row[0] + row[1] + row[2], (w, h), gain)  # the response to a grey change
        cv2.accumulateProduct(gain, detail, acc)
        np.clip(acc, 0, 255, out=acc)
        out.append(acc.astype(np.uint8))
    return cv2.merge(out)


def guided_upsample(
    low_in: np.ndarray,
    low_out: np.ndarray,
    full_in: np.ndarray,
    radius: int | None = None,
    eps: float = 1e-3,
    lights: bool = True,
) -> np.ndarray:
    """``(h, w, 3) uint8`` input and translation at working size, ``(H, W, 3) uint8`` input at
    native size -> ``(H, W, 3) uint8`` translation at native size. ``lights``: add back the
    compact spots the fit cannot express (:func:`find_lights`; the pipeline asks for them into
    night, where lamps light up, not into day, where such spots are the network's haze).

    ``radius`` (working-size pixels) defaults to 9% of the shorter side (16 at 180): wide enough
    that the fit follows the network's colour and light rather than its blur, which a small
    network trained briefly has plenty of, and still local enough for lamps and sky.
    """
    if radius is None:
        radius = guided_radius(*low_in.shape[:2])
    guide = low_in.astype(np.float32) / np.float32(255.0)
    target = low_out.astype(np.float32) / np.float32(255.0)
    h, w = guide.shape[:2]
    stride = fit_stride(h, w, radius)
    if stride > 1:
        size = (w // stride, h // stride)
        guide = np.asarray(cv2.resize(guide, size, interpolation=cv2.INTER_AREA), np.float32)
        target = np.asarray(cv2.resize(target, size, interpolation=cv2.INTER_AREA), np.float32)
        radius = (radius + stride - 1) // stride
    a_planes, b_planes = _coefficient_planes(guide, target, radius, eps)
    fitted = apply_affine(a_planes, b_planes, low_in)
    out = apply_with_luma_detail(a_planes, fitted, low_in, full_in)
    extra = find_lights(low_out, fitted) if lights else None
    if extra is not None:
        h, w = full_in.shape[:2]
        cv2.add(out, cv2.resize(extra, (w, h), interpolation=cv2.INTER_LINEAR), out)
    return out


def find_lights(low_out: np.ndarray, fitted: np.ndarray) -> np.ndarray | None:
    """What the network made brighter than the affine fit can, at working size, ``(h, w, 3)
    uint8`` (None when nothing is): compact spots only. The residual's mean over the channels,
    less the mean of its brighter-than-fit surroundings over a window of ``guided_radius // 2``
    (a wide glow the fit missed, such as a sky patch, is the network's haze, not a light) and
    less ``LIGHT_THRESHOLD``, spread over that window but never beyond the pixel's own excess;
    in the colour of the residual's positive part."""
    r = cv2.subtract(low_out, fitted, dtype=cv2.CV_32F)  # OpenCV kernels: ~0.2 ms at 320x180
    mean = cv2.transform(r, _CHANNEL_MEAN)
    if cv2.minMaxLoc(mean)[1] <= LIGHT_THRESHOLD:
        return None
    radius = max(1, guided_radius(*mean.shape) // 2)
    # against brighter-than-fit surroundings only, so that a spot needs mean > LIGHT_THRESHOLD
    # itself (the early exit above is exact, and nothing elsewhere in the frame decides it)
    spot = mean - np.maximum(_box(mean, radius), 0) - LIGHT_THRESHOLD
    if float(spot.max()) <= 0:
        return None
    # a light wider than the window scores only at its rim: spread each spot's score over the
    # window, never beyond the pixel's own excess, so that a lit shop window comes back whole
    side = 2 * radius + 1
    spread = cv2.dilate(np.maximum(spot, 0), np.ones((side, side), np.uint8))
    spot = np.maximum(np.minimum(spread, mean - LIGHT_THRESHOLD), 0)
    positive = np.maximum(r, 0)
    level = np.maximum(cv2.transform(positive, _CHANNEL_MEAN), 1.0)
    gain = np.minimum(spot / level, 1.0)
    return cv2.convertScaleAbs(positive * gain[..., None])  # rounded, saturated to uint8


def bicubic_upsample(low_out: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Plain resize of the translation to ``size`` = (width, height)."""
    return cv2.resize(low_out, size, interpolation=cv2.INTER_CUBIC)
