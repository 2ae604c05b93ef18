from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_UNIT, make_checkpoint
from torch import nn

from d2nvideo.checkpoint import load_checkpoint, save_checkpoint
from d2nvideo.errors import CheckpointError
from d2nvideo.model import CycleGANConfig, build_generator
from d2nvideo.model.layers import Conv2dBlock, res_blocks
from d2nvideo.translator import Translator


def _frames(n: int = 2, h: int = 37, w: int = 53) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("config", [TINY_UNIT, CycleGANConfig(width=4, n_blocks=1)])
def test_save_then_load_gives_identical_outputs(tmp_path: Path, config) -> None:
    torch.manual_seed(1)
    model = build_generator(config).eval()
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, config, {"steps": 3})
    tr = Translator.from_checkpoint(path, "cpu")
    assert tr.config == config and tr.meta == {"steps": 3}
    x = torch.rand(2, 3, 36, 52) * 2 - 1
    with torch.no_grad():
        expected = model.translate(x, "night")
    assert torch.equal(tr.translate_tensor(x, "night"), expected)


def test_any_frame_size_round_trips(tmp_path: Path) -> None:
    tr = Translator.from_checkpoint(make_checkpoint(tmp_path / "m.safetensors"), "cpu")
    for h, w in [(37, 53), (1, 1), (3, 2), (178, 322)]:
        out = tr(_frames(1, h, w), "day")
        assert out.shape == (1, h, w, 3) and out.dtype == np.uint8


def test_fp16_checkpoint_is_half_the_size_and_close(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_generator(TINY_UNIT).eval()
    save_checkpoint(tmp_path / "a.safetensors", model, TINY_UNIT)
    save_checkpoint(tmp_path / "b.safetensors", model, TINY_UNIT, dtype=torch.float16)
    a = Translator.from_checkpoint(tmp_path / "a.safetensors", "cpu")(_frames(), "night")
    b = Translator.from_checkpoint(tmp_path / "b.safetensors", "cpu")(_frames(), "night")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_random_bytes_are_refused(tmp_path: Path) -> None:
    # fixed bytes: one run in 256 of os.urandom began with 0x80, a pickle's first byte, and was
    # refused as a pickle holding Python objects (a flaky test)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00" + np.random.default_rng(0).bytes(4095))
    with pytest.raises(CheckpointError, match="not a d2nvideo checkpoint"):
        load_checkpoint(path)
    # garbage that begins with a pickle's first byte was said to hold "more than weights"
    for seed in range(4):
        path.write_bytes(b"\x80" + np.random.default_rng(seed).bytes(4095))
        with pytest.raises(CheckpointError, match="not a d2nvideo checkpoint: not safetensors"):
            load_checkpoint(path)


def test_a_pytorch_file_cut_short_is_called_so(tmp_path: Path) -> None:
    # torch's words for a cut zip ran to a paragraph, quoted to 200 characters mid-sentence,
    # and the file was called "not a d2nvideo checkpoint"
    weights = {"a": {"x": torch.zeros(4000)}, "b": {"x": torch.zeros(4000)}}
    zipped, legacy, plain = (tmp_path / f"{name}.pt" for name in ("zip", "legacy", "plain"))
    torch.save(weights, zipped)
    torch.save(weights, legacy, _use_new_zipfile_serialization=False)
    with plain.open("wb") as fh:
        pickle.dump({"a": {"x": [0.0] * 4000}}, fh, protocol=2)
    for path in (zipped, legacy, plain):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match=r"could not be read: the file is cut short"):
            load_checkpoint(path)  # a cut pickle was "Unsupported operand 149"
    # a zip that is no PyTorch file keeps torch's reason whole (its first sentence was empty)
    other = tmp_path / "other.pt"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match=r"not in a subdirectory: readme\.txt"):
        load_checkpoint(other)


class _Evil:
    def __reduce__(self):  # runs on unpickling
        return (os.system, (f"touch {os.environ['D2N_PWNED']}",))


def test_pickle_that_runs_code_is_refused_and_never_run(tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("D2N_PWNED", str(marker))
    path = tmp_path / "gen_00010000.pt"
    with path.open("wb") as fh:
        pickle.dump({"a": _Evil(), "b": {}}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_checkpoint(path)
    assert not marker.exists()


def test_foreign_safetensors_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a d2nvideo model"):
        load_checkpoint(path)


# A re-statement of the official UNIT generator's module layout (mingyuliutw/UNIT networks.py:
# VAEGen.enc/.dec, each an nn.Sequential under .model, ResBlocks wrapping another .model).
class _OfficialResBlocks(nn.Module):
    def __init__(self, n: int, dim: int) -> None:
        super().__init__()
        self.model = res_blocks(n, dim, "instance", "relu", "reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _OfficialVAEGen(nn.Module):
    def __init__(self, dim: int = 4, n_down: int = 2, n_res: int = 2) -> None:
        super().__init__()
        enc: list[nn.Module] = [Conv2dBlock(3, dim, 7, 1, 3, "instance")]
        for _ in range(n_down):
            enc.append(Conv2dBlock(dim, dim * 2, 4, 2, 1, "instance"))
            dim *= 2
        enc.append(_OfficialResBlocks(n_res, dim))
        dec: list[nn.Module] = [_OfficialResBlocks(n_res, dim)]
        for _ in range(n_down):
            dec += [nn.Upsample(scale_factor=2), Conv2dBlock(dim, dim // 2, 5, 1, 2, "layer")]
            dim //= 2
        dec.append(Conv2dBlock(dim, 3, 7, 1, 3, "none", "tanh"))
        self.enc = nn.Module()
        self.enc.model = nn.Sequential(*enc)
        self.dec = nn.Module()
        self.dec.model = nn.Sequential(*dec)


@pytest.mark.parametrize("day_is", ["a", "b"])
def test_official_unit_generator_imports_and_translates_the_same(tmp_path: Path, day_is) -> None:
    torch.manual_seed(0)
    gens = {"a": _OfficialVAEGen().eval(), "b": _OfficialVAEGen().eval()}
    path = tmp_path / "gen_00100000.pt"
    torch.save({k: g.state_dict() for k, g in gens.items()}, path)
    tr = Translator.from_checkpoint(path, "cpu", official_day=day_is)
    assert tr.config.n_shared == 0 and tr.config.width == 4 and tr.config.n_res == 2
    day, night = gens[day_is], gens["b" if day_is == "a" else "a"]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = night.dec.model(day.enc.model(x))
    assert torch.allclose(tr.translate_tensor(x, "night"), expected, atol=1e-5)


def test_export_onnx_of_an_official_file_takes_day_is(tmp_path: Path) -> None:
    """'export --onnx gen_*.pt' could not say which half is day (convert's --day-is); a run
    folder's halves are named, so there it is refused."""
    from click.testing import CliRunner
    from faults import refused

    from d2nvideo.cli import cli

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    gens = {"a": _OfficialVAEGen().eval(), "b": _OfficialVAEGen().eval()}
    path = tmp_path / "gen_00100000.pt"
    torch.save({k: g.state_dict() for k, g in gens.items()}, path)
    result = CliRunner().invoke(cli, ["export", "--onnx", str(path), "--day-is", "b"])
    assert result.exit_code == 0, result.output
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = gens["a"].dec.model(gens["b"].enc.model(x)).numpy()
    session = ort.InferenceSession(str(tmp_path / "gen_00100000.night.onnx"))
    assert np.abs(session.run(None, {"image": x.numpy()})[0] - expected).max() < 1e-4
    args = ["export", tmp_path, "--day-is", "a", "-o", tmp_path / "m.safetensors"]
    refused(tmp_path, 2, "is a run folder: --day-is", *args)


def test_training_state_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"step": 3, "gen": {}}, path)
    with pytest.raises(CheckpointError, match="not an official UNIT generator"):
        load_checkpoint(path)


def _resaved(src: Path, dst: Path, cast: str | None = None, **header: str) -> Path:
    """``src``'s tensors and header saved again, one weight cast to ``cast``, keys replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as fh:
        meta = {**(fh.metadata() or {}), **header}
        state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    if cast:
        key = sorted(state)[0]
        state[key] = state[key].to(getattr(torch, cast))
    save_file(state, str(dst), metadata=meta)
    return dst


@pytest.mark.parametrize(
    "cast, header, message",
    [  # from a fuzzing helper: each was a traceback
        ("float8_e4m3fn", {}, "is stored as float8_e4m3fn, which d2nvideo does not load"),
        ("int32", {}, "is stored as int32"),
        (None, {"meta": "[" * 100000 + "]" * 100000}, "has invalid metadata"),
        (None, {"model": "[" * 100000 + "]" * 100000}, "has an invalid model config"),
    ],
)
def test_weights_and_headers_no_trainer_writes_are_refused(
    tmp_path: Path, cast: str | None, header: dict[str, str], message: str
) -> None:
    bad = _resaved(
        make_checkpoint(tmp_path / "m.safetensors"), tmp_path / "bad.safetensors", cast, **header
    )
    with pytest.raises(CheckpointError, match=message):
        Translator.from_checkpoint(bad, "cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_batch_norms_integer_count_loads(tmp_path: Path, dtype: torch.dtype) -> None:
    """BatchNorm keeps its count of batches as an int64: the check against weights stored as
    integers refused every norm: batch model (found by a review)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from d2nvideo.model import UNITConfig

    config = UNITConfig(norm="batch", width=8, n_res=2, n_shared=1)
    path = tmp_path / "bn.safetensors"
    save_checkpoint(path, build_generator(config).eval(), config, dtype=dtype)
    assert load_checkpoint(path).config == config
    state = load_file(str(path))
    count = next(k for k in state if k.endswith("num_batches_tracked"))
    state[count] = state[count].float()  # an integer buffer stored as a float: no trainer does
    with safe_open(str(path), framework="pt") as fh:
        save_file(state, str(tmp_path / "f.safetensors"), metadata=fh.metadata())
    with pytest.raises(CheckpointError, match="is stored as float32, which d2nvideo does not"):
        load_checkpoint(tmp_path / "f.safetensors")


def test_an_official_file_with_a_scalar_weight_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gen.pt"
    torch.save({"a": {"enc.model.0.conv.weight": torch.tensor(1.0)}, "b": {}}, path)
    with pytest.raises(CheckpointError, match="does not look like a UNIT generator"):
        load_checkpoint(path)
