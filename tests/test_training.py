from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import frame_image, make_video
from d2nvideo.training.config import config_from_data, config_to_data, load_config, with_changes
from d2nvideo.training.data import collect
from d2nvideo.training.state import latest_state, load_state
from d2nvideo.training.train import main
from helpers import read_video

from d2nvideo.cli import cli
from d2nvideo.errors import ConfigError, InputError
from d2nvideo.images import write_image
from d2nvideo.model import CycleGANConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def tiny(images: Path, **train: object) -> object:
    cfg = load_config(TINY)
    cfg = with_changes(cfg, "data", day=(str(images / "day"),), night=(str(images / "night"),))
    return with_changes(cfg, "train", **train)


def test_two_unit_steps_write_state_samples_and_logs(images: Path, tmp_path: Path) -> None:
    result = main(tiny(images, steps=2, log_every=1, image_every=1), tmp_path, quiet=True)
    assert result.step == 2 and result.stopped == "finished"
    assert {"dis", "gan", "recon_x", "recon_kl", "cyc_x", "cyc_kl", "total"} <= set(result.last)
    assert (tmp_path / "samples" / "step_00000002.jpg").is_file()
    logs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2]
    assert load_state(latest_state(tmp_path / "state"), torch.device("cpu"))["step"] == 2
    saved = config_from_data(__import__("yaml").safe_load((tmp_path / "config.yaml").read_text()))
    assert saved.data.day == (str(images / "day"),)


def test_the_last_grid_shows_the_last_batch_trained_on_once(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that ends on a grid step writes that grid once, from the batch it trained on;
    one that ends between grid steps adds a grid of its last step."""
    from d2nvideo.training import logger, trainers
    from d2nvideo.training.train import resolve_resume_config

    written: list[int] = []
    seen: list[torch.Tensor] = []
    trained: list[torch.Tensor] = []
    real_images, real_samples = logger.RunLogger.images, trainers.Trainer.samples
    real_step = trainers.Trainer.step

    def record_images(self: object, step: int, *grid: object) -> None:
        written.append(step)
        real_images(self, step, *grid)  # type: ignore[arg-type]

    def samples(self: object, batch: dict[str, torch.Tensor]) -> object:
        seen.append(batch["day"].clone())
        return real_samples(self, batch)  # type: ignore[arg-type]

    def step(self: object, batch: dict[str, torch.Tensor]) -> object:
        trained.append(batch["day"].clone())
        return real_step(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(logger.RunLogger, "images", record_images)
    monkeypatch.setattr(trainers.Trainer, "samples", samples)
    monkeypatch.setattr(trainers.Trainer, "step", step)
    main(tiny(images, steps=2, image_every=2), tmp_path / "a", quiet=True)
    assert written == [2] and torch.equal(seen[-1], trained[-1])
    written.clear()
    main(tiny(images, steps=3, image_every=2), tmp_path / "b", quiet=True)
    assert written == [2, 3] and torch.equal(seen[-1], trained[-1])
    written.clear()
    resumed = resolve_resume_config(tmp_path / "b", tiny(images), ["train.steps=3"])
    with pytest.raises(ConfigError, match="at step 3 already"):  # no step to run: refused
        main(resumed, tmp_path / "b", resume=True, quiet=True)
    assert written == []


def test_two_cyclegan_steps(images: Path, tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs" / "cyclegan_day2night_256.yaml")
    cfg = dataclasses.replace(
        cfg,
        model=CycleGANConfig(width=4, n_blocks=1),
        dis=dataclasses.replace(cfg.dis, width=4),
        data=dataclasses.replace(
            cfg.data,
            day=(str(images / "day"),),
            night=(str(images / "night"),),
            resize=40,
            crop=(32, 32),
            workers=0,
        ),
        train=dataclasses.replace(cfg.train, steps=2, batch_size=2, device="cpu"),
    )
    result = main(cfg, tmp_path, quiet=True)
    assert result.step == 2 and {"gan", "cyc_x", "identity", "dis"} <= set(result.last)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    state = load_state(latest_state(out / "state"), torch.device("cpu"))
    return {**state["trainer"]["gen"], **{f"d.{k}": v for k, v in state["trainer"]["dis"].items()}}


@pytest.mark.parametrize("augment", [(), ("translation", "cutout")])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    images: Path, tmp_path: Path, augment: tuple[str, ...]
) -> None:
    def run(steps: int) -> object:  # DiffAugment's draws resume with torch's generator
        return with_changes(tiny(images, steps=steps), "dis", augment=augment)

    main(run(4), tmp_path / "straight", quiet=True)
    main(run(2), tmp_path / "split", quiet=True)
    main(run(4), tmp_path / "split", resume=True, quiet=True)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_resume_that_lengthens_a_decayed_run_starts_at_the_new_schedules_rate(
    images: Path, tmp_path: Path
) -> None:
    from d2nvideo.training.trainers import build_trainer

    cfg = with_changes(tiny(images, steps=2), "optim", lr_policy="linear")
    main(cfg, tmp_path, quiet=True)  # decayed to a rate of 0 at its end
    state = load_state(latest_state(tmp_path / "state"), torch.device("cpu"))["trainer"]
    assert state["opt_g"]["param_groups"][0]["lr"] == 0
    longer = with_changes(cfg, "train", steps=6)  # half 3: step 2 is still at the full rate
    trainer = build_trainer(longer, torch.device("cpu"), "fp32", False)
    trainer.load_state_dict(state)
    for opt in (trainer.opt_g, trainer.opt_d):
        assert opt.param_groups[0]["lr"] == pytest.approx(cfg.optim.lr)


def test_a_constant_rate_run_resumes_with_a_linear_decay(images: Path, tmp_path: Path) -> None:
    from d2nvideo.training.train import resolve_resume_config

    constant = with_changes(tiny(images, steps=4, log_every=1), "optim", lr_policy="constant")
    main(constant, tmp_path, quiet=True)
    sets = ["optim.lr_policy=linear", "train.steps=8"]  # half 4: from step 4 linearly to 0 at 8
    cfg = resolve_resume_config(tmp_path, load_config(TINY), sets)
    assert cfg.optim.lr_policy == "linear"
    main(cfg, tmp_path, resume=True, quiet=True)
    assert load_config(tmp_path / "config.yaml").optim.lr_policy == "linear"  # for a later resume
    logs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    rates = {r["step"]: r["lr"] for r in logs}
    lr = cfg.optim.lr
    decay = [lr * 0.75, lr * 0.5, lr * 0.25, 0.0]
    assert [rates[s] for s in range(1, 9)] == pytest.approx([lr] * 4 + decay)
    with pytest.raises(ConfigError, match="cannot change optim"):
        resolve_resume_config(tmp_path, load_config(TINY), ["optim.lr_policy=step"])


def test_resume_with_workers_matches_too(images: Path, tmp_path: Path) -> None:
    cfg = with_changes(tiny(images, steps=3), "data", workers=2)
    main(cfg, tmp_path / "a", quiet=True)
    main(with_changes(cfg, "train", steps=1), tmp_path / "b", quiet=True)
    main(cfg, tmp_path / "b", resume=True, quiet=True)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_source_balance_draws_each_folder_equally_and_resumes(tmp_path: Path) -> None:
    from collections import Counter

    from d2nvideo.training.data import _ResumableSampler, source_weights

    paths = [tmp_path / "clip" / f"{i}.jpg" for i in range(90)]
    paths += [tmp_path / "stills" / f"{i}.jpg" for i in range(10)]
    weights = source_weights(paths, "source")
    keys = iter(_ResumableSampler(len(paths), 4, 0, 1, 7, 0, weights))
    drawn = [next(keys) for _ in range(4000)]
    counts = Counter(paths[i].parent.name for i, _, _ in drawn)
    assert 0.4 < counts["stills"] / 4000 < 0.6  # 10% of the images, half of the draws
    later = iter(_ResumableSampler(len(paths), 4, 0, 1, 7, 30, weights))
    assert [next(later) for _ in range(8)] == drawn[120:128]
    assert source_weights(paths, "image") is None


def test_data_summary_lists_sources_and_fingerprints(images: Path, tmp_path: Path) -> None:
    main(tiny(images, steps=1), tmp_path, quiet=True)
    summary = json.loads((tmp_path / "data.json").read_text())
    assert summary["sources"] == {"day": {"day": 5}, "night": {"sub": 5}}
    assert len(summary["fingerprints"]["day"]) == 5
    assert all(len(f) == 16 for f in summary["fingerprints"]["night"])


def test_resuming_on_other_data_keeps_what_the_run_trained_on(images: Path, tmp_path: Path):
    other = tmp_path / "other"
    for i in range(3):
        write_image(other / "day2" / f"x{i}.jpg", frame_image(i + 20, 60, 44))
    run = tmp_path / "run"
    main(tiny(images, steps=1, checkpoint_every=1), run, quiet=True)
    first = json.loads((run / "data.json").read_text())
    cfg = with_changes(tiny(images, steps=2), "data", day=(str(other / "day2"),))
    main(cfg, run, resume=True, quiet=True)
    summary = json.loads((run / "data.json").read_text())
    assert summary["sources"]["day"] == {"day2": 3}
    (earlier,) = summary["earlier"]
    assert earlier["sources"] == first["sources"] and earlier["until_step"] == 1
    assert set(first["fingerprints"]["day"]) < set(summary["fingerprints"]["day"])
    assert len(summary["fingerprints"]["day"]) == 8
    main(with_changes(cfg, "train", steps=3), run, resume=True, quiet=True)  # same data again
    assert len(json.loads((run / "data.json").read_text())["earlier"]) == 1


@pytest.mark.parametrize(
    "error, code, why",
    [
        (KeyboardInterrupt(), 130, "--onnx --overwrite' writes them"),
        (OSError(28, "No space left on device", "m.night.onnx"), 1, "No space left on device"),
        (RuntimeError("Exporting the operator 'x' to ONNX is not supported"), 1, "operator 'x'"),
    ],
)
def test_export_stopped_at_its_graphs_says_the_model_was_written(
    error: BaseException,
    code: int,
    why: str,
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Interrupted, it said "nothing was written under the output name", and a rerun refused
    # the model; failing, its one line gave the graphs' failure alone.
    import d2nvideo.training.export as export_module

    run = tmp_path / "run"
    argv = ["train", str(TINY), "--day", str(images / "day"), "--night", str(images / "night")]
    assert CliRunner().invoke(cli, [*argv, "--out", str(run), "--steps", "1", "-q"]).exit_code == 0

    def stopped(model: Path) -> None:
        raise error

    monkeypatch.setattr(export_module, "export_onnx", stopped)
    model = tmp_path / "m.safetensors"
    result = CliRunner().invoke(cli, ["export", str(run), "-o", str(model), "--onnx"])
    assert result.exit_code == code and model.is_file()
    assert result.stderr.count("\n") == 1 and why in result.stderr, result.stderr
    assert f"the model was written ({model})" in result.stderr


def test_train_interrupted_before_a_checkpoint_says_none_was_saved(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # set-up said "checkpoints saved before were kept in run/state" where there was none
    import d2nvideo.training.train as train_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "main", interrupted)
    run = tmp_path / "run"
    argv = ["train", str(TINY), "--day", str(images / "day"), "--night", str(images / "night")]
    result = CliRunner().invoke(cli, [*argv, "--out", str(run), "--steps", "1"])
    assert result.exit_code == 130
    assert "interrupted: no checkpoint had been saved yet" in result.output


def test_export_then_convert_a_video(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    runner = CliRunner()
    args = [
        "train",
        str(TINY),
        "--day",
        str(images / "day"),
        "--night",
        str(images / "night"),
        "--out",
        str(run),
        "--steps",
        "2",
        "-q",
    ]
    assert runner.invoke(cli, args).exit_code == 0
    model = tmp_path / "m.safetensors"
    result = runner.invoke(cli, ["export", str(run), "-o", str(model)])
    assert result.exit_code == 0, result.output
    umask = os.umask(0)
    os.umask(umask)
    assert model.stat().st_mode & 0o777 == 0o666 & ~umask  # safetensors alone leaves 0600
    video = make_video(tmp_path / "v.mp4", frames=5)
    out = tmp_path / "v_night.mp4"
    result = runner.invoke(
        cli, ["convert", str(video), "--to", "night", "--model", str(model), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert len(read_video(out).times) == 5


@pytest.mark.parametrize(
    "yaml_text, extra, message",
    [
        ("train:\n  stepz: 3\n", [], "unknown config key 'train.stepz'"),
        ("optim:\n  lr: fast\n", [], "'optim.lr' must be a number"),
        ("data:\n  crop: [32]\n", [], "'data.crop' must have 2 items"),
        ("model:\n  arch: unit\n  width: 0\n", [], "width must be 1-4096"),
        ("{}", ["--day", "MISSING"], "does not exist"),
        ("{}", ["--day", "EMPTY", "--night", "EMPTY"], "holds no images"),
        ("{}", [], "no day images"),
        ("loss:\n  vgg: 1.0\n", [], "vgg_weights"),
    ],
)
def test_bad_configs_give_one_clear_line(
    yaml_text: str, extra: list[str], message: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    (tmp_path / "empty").mkdir()
    extra = [
        str(tmp_path / "empty") if a == "EMPTY" else str(tmp_path / "nope") if a == "MISSING" else a
        for a in extra
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "d2nvideo",
            "train",
            str(config),
            "--out",
            str(tmp_path / "r"),
            "--device",
            "cpu",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_config_round_trips_through_plain_data() -> None:
    for name in ("unit_day2night_256", "unit_day2night_512x288", "cyclegan_day2night_256", "tiny"):
        cfg = load_config(ROOT / "configs" / f"{name}.yaml")
        assert config_from_data(config_to_data(cfg)) == cfg


def test_every_config_key_has_a_comment() -> None:
    for path in (ROOT / "configs").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.startswith("  ") and ":" in line:
                assert "#" in line, f"{path.name}: {line}"


def test_nexet_and_bdd_sources(tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        write_image(imgs / name, frame_image(0, 40, 40))
    (tmp_path / "train.csv").write_text(
        "image_filename,lighting,city\na.jpg,Day,nyc\nb.jpg,Night,sf\nc.jpg,Twilight,tlv\n"
        "gone.jpg,Night,nyc\n"
    )
    (tmp_path / "bdd.json").write_text(
        json.dumps(
            [
                {"name": "d.jpg", "attributes": {"timeofday": "night", "weather": "clear"}},
                {"name": "a.jpg", "attributes": {"timeofday": "dawn/dusk"}},
                {"name": "b.jpg"},
            ]
        )
    )
    cfg = load_config(TINY).data
    lists = collect(
        dataclasses.replace(cfg, nexet_csv=str(tmp_path / "train.csv"), images=str(imgs))
    )
    assert [p.name for p in lists.day] == ["a.jpg"] and [p.name for p in lists.night] == ["b.jpg"]
    assert (lists.missing, lists.dropped) == (1, 1)
    with pytest.raises(ConfigError, match="no day images"):
        collect(dataclasses.replace(cfg, bdd_json=str(tmp_path / "bdd.json"), images=str(imgs)))
    lists = collect(
        dataclasses.replace(
            cfg, bdd_json=str(tmp_path / "bdd.json"), images=str(imgs), twilight="day"
        )
    )
    assert [p.name for p in lists.day] == ["a.jpg"] and [p.name for p in lists.night] == ["d.jpg"]
    (tmp_path / "bad.csv").write_text("file,label\na.jpg,Day\n")
    with pytest.raises(InputError, match="lacks column"):
        collect(dataclasses.replace(cfg, nexet_csv=str(tmp_path / "bad.csv"), images=str(imgs)))


def test_unreadable_training_images_are_skipped(images: Path, tmp_path: Path) -> None:
    day = tmp_path / "day"
    day.mkdir()
    for p in (images / "day").iterdir():
        (day / p.name).write_bytes(p.read_bytes())
    (day / "broken.jpg").write_bytes(b"not a jpeg")
    cfg = with_changes(tiny(images, steps=3), "data", day=(str(day),))
    assert main(cfg, tmp_path / "run", quiet=True).step == 3


@pytest.mark.slow
def test_torchrun_two_processes_on_gloo(images: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "d2nvideo.training",
            str(TINY),
            "--day",
            str(images / "day"),
            "--night",
            str(images / "night"),
            "--out",
            str(tmp_path / "ddp"),
            "--steps",
            "2",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_state(latest_state(tmp_path / "ddp" / "state"), torch.device("cpu"))
    assert state["step"] == 2
    assert "step 2 (finished)" in proc.stdout


def test_resume_takes_set_changes_on_top_of_the_saved_config(images: Path, tmp_path: Path):
    from d2nvideo.training.train import resolve_resume_config

    main(tiny(images, steps=1), tmp_path, quiet=True)
    cfg = resolve_resume_config(tmp_path, tiny(images), ["loss.struct=3.5", "train.steps=2"])
    assert cfg.loss.struct == 3.5 and cfg.train.steps == 2
    assert cfg.data.day == (str((images / "day").resolve()),)  # the run's own data


def test_a_resume_with_other_loss_weights_starts_a_phase_that_export_records(
    images: Path, tmp_path: Path
) -> None:
    from d2nvideo.training.export import export_run
    from d2nvideo.training.phases import record_phase
    from d2nvideo.training.train import resolve_resume_config

    main(tiny(images, steps=2), tmp_path, quiet=True)
    struct = load_config(TINY).loss.struct
    for sets in (["loss.struct=3.5", "train.steps=3"], ["train.steps=4"]):  # a change, then none
        main(resolve_resume_config(tmp_path, tiny(images), sets), tmp_path, resume=True, quiet=True)
    phases = json.loads((tmp_path / "phases.json").read_text())["phases"]
    assert [p["step"] for p in phases] == [0, 2]
    assert [p["loss"]["struct"] for p in phases] == [struct, 3.5] and struct != 3.5
    step_policy = {"lr": 1e-4, "lr_policy": "step", "lr_step": 100000, "lr_gamma": 0.5}
    assert phases[0]["optim"] == step_policy
    killed = with_changes(load_config(tmp_path / "config.yaml"), "loss", struct=7.0)
    record_phase(tmp_path, killed, 4)  # a resume killed before its first state: trained nothing
    meta = export_run(tmp_path, tmp_path / "m.safetensors")
    assert meta["phases"] == phases and meta["loss"]["struct"] == 3.5  # type: ignore[index]
    nan, text = '{"step": 0, "loss": {"struct": NaN}}', '{"step": 0, "loss": "x"}'
    for i, bad in enumerate([f"[{nan}]", f"[{text}]", "[" * 100000 + "]" * 100000]):
        (tmp_path / "phases.json").write_text('{"phases": ' + bad + "}")  # not training's
        assert "phases" not in export_run(tmp_path, tmp_path / f"bad{i}.safetensors")


def test_export_step_writes_a_kept_state_and_names_the_kept_ones(
    images: Path, tmp_path: Path
) -> None:
    from d2nvideo.training.train import resolve_resume_config

    from d2nvideo.checkpoint import load_checkpoint

    run = tmp_path / "run"
    main(tiny(images, steps=2), run, quiet=True)
    resumed = resolve_resume_config(run, tiny(images), ["loss.struct=3.5", "train.steps=4"])
    main(resumed, run, resume=True, quiet=True)
    runner = CliRunner()
    out = {s: tmp_path / f"s{s}.safetensors" for s in (2, 4)}
    for s, path in out.items():
        result = runner.invoke(cli, ["export", str(run), "--step", str(s), "-o", str(path)])
        assert result.exit_code == 0 and f"step {s} " in result.output, result.output
    early, late = (load_checkpoint(out[s]) for s in (2, 4))
    assert early.meta["steps"] == 2 and late.meta["steps"] == 4
    assert [p["step"] for p in early.meta["phases"]] == [0]  # struct=3.5 began after it
    assert late.meta["loss"]["struct"] == 3.5 != early.meta["loss"]["struct"]
    state = load_state(run / "state" / "step_00000002.pt", torch.device("cpu"))
    weights = state["trainer"]["gen"]
    exported = early.state_dict
    assert all(torch.equal(weights[k].half().float(), exported[k].float()) for k in weights)
    for odd in ("step_abc_12.pt", "step_007.pt", "step_\u00b2.pt"):  # not train's names
        (run / "state" / odd).write_bytes(b"")
    (run / "state" / "step_00000003.pt").mkdir()
    x = tmp_path / "x.safetensors"
    result = runner.invoke(cli, ["export", str(run), "--step", "3", "-o", str(x)])
    assert result.exit_code != 0 and "keeps no state of step 3 (kept: 2, 4)" in result.output
    assert not x.exists()
    result = runner.invoke(cli, ["export", str(out[2]), "--step", "2", "--onnx"])
    assert result.exit_code != 0 and "--step chooses a RUN folder's state" in result.output
    for flag in (["--raw"], ["--fp32"], ["--note", "x"]):  # each was ignored without a word
        result = runner.invoke(cli, ["export", str(out[2]), *flag, "--onnx"])
        assert result.exit_code == 2 and f"is a model file: {flag[0]} " in result.output


def test_export_leaves_the_loss_unsaid_where_no_phase_records_it(
    images: Path, tmp_path: Path
) -> None:
    """A folder from before phases were recorded, resumed with other weights: its earlier
    state's loss weights are unknown (config.yaml holds the resume's), not config.yaml's."""
    from d2nvideo.training.export import export_run
    from d2nvideo.training.train import resolve_resume_config

    main(tiny(images, steps=2), tmp_path, quiet=True)
    (tmp_path / "phases.json").unlink()
    resumed = resolve_resume_config(tmp_path, tiny(images), ["loss.struct=3.5", "train.steps=4"])
    main(resumed, tmp_path, resume=True, quiet=True)
    early = export_run(tmp_path, tmp_path / "a.safetensors", step=2)
    late = export_run(tmp_path, tmp_path / "b.safetensors")
    assert early["loss"] is None and late["loss"]["struct"] == 3.5  # type: ignore[index]


def test_phases_drop_what_a_resume_from_an_earlier_state_never_ran(tmp_path: Path) -> None:
    from d2nvideo.training.phases import read_phases, record_phase

    a = load_config(TINY)
    b = with_changes(a, "loss", struct=9.0)
    record_phase(tmp_path, a, 0)
    record_phase(tmp_path, b, 10)
    assert [p["step"] for p in record_phase(tmp_path, a, 5)] == [0]  # b began after state 5
    assert [p["step"] for p in record_phase(tmp_path, b, 5)] == [0, 5]
    assert [p["step"] for p in record_phase(tmp_path, a, 5)] == [0]  # resumed at b's own step
    (tmp_path / "phases.json").write_text('{"phases": [{"step": 3}]}')  # not from step 0
    assert read_phases(tmp_path) is None
    old = record_phase(tmp_path, a, 7)  # a folder from before phases were recorded
    assert old[0] == {"step": 0, "loss": None, "optim": None} and old[1]["step"] == 7
    linear = with_changes(with_changes(a, "optim", lr_policy="linear"), "train", steps=20)
    assert record_phase(tmp_path, linear, 7)[-1]["optim"]["steps"] == 20


@pytest.mark.parametrize("change", ["model.n_res=3", "dis.n_layers=3", "optim.lr=0.0005"])
def test_resume_refuses_set_changes_to_what_the_state_holds(tmp_path: Path, change: str):
    from d2nvideo.training.config import save_config
    from d2nvideo.training.train import resolve_resume_config

    save_config(load_config(TINY), tmp_path / "config.yaml")  # the run's config, no training
    with pytest.raises(ConfigError, match="cannot change"):
        resolve_resume_config(tmp_path, load_config(TINY, [change]), [change])
    same = resolve_resume_config(tmp_path, load_config(TINY), ["model.n_res=2", "loss.gan=2"])
    assert same.loss.gan == 2.0  # a value the state does not hold, or the one it has, is fine


def test_resume_with_another_models_config_names_the_difference_and_the_runs_config(
    tmp_path: Path,
):
    from d2nvideo.training.config import save_config
    from d2nvideo.training.train import resolve_resume_config

    save_config(load_config(TINY, ["model.n_res=1"]), tmp_path / "config.yaml")
    with pytest.raises(ConfigError) as err:
        resolve_resume_config(tmp_path, load_config(TINY), [])
    message = str(err.value)
    assert "n_res 2 here, 1 in the run" in message and "width" not in message
    assert str(tmp_path / "config.yaml") in message
    # the run's own config, as the message says, resumes
    own = load_config(tmp_path / "config.yaml")
    assert resolve_resume_config(tmp_path, own, []).model.n_res == 1
    cyclegan = load_config(ROOT / "configs" / "cyclegan_day2night_256.yaml")
    with pytest.raises(ConfigError, match="arch cyclegan here, unit in the run"):
        resolve_resume_config(tmp_path, cyclegan, [])


@pytest.mark.parametrize("term", ["struct", "gan"])
def test_a_separate_weight_for_night_to_day(images: Path, tmp_path: Path, term: str) -> None:
    split = {term: 1.0, f"{term}_to_day": 0.5}
    cfg = with_changes(tiny(images, steps=1, log_every=1), "loss", **split)
    result = main(cfg, tmp_path / "split", quiet=True)
    assert {term, f"{term}_to_day"} <= set(result.last)
    one = with_changes(tiny(images, steps=1, log_every=1), "loss", **{term: 1.0})
    same = main(one, tmp_path / "one", quiet=True)
    assert term in same.last and f"{term}_to_day" not in same.last
    parts = result.last[term] + result.last[f"{term}_to_day"]  # unweighted: the same two halves
    assert parts == pytest.approx(same.last[term], rel=1e-4)
    # and weighted as set: the split total is the joint one less half of night->day's term
    half = 0.5 * result.last[f"{term}_to_day"]
    assert same.last["total"] - result.last["total"] == pytest.approx(half, rel=1e-3, abs=1e-6)
    with pytest.raises(ConfigError, match=f"{term}_to_day"):
        load_config(TINY, [f"loss.{term}_to_day=-1"])


def test_a_to_day_weight_goes_to_night_to_day() -> None:
    from d2nvideo.training.trainers import _per_direction

    def into(d: str) -> str:
        return d

    split = _per_direction("gan", 1.0, 0.5, into, lambda fn: lambda: "both")
    assert {k: (w, fn()) for k, (w, fn) in split.items()} == {
        "gan_to_day": (0.5, "day"),
        "gan": (1.0, "night"),
    }
    joint = _per_direction("gan", 1.0, None, into, lambda fn: lambda: "both")
    assert {k: (w, fn()) for k, (w, fn) in joint.items()} == {"gan": (1.0, "both")}


def test_shift_consistency_charges_what_moves_with_the_frame_differently() -> None:
    from d2nvideo.training.losses import shift_consistency

    torch.manual_seed(0)
    frame = torch.rand(2, 3, 48, 64) * 2 - 1
    # a per-pixel translation follows any shift exactly: nothing to charge without noise
    assert shift_consistency(lambda x: 0.5 * x - 0.2, frame, noise=0.0) == 0
    # one tied to the frame's own grid (a fixed pattern, as aliasing of a stride makes) is charged
    grid = torch.linspace(-1, 1, 64).repeat(48, 1) ** 2
    assert shift_consistency(lambda x: 0.5 * x + grid, frame, noise=0.0) > 0.01
    # noise is charged through a translation that does not smooth it
    assert shift_consistency(lambda x: x, frame, noise=0.1) > 0.05
    # the target takes no gradient: only the moved translation's does
    w = torch.ones((), requires_grad=True)
    shift_consistency(lambda x: w * x + grid, frame, noise=0.0).backward()
    assert w.grad is not None


def test_the_shift_term_trains_in_both_directions_or_one(images: Path, tmp_path: Path) -> None:
    cfg = with_changes(tiny(images, steps=1, log_every=1), "loss", shift=1.0)
    assert main(cfg, tmp_path / "both", quiet=True).last["shift"] > 0
    only = with_changes(cfg, "loss", shift=1.0, shift_to_day=0.0)
    last = main(only, tmp_path / "night", quiet=True).last
    assert last["shift"] > 0 and "shift_to_day" not in last
    plain = main(tiny(images, steps=1, log_every=1), tmp_path / "plain", quiet=True).last
    assert "shift" not in plain
    with pytest.raises(ConfigError, match=r"loss\.gan' must be > 0"):
        load_config(TINY, ["loss.gan=0", "loss.gan_to_day=3"])
    for key in ("shift", "shift_to_day"):
        with pytest.raises(ConfigError, match=re.escape(f"loss.{key}'")):
            load_config(TINY, [f"loss.{key}=-1"])


def _lamp(sky: float, lamp: float) -> torch.Tensor:
    """A grey image (values on [-1, 1]) with a square 'lamp head' in the middle."""
    image = torch.full((1, 3, 48, 48), sky)
    image[..., 20:28, 20:28] = lamp
    return image


def test_structure_keeps_edges_and_with_free_polarity_lets_a_lamp_light() -> None:
    from d2nvideo.training.losses import structure

    day = _lamp(0.6, -0.6)  # a dark lamp head against a bright sky
    lit, unlit = _lamp(-0.9, 0.9), _lamp(-0.9, -0.95)
    gone = _lamp(-0.9, -0.9) + 0.01 * torch.randn(1, 3, 48, 48, generator=torch.manual_seed(0))
    # SSIM's structure charges the lit lamp (a contrast flip), not the darkened unlit one
    assert structure(day, lit) > 50 * structure(day, unlit)
    free = {
        k: structure(day, y, polarity="free").item()
        for k, y in {"lit": lit, "unlit": unlit}.items()
    }
    assert free["lit"] < 2 * free["unlit"]  # both at the border padding's small cost
    assert free["unlit"] == pytest.approx(structure(day, unlit).item(), rel=0.05)
    # either way round, the edge must stay: a lamp lost in noise costs in both modes
    for polarity in ("keep", "free"):
        assert structure(day, gone, polarity=polarity) > 20 * free["lit"]  # type: ignore[arg-type]
    assert load_config(TINY, ["loss.struct_polarity=free"]).loss.struct_polarity == "free"
    with pytest.raises(ConfigError, match="struct_polarity"):
        load_config(TINY, ["loss.struct_polarity=flip"])


def test_luma_distribution_compares_histograms_not_layouts() -> None:
    from d2nvideo.training.losses import luma_distribution

    gen = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    shuffled = real[:1].flatten(2)[..., torch.randperm(256, generator=gen)].view(1, 3, 16, 16)
    # the same pixels elsewhere: the pooled real batch holds both images' luma, so compare
    # against the first image alone for an exact zero
    assert luma_distribution(shuffled, real[:1]).item() < 1e-6
    foggy = (real[:1] * 0.3 + 0.6).requires_grad_(True)  # brighter and flatter
    loss = luma_distribution(foggy, real[:1])
    assert loss.item() > 0.1
    loss.backward()
    assert foggy.grad is not None and foggy.grad.abs().sum() > 0


def test_new_colour_charges_a_local_tint_not_a_grade_or_a_loss_of_colour() -> None:
    from d2nvideo.training.losses import new_colour

    gen = torch.Generator().manual_seed(0)
    grey = torch.rand(2, 3, 32, 32, generator=gen) * 0.2 - 0.1  # a nearly grey day input
    darker = grey * 0.5 - 0.5
    assert new_colour(grey, darker).item() == 0  # darkening adds no colour
    graded = darker.clone()
    graded[:, 2] += 0.3  # the whole frame bluer: a colour grade
    assert new_colour(grey, graded).item() == 0
    colourful = grey.clone()
    colourful[:, 1, :16] += 0.8  # green trees above, grey road below
    assert new_colour(colourful, darker).item() == 0  # the trees may lose their green
    assert new_colour(colourful, colourful).item() == 0  # the input's own colour is not new

    def glow_in_corner(level: float, size: int = 16, strength: float = 0.5) -> torch.Tensor:
        out = torch.full_like(grey, level)
        out[:, 0, size:, :size] += strength  # a red glow in one corner, as on a bonnet
        return out

    dark_glow = glow_in_corner(-0.6)
    assert new_colour(grey, dark_glow).item() > 0.01
    assert new_colour(grey, glow_in_corner(0.3)).item() < new_colour(grey, dark_glow).item() / 2
    assert new_colour(grey, glow_in_corner(-0.6, strength=0.02)).item() == 0  # under the margin
    assert new_colour(grey, glow_in_corner(-0.6, size=30)).item() > 0  # a 2x2-pixel spot counts

    tinted = dark_glow.clone().requires_grad_(True)
    new_colour(grey, tinted).backward()
    assert tinted.grad is not None
    inside, outside = tinted.grad[:, :, 16:, :16], tinted.grad[:, :, :16]
    assert inside.abs().sum() > 0
    assert outside.abs().sum() == 0  # the rest of the frame is not tinted towards the glow


def test_the_colour_term_trains_and_logs_per_direction(images: Path, tmp_path: Path) -> None:
    cfg = with_changes(tiny(images, steps=1, log_every=1), "loss", colour=50.0, colour_to_day=0.0)
    result = main(cfg, tmp_path / "colour", quiet=True)
    assert "colour" in result.last and "colour_to_day" not in result.last  # weight 0: skipped
    with pytest.raises(ConfigError, match=r"loss\.colour_to_day"):
        load_config(TINY, ["loss.colour_to_day=-1"])


def test_the_histogram_term_trains_and_logs(images: Path, tmp_path: Path) -> None:
    cfg = with_changes(tiny(images, steps=1, log_every=1), "loss", hist=2.0)
    result = main(cfg, tmp_path / "hist", quiet=True)
    assert result.last["hist"] > 0
    plain = main(tiny(images, steps=1, log_every=1), tmp_path / "plain", quiet=True)
    assert "hist" not in plain.last
    with pytest.raises(ConfigError, match=r"loss\.hist"):
        load_config(TINY, ["loss.hist=-1"])


def test_a_separate_histogram_weight_for_night_to_day(images: Path, tmp_path: Path) -> None:
    cfg = tiny(images, steps=1, log_every=1)
    joint = main(with_changes(cfg, "loss", hist=1.0), tmp_path / "joint", quiet=True).last
    split = with_changes(cfg, "loss", hist=1.0, hist_to_day=1.0)
    parts = main(split, tmp_path / "split", quiet=True).last
    assert parts["hist"] + parts["hist_to_day"] == pytest.approx(joint["hist"], rel=1e-4)
    alone = main(with_changes(split, "loss", hist=0.0), tmp_path / "alone", quiet=True).last
    assert "hist" not in alone and alone["hist_to_day"] > 0
    with pytest.raises(ConfigError, match="hist_to_day"):
        load_config(TINY, ["loss.hist_to_day=-1"])


def test_init_starts_a_new_run_from_an_exported_model(images: Path, tmp_path: Path) -> None:
    from d2nvideo.training.export import export_run

    from d2nvideo.checkpoint import load_checkpoint

    main(tiny(images, steps=2), tmp_path / "first", quiet=True)
    model = tmp_path / "first.safetensors"
    export_run(tmp_path / "first", model, half=False, note="the first run")
    run = tmp_path / "tuned"
    other = tmp_path / "other"
    for i in range(3):
        write_image(other / "day2" / f"x{i}.jpg", frame_image(i + 20, 60, 44))
    cfg = with_changes(tiny(images, steps=1), "data", day=(str(other / "day2"),))
    main(with_changes(cfg, "optim", lr=1e-12), run, quiet=True, init=model)
    tuned = _weights(run)
    for key, value in load_checkpoint(model).state_dict.items():  # one tiny step away
        assert torch.allclose(tuned[key], value, atol=1e-6), key
    summary = json.loads((run / "data.json").read_text())
    assert len(summary["fingerprints"]["day"]) == 8  # its own 3 and the first run's 5
    meta = export_run(run, tmp_path / "tuned.safetensors")
    assert meta["steps"] == 3 and meta["init"]["note"] == "the first run"  # type: ignore[index]
    import hashlib

    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert meta["init"]["checkpoint"] == "first.safetensors"  # type: ignore[index]
    assert meta["init"]["sha256"] == digest  # type: ignore[index]
    phases = meta["phases"]  # the first run's phase, then this run's from its step 2
    assert phases[0] == load_checkpoint(model).meta["phases"][0]  # type: ignore[index]
    assert phases[0]["loss"] is not None and [p["step"] for p in phases] == [0, 2]  # type: ignore
    assert phases[1]["optim"]["lr"] == 1e-12 and "phases" not in meta["init"]  # type: ignore
    with pytest.raises(ConfigError, match="--init starts a new run"):
        main(cfg, run, resume=True, quiet=True, init=model)


def test_init_refuses_a_checkpoint_of_another_shape(images: Path, tmp_path: Path) -> None:
    from d2nvideo.training.export import export_run

    main(tiny(images, steps=1), tmp_path / "first", quiet=True)
    export_run(tmp_path / "first", tmp_path / "m.safetensors")
    wider = load_config(TINY)
    wider = dataclasses.replace(wider, model=dataclasses.replace(wider.model, width=8))
    args = ["train", "-", "--out", str(tmp_path / "r"), "--init", str(tmp_path / "m.safetensors")]
    cfg_file = tmp_path / "wide.yaml"
    cfg_file.write_text(__import__("yaml").safe_dump(config_to_data(wider)))
    args[1] = str(cfg_file)
    args += ["--day", str(images / "day"), "--night", str(images / "night"), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "holds another model" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


def test_init_takes_a_plain_model_into_an_anti_aliased_config(images: Path, tmp_path: Path):
    """The blur layers hold no saved weights: a plain model fine-tunes into an anti-aliased
    one (and an anti-aliased one back), where any other config change is refused."""
    from d2nvideo.training.export import export_run

    from d2nvideo.checkpoint import load_checkpoint

    main(tiny(images, steps=1), tmp_path / "plain", quiet=True)
    model = tmp_path / "plain.safetensors"
    export_run(tmp_path / "plain", model, half=False)
    cfg = with_changes(tiny(images, steps=1), "model", antialias=True)
    main(with_changes(cfg, "optim", lr=1e-12), tmp_path / "aa", quiet=True, init=model)
    tuned = _weights(tmp_path / "aa")
    for key, value in load_checkpoint(model).state_dict.items():
        assert torch.allclose(tuned[key], value, atol=1e-6), key


def test_discriminator_warmup_holds_the_generator_still(images: Path, tmp_path: Path) -> None:
    cfg = tiny(images, steps=3, log_every=1, checkpoint_every=1, keep_checkpoints=3)
    main(with_changes(cfg, "train", dis_warmup=2), tmp_path, quiet=True)
    states = [
        load_state(tmp_path / "state" / f"step_{k:08d}.pt", torch.device("cpu"))["trainer"]
        for k in (1, 2, 3)
    ]
    logs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert ["gan" in r for r in logs] == [False, False, True]

    def moved(a: dict, b: dict, net: str) -> bool:
        return any(not torch.equal(a[net][k], b[net][k]) for k in a[net])

    assert moved(states[0], states[1], "dis") and not moved(states[0], states[1], "gen")
    assert moved(states[1], states[2], "dis") and moved(states[1], states[2], "gen")


def test_init_from_a_model_without_recorded_data_or_with_bad_metadata(
    images: Path, tmp_path: Path
) -> None:
    from d2nvideo.training.export import export_run
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from d2nvideo.errors import CheckpointError
    from d2nvideo.evaluation.evaluate import check_overlap
    from d2nvideo.evaluation.report import Report

    main(tiny(images, steps=1), tmp_path / "first", quiet=True)
    export_run(tmp_path / "first", tmp_path / "m.safetensors")
    with safe_open(tmp_path / "m.safetensors", "pt") as fh:
        header = fh.metadata()
    tensors = load_file(tmp_path / "m.safetensors")

    def variant(name: str, **meta: object) -> Path:
        path = tmp_path / name
        save_file(tensors, str(path), metadata={**header, "meta": json.dumps(meta)})
        return path

    cfg = tiny(images, steps=1)
    main(cfg, tmp_path / "r", quiet=True, init=variant("bare.safetensors", steps=5))
    summary = json.loads((tmp_path / "r" / "data.json").read_text())
    assert "bare.safetensors" in summary["incomplete"]
    report = Report()
    check_overlap({"data": summary}, {"realism day": []}, False, report)
    assert any("only partly recorded" in note for note in report.notes)
    main(with_changes(cfg, "train", steps=2), tmp_path / "r", resume=True, quiet=True)
    assert "incomplete" in json.loads((tmp_path / "r" / "data.json").read_text())
    with pytest.raises(CheckpointError, match="'9k' training steps"):
        main(cfg, tmp_path / "r2", quiet=True, init=variant("bad.safetensors", steps="9k"))
    (tmp_path / "r" / "init.json").write_text('{"steps": [1]}')
    with pytest.raises(CheckpointError, match="training steps"):
        export_run(tmp_path / "r", tmp_path / "out.safetensors")
    with pytest.raises(ConfigError, match="dis_warmup"):
        load_config(TINY, ["train.dis_warmup=5", "train.steps=5"])


def test_weight_average_follows_its_decay_resumes_and_is_exported(
    images: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    cfg = tiny(images, steps=2, ema=0.75, checkpoint_every=1, keep_checkpoints=3)
    main(cfg, tmp_path / "a", quiet=True)
    first, second = (
        load_state(tmp_path / "a" / "state" / f"step_{k:08d}.pt", torch.device("cpu"))["trainer"]
        for k in (1, 2)
    )
    decay = min(0.75, 3 / 12)  # the second update's decay, ramping up to train.ema
    assert second["ema_updates"] == 2 and second["ema_decay"] == 0.75
    for key, value in second["gen_ema"].items():
        expected = decay * first["gen_ema"][key] + (1 - decay) * second["gen"][key]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(v, second["gen"][k]) for k, v in second["gen_ema"].items())
    main(with_changes(cfg, "train", steps=1), tmp_path / "b", quiet=True)
    main(cfg, tmp_path / "b", resume=True, quiet=True)
    resumed = load_state(latest_state(tmp_path / "b" / "state"), torch.device("cpu"))["trainer"]
    assert all(torch.equal(resumed["gen_ema"][k], v) for k, v in second["gen_ema"].items())
    for raw, key in ((False, "gen_ema"), (True, "gen")):
        out = tmp_path / f"m_{key}.safetensors"
        args = ["export", str(tmp_path / "a"), "-o", str(out), "--fp32"] + ["--raw"] * raw
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert ("averaged" in result.output) is not raw
        exported = load_file(out)
        assert all(torch.equal(exported[k], v) for k, v in second[key].items())
    with pytest.raises(ConfigError, match="would drop it"):  # before anything is written
        main(with_changes(cfg, "train", steps=3, ema=0.0), tmp_path / "a", resume=True)
    assert latest_state(tmp_path / "a" / "state").name == "step_00000002.pt"


def test_data_folders_made_of_links_are_followed_each_real_folder_once(tmp_path: Path) -> None:
    from d2nvideo.images import list_images

    real = tmp_path / "real"
    write_image(real / "x.jpg", frame_image(1, 48, 32))
    root = tmp_path / "night"
    root.mkdir()
    (root / "a").symlink_to(real, target_is_directory=True)
    (root / "b").symlink_to(real, target_is_directory=True)  # the same folder again
    (real / "loop").symlink_to(root, target_is_directory=True)  # a loop back to the top
    (root / "up").symlink_to(tmp_path, target_is_directory=True)  # above: "real" lies beside
    assert list_images(root) == [root / "a" / "x.jpg"]
    write_image(tmp_path / "sunny" / "y.jpg", frame_image(2, 48, 32))
    (tmp_path / "day").symlink_to(tmp_path / "sunny", target_is_directory=True)
    cfg = load_config(TINY)
    cfg = with_changes(cfg, "data", day=(str(tmp_path / "day"),), night=(str(root),))
    lists = collect(cfg.data)
    assert lists.night == [root / "a" / "x.jpg"] and lists.day == [tmp_path / "day" / "y.jpg"]
    cfg = with_changes(cfg, "data", day=(str(root / "b"),))  # the night's image, linked
    with pytest.raises(ConfigError, match="1 image is in both the day and the night data"):
        collect(cfg.data)


def test_video_folders_made_of_links_are_followed_by_extract_and_convert(tmp_path: Path) -> None:
    from d2nvideo.batch.plan import plan
    from d2nvideo.data.extract import find_videos

    real = tmp_path / "real"
    real.mkdir()
    (real / "clip.mp4").write_bytes(b"not decoded here")
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "monday").symlink_to(real, target_is_directory=True)
    (drive / "again").symlink_to(real, target_is_directory=True)
    assert find_videos([drive]) == [drive / "again" / "clip.mp4"]
    tasks = plan([drive], "night", tmp_path / "out")
    assert [t.src for t in tasks] == [drive / "again" / "clip.mp4"]


@pytest.mark.parametrize(("norm", "n_shared"), [("instance", 1), ("instance", 0), ("batch", 1)])
def test_the_batched_unit_step_computes_what_the_per_domain_calls_do(
    norm: str, n_shared: int
) -> None:
    from d2nvideo.training.forward import UNITForward

    from d2nvideo.model import UNITConfig, build_generator

    torch.manual_seed(0)
    gen = build_generator(
        UNITConfig(width=4, n_downsample=2, n_res=3, n_shared=n_shared, norm=norm)
    )
    forward = UNITForward(gen).train()
    assert forward.batched == (norm != "batch")
    # unequal batches: a split in the wrong order cannot pass
    batch = {"day": torch.rand(2, 3, 16, 24) * 2 - 1, "night": torch.rand(3, 3, 16, 24) * 2 - 1}
    torch.manual_seed(1)
    out = forward(batch)
    torch.manual_seed(1)  # the same noise, drawn in the same order
    ref = forward._per_domain(batch)
    assert sorted(out) == sorted(ref)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], atol=1e-5, rtol=1e-4, msg=key)
    loss = sum(v.float().square().mean() for v in out.values())
    loss.backward()  # the batched graph trains every part of both domains' networks
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())
