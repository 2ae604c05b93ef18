"""Convert speed: a naive loop against the d2nvideo pipeline, time per stage, peak memory, and
(on the CPU path) the quality of each working size against the native-resolution translation.

    python benchmarks/bench_convert.py [--clip PATH] [--model M] [--device cpu|cuda]
        [--frames 40] [--heights 144 180 270 360]

Without --clip a synthetic 1280x720 clip is written (examples/make_test_clip.py); without
--model the bundled default is used, else a random-weight model of the default config (speed
does not depend on the weights). Everything is measured in this one run on this machine.
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
from _clip import synthetic_clip

from d2nvideo.evaluation.metrics import ssim
from d2nvideo.pipeline import ConvertOptions, WorkingSize, convert_video
from d2nvideo.registry import DEFAULT_MODEL
from d2nvideo.translator import Translator, from_tensor, to_tensor
from d2nvideo.upsample import bicubic_upsample, guided_upsample
from d2nvideo.video.decode import decode_frames
from d2nvideo.video.encode import EncodeSettings, encode_frames
from d2nvideo.video.probe import probe


def random_default_model(path: Path) -> Path:
    from d2nvideo.checkpoint import save_checkpoint
    from d2nvideo.model import UNITConfig, build_generator

    cfg = UNITConfig(width=16, n_downsample=3, n_res=3, n_shared=1)
    torch.manual_seed(0)
    save_checkpoint(path, build_generator(cfg), cfg, {"note": "random weights (benchmark)"})
    return path


def naive(clip: Path, out: Path, tr: Translator, n: int) -> float:
    """Decode one frame, translate it alone in fp32 at native size, encode it; repeat."""
    t0 = time.perf_counter()
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        vs = src.streams.video[0]
        enc = dst.add_stream("libx264", rate=vs.average_rate)
        enc.width, enc.height, enc.pix_fmt = vs.width, vs.height, "yuv420p"
        for i, frame in enumerate(src.decode(vs)):
            if i == n:
                break
            image = tr(frame.to_ndarray(format="rgb24")[None], "night")[0]
            dst.mux(enc.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        dst.mux(enc.encode())
    return n / (time.perf_counter() - t0)


def stages(clip: Path, tr: Translator, res: WorkingSize, n: int, tmp: Path) -> dict[str, float]:
    """Milliseconds per frame of each stage on its own."""
    t0 = time.perf_counter()
    frames = [f for _, f in zip(range(n), decode_frames(clip), strict=False)]
    ms = {"decode": (time.perf_counter() - t0) * 1000 / n}
    h, w = frames[0].image.shape[:2]
    wh, ww = res.shape(h, w)
    import cv2

    small = [cv2.resize(f.image, (ww, wh), interpolation=cv2.INTER_AREA) for f in frames]
    timings = {"to tensor": 0.0, "network": 0.0, "from tensor": 0.0, "upsample": 0.0}
    outs = []
    for s, f in zip(small, frames, strict=True):
        t = time.perf_counter()
        x = to_tensor(s[None], tr.device)
        t1 = time.perf_counter()
        y = tr.translate_tensor(x, "night")
        if tr.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        o = from_tensor(y)[0]
        t3 = time.perf_counter()
        outs.append(guided_upsample(s, o, f.image) if (wh, ww) != (h, w) else o)
        t4 = time.perf_counter()
        for k, dt in zip(timings, (t1 - t, t2 - t1, t3 - t2, t4 - t3), strict=True):
            timings[k] += dt * 1000 / n
    ms.update(timings)
    import dataclasses

    translated = [dataclasses.replace(f, image=o) for f, o in zip(frames, outs, strict=True)]
    t = time.perf_counter()
    encode_frames(translated, tmp / "enc.mp4", probe(clip), EncodeSettings(preset="veryfast"))
    ms["encode (x264 veryfast)"] = (time.perf_counter() - t) * 1000 / n
    return ms


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--naive-frames", type=int, default=8)
    parser.add_argument("--work-size", type=int, default=180, help="The pipeline's preset.")
    parser.add_argument("--heights", type=int, nargs="*", default=[144, 180, 270, 360])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = args.clip or tmp / "clip720.mp4"
        if args.clip is None:
            synthetic_clip(clip, 10)
        model = args.model or (
            DEFAULT_MODEL
            if DEFAULT_MODEL.is_file()
            else random_default_model(tmp / "random.safetensors")
        )
        tr = Translator.from_checkpoint(model, args.device)
        info = probe(clip)
        name = torch.cuda.get_device_name() if tr.device.type == "cuda" else "CPU"
        print(
            f"{clip.name} {info.width}x{info.height}; model {model.name} "
            f"({tr.config.arch} width {tr.config.width}); {name}, {torch.get_num_threads()} "
            f"threads, {tr.precision}"
        )
        tr(np.zeros((1, 64, 64, 3), np.uint8), "night")  # warm-up
        naive_fps = naive(clip, tmp / "naive.mp4", tr, args.naive_frames)
        res = WorkingSize(work_size=args.work_size)
        opts = ConvertOptions(
            "night",
            batch_size=4,
            resolution=res,
            duration=args.frames / float(info.fps),
            encode=EncodeSettings(preset="veryfast"),
        )
        result = convert_video(clip, tmp / "pipe.mp4", tr, opts)
        print(f"\n{'mode':44} {'frames/s':>9}")
        print(f"{'naive (batch 1, fp32, native size, x264 medium)':44} {naive_fps:9.2f}")
        print(f"{f'd2nvideo (work size {args.work_size}, guided, veryfast)':44} {result.fps:9.2f}")
        print(f"ratio: {result.fps / naive_fps:.1f}x")
        print(f"\ntime per frame by stage (work size {args.work_size}), ms")
        for k, v in stages(clip, tr, res, min(args.frames, 20), tmp).items():
            print(f"  {k:24} {v:8.1f}")
        peak = (
            torch.cuda.max_memory_allocated() / 2**20
            if tr.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        print(f"peak memory: {peak:.0f} MB ({'GPU' if tr.device.type == 'cuda' else 'RSS'})")
        if args.heights:
            print(
                "\nworking size: network + guided upsampling, and SSIM to the native-size "
                "translation (guided vs bicubic)"
            )
            print(f"{'size':>10} {'frames/s':>9} {'SSIM guided':>12} {'SSIM bicubic':>13}")
            for size, fps, g, b in working_sizes(clip, tr, args.heights, 6):
                print(f"{size:>10} {fps:9.2f} {g:12.3f} {b:13.3f}")


if __name__ == "__main__":
    main()
