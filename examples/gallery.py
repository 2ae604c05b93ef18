"""Input and output side by side, for MODEL.md's gallery and for looking at a model.

    python examples/gallery.py ../shared/data docs/gallery             # committed: Udacity only
    python examples/gallery.py ../shared/data work_local/gallery --all  # every scene, local only
        [--model my.safetensors]

Each case is one frame of a clip (or a still), translated exactly as ``d2nvideo convert``
does it (the model's working size, guided upsampling), written as ``<case>.jpg``: the input on
the left, the output on the right, with the mean brightness of each in the caption.

Only the Udacity lane-finding clips and stills (udacity/CarND-LaneLines-P1 and
CarND-Advanced-Lane-Lines, MIT licence, Copyright (c) 2016-2019 Udacity, Inc.) may be
redistributed, so the default writes only those; ``--all`` adds the city, rain, desert and
night cases from footage whose licence does not allow redistribution: keep those local.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import cv2
import numpy as np
from _script import Parser, description, entry

from d2nvideo.choices import Domain
from d2nvideo.errors import PathError, UsageError
from d2nvideo.fileio import not_a_folder, require_file, within
from d2nvideo.images import read_image, write_image
from d2nvideo.pipeline import translate_images, working_size
from d2nvideo.registry import load_translator
from d2nvideo.video.bars import BarKeeper
from d2nvideo.video.decode import frames_at

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 480  # each half of a gallery image
# (name, path under ../shared/data, seconds into a clip or None for a still, target domain)
REDISTRIBUTABLE = [
    ("highway_solidwhiteright_3s", "videos/day/udacity_solidWhiteRight.mp4", 3.0, "night"),
    ("highway_solidwhiteright_7s", "videos/day/udacity_solidWhiteRight.mp4", 7.0, "night"),
    ("highway_adv_test1", "frames/day/udacity_adv_test1.jpg", None, "night"),
    ("highway_adv_test5_shadows", "frames/day/udacity_adv_test5.jpg", None, "night"),
    ("highway_p1_yellowcurve", "frames/day/udacity_p1_solidYellowCurve.jpg", None, "night"),
]
LOCAL_ONLY = [
    ("city_seattle", "videos/day/tmo324_seattlestreet1.mp4", 10.0, "night"),
    ("city_taiwan", "frames/day/smallcorgi_000487_050.jpg", None, "night"),
    ("city_bdd", "frames/day/hybridnets_bdd100k_1.jpg", None, "night"),
    ("freeway_la", "videos/day/kartikeybihani_dashcam2.mp4", 5.0, "night"),
    ("rain", "videos/day/tmo324_rainy.mp4", 10.0, "night"),
    ("desert", "videos/day/tmo324_desert.mp4", 8.0, "night"),
    ("countryroad", "videos/day/tmo324_countryroad.mp4", 5.0, "night"),
    ("night_highway_dark", "frames/night/sahan_test1.jpg", None, "day"),
    ("night_city_bdd", "frames/night/jiaoZ7688_b23a79d1-43dfeecd-ori.jpg", None, "day"),
    ("night_street_lamps", "frames/night/yolop_bdd100k_9aa94005-ff1d4c9a.jpg", None, "day"),
    ("night_campus", "frames/night/Linfeng-Tang_00881N.png", None, "day"),
    ("dusk_highway", "videos/dusk/kartikeybihani_dashcam.mp4", 6.0, "day"),
]


def load(shared: Path, rel: str, at: float | None) -> np.ndarray:
    if at is None:
        return read_image(shared / rel)
    return next(iter(frames_at(shared / rel, [at]))).image


def caption(image: np.ndarray, text: str) -> None:
    cv2.rectangle(image, (0, 0), (8 * len(text) + 8, 20), (0, 0, 0), -1)
    cv2.putText(image, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)


def pair(image: np.ndarray, out: np.ndarray, to: Domain) -> np.ndarray:
    h = round(image.shape[0] * WIDTH / image.shape[1])
    left, right = (cv2.resize(x, (WIDTH, h), interpolation=cv2.INTER_AREA) for x in (image, out))
    caption(left, f"input (mean {image.mean():.0f})")
    caption(right, f"-> {to} (mean {out.mean():.0f})")
    return np.concatenate([left, np.full((h, 4, 3), 255, np.uint8), right], 1)


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("shared", type=Path, help="../shared/data")
    parser.add_argument("out", type=Path, help="the folder the images go to")
    parser.add_argument(
        "--all", action="store_true", help="add the local-only cases (never into the repository)"
    )
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    check(args)
    tr = load_translator(args.model, device="cpu")
    size = working_size("auto", None, None, "guided", tr.meta)
    cases = REDISTRIBUTABLE + (LOCAL_ONLY if args.all else [])
    for name, rel, at, to in cases:
        image = load(args.shared, rel, at)
        bars = BarKeeper().bars_of([image])  # black bars kept, as convert does by default
        out = translate_images([image], tr, to, size, bars)[0]  # type: ignore[arg-type]
        write_image(args.out / f"{name}.jpg", pair(image, out, to), quality=85)  # type: ignore[arg-type]
        print(f"{name}: input mean {image.mean():.1f}, output mean {out.mean():.1f}")


def check(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, a missing shared folder or --model, an output that is
    not a folder, and --all into the repository: its images may not be redistributed."""
    if not args.shared.is_dir():
        raise PathError(f"shared folder '{args.shared}' {not_a_folder(args.shared)}")
    if args.model is not None:
        require_file(args.model, "--model")
    if args.out.exists() and not args.out.is_dir():
        raise PathError(f"output '{args.out}' is not a folder")
    if args.all and not kept_local(args.out):
        raise UsageError(
            f"--all writes images that may not be redistributed: not into the repository "
            f"('{args.out}'); write them to work_local/ or outside it"
        )


def kept_local(out: Path) -> bool:
    """Whether images in ``out`` stay out of the repository: ``out`` is outside it, or in a
    part git ignores (work_local/; without git, work_local/ alone)."""
    if not within(out, ROOT):
        return True
    rel = out.resolve().relative_to(ROOT)
    cmd = ["git", "-C", str(ROOT), "check-ignore", "-q", str(rel / "case.jpg")]
    try:
        code = subprocess.run(cmd, capture_output=True, timeout=30).returncode
    except (OSError, subprocess.TimeoutExpired):
        code = 128
    return code == 0 if code in (0, 1) else rel.parts[:1] == ("work_local",)


if __name__ == "__main__":
    entry(main)
