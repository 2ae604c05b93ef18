"""A realism check that needs no downloaded weights.

FID and LPIPS need network weights that cannot be fetched here, and brightness-based numbers
are easy to fake (a plain x0.2 darkening of a day still scores 100% "night" by the mean rule).
So: a small CNN, trained in a minute or two on the user's real target-domain images against
real source-domain images AND classical fakes made from them (day-for-night: random gain,
gamma, blue tint, blur, noise; night-for-day: gain, gamma, warm tint). It then says what share
of the translations it takes for real target-domain images. Held-out real images should score
near 1 and a plain darkening near 0; the report prints both beside the model's score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIZE = 128  # every image is seen whole, squeezed to SIZE x SIZE: night is a global look
CROP = 112  # random crops of that for augmentation


def prepare(image: np.ndarray) -> np.ndarray:
    """Resize ``(H, W, 3) uint8`` to 128 x 128 (aspect not kept, the same for every class)."""
    shrink = image.shape[0] * image.shape[1] > SIZE * SIZE
    return cv2.resize(
        image, (SIZE, SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    )


def fake_night(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A classical day-for-night: gain, gamma, blue tint, blur and sensor noise."""
    x = image.astype(np.float32) / 255.0
    x = x ** rng.uniform(1.0, 2.5) * rng.uniform(0.08, 0.5)
    x = x * np.array([rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0), rng.uniform(0.9, 1.2)])
    sigma = rng.uniform(0.0, 1.5)
    if sigma > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x + rng.normal(0, rng.uniform(0.0, 0.03), x.shape)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def fake_day(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A classical night-for-day: gain, gamma below 1, warm or neutral tint, noise."""
    x = image.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(2.0, 8.0), 0, 1) ** rng.uniform(0.4, 0.9)
    x = x * np.array([rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.05), rng.uniform(0.8, 1.05)])
    x = x + rng.normal(0, rng.uniform(0.0, 0.03), x.shape)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


FAKERS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "night": fake_night,
    "day": fake_day,
}


class _Net(nn.Module):
    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for out in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3))).squeeze(1)


def _batch(images: list[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
    crops = []
    for image in images:
        h, w = image.shape[:2]
        y, x = int(rng.integers(0, h - CROP + 1)), int(rng.integers(0, w - CROP + 1))
        crop = image[y : y + CROP, x : x + CROP]
        crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    t = torch.from_numpy(np.stack(crops).copy()).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1


@dataclass
class RealismClassifier:
    """P(real ``target``-domain image) for ``(H, W, 3) uint8`` images."""

    net: _Net
    target: str

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray], crops: int = 5) -> np.ndarray:
        self.net.eval()
        rng = np.random.default_rng(0)
        prepared = [prepare(im) for im in images]
        logits = torch.stack([self.net(_batch(prepared, rng)) for _ in range(crops)]).mean(0)
        return torch.sigmoid(logits).numpy()


def train_realism(
    real_target: list[np.ndarray],
    real_source: list[np.ndarray],
    target: str,
    steps: int = 400,
    batch: int = 32,
    seed: int = 0,
) -> RealismClassifier:
    """Train on real ``target`` images (label 1) against real ``source`` images and classical
    fakes made from them (label 0, half each)."""
    rng = np.random.default_rng(seed)
    pos = [prepare(im) for im in real_target]
    neg = [prepare(im) for im in real_source]
    fake = FAKERS[target]
    with torch.random.fork_rng(devices=[]):  # seeded weights, and the caller's RNG untouched
        torch.manual_seed(seed)
        net = _Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    half = batch // 2

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        p = [pos[i] for i in rng.integers(0, len(pos), half)]
        sources = [neg[i] for i in rng.integers(0, len(neg), half)]
        n = [fake(im, rng) if k % 2 else im for k, im in enumerate(sources)]
        x = torch.cat([_batch(p, rng), _batch(n, rng)])
        return x, torch.cat([torch.ones(half), torch.zeros(half)])

    net.train()
    for _ in range(steps):
        x, y = draw()
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    _recalibrate(net, lambda: draw()[0])
    return RealismClassifier(net, target)


def _recalibrate(net: nn.Module, batch: Callable[[], torch.Tensor], batches: int = 20) -> None:
    """Batch-norm statistics as the final weights see balanced data, not a lagging running
    mean of weights that have since moved: the scores then do not depend on the last steps."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(batches):
            net(batch())
