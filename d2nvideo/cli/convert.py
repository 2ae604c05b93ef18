"""``d2nvideo convert``: inputs (files, folders, globs, ``-``) to tasks, run them here, on a
pool of processes or across torchrun ranks, with progress over the whole run, a JSONL report
and a summary."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from ..choices import Target
from .options import (
    ModelSpec,
    PipelineSpec,
    choice,
    encode_options,
    model_options,
    overwrite_option,
    pipeline_options,
    quiet_option,
)
from .progress import progress_bar
from .shell import CONTEXT, INTERRUPTED, OUTPUT, OUTPUT_NAMED, interrupted_keeps

if TYPE_CHECKING:
    from ..batch.plan import Task
    from ..batch.run import Converter, Outcome
    from ..video.codecs import EncodeSettings


@click.command(
    context_settings=CONTEXT,
    short_help="Translate videos, images and folders of them to night or day.",
)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--to",
    type=choice(Target),
    required=True,
    help="Target domain; auto converts each input to the other domain of what it looks like.",
)
@click.option(
    "-o",
    "--output",
    type=OUTPUT_NAMED,
    default=None,
    help="Output file, or folder for a folder or several inputs (or for one input, when it "
    "ends in /). Default: INPUT_<to> beside a single input.",
)
@model_options
@pipeline_options
@encode_options
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    help="Files converted at once, each by its own process with a share of the cores.",
)
@click.option(
    "--report",
    type=OUTPUT,
    default=None,
    help="Write one JSON line per input here (a resumed run adds to its earlier report; "
    "--overwrite starts a new one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@overwrite_option
@quiet_option
@click.pass_context
def convert(
    ctx: click.Context,
    inputs: tuple[str, ...],
    to: Target,
    output: str | None,
    model: ModelSpec,
    pipeline: PipelineSpec,
    encode: EncodeSettings,
    jobs: int,
    report: Path | None,
    as_json: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Translate videos, images, folders of them (searched recursively, tree mirrored) or
    globs to night or day. Files are inputs; '-' reads input paths from stdin, one a line.

    Videos keep their frame count, timestamps (variable frame rate too), rotation, metadata,
    audio and subtitles. A single output that exists is refused; in a folder or a list, outputs
    that exist are skipped (a run resumes); --overwrite replaces them. An input that fails is
    reported and the others go on (exit 1 at the end).
    Under torchrun the inputs are shared out between the ranks.
    """
    target, tasks, single = _planned(inputs, to, output, encode, overwrite)
    _warn_video_only(ctx, tasks)
    interrupted_keeps(ctx, _single_kept(tasks[0].dst, time.time()) if single else KEPT_FINISHED)
    log = _Report(report, report is not None and _check_report(report, tasks, model, overwrite))
    t0 = time.perf_counter()
    outcomes = _run(tasks, target, model, pipeline, encode, jobs, overwrite, quiet, log)
    wall = time.perf_counter() - t0
    if outcomes is not None and _summarize(outcomes, as_json, single, wall):
        ctx.exit(1)


def _planned(
    inputs: tuple[str, ...], to: str, output: str | None, encode: EncodeSettings, overwrite: bool
) -> tuple[str, list[Task], bool]:
    """The target (``auto`` resolved for a single file, which names its default output), the
    tasks, and whether it is a single file's; outputs checked before any work. An output
    ending in '/' is a folder, made if need be (for one input it was "output 'out' has no
    suffix": pathlib drops the slash)."""
    from ..batch.plan import expand, plan
    from ..data.scoring import resolve_target
    from ..fileio import check_output_folder

    paths = expand(inputs)
    if len(paths) == 1 and to == "auto" and not paths[0].is_dir():
        to = resolve_target(paths[0], to)
    folder = output is not None and output.endswith(("/", os.sep))
    out = Path(output) if output is not None else None
    if folder and out is not None and len(paths) == 1 and not paths[0].is_dir():
        out = out / paths[0].name  # made as its work starts: made first, a refusal left it
    tasks = plan(paths, to, out)  # one file: its output checked first; a folder is a tree
    single = len(tasks) == 1 and not any(p.is_dir() for p in paths)
    if single:
        _check_single(tasks[0], encode, overwrite, new_folder=folder)
    elif overwrite or not all(t.dst.exists() for t in tasks):  # all there: nothing to write
        check_output_folder(Path(os.path.commonpath([t.dst.parent for t in tasks])))
    return to, tasks, single


KEPT_FINISHED = "interrupted: the outputs already finished were kept"


def _single_kept(dst: Path, since: float) -> Callable[[], str]:
    """What an interrupted single convert kept: nothing, or, when the signal came as it
    finished, its output (it said "nothing was written" of a complete file)."""

    def message() -> str:
        try:
            finished = dst.stat().st_mtime >= since
        except OSError:
            finished = False
        return f"interrupted as it finished: '{dst}' was written whole" if finished else INTERRUPTED

    return message


VIDEO_ONLY = (  # convert's options that do nothing for an image
    *("start", "duration", "smooth", "smooth_strength", "exposure", "salvage", "hwaccel"),
    *("codec", "crf", "preset", "pix_fmt"),
)


def _warn_video_only(ctx: click.Context, tasks: list[Task]) -> None:
    """Options the user gave that do nothing when every input is an image: one warning naming
    them, rather than a silent no-op."""
    from click.core import ParameterSource

    if not all(task.kind == "image" for task in tasks):
        return
    given = [
        f"--{name.replace('_', '-')}"
        for name in VIDEO_ONLY
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    if given:
        click.echo(f"warning: {', '.join(given)} apply to videos only: ignored", err=True)


def _check_single(task: Task, encode: EncodeSettings, overwrite: bool, new_folder: bool) -> None:
    """One input: refuse a taken or unusable output before any work (as for any command).
    ``new_folder``: its folder was named with a '/' and may be made (as its work starts)."""
    from ..errors import UsageError
    from ..fileio import check_output, check_output_folder
    from ..images import IMAGE_SUFFIXES, is_image
    from ..video.codecs import check_encode

    if task.kind == "image" and not is_image(task.dst):
        kinds = ", ".join(IMAGE_SUFFIXES)
        raise UsageError(
            f"output '{task.dst}' must be an image file ({kinds}) for an image input", task.dst
        )
    if task.kind == "video":
        check_encode(task.dst, encode)
    if new_folder and not task.dst.parent.is_dir():
        check_output_folder(task.dst.parent)  # where it can be made
    else:
        check_output(task.dst, [task.src], overwrite)


def make_converter(
    model: ModelSpec, pipeline: PipelineSpec, encode: EncodeSettings, to: str, overwrite: bool
) -> Converter:
    """The converter one process uses (picklable arguments: also a pool worker's factory)."""
    from ..batch.run import Converter
    from ..pipeline import DarkOutputWatch

    translator = model.load()
    domain = "night" if to == "auto" else to
    opts = pipeline.options(translator, domain, encode)  # type: ignore[arg-type]
    return Converter(translator, opts, to, overwrite, DarkOutputWatch(opts.to))


def _run(
    tasks: list[Task],
    to: str,
    model: ModelSpec,
    pipeline: PipelineSpec,
    encode: EncodeSettings,
    jobs: int,
    overwrite: bool,
    quiet: bool,
    report: _Report,
) -> list[Outcome] | None:
    """Run every task; None on a torchrun rank other than 0 (rank 0 reports for all)."""
    from ..batch import dist
    from ..batch.run import frame_counts, run_here, run_pool

    world = dist.torchrun_world()
    if world is not None:
        dist.join(world)
    counts = frame_counts(tasks, pipeline.start, pipeline.duration, pipeline.salvage)
    factory = functools.partial(make_converter, model, pipeline, encode, to, overwrite)
    here = factory() if jobs == 1 or len(tasks) == 1 or world else None  # load errors first
    leader = world is None or world.rank == 0
    with (
        report if leader else _Report(None) as log,
        # drawn at the first frame; a pool's at once (its workers' frames count as written)
        progress_bar(sum(counts), _title(tasks), quiet or not leader, lazy=here is not None) as bar,
    ):

        def on_outcome(outcome: Outcome) -> None:
            log.write(outcome)
            bar.describe(f"{_title(tasks)} {log.count}/{len(tasks)}")

        if world is not None:
            outcomes = dist.run_claimed(tasks, here, bar, on_outcome)  # type: ignore[arg-type]
            log.rewrite(outcomes or [])  # rank 0 holds every rank's outcomes now
            return outcomes
        if here is None:
            return run_pool(tasks, factory, jobs, counts, bar, on_outcome, bar.skip)
        return run_here(tasks, here, bar, on_outcome, counts, bar.skip)


def _title(tasks: list[Task]) -> str:
    return tasks[0].src.name if len(tasks) == 1 else "files"


def _check_report(report: Path, tasks: list[Task], model: ModelSpec, overwrite: bool) -> bool:
    """Refuse a report path that is one of the run's inputs or outputs, or the model, or an
    existing file that is not a report (unless --overwrite). True: an earlier report of a run
    that this one resumes, to append to (--overwrite starts it afresh)."""
    from ..errors import PathError
    from ..fileio import check_output

    taken = [t.src for t in tasks] + [t.dst for t in tasks] + ([model.path] if model.path else [])
    mine, ident = report.resolve(), _identity(report)
    for path in taken:  # names first: a folder run's 100k paths are not all resolved
        named = path.name in (report.name, mine.name) and path.resolve() == mine
        if named or (ident is not None and _identity(path) == ident):
            raise PathError(f"--report '{report}' is one of this run's files; choose another")
    check_output(report, [], overwrite=True, what="--report")  # its folder, not a directory
    if overwrite or not report.exists():
        return False
    if not _is_report(report):
        raise PathError(
            f"--report '{report}' exists and is not a convert report; pass --overwrite to "
            "replace it",
            report,
        )
    return True


def _identity(path: Path) -> tuple[int, int] | None:
    """The file ``path`` names (device and inode, links followed); None where there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_report(path: Path) -> bool:
    """Every line of ``path`` one of convert's JSON report lines (an empty file too)."""
    try:
        with path.open(encoding="utf-8") as fh:
            lines = [json.loads(line) for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return all(isinstance(x, dict) and {"input", "output", "status"} <= x.keys() for x in lines)


class _Report:
    """The JSONL report, a line per outcome as it comes, flushed (so a run that is stopped or
    killed keeps its lines, and ``tail -f`` follows it). ``append``: a resumed run's report,
    added to."""

    def __init__(self, path: Path | None, append: bool = False) -> None:
        self.path = path
        self.append = append
        self.fh: TextIO | None = None
        self.count = 0
        self.start = 0  # where this run's lines begin

    def __enter__(self) -> _Report:
        if self.path is not None:
            self.fh = self.path.open("a" if self.append else "w", encoding="utf-8")
            self.start = self.fh.tell()
            if self.start and not _ends_a_line(self.path):
                self.fh.write("\n")
                self.start += 1
        return self

    def write(self, outcome: Outcome) -> None:
        self.count += 1
        if self.fh is not None:
            self.fh.write(json.dumps(outcome.to_json()) + "\n")
            self.fh.flush()

    def rewrite(self, outcomes: list[Outcome]) -> None:
        """Replace this run's lines with ``outcomes`` (all ranks', gathered on rank 0)."""
        if self.fh is not None:
            self.fh.seek(self.start)
            self.fh.truncate()
            self.count = 0
            for outcome in outcomes:
                self.write(outcome)

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _summarize(outcomes: list[Outcome], as_json: bool, single: bool, wall: float) -> bool:
    """Print each failure (one line each) and the summary; True if anything failed. Several
    inputs' time is the run's, ``wall`` (the sum of theirs was 53 s for 35 with --jobs 2)."""
    from ..errors import InputError

    done = [o for o in outcomes if o.status == "done"]
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    if single and failed:
        raise InputError(failed[0].error)
    for o in failed:
        click.echo(f"error: {o.error}", err=True)
    frames = sum(o.frames for o in done)
    seconds = wall if not single else sum(o.seconds for o in done)
    if as_json:
        summary: dict[str, float] = {"converted": len(done), "skipped": len(skipped)}
        summary |= {"failed": len(failed), "inputs": len(outcomes), "frames": frames}
        summary["seconds"] = round(seconds, 3)
        click.echo(json.dumps(summary))
    elif single and done:
        click.echo(_one(done[0]))
    else:
        click.echo(_sentence(len(done), len(skipped), len(failed), frames, seconds))
    return bool(failed)


def _one(o: Outcome) -> str:
    """The line for one input, saying the domain it went into (--to auto never did)."""
    from ..images import IMAGE_SUFFIXES

    if o.output.lower().endswith(IMAGE_SUFFIXES):
        return f"1 image in {o.seconds:.1f} s -> {o.output} ({o.to})"
    frames = f"{o.frames} frame{'s' * (o.frames != 1)}"
    return f"{frames} in {o.seconds:.1f} s ({o.fps:.2f} fps) -> {o.output} ({o.to})"


def _sentence(done: int, skipped: int, failed: int, frames: int, seconds: float) -> str:
    if not done and not failed:
        return f"nothing to do: all {skipped} outputs are already there (--overwrite to redo)"
    parts = [f"{done} converted ({frames} frame{'s' * (frames != 1)} in {seconds:.1f} s)"]
    if skipped:
        parts.append(f"{skipped} already there")
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)
