"""The relabeler: accuracy of each scorer on the labelled sets in ../shared/data, and speed in
images/s on 1280x720 JPEGs.

    python benchmarks/bench_relabel.py [--shared ../shared/data] [--images 600]

Accuracy counts ambiguous images apart: "right" is the share of all images given the correct
label, "wrong" the share given the other one, "ambig." the rest. The sky scorer's weights were
fitted on AMOS training images and half of frames/ (seed 0); the "held-out" rows are the rest.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _clip import Parser, at_least, description, entry

from d2nvideo.data.relabel import score_files
from d2nvideo.data.scoring import DEFAULT_THRESHOLDS, score_image
from d2nvideo.errors import PathError
from d2nvideo.images import list_images, read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


def labelled_sets(shared: Path) -> dict[str, list[tuple[Path, str]]]:
    amos = shared / "labeled" / "amos_day_night"
    xin = shared / "labeled" / "xinjue_day_dusk_night"
    frames = shared / "frames"

    def folder(path: Path, label: str) -> list[tuple[Path, str]]:
        return [(p, label) for p in list_images(path)]

    frame_items = folder(frames / "day", "day") + folder(frames / "night", "night")
    rng = np.random.default_rng(0)
    held = {frame_items[i][0] for i in rng.permutation(len(frame_items))[1::2]}
    nexet = shared / "labeled" / "nexet_mislabeled_examples"
    by_eye = {"nexet_mis_day": "night", "nexet_mis_night": "day"}
    return {
        "AMOS training": folder(amos / "training" / "day", "day")
        + folder(amos / "training" / "night", "night"),
        "AMOS test (held-out)": folder(amos / "test" / "day", "day")
        + folder(amos / "test" / "night", "night"),
        "frames/ all": frame_items,
        "frames/ held-out half": [x for x in frame_items if x[0] in held],
        "xinjue Day vs Night": folder(xin / "Day", "day") + folder(xin / "Night", "night"),
        "NEXET mislabelled (by eye)": [
            (p, by_eye["_".join(p.stem.split("_")[:3])]) for p in list_images(nexet)
        ],
    }


def accuracy(shared: Path) -> None:
    print(f"{'set':28} {'n':>4} | {'method':6} {'right':>6} {'wrong':>6} {'ambig.':>6}")
    for name, items in labelled_sets(shared).items():
        scores = [score_image(read_image(p)) for p, _ in items]
        for method in ("mean", "sky"):
            t = DEFAULT_THRESHOLDS[method]
            labels = [t.label(s.score(method)) for s in scores]
            n = len(items)
            right = sum(lab == y for lab, (_, y) in zip(labels, items, strict=True)) / n
            amb = labels.count("ambiguous") / n
            print(f"{name:28} {n:4d} | {method:6} {right:6.1%} {1 - right - amb:6.1%} {amb:6.1%}")


def speed(shared: Path, count: int) -> None:
    sources = [p for p in list_images(shared / "frames") if read_image(p).shape[:2] == (720, 1280)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(count):
            if sources:
                src = sources[i % len(sources)]
                dst = Path(tmp) / f"{i:05d}{src.suffix}"
                shutil.copy(src, dst)
            else:
                dst = Path(tmp) / f"{i:05d}.jpg"
                write_image(
                    dst, np.random.default_rng(i).integers(0, 255, (720, 1280, 3), np.uint8)
                )
            paths.append(dst)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"\nspeed: {count} JPEGs of 1280x720 ({size:.0f} KB on average)")
        print(f"{'workers':>7} {'images/s':>9}")
        for workers in (1, 2):
            list(score_files(paths[:64], workers))  # warm the page cache and the pool start-up
            t0 = time.perf_counter()
            results = list(score_files(paths, workers))
            rate = len(results) / (time.perf_counter() - t0)
            print(f"{workers:7d} {rate:9.0f}")


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--images", type=at_least(1), default=600)
    args = parser.parse_args()
    if not args.shared.is_dir():
        raise PathError(
            f"--shared '{args.shared}' is not a folder: the accuracy table needs ../shared/data"
        )
    accuracy(args.shared)
    speed(args.shared, args.images)


if __name__ == "__main__":
    entry(main)
