"""Fixtures that build their own world: short synthetic videos written with PyAV and tiny
random-weight checkpoints. Nothing is downloaded; ../shared/data is optional."""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from d2nvideo.checkpoint import save_checkpoint
from d2nvideo.model import CycleGANConfig, UNITConfig, build_generator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that load OpenVINO run last: a process that has run an OpenVINO model cannot
    safely fork a Python child afterwards (the training tests' DataLoader workers then die of
    SIGSEGV, taking pytest with them). The library itself forks nothing (its pools spawn)."""
    items.sort(key=lambda item: item.get_closest_marker("openvino") is not None)


@pytest.fixture(autouse=True)
def openvino_only_where_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Elsewhere ``--backend auto`` (the CLI's default) measures torch and ONNX Runtime only,
    so OpenVINO never loads before the tests that fork (see above)."""
    if request.node.get_closest_marker("openvino") is None:
        from d2nvideo.infer import backends

        installed = backends.installed
        monkeypatch.setattr(backends, "installed", lambda n: n != "openvino" and installed(n))


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ONNX graphs and backend choices go to a cache of the session's own, never the user's."""
    patch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("cache")
    patch.setenv("D2NVIDEO_CACHE", str(folder))
    yield folder
    patch.undo()


def needs_shared() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")


def frame_image(i: int, width: int, height: int) -> np.ndarray:
    """A moving diagonal gradient with a bright square: (H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 2 + y + i * 7) % 256
    img = np.stack([base, (base + 85) % 256, 255 - base], axis=-1).astype(np.uint8)
    s = max(2, min(width, height) // 5)
    cx = (i * 3) % max(1, width - s)
    img[height // 3 : height // 3 + s, cx : cx + s] = 255
    return img


def make_video(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    audio: bool = False,
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    metadata: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Write a synthetic video. ``pts`` (in ``time_base`` units) makes it variable-rate;
    ``options`` go to the encoder (a GOP length, interlacing)."""
    import av

    width, height = size
    tb = time_base or Fraction(1, fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps, options=options or {})
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        vs.time_base = tb
        vs.codec_context.time_base = tb
        if rotation:
            vs.set_display_rotation(rotation)
        if metadata:
            out.metadata.update(metadata)
        stamps = pts if pts is not None else list(range(frames))
        a_stream = None
        if audio:
            a_stream = out.add_stream("aac", rate=22050)
            a_stream.layout = "mono"
        for i, p in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(frame_image(i, width, height), format="rgb24")
            frame.pts, frame.time_base = p, tb
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if a_stream is not None:
            seconds = float((stamps[-1] + 1) * tb)
            _write_tone(out, a_stream, seconds)
    return path


def _write_tone(out: object, stream: object, seconds: float) -> None:
    import av

    rate, n = 22050, 1024
    for k in range(math.ceil(seconds * rate / n)):
        t = (np.arange(n) + k * n) / rate
        samples = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, k * n
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            out.mux(packet)  # type: ignore[attr-defined]
    for packet in stream.encode():  # type: ignore[attr-defined]
        out.mux(packet)  # type: ignore[attr-defined]


TINY_UNIT = UNITConfig(width=4, n_downsample=2, n_res=2, n_shared=1)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five small day images and five dark night ones (one in a subfolder), to train on."""
    from d2nvideo.images import write_image

    root = tmp_path_factory.mktemp("images")
    for i in range(5):
        write_image(root / "day" / f"d{i}.jpg", frame_image(i, 60, 44))
        write_image(root / "night" / f"sub/n{i}.png", frame_image(i + 9, 52, 40) // 6)
    return root


def make_checkpoint(
    path: Path, config: UNITConfig | CycleGANConfig = TINY_UNIT, seed: int = 0
) -> Path:
    torch.manual_seed(seed)
    model = build_generator(config)
    save_checkpoint(path, model, config, {"note": "random weights for tests"})
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic inputs, built once per session."""
    d = tmp_path_factory.mktemp("media")
    return {
        "plain": make_video(d / "plain.mp4", frames=12),
        "audio": make_video(d / "audio.mp4", frames=15, audio=True, metadata={"title": "t1"}),
        "odd": make_video(d / "odd.mp4", frames=6, size=(322, 178)),
        "odder": make_video(d / "odder.mkv", frames=5, size=(37, 23)),
        "rotated": make_video(d / "rotated.mp4", frames=6, rotation=90),
        "vfr": make_video(
            d / "vfr.mp4", pts=[0, 40, 70, 130, 140, 200, 290, 300], time_base=Fraction(1, 1000)
        ),
        "one": make_video(d / "one.mp4", frames=1),
        "long": make_video(d / "long.mp4", frames=250, size=(96, 64), audio=True),
        "model": make_checkpoint(d / "tiny.safetensors"),
    }
