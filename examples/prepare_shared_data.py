"""Build the bundled default model's training, realism and held-out sets from ../shared/data.

    python examples/prepare_shared_data.py ../shared/data work_local/d2n_data [--short-side 180]

Writes (every image resized so its shorter side is --short-side):

  train/day/<source>/, train/night/<source>/
        what the model learns from: driving footage only, one folder per source so training
        can sample sources evenly (``data.balance: source``) instead of letting the longest
        clip dominate.
  pairs/day/<source>/
        consecutive frames of the training day clips, NAME_a.jpg and NAME_b.jpg one frame
        apart, half-way between the training frames: what ``loss.temporal`` keeps steady
        (``data.pairs_day``); they are training images too and data.json counts them.
  realism/day/<source>/, realism/night/<source>/
        what ``d2nvideo evaluate``'s realism judge learns from: labelled day/night sets
        (AMOS webcams, xinjue phone photos) that share no source with the model's images, so
        the judge cannot agree with the model by construction (issue 10).
  holdout/day/, holdout/night/, holdout/dusk/
        independent dashcam stills that no training or realism image comes from.
  holdout_native/day/, holdout_native/night/, holdout_native/dusk/
        the same stills as they came (unresized copies): what ``evaluate`` should judge, since
        at 180 pixels the stills are the network's own working size and skip the guided
        upsampler that gives every real frame (720p and up) its detail from the input.
  holdout/clips.txt
        whole clips kept out of everything (their frames are in no set).
  manifest.json
        every file written, with its source and the tone mapping applied, if any.

The FLIR street nights come from a high-gain camera (mean luma 73-182: brighter than most
dashcam days), and the light-effects night photos are exposed for the eye (luma 60-90). Each
is written twice with a power curve ``y = x ** g`` whose exponent brings its mean luma to a
lit dashcam night's (FLIR 28 and 44 of 255, photos 30 and 46): midtones sink, while lamps,
windows and signals stay at full brightness, as they do in a real night frame. The night
highway clip (luma 12) is written as it is and lifted to 24 (g < 1), as a camera with more
gain would see it. Night targets average about 30: BDD100K's night frames run 15-50.

The data is never copied into the repository; ../shared/data/SOURCES.md says where it is from.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from _script import Parser, description, entry

from d2nvideo.errors import PathError
from d2nvideo.fileio import not_a_folder
from d2nvideo.images import list_images, read_image, write_image
from d2nvideo.video.decode import decode_frames, frames_at
from d2nvideo.video.probe import probe

# Model training: driving footage. (clip, seconds between frames)
TRAIN_CLIPS = {
    "day": {
        "tmo324_countryroad": 0.5,
        "tmo324_desert": 0.5,
        "tmo324_rainy": 0.5,
        "tmo324_seattlestreet1": 0.5,
        "tarun_cattle_day": 0.5,
        "kartikeybihani_dashcam2": 0.5,
    },
    "night": {"sagi-vaknin_night": 0.1},
}
# Consecutive-frame pairs for loss.temporal: the day clips, half-way between their frames.
PAIR_CLIPS = {"day": TRAIN_CLIPS["day"]}
# videos/night/tmo324_night.mp4 is not used: its frames average a luma of 6, darker than the
# 8 under which an output counts as black, and a model trained on it learned to answer many
# day scenes with such black frames (issue 10; see MODEL.md).
TRAIN_STILLS = {
    "day": {"flir_day": "flir_streets/day"},
    "night": {"flir_night": "flir_streets/night", "jinyeying_lights": "frames/night"},
}
STILL_PREFIX = {"jinyeying_lights": "jinyeying_lighteffects_"}
# Target mean lumas of the copies written of each source (None: as it is).
TONE_MAPPED: dict[str, tuple[float | None, ...]] = {
    "flir_night": (28.0, 44.0),
    "jinyeying_lights": (30.0, 46.0),
    "sagi-vaknin_night": (None, 24.0),
}
# The realism judge: labelled day/night sets that are not driving footage of the model's.
REALISM_SETS = {
    "day": {
        "amos_day": ["labeled/amos_day_night/training/day", "labeled/amos_day_night/test/day"],
        "xinjue_day": ["labeled/xinjue_day_dusk_night/Day"],
    },
    "night": {
        "amos_night": [
            "labeled/amos_day_night/training/night",
            "labeled/amos_day_night/test/night",
        ],
        "xinjue_night": ["labeled/xinjue_day_dusk_night/Night"],
    },
}
# Kept out of everything: these clips, and every independent still in frames/ (the frames
# decoded from the training clips, vidframe_*, are not used: they repeat the clips).
HOLDOUT_CLIPS = ("videos/day/udacity_solidWhiteRight.mp4", "videos/dusk/kartikeybihani_dashcam.mp4")


def resized(image: np.ndarray, short: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def luma(image: np.ndarray) -> float:
    return float((image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).mean())


def to_night_mean(image: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """``y = 255 (x / 255) ** g`` with ``g`` chosen (bisection) so the mean luma is ``target``:
    above 1 it darkens the midtones, below 1 it lifts them; black and white stay where they
    are. Returns the image and ``g``."""
    x = image.astype(np.float32) / 255.0
    lo, hi = 0.2, 12.0
    for _ in range(40):
        g = (lo + hi) / 2
        if luma(x**g * 255.0) > target:
            lo = g
        else:
            hi = g
    return np.clip((x**g) * 255.0 + 0.5, 0, 255).astype(np.uint8), g


def clip_frames(shared: Path, domain: str, stem: str, every: float) -> Iterator[tuple]:
    video = shared / "videos" / domain / f"{stem}.mp4"
    times = list(np.arange(0, probe(video).duration, every))
    for frame in frames_at(video, times):
        yield (
            frame.image,
            f"{stem}_{frame.time:08.3f}",
            f"videos/{domain}/{video.name}@{frame.time:.3f}s",
        )


def clip_pairs(shared: Path, domain: str, stem: str, every: float) -> Iterator[tuple]:
    """(first, next, name, source): the first frame at or after every ``every`` seconds from
    ``every / 2`` on, and the frame decoded after it (variable frame rates included)."""
    video = shared / "videos" / domain / f"{stem}.mp4"
    for start in np.arange(every / 2, probe(video).duration, every):
        frames = list(itertools.islice(decode_frames(video, start=float(start)), 2))
        if len(frames) < 2:
            break
        first, after = frames
        yield (
            first.image,
            after.image,
            f"{stem}_{first.time:08.3f}",
            f"videos/{domain}/{video.name}@{first.time:.3f}s+1",
        )


def holdout_stills(shared: Path) -> Iterator[tuple[str, Path]]:
    """(domain, path) of the independent stills nothing is trained on."""
    for domain in ("day", "night", "dusk"):
        for still in list_images(shared / "frames" / domain):
            if not still.name.startswith(("vidframe_", STILL_PREFIX["jinyeying_lights"])):
                yield domain, still


def main() -> None:
    parser = Parser(description=description(__doc__))
    parser.add_argument("shared", type=Path, help="../shared/data")
    parser.add_argument("out", type=Path, help="the folder the sets go to")
    parser.add_argument(
        "--short-side", type=int, default=180, help="pixels, at least 16 (default 180)"
    )
    args = parser.parse_args()
    if args.short_side < 16:  # 0 or below wrote 1x1 images
        parser.error(f"--short-side takes a whole number >= 16, not {args.short_side}")
    if not args.shared.is_dir():
        raise PathError(f"shared folder '{args.shared}' {not_a_folder(args.shared)}")
    if args.out.exists() and not args.out.is_dir():
        raise PathError(f"output '{args.out}' is not a folder")
    shared, out = args.shared, args.out
    manifest: list[dict[str, object]] = []

    def put(image: np.ndarray, rel: str, source: str, **extra: object) -> None:
        path = out / f"{rel}.jpg"
        if not path.exists():
            write_image(path, resized(image, args.short_side), quality=95)
        manifest.append({"file": f"{rel}.jpg", "source": source, **extra})

    def put_variants(image: np.ndarray, rel: str, tag: str, source: str) -> None:
        """The image as it is, or its tone-mapped copies (TONE_MAPPED)."""
        for target in TONE_MAPPED.get(tag, (None,)):
            if target is None:
                put(image, rel, source)
            else:
                mapped, g = to_night_mean(image, target)
                put(mapped, f"{rel}_l{target:.0f}", source, tone="power", exponent=round(g, 3))

    for domain, clips in TRAIN_CLIPS.items():
        for stem, every in clips.items():
            for image, name, source in clip_frames(shared, domain, stem, every):
                put_variants(image, f"train/{domain}/{stem}/{name}", stem, source)
    for domain, clips in PAIR_CLIPS.items():
        for stem, every in clips.items():
            for first, after, name, source in clip_pairs(shared, domain, stem, every):
                put(first, f"pairs/{domain}/{stem}/{name}_a", source)
                put(after, f"pairs/{domain}/{stem}/{name}_b", source)
    for domain, stills in TRAIN_STILLS.items():
        for tag, folder in stills.items():
            prefix = STILL_PREFIX.get(tag, "")
            for still in list_images(shared / folder):
                if not still.name.startswith(prefix):
                    continue
                rel = f"train/{domain}/{tag}/{still.stem}"
                put_variants(read_image(still), rel, tag, f"{folder}/{still.name}")
    for domain, sets in REALISM_SETS.items():
        for tag, folders in sets.items():
            for folder in folders:
                for image_path in list_images(shared / folder):
                    name = f"{Path(folder).parent.name}_{image_path.stem}"
                    put(
                        read_image(image_path),
                        f"realism/{domain}/{tag}/{name}",
                        f"{folder}/{image_path.name}",
                    )
    for domain, still in holdout_stills(shared):
        put(read_image(still), f"holdout/{domain}/{still.stem}", f"frames/{domain}/{still.name}")
        native = out / "holdout_native" / domain / still.name
        if not native.exists():
            native.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(still, native)
    (out / "holdout").mkdir(parents=True, exist_ok=True)
    (out / "holdout" / "clips.txt").write_text("\n".join(HOLDOUT_CLIPS) + "\n")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    counts: dict[str, int] = {}
    for row in manifest:
        key = str(Path(str(row["file"])).parent)
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    entry(main)
