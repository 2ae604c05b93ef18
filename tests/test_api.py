"""The Python API: ``from d2nvideo import Translator, convert_video``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import frame_image

import d2nvideo
from d2nvideo import Translator, convert_video
from d2nvideo.cli import cli
from d2nvideo.errors import UsageError
from d2nvideo.images import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundled() -> Translator:
    return Translator.default(device="cpu")


def test_translate_matches_the_command_line_exactly(bundled: Translator, tmp_path: Path):
    image = frame_image(5, 201, 113)  # odd sizes: padding and cropping on the way
    write_image(tmp_path / "in.png", image)
    args = ["convert", tmp_path / "in.png", "--to", "night", "-o", tmp_path / "out.png"]
    result = CliRunner().invoke(cli, [*map(str, args), "--backend", "torch", "-q"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(bundled.translate(image, "night"), read_image(tmp_path / "out.png"))


def test_translate_shapes_colour_order_and_case(bundled: Translator) -> None:
    one = frame_image(1, 96, 64)
    batch = np.stack([one, frame_image(2, 96, 64)])
    night = bundled.translate(one, "Night")
    assert night.shape == one.shape and night.dtype == np.uint8
    both = bundled.translate(batch, "night")
    assert both.shape == batch.shape  # a batch may round differently in the last bit:
    assert np.abs(both[0].astype(int) - night).max() <= 1  # batched convolutions sum in order
    bgr = bundled.translate(np.ascontiguousarray(one[..., ::-1]), "night", color="bgr")
    assert np.array_equal(bgr[..., ::-1], night)


@pytest.mark.parametrize(
    "images, to, message",
    [
        (np.zeros((8, 8, 3), np.float32), "night", "uint8"),
        (np.zeros((8, 8), np.uint8), "night", r"\(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.uint8), "dusk", "'night' or 'day'"),
        ([[1, 2, 3]], "night", "NumPy array"),
    ],
)
def test_translate_says_what_is_wrong(bundled: Translator, images, to, message) -> None:
    with pytest.raises(UsageError, match=message):
        bundled.translate(images, to)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((1, 8, 8, 3), np.float32), "uint8"),
        (np.zeros((1, 8, 8), np.uint8), r"\(H, W, 3\)"),
        ([[1, 2, 3]], "NumPy array"),
    ],
)
def test_the_batch_call_says_what_is_wrong_too(bundled: Translator, images, message) -> None:
    """``Translator.__call__`` (convert's batch call, public on the class) checks as translate
    does: a float batch was a raw ValueError from deep inside."""
    with pytest.raises(UsageError, match=message):
        bundled(images, "night")
    one = np.zeros((8, 8, 3), np.uint8)
    assert bundled(one, "night").shape == (1, 8, 8, 3)


def test_flipped_arrays_work_and_the_tensor_calls_say_what_is_wrong(bundled: Translator) -> None:
    image = frame_image(0, 24, 16)
    flipped = image[::-1, ::-1]  # negative strides: a raw ValueError in the batch call before
    assert np.array_equal(bundled(flipped, "night"), bundled(flipped.copy(), "night"))
    with pytest.raises(UsageError, match="domain must be one of"):
        bundled.reconstruct(image[None], "dusk")  # type: ignore[arg-type]
    for x, message in [
        (torch.zeros(3, 16, 16), r"\(B, 3, H, W\)"),
        (torch.zeros(1, 4, 16, 16), r"\(B, 3, H, W\)"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "float"),
        (torch.zeros(0, 3, 16, 16), "an empty tensor"),  # torch's "cannot reshape" before
    ]:
        with pytest.raises(UsageError, match=message):
            bundled.translate_tensor(x, "night")
    x = torch.rand(1, 3, 16, 16) * 2 - 1  # float64 and half: torch's "Input type (double)"
    same = bundled.translate_tensor(x, "night")
    assert torch.allclose(bundled.translate_tensor(x.double(), "night"), same)
    assert bundled.translate_tensor(x.half(), "night").dtype == torch.float32


def test_translate_runs_a_long_batch_in_small_calls_on_a_cpu(bundled: Translator, monkeypatch):
    # 64 frames in one call took 2.5 GB (the network's activations for all at once), 1,000
    # the OOM killer; the outputs are those of the frames one call each
    from d2nvideo.infer.batching import CPU_BATCH_SIZE

    seen: list[int] = []
    call = Translator.__call__

    def counted(self: Translator, frames: np.ndarray, to: str) -> np.ndarray:
        seen.append(len(frames))
        return call(self, frames, to)  # type: ignore[arg-type]

    images = np.stack([frame_image(i, 40, 24) for i in range(7)])
    alone = [bundled.translate(image, "night") for image in images]
    monkeypatch.setattr(Translator, "__call__", counted)
    together = bundled.translate(images, "night")
    assert max(seen) <= CPU_BATCH_SIZE and sum(seen) == 7
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(alone, together, strict=True))


@pytest.mark.parametrize("suffix", [".jpg", ".mp4"])
def test_convert_video_of_an_image_says_so(suffix: str, tmp_path: Path) -> None:
    # "output 'out.jpg' is an image, but the input is a video", and a 1-frame .mp4 written
    write_image(tmp_path / "img.png", frame_image(0, 32, 24))
    with pytest.raises(UsageError, match="is an image: convert_video converts videos"):
        convert_video(tmp_path / "img.png", tmp_path / f"out{suffix}", "night")
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]


def test_compile_twice_keeps_the_model_and_its_reconstruction(media) -> None:
    # a second compile made the model a plain function (weights_device failed), and once
    # compiled a UNIT "had no reconstruction"
    tr = Translator.from_checkpoint(media["model"], "cpu")
    x = torch.zeros(1, 3, 16, 16)
    plain = tr.reconstruct_tensor(x, "night")
    tr.compile().compile()
    assert tr.weights_device == torch.device("cpu")
    assert torch.equal(tr.reconstruct_tensor(x, "night"), plain)


def test_convert_video_with_the_cli_defaults(media: dict[str, Path], tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = convert_video(
        media["plain"],
        tmp_path / "out.mp4",
        to="day",
        model=media["model"],
        progress=lambda done, total: seen.append((done, total)),
        batch_size=np.int64(3),  # NumPy's integers are integers
    )
    assert result.frames == 12 and (tmp_path / "out.mp4").is_file()
    assert seen[-1] == (12, 12)
    with pytest.raises(UsageError, match="unknown option"):
        convert_video(media["plain"], tmp_path / "x.mp4", to="day", smooht="flow")
    with pytest.raises(d2nvideo.errors.D2NError, match="exists"):
        convert_video(media["plain"], tmp_path / "out.mp4", to="day", model=media["model"])


def test_convert_video_takes_every_model_option_and_to_auto(media, tmp_path: Path) -> None:
    """The model options by their Python names (``--day-is`` is ``official_day``), checked as
    the command line checks them, and ``to="auto"`` as ``--to auto`` (the clip looks like day)."""
    model = media["model"]
    load = {"backend": "torch", "compile": False, "official_day": "a", "precision": "fp32"}
    from d2nvideo.video.decode import decode_frames

    chosen = [
        convert_video(media["plain"], tmp_path / f"{name}.mp4", to, model=model, **load).to
        for name, to in (("a", "Auto"), ("n", "night"), ("d", "day"))
    ]
    assert chosen == ["night", "night", "day"]  # what auto chose was not in the result
    auto, night, day = (
        np.stack([f.image for f in decode_frames(tmp_path / f"{n}.mp4")]).astype(float)
        for n in "and"
    )
    # Into night, not day (a level or two apart at most: summation order follows the threads)
    assert len(auto) == 12 and np.abs(auto - night).mean() < np.abs(auto - day).mean() / 10
    with pytest.raises(UsageError, match="backend must be one of"):
        convert_video(media["plain"], tmp_path / "b.mp4", "night", model=model, backend="onnx")
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        convert_video(media["plain"], tmp_path / "b.mp4", "night", model=model, device="tpu")
    with pytest.raises(d2nvideo.errors.D2NError, match="exists"):  # before the model loads
        convert_video(media["plain"], tmp_path / "a.mp4", "night", model=tmp_path / "none.pt")
    translator = Translator.from_checkpoint(model)
    with pytest.raises(UsageError, match="device: for a model path"):
        convert_video(media["plain"], tmp_path / "c.mp4", "night", model=translator, device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "d.mp4", "n.mp4"]


@pytest.mark.parametrize(
    "option, value",
    [
        ("smooth", "bogus"),
        ("smooth_strength", 1.0),
        ("batch_size", -3),
        ("batch_size", 2.5),
        ("start", -1),
        ("start", float("nan")),
        ("duration", 0),
        ("upsample", "lanczos"),
        ("quality", "best"),
        ("work_size", 8),
        ("max_size", True),
        ("hwaccel", "vaapi"),
        ("exposure", "auto"),
        ("bars", "crop"),
        ("crf", 99),
        ("salvage", "yes"),
        ("compile", 1),
        ("official_day", "c"),
        ("precision", "fp64"),  # these two were checked only as the model loaded, after
        ("backend", None),  # the input was probed (and, for to="auto", decoded)
        ("codec", b"libx264"),  # a TypeError from the encoder once the model had run
        ("preset", b"fast"),
        ("pix_fmt", b"yuv420p"),
        pytest.param("crf", 10**400, id="crf-huge"),  # past a float's range: OverflowError
        pytest.param("start", 10**400, id="start-huge"),  # from math.isfinite
    ],
)
def test_convert_video_refuses_a_bad_option_value_first(media, tmp_path, option, value) -> None:
    """The command line's ranges and choices hold for the Python API too, checked before the
    model loads (this model path does not exist: a late check would complain of it)."""
    out = tmp_path / "o.mp4"
    with pytest.raises(UsageError, match=f"^{option} must be"):
        convert_video(media["plain"], out, "night", model=tmp_path / "none.pt", **{option: value})
    assert not out.exists()


def test_convert_video_refuses_a_smoothing_strength_without_smoothing(media, tmp_path) -> None:
    out = tmp_path / "o.mp4"  # the command line refuses it; the API ignored it
    with pytest.raises(UsageError, match=r"^smooth_strength needs smooth='flow' or smooth='ema'"):
        convert_video(media["plain"], out, "night", model=tmp_path / "none.pt", smooth_strength=0.3)
    assert not out.exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"overwrite": "no"}, "^overwrite must be True or False"),  # truthy: it replaced files
        ({"progress": "yes"}, "^progress must be"),
        ({"progress": None}, "^progress must be"),
        ({"model": 5}, "^model must be a path"),
        ({"src": 5}, "^src must be a path"),
        ({"dst": None}, "^dst must be a path"),
        ({"device": None}, "^device must be a name"),
        ({"src": ""}, "^src is an empty path"),  # "input '.' is a directory"
        ({"dst": ""}, "^dst is an empty path"),  # "output '.' has no suffix"
        ({"model": ""}, "^model is an empty path"),  # "checkpoint '.' is a directory", late
    ],
)
def test_convert_video_refuses_wrong_types(media, tmp_path: Path, arguments, message) -> None:
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(b"mine")
    call = {"src": media["plain"], "dst": kept, "to": "night", "model": media["model"]}
    with pytest.raises(UsageError, match=message):
        convert_video(**(call | arguments))
    assert kept.read_bytes() == b"mine"


@pytest.mark.parametrize(
    "option, value",
    [
        ("quality", "ultra"),
        ("work_size", -5),  # ran the network at 1x1 and returned a flat image
        ("work_size", "200"),
        ("max_size", 0),
        ("upsample", "nearest"),
        ("bars", "drop"),
        pytest.param("work_size", 10**400, id="work_size-huge"),  # OverflowError; the CLI too
    ],
)
def test_translate_refuses_a_bad_size_option(bundled: Translator, option, value) -> None:
    with pytest.raises(UsageError, match=f"^{option} must be"):
        bundled.translate(frame_image(1, 64, 48), "night", **{option: value})


def test_from_checkpoint_checks_its_arguments(media) -> None:
    with pytest.raises(UsageError, match=r"^path must be a path"):
        Translator.from_checkpoint(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^path is an empty path"):
        Translator.from_checkpoint("")
    with pytest.raises(UsageError, match=r"^official_day must be one of a\|b"):
        Translator.from_checkpoint(media["model"], official_day="zz")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^device must be a name"):
        Translator.from_checkpoint(media["model"], device=None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="'meta' is not supported"):
        Translator.from_checkpoint(media["model"], device=torch.device("meta"))
    # None was quoted as the string 'None', and the choices as a Python tuple
    with pytest.raises(
        UsageError, match=r"^precision must be one of auto\|fp32\|bf16\|fp16, got None"
    ):
        Translator.from_checkpoint(media["model"], precision=None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^backend must be one of auto\|torch\|.*, got None"):
        Translator.from_checkpoint(media["model"], backend=None)  # type: ignore[arg-type]


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, d2nvideo; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_readme_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"<!-- api-example -->\n```python\n(.*?)```", readme, re.S)
    assert example is not None, "README lost its marked Python example"
    write_image(tmp_path / "day.jpg", frame_image(3, 160, 90))
    proc = subprocess.run(
        [sys.executable, "-c", example.group(1)], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert read_image(tmp_path / "night.jpg").shape == (90, 160, 3)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"width": 0}, "^width must be"),  # IndexError from PyAV's frame
        ({"height": -5}, "^height must be"),  # NumPy's "negative dimensions"
        ({"width": "64"}, "^width must be"),  # a ufunc loop error
        ({"frames": 0}, "^frames must be"),  # "input '/tmp/d2nvideo-timing-.../src.mp4' does
        ({"batch_size": -1}, "^batch_size must be"),  # not exist"; zip() too short
        ({"resolution": None}, "^resolution must be a WorkingSize"),  # AttributeError
        ({"to": "dusk"}, "must be one of"),
    ],
)
def test_time_stages_says_what_is_wrong(bundled: Translator, arguments, message) -> None:
    """README's ``d2nvideo.pipeline.time_stages`` checks its arguments as the rest of the API
    does: each of these was a traceback from deep inside."""
    from d2nvideo.pipeline import WorkingSize, time_stages

    call = {"to": "night", "resolution": WorkingSize(), "width": 64, "height": 48, "frames": 2}
    with pytest.raises(UsageError, match=message):
        time_stages(bundled, **(call | arguments))


def test_convert_video_leaves_the_callers_float_mode(media, tmp_path: Path) -> None:
    """The command's process-wide speed-ups (flush denormals to zero on the CPU, cuDNN
    autotuning) are the command's: after convert_video the caller's NumPy and torch turned
    every denormal into 0 (1e-40 * 1 == 0)."""
    torch.set_flush_denormal(False)  # other tests ran the command line in this process
    tiny = np.array([1e-40], np.float32)  # made after: with denormals flushed it is 0 itself
    benchmark = torch.backends.cudnn.benchmark
    convert_video(media["plain"], tmp_path / "o.mp4", "night", model=media["model"], progress=False)
    assert (tiny * np.float32(1))[0] != 0
    assert float(torch.from_numpy(tiny)[0] * 1) != 0
    assert torch.backends.cudnn.benchmark == benchmark


def test_convert_video_warns_as_convert_does(media, tmp_path: Path, monkeypatch, caplog) -> None:
    # the command's warning that the output is nearly black (the model does not suit the
    # footage) never reached a Python caller, nor salvage's count of frames left out
    from d2nvideo import pipeline

    black = lambda images, small, *rest: [np.zeros_like(im) for im in images]  # noqa: E731
    monkeypatch.setattr(pipeline, "upsample_stage", black)
    with caplog.at_level("WARNING"):
        convert_video(media["plain"], tmp_path / "o.mp4", "night", model=media["model"])
    said = [r.getMessage() for r in caplog.records if "nearly black" in r.getMessage()]
    assert len(said) == 1 and "mean brightness 0.0" in said[0]


@pytest.mark.parametrize(("start", "frames"), [(0.15, 3), (0.0, 8)])
def test_a_finished_convert_video_reports_every_frame_written(
    start: float, frames: int, media, tmp_path: Path
) -> None:
    # a segment's total is an estimate from the average rate: a variable-rate clip's ended
    # at (3, 4), a progress display stuck short of 100% for a finished run
    seen: list[tuple[int, int]] = []
    result = convert_video(
        media["vfr"],
        tmp_path / "o.mp4",
        "night",
        model=media["model"],
        start=start,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.frames == frames and seen[-1] == (frames, frames)
    assert all(done <= total for done, total in seen)


def test_the_package_names_its_api() -> None:
    # dir() listed Any, Callable, Path and TYPE_CHECKING, not Translator; the UsageError
    # the README promises was d2nvideo.errors' only
    assert {"Translator", "convert_video", "UsageError"} <= set(dir(d2nvideo))
    assert not {"Any", "Callable", "Path", "TYPE_CHECKING"} & set(dir(d2nvideo))
    assert d2nvideo.UsageError is UsageError and issubclass(UsageError, d2nvideo.D2NError)
