"""The device path (every per-pixel step in torch on the network's device): checked on the CPU
here against the OpenCV path; on CUDA by the gpu-marked tests (benchmarks/device_check.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import read_video

from d2nvideo.evaluation.metrics import ssim
from d2nvideo.infer.frames import translate_on_device
from d2nvideo.pipeline import (
    ConvertOptions,
    WorkingSize,
    convert_video,
    time_stages,
    translate_images,
)
from d2nvideo.translator import Translator
from d2nvideo.video.decode import decode_frames

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def frames_of(path: Path, n: int = 3) -> list[np.ndarray]:
    return [f.image for _, f in zip(range(n), decode_frames(path))]


@pytest.mark.parametrize("upsample", ["guided", "bicubic"])
def test_the_device_path_on_the_cpu_matches_the_opencv_path(
    upsample: str, media: dict[str, Path]
) -> None:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    images = frames_of(media["odd"])  # 322x178
    res = WorkingSize(work_size=89, upsample=upsample)  # type: ignore[arg-type]
    expected = translate_images(images, tr, "night", res)
    ours = translate_on_device(np.stack(images), tr, "night", res.shape(178, 322), upsample)  # type: ignore[arg-type]
    assert ours.shape == (3, 178, 322, 3) and ours.dtype == np.uint8
    for a, b in zip(ours, expected):
        assert ssim(a, b) >= 0.99


def test_the_device_path_at_native_size_is_the_translation(media: dict[str, Path]) -> None:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    images = np.stack(frames_of(media["plain"], 2))
    ours = translate_on_device(images, tr, "day", (48, 64))
    assert np.abs(ours.astype(int) - tr(images, "day")).max() <= 1


def test_stage_times_cover_the_convert_path(media: dict[str, Path]) -> None:
    tr = Translator.from_checkpoint(media["model"], "cpu")
    times = time_stages(tr, "night", WorkingSize(work_size=40), 128, 72, frames=4)
    assert set(times.ms) == {"decode", "resize", "network", "upsample", "encode"}
    assert all(v > 0 for v in times.ms.values()) and times.pipeline_fps > 0
    assert times.work == (40, 71) and times.backend == "torch" and times.batch_size == 2
    assert times.busiest[0] in ("decode", "network", "upsample", "encode")


@cuda
@pytest.mark.gpu
def test_the_device_path_on_cuda_matches_the_cpu(media: dict[str, Path]) -> None:
    images = frames_of(media["odd"])
    res = WorkingSize(work_size=89)
    cpu = translate_images(images, Translator.from_checkpoint(media["model"], "cpu"), "day", res)
    gpu_tr = Translator.from_checkpoint(media["model"], "cuda", "fp32")
    gpu = translate_images(images, gpu_tr, "day", res)  # takes the device path on CUDA
    for a, b in zip(gpu, cpu):
        assert ssim(a, b) >= 0.99


@cuda
@pytest.mark.gpu
def test_convert_on_cuda_keeps_frames(media: dict[str, Path], tmp_path: Path) -> None:
    tr = Translator.from_checkpoint(media["model"], "cuda")
    dst = tmp_path / "o.mp4"
    opts = ConvertOptions("night", resolution=WorkingSize(work_size=90))
    assert convert_video(media["odd"], dst, tr, opts).frames == 6
    assert len(read_video(dst).times) == 6
    times = time_stages(tr, "night", WorkingSize(work_size=180), 1280, 720, frames=8)
    assert "device" in times.ms and times.pipeline_fps > 0


def test_cuda_translations_run_on_one_thread_and_last_batches_are_padded(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cuDNN keeps its autotuning per thread: a thread per convert tuned every shape again
    import threading

    import d2nvideo.pipeline as pipeline

    monkeypatch.setattr(pipeline, "on_device", lambda translator: True)  # the CUDA path, on CPU
    tr = Translator.from_checkpoint(media["model"], "cpu")
    seen: list[tuple[threading.Thread, int]] = []
    translate = tr.translate_tensor

    def recording(x: torch.Tensor, to: str) -> torch.Tensor:
        seen.append((threading.current_thread(), x.shape[0]))
        return translate(x, to)  # type: ignore[arg-type]

    monkeypatch.setattr(tr, "translate_tensor", recording)
    res = WorkingSize(work_size=60)
    opts = ConvertOptions("night", batch_size=4, resolution=res)
    outputs: list[np.ndarray] = []
    for i in range(2):
        watch = lambda batch, _: outputs.extend(batch) or batch  # noqa: E731
        convert_video(media["odd"], tmp_path / f"{i}.mp4", tr, opts, watch=watch)
    threads = {t for t, _ in seen}
    assert len(threads) == 1 and threading.current_thread() not in threads
    assert [n for _, n in seen] == [4, 4, 4, 4]  # 6 frames: 4, then 2 padded to 4
    expected = translate_images(frames_of(media["odd"], 6), tr, "night", res)
    assert len(outputs) == 12
    for a, b in zip(outputs, expected + expected, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1
    seen.clear()  # a clip shorter than one batch is not padded (a still's preview)
    short = ConvertOptions("night", batch_size=8, resolution=res)
    convert_video(media["odd"], tmp_path / "short.mp4", tr, short)
    assert [n for _, n in seen] == [6]
    # the stage timings run whole batches on CUDA: one shape to tune, warm-up included
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args: None)
    seen.clear()
    times = time_stages(tr, "night", res, 96, 64, frames=5, batch_size=2)
    assert {n for _, n in seen} == {2} and "device" in times.ms
    assert {t for t, _ in seen} == threads


def test_the_device_thread_returns_raises_and_runs_nested_calls_inline() -> None:
    import threading

    from d2nvideo.infer.device_thread import on_device_thread

    cpu = torch.device("cpu")

    def fail() -> None:
        raise ValueError("boom")

    assert on_device_thread(cpu, lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="boom"):
        on_device_thread(cpu, fail)
    worker = on_device_thread(cpu, threading.current_thread)
    assert worker.daemon and worker is on_device_thread(cpu, threading.current_thread)
    result: list[int] = []  # a nested call runs inline; a deadlock must fail, not hang
    nested = threading.Thread(
        target=lambda: result.append(on_device_thread(cpu, on_device_thread, cpu, lambda: 7)),
        daemon=True,
    )
    nested.start()
    nested.join(timeout=30)
    assert result == [7]


def test_the_batch_size_probe_does_not_autotune_its_one_frame(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the probe's batch of one is a shape no convert runs: tuning it cost a whole tuning pass
    import d2nvideo.infer.batching as batching

    tr = Translator.from_checkpoint(media["model"], "cpu")
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    fake = {"synchronize": None, "reset_peak_memory_stats": None, "memory_allocated": 0}
    fake |= {"max_memory_allocated": 2**20, "memory_reserved": 0, "mem_get_info": (2**26, 2**30)}
    for name, value in fake.items():
        monkeypatch.setattr(torch.cuda, name, lambda *args, v=value: v)
    seen: list[bool] = []
    translate = tr.translate_tensor

    def recording(x: torch.Tensor, to: str) -> torch.Tensor:
        seen.append(torch.backends.cudnn.benchmark)
        return translate(x, to)  # type: ignore[arg-type]

    monkeypatch.setattr(tr, "translate_tensor", recording)
    probe = batching._probe  # what auto_batch_size runs on the device thread, on CUDA
    assert probe(tr, 178, 322, WorkingSize(work_size=60)) == 32  # 64 MiB / 1 MiB, at most 32
    assert seen == [False]
    assert torch.backends.cudnn.benchmark  # as it was
