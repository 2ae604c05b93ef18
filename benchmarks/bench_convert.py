"""Convert speed: a naive loop against the d2nvideo pipeline, time per stage and the whole
pipeline for each frame size and backend, the pipeline's ceiling (the network replaced by an
identity), and (on the CPU path) the quality of each working size.

    python benchmarks/bench_convert.py [--clip PATH] [--model M] [--device cpu|cuda]
        [--frames 40] [--sizes 1280x720 1920x1080] [--backends torch onnxruntime openvino]
        [--network model|identity] [--heights 144 180 270 360] [--reference OUT.mp4]
        [--keep NEW.mp4 [--overwrite]]

Without --clip a synthetic 1280x720 clip is written (examples/make_test_clip.py); without
--model the bundled default is used, else a random-weight model of the default config (speed
does not depend on the weights). ``--network identity`` replaces the network by an identity:
what is left is the fastest any model can convert here, and the table names the stage that
limits it. ``--reference`` compares the pipeline's output on --clip with a video written
earlier at the same settings (SSIM per frame); ``--keep`` saves this run's output (a new file
unless --overwrite; never --clip). Everything is measured in this one run.

The stage table (``d2nvideo.pipeline.time_stages``) times each stage alone, one after the
other, in ms per frame (decode, resize to the working size, network, guided upsampling, x264
encode at the default crf 18 / preset fast), then the whole pipeline with its threads
overlapping; "busiest" is the pipeline thread with the most work per frame.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from _clip import Parser, at_least, description, entry, frame_size, synthetic_clip

from d2nvideo.evaluation.metrics import ssim
from d2nvideo.fileio import check_output, require_file
from d2nvideo.infer.backends import installed
from d2nvideo.model.runtime import resolve_device, set_fast_flags
from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video, time_stages
from d2nvideo.registry import DEFAULT_MODEL
from d2nvideo.translator import Translator
from d2nvideo.upsample import bicubic_upsample, guided_upsample
from d2nvideo.video.decode import decode_frames
from d2nvideo.video.probe import VideoInfo, probe

STAGES = ("decode", "resize", "network", "device", "upsample", "encode")


class Identity:
    """A network that returns its input: the pipeline without the model."""

    name = "identity"

    def __call__(self, x: torch.Tensor, to: str) -> torch.Tensor:
        return x


def random_default_model(path: Path) -> Path:
    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.model import UNITConfig, build_generator

    cfg = UNITConfig(width=16, n_downsample=3, n_res=3, n_shared=1)
    torch.manual_seed(0)
    save_checkpoint(path, build_generator(cfg), cfg, {"note": "random weights (benchmark)"})
    return path


def naive(clip: Path, out: Path, tr: Translator, n: int) -> tuple[int, float]:
    """Decode one frame, translate it alone in fp32 at native size, encode it; repeat for ``n``
    frames or the whole clip if shorter. Returns the frames translated and their frames/s."""
    done = 0
    t0 = time.perf_counter()
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        vs = src.streams.video[0]
        enc = dst.add_stream("libx264", rate=vs.average_rate)
        enc.width, enc.height, enc.pix_fmt = vs.width, vs.height, "yuv420p"
        for frame in src.decode(vs):
            if done == n:
                break
            image = tr(frame.to_ndarray(format="rgb24")[None], "night")[0]
            dst.mux(enc.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            done += 1
        dst.mux(enc.encode())
    seconds = time.perf_counter() - t0
    return done, (done / seconds if done else 0.0)


def stage_table(
    model: Path,
    device: str,
    backends: list[str],
    sizes: list[str],
    res: WorkingSize,
    args: argparse.Namespace,
) -> None:
    """One row per size and backend: ms per frame of each stage, the pipeline's frames/s."""
    print(f"\nstages alone (ms/frame) and the whole pipeline, work size {res.work_size}")
    head = " ".join(f"{s:>8}" for s in STAGES)
    print(f"{'size':>10} {'backend':>12} {head} {'pipeline':>9} {'busiest':>16}")
    network: dict[str, list[float]] = {}
    for size in sizes:
        w, h = map(int, size.split("x"))  # checked by frame_size
        for backend in backends:
            tr = Translator.from_checkpoint(model, device, backend=backend)
            if args.network == "identity":
                tr.network = Identity()
            t = time_stages(tr, "night", res, w, h, frames=args.frames)
            cells = " ".join(f"{t.ms[s]:8.1f}" if s in t.ms else f"{'':8}" for s in STAGES)
            thread, ms = t.busiest
            print(
                f"{size:>10} {t.backend:>12} {cells} {t.pipeline_fps:9.2f} "
                f"{f'{thread} {ms:.0f} ms':>16}"
            )
            network.setdefault(backend, []).append(t.ms["network"])
    if "torch" in network and len(network) > 1 and args.network == "model":
        for backend, times in network.items():
            if backend != "torch":
                ratio = np.mean(network["torch"]) / np.mean(times)
                print(f"network stage, torch / {backend}: {ratio:.2f}x")


def working_sizes(clip: Path, tr: Translator, heights: list[int], n: int) -> list[tuple]:
    """Network + upsampling fps and SSIM to the native translation for each working height."""
    import cv2

    frames = [f.image for _, f in zip(range(n), decode_frames(clip), strict=False)]
    native = [tr(f[None], "night")[0] for f in frames]
    rows = []
    for wh in heights:
        res = WorkingSize(work_size=wh)
        h, w = frames[0].shape[:2]
        sh, sw = res.shape(h, w)
        g_scores, b_scores = [], []
        for f, ref in zip(frames, native, strict=True):
            small = cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA)
            out = tr(small[None], "night")[0]
            g_scores.append(ssim(guided_upsample(small, out, f), ref))
            b_scores.append(ssim(bicubic_upsample(out, (w, h)), ref))
        t0 = time.perf_counter()
        for f in frames:
            small = cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA)
            guided_upsample(small, tr(small[None], "night")[0], f)
        fps = n / (time.perf_counter() - t0)
        rows.append((f"{sw}x{sh}", fps, float(np.mean(g_scores)), float(np.mean(b_scores))))
    return rows


def compare(output: Path, reference: Path) -> None:
    """SSIM of each frame of ``output`` against the same frame of ``reference``."""
    scores = [
        ssim(a.image, b.image)
        for a, b in zip(decode_frames(output), decode_frames(reference), strict=False)
    ]
    print(
        f"\nSSIM to {reference.name}: mean {np.mean(scores):.4f}, min {np.min(scores):.4f} "
        f"over {len(scores)} frames"
    )


def parse() -> argparse.Namespace:
    parser = Parser(description=description(__doc__))
    parser.add_argument("--clip", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=at_least(1), default=40)
    parser.add_argument(
        "--naive-frames", type=at_least(0), default=8, help="0 skips the naive loop."
    )
    parser.add_argument(
        "--work-size", type=at_least(16), default=180, help="The pipeline's preset."
    )
    parser.add_argument("--sizes", type=frame_size, nargs="*", default=["1280x720", "1920x1080"])
    parser.add_argument(
        "--backends",
        nargs="*",
        default=["torch", *(b for b in ("onnxruntime", "openvino") if installed(b))],
    )
    parser.add_argument("--network", choices=("model", "identity"), default="model")
    parser.add_argument("--heights", type=at_least(16), nargs="*", default=[144, 180, 270, 360])
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="Save the pipeline's output there (a new file; never the clip).",
    )
    parser.add_argument("--overwrite", action="store_true", help="Let --keep replace a file.")
    args = parser.parse_args()
    check_paths(args)
    return args


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, before any work, a missing input, and a --keep that is an input or (without
    --overwrite) an existing file: the pipeline's output replaced whatever was there."""
    for path, what in (
        (args.clip, "--clip"),
        (args.model, "--model"),
        (args.reference, "--reference"),
    ):
        if path is not None:
            require_file(path, what)
    if args.keep is not None:
        inputs = [p for p in (args.clip, args.model, args.reference) if p is not None]
        check_output(args.keep, inputs, args.overwrite, "--keep")
    resolve_device(args.device)


def main() -> None:
    args = parse()
    set_fast_flags(torch.device(args.device.split(":")[0]))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = args.clip or synthetic_clip(tmp / "clip720.mp4", 10)
        model = args.model or (
            DEFAULT_MODEL
            if DEFAULT_MODEL.is_file()
            else random_default_model(tmp / "random.safetensors")
        )
        tr = Translator.from_checkpoint(model, args.device, backend="auto")
        info = probe(clip)
        name = torch.cuda.get_device_name() if tr.device.type == "cuda" else "CPU"
        print(
            f"{clip.name} {info.width}x{info.height}; model {model.name} "
            f"({tr.config.arch} width {tr.config.width}); {name}, {torch.get_num_threads()} "
            f"threads, {tr.precision}; network: {args.network}"
        )
        res = WorkingSize(work_size=args.work_size)
        if args.network == "model":
            pipeline_vs_naive(clip, tmp, tr, res, info, args)
        stage_table(model, args.device, args.backends, args.sizes, res, args)
        peak = (
            torch.cuda.max_memory_allocated() / 2**20
            if tr.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        print(f"peak memory: {peak:.0f} MB ({'GPU' if tr.device.type == 'cuda' else 'RSS'})")
        if args.heights and args.network == "model":
            print(
                "\nworking size: network + guided upsampling, and SSIM to the native-size "
                "translation (guided vs bicubic)"
            )
            print(f"{'size':>10} {'frames/s':>9} {'SSIM guided':>12} {'SSIM bicubic':>13}")
            for size, fps, g, b in working_sizes(clip, tr, args.heights, 6):
                print(f"{size:>10} {fps:9.2f} {g:12.3f} {b:13.3f}")


def pipeline_vs_naive(
    clip: Path,
    tmp: Path,
    tr: Translator,
    res: WorkingSize,
    info: VideoInfo,
    args: argparse.Namespace,
) -> None:
    """The default convert (auto backend, batch chosen, crf 18 preset fast) on ``clip``
    against a naive per-frame loop."""
    tr(np.zeros((1, 64, 64, 3), np.uint8), "night")  # warm-up
    skip = (0, 0.0)
    naive_n, naive_fps = (
        naive(clip, tmp / "naive.mp4", tr, args.naive_frames) if args.naive_frames else skip
    )
    opts = ConvertOptions("night", resolution=res, duration=args.frames / float(info.fps))
    out = args.keep or tmp / "pipe.mp4"
    convert_video(clip, tmp / "warm.mp4", tr, opts)  # auto measures, caches warm up
    result = convert_video(clip, out, tr, opts)
    print(f"\n{'mode':52} {'frames/s':>9} {'frames':>7}")
    if naive_fps:
        label = "naive (batch 1, fp32, native size, x264 medium)"
        print(f"{label:52} {naive_fps:9.2f} {naive_n:7d}")
    label = f"d2nvideo defaults (work size {res.work_size}, guided, {tr.backend})"
    print(f"{label:52} {result.fps:9.2f} {result.frames:7d}")
    if naive_fps:
        print(f"ratio: {result.fps / naive_fps:.1f}x")
    if args.reference:
        compare(out, args.reference)


if __name__ == "__main__":
    entry(main)
