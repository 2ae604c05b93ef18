"""Inference backends: ONNX Runtime and OpenVINO give torch's output within 1/255 on decoded
frames; auto measures once and remembers; a missing runtime is one clear line; export --onnx."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import SHARED, TINY_UNIT, make_checkpoint, needs_shared

from d2nvideo.cli import cli
from d2nvideo.errors import UsageError
from d2nvideo.infer import backends
from d2nvideo.infer.graphs import cache_root, cached_graph, model_key
from d2nvideo.model import UNITConfig
from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video, translate_images
from d2nvideo.translator import Translator
from d2nvideo.video.decode import decode_frames

RUNTIMES = [
    pytest.param(
        name,
        marks=[
            pytest.mark.skipif(not backends.installed(name), reason=f"{name} not installed"),
            *([pytest.mark.openvino] if name == "openvino" else []),
        ],
    )
    for name in backends.RUNTIMES
]
# a model with every kind of layer the bundled one has (three downsamplings, layer norm,
# shared blocks), small enough to export in a second
SMALL_UNIT = UNITConfig(width=8, n_downsample=3, n_res=2, n_shared=1, up_kernel=3, out_kernel=3)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("m") / "small.safetensors", SMALL_UNIT, seed=3)


@pytest.fixture(scope="module")
def antialiased_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = dataclasses.replace(SMALL_UNIT, antialias=True)  # fixed blurs, depthwise convs
    return make_checkpoint(tmp_path_factory.mktemp("m") / "aa.safetensors", config, seed=3)


def decoded(path: Path, n: int = 2) -> np.ndarray:
    return np.stack([f.image for _, f in zip(range(n), decode_frames(path))])


def max_difference(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.parametrize("model", ["small_model", "antialiased_model"])
@pytest.mark.parametrize("name", RUNTIMES)
def test_runtimes_give_torchs_output_on_decoded_frames(
    name: str, model: str, media: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(model)
    torch_tr = Translator.from_checkpoint(path, "cpu")
    runtime = Translator.from_checkpoint(path, "cpu", backend=name)
    assert torch_tr.config.antialias is (model == "antialiased_model")
    assert runtime.backend == name and torch_tr.backend == "torch"
    for clip in ("odd", "plain"):  # 322x178 and 64x48: odd sizes pad to the multiple
        frames = decoded(media[clip])
        for to in ("night", "day"):
            assert max_difference(runtime(frames, to), torch_tr(frames, to)) <= 1, (clip, to)


@needs_shared()
@pytest.mark.parametrize("name", RUNTIMES)
def test_runtimes_match_torch_on_real_footage_with_the_bundled_model(name: str) -> None:
    from d2nvideo.registry import DEFAULT_MODEL

    clip = SHARED / "videos" / "day" / "udacity_solidWhiteRight.mp4"
    frames = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in decoded(clip, 2)]
    torch_tr = Translator.from_checkpoint(DEFAULT_MODEL, "cpu")
    runtime = Translator.from_checkpoint(DEFAULT_MODEL, "cpu", backend=name)
    size = WorkingSize(work_size=None)
    ours = translate_images(frames, runtime, "night", size)
    for a, b in zip(ours, translate_images(frames, torch_tr, "night", size)):
        assert max_difference(a, b) <= 1


@pytest.mark.openvino  # auto measures every installed runtime
def test_auto_measures_once_and_remembers_per_model_and_size(
    media: dict[str, Path], small_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = decoded(media["plain"], 2)
    tr = Translator.from_checkpoint(small_model, "cpu", backend="auto")
    assert tr.backend == "auto: not measured yet" or tr.backend == "torch"
    reference = Translator.from_checkpoint(small_model, "cpu")(frames, "night")
    assert max_difference(tr(frames, "night"), reference) <= 1
    if tr.network is None:  # no runtime installed: auto is torch, nothing to measure
        return
    chosen = tr.backend.removeprefix("auto: ")
    assert chosen in backends.candidates(tr.device, tr.precision)
    stored = json.loads((cache_root() / "backends.json").read_text())
    key = model_key(tr.model, tr.config)
    assert [v for k, v in stored.items() if k.startswith(key) and k.endswith("48x64")] == [chosen]

    def no_measuring(*args: object) -> None:
        raise AssertionError("measured again")

    monkeypatch.setattr(backends.AutoNetwork, "_measure", no_measuring)
    again = Translator.from_checkpoint(small_model, "cpu", backend="auto")
    again(frames[:1], "night")  # another batch size, the same frame size: no measurement
    assert again.backend == tr.backend


def test_auto_keeps_no_choice_made_without_a_candidate(tmp_path: Path, monkeypatch) -> None:
    # A cache disk full while a runtime's graph was written left it out of the measurement,
    # and the choice (torch) was stored for good; a stored runtime that could not load now
    # (too little memory) was a traceback
    monkeypatch.setenv("D2NVIDEO_CACHE", str(tmp_path))
    x = torch.zeros(1, 3, 8, 8)

    def works(x: torch.Tensor, to: str) -> torch.Tensor:
        return x

    def fails(x: torch.Tensor, to: str) -> torch.Tensor:
        raise OSError(27, "File too large")

    auto = backends.AutoNetwork({"torch": works, "openvino": fails}, key=lambda: "k")
    assert auto(x, "night") is x and auto.chosen == "torch"
    assert not (tmp_path / "backends.json").exists()
    backends._store_choice(auto._entry(x), "openvino")
    again = backends.AutoNetwork({"torch": works, "openvino": fails}, key=lambda: "k")
    assert again(x, "night") is x and again.chosen == "torch"

    def no_memory(x: torch.Tensor, to: str) -> torch.Tensor:
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    none = backends.AutoNetwork({"torch": no_memory, "openvino": fails}, key=lambda: "k")
    with pytest.raises(RuntimeError, match="not enough memory"):  # not min()'s ValueError
        none(x, "night")
    both = backends.AutoNetwork({"torch": works, "onnxruntime": works}, key=lambda: "k")
    both(x, "night")
    assert backends._stored_choice(both._entry(x)) == both.chosen  # all ran: stored


def test_graphs_are_cached_by_content_and_written_whole(
    media: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("onnx")
    a = Translator.from_checkpoint(make_checkpoint(tmp_path / "a.safetensors", seed=1), "cpu")
    b = Translator.from_checkpoint(make_checkpoint(tmp_path / "b.safetensors", seed=2), "cpu")
    same = Translator.from_checkpoint(make_checkpoint(tmp_path / "c.safetensors", seed=1), "cpu")
    assert model_key(a.model, a.config) == model_key(same.model, same.config)
    assert model_key(a.model, a.config) != model_key(b.model, b.config)
    from d2nvideo.infer.graphs import cached_graph

    path = cached_graph(a.model, a.config, "night")
    assert path.parent.name == model_key(a.model, a.config) and path.stat().st_size > 0
    assert [p.name for p in path.parent.iterdir()] == ["night.onnx"]  # nothing half-written
    assert cached_graph(a.model, a.config, "night").stat().st_mtime == path.stat().st_mtime


@pytest.mark.parametrize("text", ["[1, 2]", "null", "{not json"])
def test_a_damaged_choices_file_is_no_choice_and_is_replaced(
    text: str, tmp_path: Path, monkeypatch
) -> None:
    # '[1, 2]' gave every default run an AttributeError traceback; '{not json' was never
    # replaced, so auto measured again on every run
    monkeypatch.setenv("D2NVIDEO_CACHE", str(tmp_path))
    (tmp_path / "backends.json").write_text(text)
    assert backends._stored_choice("entry") is None
    backends._store_choice("entry", "openvino")
    assert backends._stored_choice("entry") == "openvino"


def test_threads_exporting_one_graph_at_once(small_model: Path, tmp_path: Path, monkeypatch):
    # the exporter's state is global: a second thread's first export failed with
    # "AssertionError: GLOBALS.in_onnx_export must be True"
    from concurrent.futures import ThreadPoolExecutor

    from d2nvideo.infer.graphs import cached_graph

    pytest.importorskip("onnx")
    monkeypatch.setenv("D2NVIDEO_CACHE", str(tmp_path))
    tr = Translator.from_checkpoint(small_model, "cpu")
    with ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(lambda to: cached_graph(tr.model, tr.config, to), ["night"] * 3))
    assert len(set(paths)) == 1 and paths[0].stat().st_size > 0


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_cached_graph_cut_short_is_exported_again(
    name: str, small_model: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    # every run failed with the runtime's own "INVALID_PROTOBUF" until the cache was deleted
    monkeypatch.setenv("D2NVIDEO_CACHE", str(tmp_path))
    tr = Translator.from_checkpoint(small_model, "cpu")
    x = torch.zeros(1, 3, 16, 16)
    expected = tr.translate_tensor(x, "night")
    graph = cached_graph(tr.model, tr.config, "night")
    graph.write_bytes(graph.read_bytes()[:200])
    runtime = Translator.from_checkpoint(small_model, "cpu", backend=name)
    assert torch.allclose(runtime.translate_tensor(x, "night"), expected, atol=1e-4)
    assert "cannot be loaded: exporting it again" in caplog.text


def test_export_keeps_a_graph_that_appears_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # export --onnx replaced any graph at the name, one another process wrote meanwhile too
    pytest.importorskip("onnx")
    import torch

    from d2nvideo.errors import OutputError
    from d2nvideo.infer.graphs import export_graphs

    translator = Translator.from_checkpoint(make_checkpoint(tmp_path / "m.safetensors"), "cpu")
    theirs = tmp_path / "m.day.onnx"  # the first graph written
    real = torch.onnx.export

    def meanwhile(*args: object, **kwargs: object) -> object:
        theirs.write_bytes(b"another process's graph")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", meanwhile)
    with pytest.raises(OutputError, match="appeared while this run was writing it"):
        export_graphs(translator.model, translator.multiple, tmp_path / "m.safetensors")
    assert theirs.read_bytes() == b"another process's graph"


@pytest.mark.parametrize("name", list(backends.RUNTIMES))
def test_a_missing_runtime_is_one_clear_line(
    name: str, media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "installed", lambda runtime: False)
    with pytest.raises(UsageError, match=rf"pip install 'd2nvideo\[{backends.EXTRAS[name]}\]'"):
        Translator.from_checkpoint(media["model"], "cpu", backend=name)
    args = ["convert", str(media["plain"]), "--to", "night", "-o", str(tmp_path / "o.mp4")]
    args += ["--model", str(media["model"]), "--backend", name, "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and f"needs the {name} package" in result.output
    assert backends.candidates(
        Translator.from_checkpoint(media["model"], "cpu").device, "fp32"
    ) == ["torch"]


def test_runtimes_refuse_what_they_cannot_do(media: dict[str, Path]) -> None:
    import torch

    for name in backends.RUNTIMES:
        if backends.installed(name):
            with pytest.raises(UsageError, match="fp32"):
                backends.check_backend(name, torch.device("cpu"), "bf16", compiled=False)
    with pytest.raises(UsageError, match="backend must be one of"):
        Translator.from_checkpoint(media["model"], "cpu", backend="tensorrt")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", RUNTIMES)
def test_convert_with_a_runtime_keeps_frames_and_matches_torch(
    name: str, media: dict[str, Path], tmp_path: Path
) -> None:
    from helpers import read_video

    outputs = {}
    for backend in ("torch", name):
        tr = Translator.from_checkpoint(media["model"], "cpu", backend=backend)
        dst = tmp_path / f"{backend}.mp4"
        opts = ConvertOptions("night", resolution=WorkingSize(work_size=90))
        assert convert_video(media["odd"], dst, tr, opts).frames == 6
        outputs[backend] = read_video(dst).images
    # through the encoder both are compressed alike: close, not bit-equal
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(*outputs.values())]) < 1.0


def test_export_writes_graphs_that_run_at_any_size(media: dict[str, Path], tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = tmp_path / "m.safetensors"
    model.write_bytes(media["model"].read_bytes())
    result = CliRunner().invoke(cli, ["export", "--onnx", str(model)])
    assert result.exit_code == 0, result.output
    tr = Translator.from_checkpoint(model, "cpu")
    for to in ("night", "day"):
        session = ort.InferenceSession(str(tmp_path / f"m.{to}.onnx"))
        for h, w in ((8, 12), (20, 36)):  # multiples of 4 (TINY_UNIT has two downsamplings)
            x = np.random.default_rng(h).uniform(-1, 1, (2, 3, h, w)).astype(np.float32)
            ours = session.run(None, {"image": x})[0]
            import torch

            expected = tr.model(torch.from_numpy(x), to).detach().numpy()
            assert np.abs(ours - expected).max() < 1e-4
    again = CliRunner().invoke(cli, ["export", "--onnx", str(model)])
    assert again.exit_code == 2 and "exists" in again.output
    plain = CliRunner().invoke(cli, ["export", str(model)])
    assert plain.exit_code == 2 and "--onnx" in plain.output
    assert TINY_UNIT.multiple == 4


@pytest.mark.openvino
def test_auto_falls_back_to_torch_when_the_cache_cannot_be_written(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("D2NVIDEO_CACHE", str(blocked))
    frames = decoded(media["plain"], 1)
    tr = Translator.from_checkpoint(media["model"], "cpu", backend="auto")
    expected = Translator.from_checkpoint(media["model"], "cpu")(frames, "day")
    assert np.array_equal(tr(frames, "day"), expected)
    assert tr.backend in ("torch", "auto: torch")
