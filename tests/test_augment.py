"""DiffAugment on what the discriminators judge (``dis.augment``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from d2nvideo.training.augment import colour, cutout, diff_augment, translation
from d2nvideo.training.config import load_config, save_config, with_changes
from d2nvideo.training.train import resolve_resume_config
from test_training import TINY, tiny

from d2nvideo.errors import ConfigError


def _positive(n: int = 4, h: int = 24, w: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, 3, h, w) * 0.9 + 0.1  # no zeros of its own: a zero is augmentation's


def test_no_policy_is_the_identity() -> None:
    x = _positive()
    assert diff_augment(x, ()) is x


def test_translation_shifts_each_image_within_an_eighth_and_fills_zeros() -> None:
    x = _positive()
    y = translation(x)
    shifts = set()
    for i in range(x.shape[0]):
        found = [
            (a, b)
            for a in range(-3, 4)
            for b in range(-4, 5)
            if torch.equal(y[i], _shift(x[i], a, b))
        ]
        assert len(found) == 1, f"image {i} is not one shift of its input"
        shifts.add(found[0])
    torch.manual_seed(1)
    many = {tuple(translation(x)[:, 0].ne(0).sum(dim=(1, 2)).tolist()) for _ in range(5)}
    assert len(many) > 1  # the shift is drawn, not fixed


def _shift(img: torch.Tensor, a: int, b: int) -> torch.Tensor:
    out = torch.zeros_like(img)
    h, w = img.shape[1:]
    out[:, max(a, 0) : h + min(a, 0), max(b, 0) : w + min(b, 0)] = img[
        :, max(-a, 0) : h - max(a, 0), max(-b, 0) : w - max(b, 0)
    ]
    return out


def test_cutout_zeroes_one_clipped_half_size_square_and_keeps_the_rest() -> None:
    x = _positive(n=16)
    y = cutout(x)
    for i in range(x.shape[0]):
        zero = y[i, 0] == 0
        assert torch.equal(zero, (y[i] == 0).all(dim=0)), "the square covers every channel"
        rows, cols = zero.any(dim=1).nonzero(), zero.any(dim=0).nonzero()
        assert 6 <= len(rows) <= 12 and 8 <= len(cols) <= 16  # half each side, or clipped
        box = zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all(), "the zeros form one rectangle"
        assert torch.equal(y[i][:, ~zero], x[i][:, ~zero])


def test_colour_draws_per_image_and_passes_gradients() -> None:
    x = _positive().requires_grad_(True)
    y = colour(x)
    assert not torch.equal(y[0] - x[0], y[1] - x[1])
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", [("translation",), ("cutout",), ("translation", "cutout")])
def test_the_generator_learns_through_spatial_policies(policy: tuple[str, ...]) -> None:
    x = _positive().requires_grad_(True)
    diff_augment(x, policy).square().sum().backward()
    assert x.grad is not None
    kept = x.grad != 0
    assert kept.float().mean() > 0.3  # the pixels still in view get their gradient


def test_config_takes_a_list_and_refuses_unknown_or_repeated_policies() -> None:
    cfg = load_config(TINY, ["dis.augment=[translation, cutout]"])
    assert cfg.dis.augment == ("translation", "cutout")
    assert load_config(TINY, ["dis.augment=colour"]).dis.augment == ("colour",)
    with pytest.raises(ConfigError, match=r"dis\.augment"):
        load_config(TINY, ["dis.augment=[flip]"])
    with pytest.raises(ConfigError, match="twice"):
        load_config(TINY, ["dis.augment=[cutout, cutout]"])


def test_the_discriminators_see_augmented_images_in_both_updates(images: Path, tmp_path: Path):
    from d2nvideo.training.trainers import build_trainer

    seen: list[torch.Tensor] = []

    def judge(cfg: object) -> list[float]:
        trainer = build_trainer(cfg, torch.device("cpu"), "fp32", False)  # type: ignore[arg-type]
        for net in trainer.dis.nets.values():
            net.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
        batch = {d: torch.rand(2, 3, 32, 32) * 0.9 + 0.1 for d in ("day", "night")}
        seen.clear()
        trainer.step(batch)
        return [float((x[:, 0] == 0).float().mean()) for x in seen]

    plain = judge(tiny(images))
    cut = judge(with_changes(tiny(images), "dis", augment=("cutout",)))
    assert len(plain) == len(cut) == 4  # the generator's update, then the discriminators'
    assert max(plain) < 0.01 and min(cut) > 0.1


def test_a_resume_may_turn_augmentation_on(tmp_path: Path) -> None:
    save_config(load_config(TINY), tmp_path / "config.yaml")
    change = "dis.augment=[translation]"
    cfg = resolve_resume_config(tmp_path, load_config(TINY, [change]), [change])
    assert cfg.dis.augment == ("translation",)
    with pytest.raises(ConfigError, match="cannot change dis"):
        resolve_resume_config(tmp_path, load_config(TINY), ["dis.width=3"])
