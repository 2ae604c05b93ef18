"""The device path: every per-pixel step of translating frames as torch operations on the
network's device, so on a GPU nothing per-pixel is left to the CPU but decoding and encoding.

Frames cross to the device once as uint8; the resize to the working size, the network, the
guided upsampler (the same filter as ``upsample.py``, which it matches at SSIM >= 0.99), the
padding and the conversion back to uint8 all run there, and only the uint8 result returns. It
runs on the CPU too (that is how the tests check it), but OpenCV is faster there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..choices import Domain, Upsampler
from ..upsample import LIGHT_THRESHOLD, fit_stride, guided_radius
from ..video.bars import NO_BARS, Bars

if TYPE_CHECKING:
    from ..translator import Translator


def _reflect_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Indices of ``n`` samples padded by ``r`` on each side as OpenCV's BORDER_REFLECT
    (``cba|abc|cba``), for any ``r``."""
    idx = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows of ``(B, C, h, w)``, borders reflected as OpenCV's blur."""
    h, w = x.shape[-2:]
    k = 2 * r + 1
    x = x.index_select(-1, _reflect_index(w, r, x.device))
    x = F.avg_pool2d(x, (1, k), stride=1)
    x = x.index_select(-2, _reflect_index(h, r, x.device))
    return F.avg_pool2d(x, (k, 1), stride=1)


def _inverse_sym3(m: torch.Tensor) -> torch.Tensor:
    """Inverses of symmetric ``(B, 3, 3, h, w)`` matrices by the adjugate (float64)."""
    m = m.double()
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 1], m[:, 1, 2], m[:, 2, 2]
    co = [d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e, a * d - b * b]
    det = a * co[0] + b * co[1] + c * co[2]
    rows = [(co[0], co[1], co[2]), (co[1], co[3], co[4]), (co[2], co[4], co[5])]
    return torch.stack([torch.stack(r, 1) for r in rows], 1) / det[:, None, None]


def affine_coefficients(
    guide: torch.Tensor, target: torch.Tensor, radius: int, eps: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local affine fits ``target ~ A @ guide + b`` (as ``upsample.affine_coefficients``):
    ``(B, 3, h, w)`` float in [0, 1] each -> ``A`` ``(B, 3, 3, h, w)`` (output, input channel)
    and ``b`` ``(B, 3, h, w)``, both box-averaged."""
    n, _, h, w = guide.shape
    mean_i, mean_p = box_filter(guide, radius), box_filter(target, radius)
    outer_ii = (guide[:, :, None] * guide[:, None]).reshape(n, 9, h, w)
    outer_ip = (guide[:, :, None] * target[:, None]).reshape(n, 9, h, w)
    cov_ii = box_filter(outer_ii, radius).view(n, 3, 3, h, w) - mean_i[:, :, None] * mean_i[:, None]
    cov_ii = cov_ii + eps * torch.eye(3, device=guide.device)[None, :, :, None, None]
    cov_ip = box_filter(outer_ip, radius).view(n, 3, 3, h, w) - mean_i[:, :, None] * mean_p[:, None]
    a_mat = torch.einsum("nikhw,nkohw->noihw", _inverse_sym3(cov_ii), cov_ip.double()).float()
    b_vec = mean_p - (a_mat * mean_i[:, None]).sum(2)
    a_mean = box_filter(a_mat.reshape(n, 9, h, w), radius).view(n, 3, 3, h, w)
    return a_mean, box_filter(b_vec, radius)


def guided_upsample(
    low_in: torch.Tensor,
    low_out: torch.Tensor,
    full_in: torch.Tensor,
    radius: int | None = None,
    eps: float = 1e-3,
    lights: bool = True,
) -> torch.Tensor:
    """``(B, 3, h, w)`` input and translation at working size, ``(B, 3, H, W)`` input at native
    size, all float in [0, 1] -> ``(B, 3, H, W)`` float translation at native size (not clipped:
    the caller clamps; the lights, if any, are added to the fit clipped to [0, 1]).

    The fit is applied at working size and returned with the luma detail the working size lost
    (:func:`_with_luma_detail`, as the OpenCV upsampler); upsampling is bilinear with half-pixel
    centres, as OpenCV's."""
    radius = guided_radius(*low_in.shape[-2:]) if radius is None else radius
    stride = fit_stride(low_in.shape[-2], low_in.shape[-1], radius)
    fit_in, fit_out = low_in, low_out
    if stride > 1:  # as upsample.guided_upsample: the fit on 2x2 means
        fit_in, fit_out = F.avg_pool2d(low_in, stride), F.avg_pool2d(low_out, stride)
        radius = (radius + stride - 1) // stride
    a_mat, b_vec = affine_coefficients(fit_in, fit_out, radius, eps)
    fitted = _apply(a_mat, b_vec, low_in).clamp(0.0, 1.0)
    out = _with_luma_detail(a_mat, fitted, low_in, full_in)
    extra = _lights(low_out, fitted) if lights else None
    if extra is not None:
        out = out.clamp_(0.0, 1.0) + F.interpolate(
            extra, size=full_in.shape[-2:], mode="bilinear", align_corners=False
        )
    return out


def _lights(low_out: torch.Tensor, fitted: torch.Tensor) -> torch.Tensor | None:
    """``upsample.find_lights`` on [0, 1] tensors: the compact spots the network made brighter than
    the fit can, or None. Each frame's spots depend on that frame alone (a spot needs its own
    mean residual above the threshold), so the batch-wide early exit is exact."""
    r = low_out - fitted
    mean = r.mean(1, keepdim=True)
    threshold = LIGHT_THRESHOLD / 255.0
    if float(mean.max()) <= threshold:
        return None
    radius = max(1, guided_radius(*mean.shape[-2:]) // 2)
    spot = (mean - box_filter(mean, radius).clamp_min(0.0) - threshold).clamp_min(0.0)
    spread = F.max_pool2d(spot, 2 * radius + 1, stride=1, padding=radius)
    spot = torch.minimum(spread, mean - threshold).clamp_min(0.0)
    positive = r.clamp_min(0.0)
    gain = (spot / positive.mean(1, keepdim=True).clamp_min(1.0 / 255.0)).clamp_max(1.0)
    return positive * gain


def _with_luma_detail(
    a_mat: torch.Tensor, fitted: torch.Tensor, low_in: torch.Tensor, full_in: torch.Tensor
) -> torch.Tensor:
    """``upsample.apply_with_luma_detail``: ``fitted`` (the fit at working size) upsampled
    bilinearly, plus the luma detail of ``full_in`` the working size lost, times each output
    channel's row sum of ``A`` (one channel's gain at a time: five full-size planes a frame
    alive at most)."""

    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=full_in.shape[-2:], mode="bilinear", align_corners=False)

    detail = luma(full_in).sub_(up(luma(low_in)))
    out, gain = up(fitted), a_mat.sum(2)
    for o in range(3):
        out[:, o : o + 1].addcmul_(up(gain[:, o : o + 1]), detail)
    return out


def luma(x: torch.Tensor) -> torch.Tensor:
    """Luma of ``(B, 3, H, W)`` RGB as OpenCV's RGB2GRAY weighs it (BT.601), ``(B, 1, H, W)``
    on the input's scale."""
    weights = torch.tensor((0.299, 0.587, 0.114), dtype=x.dtype, device=x.device)
    return (x * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)


def _apply(a_mat: torch.Tensor, b_vec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The affine coefficients upsampled bilinearly to ``x``'s size and applied to it."""
    out = []
    for o in range(3):
        coef = torch.cat([a_mat[:, o], b_vec[:, o : o + 1]], 1)
        up = F.interpolate(coef, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(up[:, 3] + (up[:, :3] * x).sum(1))
    return torch.stack(out, 1)


@torch.inference_mode()
def translate_on_device(
    frames: np.ndarray,
    translator: Translator,
    to: Domain,
    work: tuple[int, int],
    upsample: Upsampler = "guided",
    bars: Bars = NO_BARS,
) -> np.ndarray:
    """``(N, H, W, 3) uint8`` frames -> their translation, the same shape, with the network at
    ``work`` = (height, width); every step between the two copies runs on the device.
    ``bars`` come back as the input has them, and the guided fit sees the picture between
    them, as ``pipeline.upsample_stage`` does on the CPU."""
    x = torch.from_numpy(frames)
    if translator.device.type == "cuda":
        x = x.pin_memory()
    x = x.to(translator.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    full = tuple(x.shape[-2:])
    small = x if work == full else F.interpolate(x, size=work, mode="area")
    y = translator.translate_tensor(small * 2.0 - 1.0, to).add_(1.0).mul_(0.5)
    if work == full:
        up = y
    elif upsample == "bicubic":
        up = F.interpolate(y, size=full, mode="bicubic", align_corners=False)
    else:  # bars, if any, come back from x
        up = _guided_between(small, y.clamp_(0.0, 1.0), x, bars, lights=to == "night")
    if bars and (work == full or upsample == "bicubic"):  # the bars as they came
        up = _picture_in(x, up, bars)
    out = up.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def _guided_between(
    small: torch.Tensor, y: torch.Tensor, x: torch.Tensor, bars: Bars, lights: bool
) -> torch.Tensor:
    """:func:`guided_upsample` fitted on the picture between ``bars`` (on the whole frame
    when there are none or too little picture is left at the working size)."""
    h, w = small.shape[-2:]
    inner = bars.at_working_size((x.shape[-2], x.shape[-1]), (h, w))
    if inner is None:
        return guided_upsample(small, y, x, lights=lights)
    (sr, sc), (rows, cols) = inner.window(h, w), bars.window(x.shape[-2], x.shape[-1])
    up = x.clone()
    up[..., rows, cols] = guided_upsample(
        small[..., sr, sc], y[..., sr, sc], x[..., rows, cols], lights=lights
    )
    return up


def _picture_in(x: torch.Tensor, up: torch.Tensor, bars: Bars) -> torch.Tensor:
    """The input frames ``x`` with the picture between ``bars`` taken from ``up``."""
    rows, cols = bars.window(x.shape[-2], x.shape[-1])
    out = x.clone()
    out[..., rows, cols] = up[..., rows, cols]
    return out
