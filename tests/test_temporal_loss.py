"""loss.temporal: a clip's consecutive frames, the flow between them, and the term that keeps a
translation steady along it (training/data.py PairDataset, training/losses.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from d2nvideo.training.config import load_config, with_changes
from d2nvideo.training.data import PairDataset, collect, list_pairs
from d2nvideo.training.losses import temporal_consistency, warp_along
from d2nvideo.training.train import main

from d2nvideo.errors import ConfigError
from d2nvideo.images import write_image
from d2nvideo.video.flow import warp

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (flow finds its motion everywhere)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    import cv2

    big = cv2.resize(small, (w + 8, h + 8), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[:h, :w])


def _moving_pair(h: int = 48, w: int = 64, dx: int = 2, dy: int = 1) -> torch.Tensor:
    """A ``(1, 9, h, w)`` pair batch: a texture and the same texture moved by (dx, dy), the
    flow (dx, dy) everywhere, holding where the moved pixel stays inside the frame."""
    big = torch.from_numpy(_texture(h + 8, w + 8)).permute(2, 0, 1).float() / 127.5 - 1
    first = big[:, 4 : 4 + h, 4 : 4 + w]
    after = big[:, 4 - dy : 4 - dy + h, 4 - dx : 4 - dx + w]  # content moves by (dx, dy)
    flow = torch.stack([torch.full((h, w), float(dx)), torch.full((h, w), float(dy))])
    holds = torch.zeros(1, h, w)
    holds[:, : h - dy, : w - dx] = 1
    return torch.cat([first, after, flow, holds])[None]


def test_warp_along_samples_as_the_library_warp_does() -> None:
    rng = np.random.default_rng(1)
    image = _texture(40, 56).astype(np.float32)
    flow = rng.uniform(-3, 3, (40, 56, 2)).astype(np.float32)
    expected, inside = warp(image, flow)
    as_batch = [torch.from_numpy(x).permute(2, 0, 1)[None] for x in (image, flow)]
    got = warp_along(*as_batch)[0].permute(1, 2, 0)
    assert np.abs(got.numpy() - expected)[inside].max() < 0.05  # cv2's fixed-point bilinear


def test_temporal_consistency_charges_what_does_not_move_with_the_scene() -> None:
    pairs = _moving_pair()
    # a per-pixel translation moves with the content: nothing to charge
    assert temporal_consistency(lambda x: 0.5 * x - 0.2, pairs) < 1e-5
    # one tied to the frame's own grid (a lit spot that stays while the scene moves) is charged
    grid = torch.linspace(-1, 1, 64).repeat(48, 1) ** 2
    assert temporal_consistency(lambda x: 0.5 * x + grid, pairs) > 0.01
    # only where the flow holds: a frame that holds nowhere costs nothing
    none = pairs.clone()
    none[:, 8] = 0
    assert temporal_consistency(lambda x: 0.5 * x + grid, none) == 0
    # under bf16 autocast the warp stays in float32: a steady translation is not charged
    identity = torch.eye(3)[..., None, None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert temporal_consistency(lambda x: F.conv2d(x, identity), pairs) < 1e-5
    # the first frame's translation is the target: only the next frame's takes the gradient
    w = torch.ones((), requires_grad=True)
    seen: list[bool] = []

    def translate(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_grad_enabled())
        return w * x + grid

    temporal_consistency(translate, pairs).backward()
    assert seen == [False, True] and w.grad is not None


def _write_pairs(root: Path, n: int = 3, dx: int = 3) -> Path:
    """``n`` pairs of a texture and the texture moved ``dx`` pixels right, 64x48."""
    for i in range(n):
        big = _texture(48, 64 + dx, seed=i)
        write_image(root / "clip" / f"f{i}_a.png", big[:, dx:])
        write_image(root / "clip" / f"f{i}_b.png", big[:, :-dx])
    return root


def test_pairs_are_found_by_name_and_a_half_pair_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _write_pairs(tmp_path / "pairs")
    write_image(root / "clip" / "lone_a.png", _texture(48, 64))
    with caplog.at_level(logging.WARNING):
        pairs = list_pairs(root, "data.pairs_day")
    assert sorted(a.name for a, _ in pairs) == ["f0_a.png", "f1_a.png", "f2_a.png"]
    assert all(b == a.with_name(a.name.replace("_a", "_b")) for a, b in pairs)
    assert "1 image(s) not in a NAME_a/NAME_b pair" in caplog.text
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no frame pairs"):
        list_pairs(tmp_path / "empty", "data.pairs_day")
    with pytest.raises(ConfigError, match=r"data\.pairs_night folder .* does not exist"):
        list_pairs(tmp_path / "nowhere", "data.pairs_night")


def test_a_pair_item_is_cropped_alike_with_the_flow_between_its_frames(tmp_path: Path) -> None:
    root = _write_pairs(tmp_path / "pairs", dx=3)
    cfg = with_changes(load_config(TINY), "data", resize=0, crop=(40, 40), flip=True)
    dataset = PairDataset(list_pairs(root, "data.pairs_day"), cfg.data)
    flips = set()
    for epoch in range(6):
        item = dataset[(0, epoch, 1)]
        assert item.shape == (9, 40, 40)
        assert torch.equal(item, dataset[(0, epoch, 1)])  # a function of its key
        dx = item[6][item[8] > 0]
        # content moved 3 px right in the file; a flipped crop sees it move 3 px left
        assert abs(abs(float(dx.median())) - 3) < 0.5
        flips.add(float(dx.median()) < 0)
        # the same crop of both frames: the first warped along the flow is the next
        warped = warp_along(item[None, 3:6], item[None, 6:8])[0]
        err = (warped - item[:3]).abs().mean(0)[item[8] > 0]
        assert float(err.mean()) < 0.05
    assert flips == {True, False}
    # a cut between two shots: the flow holds nowhere
    write_image(root / "cut" / "c_a.png", _texture(48, 64, seed=5))
    write_image(root / "cut" / "c_b.png", 255 - _texture(48, 64, seed=6))
    cut = PairDataset(list_pairs(root / "cut", "data.pairs_day"), cfg.data)
    assert cut[(0, 0, 1)][8].sum() == 0


def test_a_pair_whose_frames_differ_in_size_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "pairs"
    write_image(root / "bad_a.png", _texture(96, 128))
    write_image(root / "bad_b.png", _texture(48, 64))
    write_image(root / "good_a.png", _texture(48, 64, seed=1))
    write_image(root / "good_b.png", _texture(48, 64, seed=1))
    cfg = with_changes(load_config(TINY), "data", resize=0, crop=(40, 40))
    dataset = PairDataset(list_pairs(root, "data.pairs_day"), cfg.data)
    with caplog.at_level(logging.WARNING):
        item = dataset[(0, 0, 1)]  # bad, the first in order, is passed over for good
    assert "bad_a.png (its frames differ in size" in caplog.text
    assert torch.equal(item[:3], item[3:6])


def test_the_temporal_term_needs_pairs_and_trains_on_them(
    images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pairs = _write_pairs(tmp_path / "pairs")
    with pytest.raises(ConfigError, match=r"loss\.temporal' \(1\.0\) needs .*data\.pairs_day"):
        load_config(TINY, ["loss.temporal=1"])
    with pytest.raises(
        ConfigError, match=r"loss\.temporal' .*data\.pairs_night.*temporal_to_day=0"
    ):
        load_config(TINY, ["loss.temporal=1", f"data.pairs_day=[{pairs}]"])
    with pytest.raises(ConfigError, match=r"loss\.temporal_to_day' must be >= 0"):
        load_config(TINY, ["loss.temporal_to_day=-1"])
    cfg = load_config(
        TINY, ["loss.temporal=1", "loss.temporal_to_day=0", f"data.pairs_day=[{pairs}]"]
    )
    cfg = with_changes(cfg, "data", day=(str(images / "day"),), night=(str(images / "night"),))
    cfg = with_changes(cfg, "train", steps=1, log_every=1)
    lists = collect(cfg.data)
    result = main(cfg, tmp_path / "run", dataset=lists, quiet=True)
    assert len(lists.pairs["day"]) == 3  # the caller's lists are left as they were
    assert result.last["temporal"] > 0 and "temporal_to_day" not in result.last
    summary = json.loads((tmp_path / "run" / "data.json").read_text())
    assert summary["pairs"] == {"day": 3, "night": 0}
    # the pairs' frames are training images: evaluate's overlap check must know them
    assert len(summary["fingerprints"]["day"]) == len(collect(cfg.data).day) + 6
    unused = with_changes(cfg, "loss", temporal=0.0)
    with caplog.at_level(logging.WARNING):
        last = main(unused, tmp_path / "unused", quiet=True).last
    assert "temporal" not in last
    assert "data.pairs_day is given but loss.temporal is 0" in caplog.text
    assert "pairs" not in json.loads((tmp_path / "unused" / "data.json").read_text())
