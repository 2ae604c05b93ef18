from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from d2nvideo.checkpoint import load_checkpoint, save_checkpoint
from d2nvideo.model import (
    CycleGANConfig,
    UNITConfig,
    UNITGenerator,
    build_generator,
    config_from_dict,
    config_to_dict,
    other_domain,
)
from d2nvideo.model.layers import Blur


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "instance"])
def test_unit_shapes_for_every_norm(norm: str) -> None:
    cfg = UNITConfig(width=4, n_res=2, n_shared=1, norm=norm)
    gen = build_generator(cfg).eval()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    z = gen.encode(x, "day")
    assert z.shape == (2, cfg.latent_channels, 8, 12)
    y = gen.translate(x, "night")
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0


def test_shared_blocks_are_one_set_of_weights() -> None:
    cfg = UNITConfig(width=4, n_res=3, n_shared=2)
    gen = build_generator(cfg)
    assert len(gen.enc_shared) == 2 and len(gen.dec_shared) == 2
    assert len(gen.enc["day"][-1]) == 1 and len(gen.dec["night"][0]) == 1
    # A change to the shared weights changes both domains' latents.
    x = torch.rand(1, 3, 16, 16)
    before = {d: gen.encode(x, d).detach().clone() for d in ("day", "night")}
    with torch.no_grad():  # not a bias or a scale: instance norm would undo those
        weight = gen.enc_shared[0].model[0].conv.weight
        weight.add_(torch.randn_like(weight))
    for d in ("day", "night"):
        assert not torch.allclose(gen.encode(x, d), before[d])


def test_zero_shared_gives_independent_autoencoders() -> None:
    gen = build_generator(UNITConfig(width=4, n_res=2, n_shared=0))
    assert len(gen.enc_shared) == 0
    names = {n.split(".")[0] for n, _ in gen.named_parameters()}
    assert names == {"enc", "dec"}


def test_translation_uses_source_encoder_and_target_decoder() -> None:
    gen = build_generator(UNITConfig(width=4, n_res=1, n_shared=0)).eval()
    x = torch.rand(1, 3, 16, 16)
    expected = gen.decode(gen.encode(x, "day"), "night")
    assert torch.equal(gen.translate(x, "night"), expected)
    assert other_domain("night") == "day"


def test_cyclegan_shapes() -> None:
    gen = build_generator(CycleGANConfig(width=4, n_blocks=2)).eval()
    x = torch.rand(1, 3, 20, 28) * 2 - 1
    assert gen.translate(x, "day").shape == x.shape


@pytest.mark.parametrize(
    "data, message",
    [
        ({"arch": "munit"}, "unknown architecture"),
        ({"arch": "unit", "widht": 3}, "widht"),
        ({"arch": "unit", "norm": "group"}, "norm"),
        ({"arch": "unit", "n_res": 1, "n_shared": 2}, "n_shared"),
        ({"arch": "unit", "up_kernel": 4}, "up_kernel"),
        ({"arch": "unit", "out_kernel": 0}, "out_kernel"),
    ],
)
def test_bad_model_configs_name_the_problem(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict(data)


def test_decoder_kernels_are_configurable_and_keep_shapes() -> None:
    gen = UNITGenerator(UNITConfig(width=4, n_downsample=2, n_res=1, up_kernel=3, out_kernel=3))
    ups = [m for m in gen.dec["night"].modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in ups[-3:]] == [(3, 3), (3, 3), (3, 3)]
    assert gen(torch.zeros(1, 3, 16, 24), "night").shape == (1, 3, 16, 24)


def test_thin_convolutions_train_channels_last_with_the_same_result() -> None:
    """The channels-last path for thin convs changes layout, not maths."""
    torch.manual_seed(0)
    gen = UNITGenerator(UNITConfig(width=4, n_downsample=1, n_res=1, up_kernel=3))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        plain = gen(x, "night")
    trained = gen(x, "night")  # grad enabled: thin convs run channels-last
    assert torch.allclose(plain, trained, atol=1e-5)


def test_blur_keeps_a_flat_image_and_removes_the_finest_pattern() -> None:
    """The anti-aliasing low-pass passes what a stride-2 conv can keep and stops what it would
    fold into an alias: a flat image comes out unchanged, the pixel checkerboard as zero."""
    blur = Blur(2)
    flat = torch.full((1, 2, 6, 8), 0.7)
    assert torch.allclose(blur(flat), flat)
    sign = (torch.arange(6)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1.0
    checker = sign.expand(1, 2, 6, 8)
    assert blur(checker).abs().max() < 1e-6  # reflect padding keeps the pattern's phase
    assert "kernel" not in blur.state_dict()


def test_antialias_keeps_the_parameters_and_their_keys() -> None:
    """An anti-aliased generator has the plain one's parameters under the same names (the blur
    holds none), so a seed gives the same initial weights; only the outputs differ."""
    shape = {"width": 4, "n_downsample": 2, "n_res": 1, "up_kernel": 3, "out_kernel": 3}
    torch.manual_seed(0)
    plain = UNITGenerator(UNITConfig(**shape)).eval()
    torch.manual_seed(0)
    smooth = UNITGenerator(UNITConfig(**shape, antialias=True)).eval()
    plain_state, smooth_state = plain.state_dict(), smooth.state_dict()
    assert list(plain_state) == list(smooth_state)
    assert all(torch.equal(plain_state[k], smooth_state[k]) for k in plain_state)
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        assert smooth(x, "night").shape == x.shape
        assert not torch.allclose(smooth(x, "night"), plain(x, "night"))
    blurs = [m for m in smooth.modules() if isinstance(m, Blur)]
    ups = [m.mode for m in smooth.modules() if isinstance(m, nn.Upsample)]
    assert len(blurs) == 2 * 2 and ups == ["bilinear"] * 4  # each domain: 2 down, 2 up


def test_bilinear_upsampling_is_nearest_then_the_blur() -> None:
    """The anti-aliased decoder upsamples bilinearly: the same as nearest followed by Blur's
    taps, reflect-padded (the two differ by rounding only), in one op."""
    x = torch.randn(2, 3, 7, 10)
    nearest = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    bilinear = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(Blur(3)(nearest), bilinear, atol=1e-5)


def test_antialias_survives_a_checkpoint_and_plain_headers_stay_as_they_were(
    tmp_path: Path,
) -> None:
    """The flag is in the header of an anti-aliased model; a plain model's header leaves it out,
    so older versions still read it and its graph cache key does not change."""
    for flag in (False, True):
        cfg = UNITConfig(width=4, n_downsample=2, n_res=1, antialias=flag)
        path = tmp_path / f"{flag}.safetensors"
        save_checkpoint(path, build_generator(cfg), cfg)
        assert load_checkpoint(path).config == cfg
        assert ("antialias" in config_to_dict(cfg)) is flag


def test_antialias_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="antialias"):
        config_from_dict({"arch": "unit", "antialias": "yes"})
    with pytest.raises(ValueError, match="antialias"):
        UNITConfig(antialias=1)  # type: ignore[arg-type]
    assert config_from_dict({"arch": "unit", "antialias": True}).antialias is True
