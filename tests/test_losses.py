"""The training losses' statistics hold under bf16 autocast (what CUDA training runs in)."""

from __future__ import annotations

import pytest
import torch
from d2nvideo.training.losses import in_float32, luma_distribution, new_colour, structure


def _scene(seed: int) -> torch.Tensor:
    """A day-like frame on [-1, 1]: a sky gradient over texture, (2, 3, 64, 96)."""
    g = torch.Generator().manual_seed(seed)
    sky = torch.linspace(0.9, -0.2, 64).view(1, 1, 64, 1).expand(2, 3, 64, 96)
    texture = torch.rand(2, 1, 64, 96, generator=g) * 0.6 - 0.3
    return (sky + texture).clamp(-1, 1)


@pytest.mark.parametrize(
    "term",
    [
        lambda x, y: structure(x, y),
        lambda x, y: structure(x, y, polarity="free"),
        lambda x, y: luma_distribution(y, x),
        lambda x, y: new_colour(x, y),
    ],
    ids=["structure", "structure-free", "luma_distribution", "new_colour"],
)
def test_a_loss_term_is_the_same_under_bf16_autocast(term) -> None:
    """Under autocast, a convolution inside a loss ran in bf16: the local variances of the SSIM
    structure term (E[x^2] - E[x]^2) cancelled to noise, the term went negative, and a bf16 run
    on an H200 learned a false-colour 'night' (1,163 steps, reconstruction never improving).
    The statistics run in float32 whatever the autocast."""
    x = _scene(0)
    y = x * 0.3 - 0.55  # the same scene darkened: structure kept
    exact = term(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = term(x.bfloat16(), y.bfloat16())
    assert mixed.dtype == torch.float32
    reference = term(x.bfloat16().float(), y.bfloat16().float())  # the same inputs, in float32
    assert torch.allclose(mixed, reference, rtol=1e-5, atol=1e-6)
    assert abs(exact.item() - reference.item()) < 0.02  # bf16 inputs alone change little


def test_the_structure_term_of_a_darkened_scene_is_near_zero_under_autocast() -> None:
    x = _scene(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = structure(x, x * 0.3 - 0.55)
    assert 0.0 <= s.item() < 0.01


def test_in_float32_turns_off_autocast_and_tf32_within() -> None:
    seen = []

    @in_float32
    def probe(x: torch.Tensor, *, y: torch.Tensor) -> torch.Tensor:
        seen.append((torch.backends.cudnn.allow_tf32, x.dtype, y.dtype))
        seen.append(torch.is_autocast_enabled("cpu"))
        return x.sum() + y.sum()

    tf32 = torch.backends.cudnn.allow_tf32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        probe(torch.ones(2, dtype=torch.bfloat16), y=torch.ones(2, dtype=torch.bfloat16))
    assert seen == [(False, torch.float32, torch.float32), False]
    assert torch.backends.cudnn.allow_tf32 == tf32  # restored
