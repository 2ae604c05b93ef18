"""Loss terms as pure functions, and the weighted total built from ``{name: (weight, term)}``.

UNIT's objective (Liu et al. 2017, eqs. 13-16) per domain: VAE reconstruction (L1 here, as in
the official code) plus the KL of the latent, the GAN loss of the translation, and the cycle
reconstruction with the KL of the cycle latent. With a unit-variance posterior the KL term
reduces to the mean squared latent, as the official code computes it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from d2nvideo.checkpoint import load_reason
from d2nvideo.choices import StructPolarity
from d2nvideo.errors import ConfigError, first_line
from d2nvideo.infer.frames import luma

Term = Callable[[], torch.Tensor]


def lsgan_dis(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN, discriminator side: real patches -> 1, fake -> 0, summed over scales."""
    loss = torch.zeros((), device=real[0].device)
    for r, f in zip(real, fake, strict=True):
        loss = loss + torch.mean((r.float() - 1) ** 2) + torch.mean(f.float() ** 2)
    return loss


def lsgan_gen(fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN, generator side: fake patches -> 1, summed over scales."""
    loss = torch.zeros((), device=fake[0].device)
    for f in fake:
        loss = loss + torch.mean((f.float() - 1) ** 2)
    return loss


def kl(latent: torch.Tensor) -> torch.Tensor:
    """KL divergence of N(latent, I) from N(0, I), up to constants: mean(latent^2)."""
    return torch.mean(latent.float() ** 2)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.abs(a.float() - b.float()))


_F = TypeVar("_F", bound=Callable[..., torch.Tensor])


def in_float32(term: _F) -> _F:
    """Run a loss statistic in float32 whatever the autocast around it: under bf16 autocast its
    convolutions ran in bf16, and the SSIM structure term's local variances (E[x^2] - E[x]^2)
    cancelled to noise (the term went negative; a CUDA run learned a false-colour 'night').
    Tensor arguments are cast to float32, and cuDNN's TF32 (on by default for convolutions on
    CUDA, a 10-bit mantissa) is off within; the networks that call these stay as they run."""

    @functools.wraps(term)
    def wrapped(*args: Any, **kwargs: Any) -> torch.Tensor:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        device = tensors[0].device.type if tensors else "cpu"
        cudnn = torch.backends.cudnn
        exact = cudnn.flags(
            enabled=cudnn.enabled,
            benchmark=cudnn.benchmark,
            deterministic=cudnn.deterministic,
            allow_tf32=False,
        )
        with torch.autocast(device, enabled=False), exact:
            args = tuple(a.float() if isinstance(a, torch.Tensor) else a for a in args)
            kwargs = {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
            return term(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma on [0, 1] of images on [-1, 1]: ``(B, 1, H, W)``."""
    return luma((x.float() + 1) / 2)


def _gray_blur_stats(
    x: torch.Tensor, y: torch.Tensor, window: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Local variances of x and y and their covariance (grayscale, Gaussian window)."""
    gx, gy = _gray(x), _gray(y)
    k = window.shape[-1]

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, window.view(1, 1, 1, k), padding=(0, k // 2))
        return F.conv2d(t, window.view(1, 1, k, 1), padding=(k // 2, 0))

    mx, my = blur(gx), blur(gy)
    vx = (blur(gx * gx) - mx * mx).clamp_min(0)
    vy = (blur(gy * gy) - my * my).clamp_min(0)
    return vx, vy, blur(gx * gy) - mx * my


@in_float32
def structure(
    x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, polarity: StructPolarity = "keep"
) -> torch.Tensor:
    """1 - the structure term of SSIM (Wang et al. 2004), s = (cov + c) / (std_x std_y + c), on
    grayscale with an 11x11 Gaussian window. It ignores local gain and offset, so darkening is
    free while the scene's edges must stay where they are.

    ``polarity="keep"`` (SSIM's): an edge whose contrast flips costs most (s = -1), and lights
    are such flips: a lamp head dark against a day sky, lit against a night one; windows dark in
    a sunlit facade, lit in a dark one; a tail light darker than a white car by day, brighter
    than the dark car at night. ``"free"`` takes |cov|: an edge must stay where it is, either
    way round."""
    coords = torch.arange(11, device=x.device, dtype=torch.float32) - 5
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    vx, vy, cov = _gray_blur_stats(x, y, window / window.sum())
    c3 = (0.03**2) / 2
    if polarity == "free":
        cov = cov.abs()
    return torch.mean(1 - (cov + c3) / (torch.sqrt(vx * vy + 1e-12) + c3))


@in_float32
def luma_distribution(fake: torch.Tensor, real: torch.Tensor, levels: int = 64) -> torch.Tensor:
    """1-D Wasserstein distance between each translation's luma histogram and the pooled luma
    of the real batch of its target domain, on ``levels`` evenly spaced quantiles (sorted
    values, so the gradient reaches the pixels at each quantile). It asks for real night's or
    real day's share of dark and bright pixels, not for a mean: the discriminator's patches see
    too little of a frame to keep a fog's overall brightness or a black frame in check."""
    q = (torch.arange(levels, device=fake.device, dtype=torch.float32) + 0.5) / levels
    fake_sorted = _gray(fake).flatten(1).sort(dim=1).values
    real_sorted = _gray(real.detach()).flatten().sort().values
    fake_q = fake_sorted[:, (q * (fake_sorted.shape[1] - 1)).round().long()]
    real_q = real_sorted[(q * (real_sorted.shape[0] - 1)).round().long()]
    return torch.mean(torch.abs(fake_q - real_q.unsqueeze(0)))


def _chroma(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Luma ``(B, 1, H, W)`` and the Cb, Cr chroma pair ``(B, 2, H, W)`` (BT.601) on [0, 1]
    scale, of images on [-1, 1]."""
    rgb = (x.float() + 1) / 2
    y = _gray(x)
    return y, torch.cat([0.564 * (rgb[:, 2:3] - y), 0.713 * (rgb[:, 0:1] - y)], dim=1)


@in_float32
def new_colour(
    source: torch.Tensor, fake: torch.Tensor, pool: int = 4, margin: float = 0.02
) -> torch.Tensor:
    """Colour a translation adds that its input did not have: on ``pool``-pixel means, how far
    each spot's chroma lies from the frame's median chroma in the translation, beyond how far it
    lay from the input's (plus ``margin``), weighted by how dark the translation is there.

    Free: a uniform chroma shift of the whole frame (it moves the median), losing colour (a
    dark sky may lose its blue), bright lights (weight 1 - luma). Charged: a red glow on a grey
    bonnet, a white car turned mint in a grey frame. Not seen: a hue change that keeps a spot's
    distance from the median (green trees turned magenta, a white car turned mint in a bluish
    frame). A multiplicative grade is charged a little where brightness varies (chroma scales
    with it). The median, held fixed in the gradient, keeps a glow over less than half the
    frame from moving the reference, so the term pulls the glow towards the frame and never
    tints the rest of the frame towards it. (The bundled model's 1,050 steps with this term
    used the frame's mean, not detached: commit 91c9ccc.)"""
    _, c_in = _chroma(F.avg_pool2d(source.detach().float(), pool))
    y_out, c_out = _chroma(F.avg_pool2d(fake.float(), pool))

    def spread(c: torch.Tensor) -> torch.Tensor:
        centre = c.flatten(2).median(dim=2).values[..., None, None].detach()
        return torch.sqrt(((c - centre) ** 2).sum(1, keepdim=True) + 1e-8)

    excess = F.relu(spread(c_out) - spread(c_in) - margin)
    return torch.mean((1 - y_out.detach()) * excess)


def shift_consistency(
    translate: Callable[[torch.Tensor], torch.Tensor],
    source: torch.Tensor,
    max_shift: int = 4,
    noise: float = 0.02,
) -> torch.Tensor:
    """What makes a translated video flicker, at training time: the translation of ``source``
    moved by a few pixels with fresh sensor noise added (as the next frame of a clip is),
    against the translation of ``source`` moved the same way. A network with stride-2
    downsampling answers a shift that is no multiple of its stride with a different output,
    and a lit spot then comes and goes from frame to frame. L1 on [-1, 1] images, over the
    frame less a border of ``max_shift + 8`` pixels (where the roll wraps and padding differs);
    the unmoved translation is the target and takes no gradient. One shift ``(dy, dx)`` in
    ``[-max_shift, max_shift]``, not both 0, per call, from torch's generator."""
    while True:
        dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
        if dy or dx:
            break
    with torch.no_grad():
        target = torch.roll(translate(source), (dy, dx), (2, 3))
    moved = torch.roll(source, (dy, dx), (2, 3))
    out = translate(moved + noise * torch.randn_like(moved))
    m = max_shift + 8
    return (out - target)[..., m:-m, m:-m].float().abs().mean()


def temporal_consistency(
    translate: Callable[[torch.Tensor], torch.Tensor], pairs: torch.Tensor
) -> torch.Tensor:
    """What makes a translated clip flicker, measured on real motion: the translation of a
    clip's next frame, warped back along the flow between the two inputs, against the
    translation of the first frame, over the pixels where the flow holds (``pairs``: a
    :class:`~training.data.PairDataset` batch). It is ``evaluate``'s E_warp as a loss (L1 on
    [-1, 1] images instead of squared error on [0, 1]); where ``shift_consistency`` moves a
    frame by whole pixels, this sees what a camera driving forward sees: zoom, parallax, the
    codec's noise and exposure changing between frames. The first frame's translation is the
    target and takes no gradient."""
    first, after = pairs[:, :3], pairs[:, 3:6]
    flow, holds = pairs[:, 6:8].float(), pairs[:, 8:9].float()
    with torch.no_grad():
        target = translate(first)
    warped = warp_along(translate(after), flow)
    return ((warped - target).float().abs() * holds).sum() / (3 * holds.sum()).clamp_min(1.0)


def warp_along(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``images`` sampled at ``p + flow[p]`` (bilinear, the border repeated), ``flow``
    ``(B, 2, H, W)`` in pixels (dx, dy): as ``d2nvideo.video.flow.warp``, batched in torch.
    In float32 whatever the autocast: a bf16 grid would charge a steady translation."""
    _, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).float()  # in bf16, sample points would move 1/4 px
    return F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )


def combine(terms: dict[str, tuple[float, Term]]) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the terms; a zero-weight term is never computed. Returns the total and
    each computed term's unweighted value (names match the config's weight keys)."""
    total: torch.Tensor | None = None
    logs: dict[str, float] = {}
    for name, (weight, term) in terms.items():
        if weight == 0:
            continue
        value = term()
        logs[name] = float(value.detach())
        total = weight * value if total is None else total + weight * value
    assert total is not None, "every loss weight is zero"
    logs["total"] = float(total.detach())
    return total, logs


def _vgg_reason(path: Path, exc: Exception) -> str:
    """An exception's first line, short, in our words for PyTorch's long ones."""
    text = first_line(exc)
    if "Weights only load failed" in text:
        return "not a PyTorch file of tensors alone"
    if text.startswith("Error(s) in loading state_dict"):
        return "its weights do not fit VGG16"
    return load_reason(path, exc)


class VGGPerceptual(nn.Module):
    """Distance between instance-normalised VGG16 relu5_3 features (as in MUNIT), on weights
    loaded from a local torchvision VGG16 state dict. Never downloads."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        try:
            from torchvision.models import vgg16
        except ImportError as exc:
            raise ConfigError(
                "loss.vgg needs torchvision: pip install 'd2nvideo[vgg]'", "torchvision"
            ) from exc

        if not weights.is_file():
            raise ConfigError(
                f"VGG16 weights '{weights}' not found: download torchvision's vgg16 .pth "
                "elsewhere and name it in loss.vgg_weights (d2nvideo never downloads)",
                weights,
            )
        net = vgg16(weights=None)
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as exc:
            raise ConfigError(
                f"'{weights}' is not a torchvision VGG16 state dict ({_vgg_reason(weights, exc)})",
                weights,
            ) from exc
        self.features = net.features[:30].eval().requires_grad_(False)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = (self.features(((x + 1) / 2 - self.mean) / self.std) for x in (a, b))
        return torch.mean((F.instance_norm(fa.float()) - F.instance_norm(fb.float())) ** 2)
