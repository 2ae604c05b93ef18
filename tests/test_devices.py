"""Device paths: what can be checked without a GPU runs everywhere; CUDA tests skip cleanly."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import read_video

from d2nvideo.errors import D2NError
from d2nvideo.infer.batching import auto_batch_size, largest_tensor, run_network
from d2nvideo.pipeline import (
    ConvertOptions,
    convert_video,
)
from d2nvideo.translator import Translator
from d2nvideo.video.codecs import EncodeSettings, usable_codec
from d2nvideo.video.decode import decode_frames

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class _SmallMemory:
    """A translator stand-in that runs out of GPU memory above ``limit`` frames per call."""

    device = torch.device("cuda")  # a CPU's batches are cut to CPU_BATCH_SIZE beforehand

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.calls: list[int] = []

    def __call__(self, frames: np.ndarray, to: str) -> np.ndarray:
        self.calls.append(len(frames))
        if len(frames) > self.limit:
            raise self.error
        return 255 - frames

    error: Exception = torch.OutOfMemoryError("CUDA out of memory (simulated)")


class _SmallIndex(_SmallMemory):
    """A kernel that indexes in 32 bits: a batch past its limit raises what CUDA's reflect pad
    raised on an H200 (a full-size UNIT, 32 frames of 720p)."""

    error = RuntimeError("input tensor must fit into 32-bit index math")


def test_out_of_memory_backs_off_to_smaller_batches(monkeypatch, caplog) -> None:
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    images = [np.full((4, 4, 3), i, np.uint8) for i in range(8)]
    fake = _SmallMemory(limit=2)
    with caplog.at_level(logging.WARNING):
        out = run_network(fake, images, "night")  # type: ignore[arg-type]
    assert [o[0, 0, 0] for o in out] == [255 - i for i in range(8)]
    assert fake.calls[0] == 8 and max(fake.calls[1:]) <= 4
    assert "retrying in halves" in caplog.text
    with pytest.raises(D2NError, match="GPU out of memory translating one 4x4 frame"):
        run_network(_SmallMemory(limit=0), images[:1], "night")  # type: ignore[arg-type]


def test_too_large_for_32_bit_indexing_backs_off_too(monkeypatch, caplog) -> None:
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    images = [np.full((4, 4, 3), i, np.uint8) for i in range(8)]
    fake = _SmallIndex(limit=3)
    with caplog.at_level(logging.WARNING):
        out = run_network(fake, images, "night")  # type: ignore[arg-type]
    assert [o[0, 0, 0] for o in out] == [255 - i for i in range(8)]
    assert "32-bit indexing at batch 8; retrying in halves" in caplog.text
    with pytest.raises(D2NError, match="too large for CUDA's 32-bit indexing translating one"):
        run_network(_SmallIndex(limit=0), images[:1], "night")  # type: ignore[arg-type]
    other = _SmallMemory(limit=0)
    other.error = RuntimeError("some other CUDA failure")
    with pytest.raises(RuntimeError, match="some other"):  # not split, not hidden
        run_network(other, images, "night")  # type: ignore[arg-type]
    assert other.calls == [8]


class _Pair(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return x, {"wide": x.repeat(1, 4, 1, 1)}


def test_largest_tensor_sees_every_module_and_nested_outputs() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 2, 1))
    with largest_tensor(net) as largest:
        net(torch.zeros(1, 3, 5, 7))
    assert largest == [8 * 5 * 7]  # the first conv's output, the largest of all
    net(torch.zeros(1, 3, 50, 70))
    assert largest == [8 * 5 * 7]  # the hooks are gone after the block
    pair = _Pair()
    with largest_tensor(pair) as largest:
        pair(torch.zeros(1, 3, 5, 7))
    assert largest == [12 * 5 * 7]  # inside a dict inside a tuple


def test_a_depthwise_convolutions_index_error_backs_off_too(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    fake = _SmallIndex(limit=2)
    fake.error = RuntimeError(
        "Expected canUse32BitIndexMath(input) && canUse32BitIndexMath(output) to be true"
    )
    images = [np.full((4, 4, 3), i, np.uint8) for i in range(4)]
    assert len(run_network(fake, images, "night")) == 4  # type: ignore[arg-type]


def test_nvenc_falls_back_to_x264_without_a_gpu(media: dict[str, Path], tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU may well open NVENC")
    assert usable_codec("h264_nvenc", 64, 48) == "libx264"
    assert usable_codec("libx264", 64, 48) == "libx264"
    tr = Translator.from_checkpoint(media["model"], "cpu")
    out = tmp_path / "o.mp4"
    convert_video(
        media["plain"], out, tr, ConvertOptions("night", encode=EncodeSettings(codec="h264_nvenc"))
    )
    assert len(read_video(out).times) == 12


def test_cuda_decoding_falls_back_to_software(media: dict[str, Path]) -> None:
    frames = list(decode_frames(media["plain"], hwaccel="cuda"))
    assert len(frames) == 12 and frames[0].image.shape == (48, 64, 3)


def test_auto_batch_size_on_cpu(media: dict[str, Path]) -> None:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    assert auto_batch_size(tr, 720, 1280) == 2


@cuda
@pytest.mark.gpu
def test_cuda_matches_cpu_and_compiles(media: dict[str, Path]) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    cpu = Translator.from_checkpoint(media["model"], "cpu")(frames, "night")
    gpu = Translator.from_checkpoint(media["model"], "cuda", "fp32")
    assert np.abs(gpu(frames, "night").astype(int) - cpu.astype(int)).max() <= 2
    bf16 = Translator.from_checkpoint(media["model"], "cuda").compile()
    assert bf16.precision in ("bf16", "fp16")
    assert bf16(frames, "night").shape == frames.shape
    assert auto_batch_size(gpu, 720, 1280) >= 1


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_it_is_said_to_be_slow(native: bool, monkeypatch, caplog) -> None:
    # accepted without a word, it ran at 0.2 frames/s against 2-3 in fp32 (first-use review)
    import torch

    from d2nvideo.model import runtime

    monkeypatch.setattr(runtime, "_native_bf16", lambda: native)
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert ("is emulated" in caplog.text) is not native
    caplog.clear()
    assert runtime.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert "is emulated" not in caplog.text
