"""Build the training and held-out sets of the bundled default model from ../shared/data.

    python examples/prepare_shared_data.py ../shared/data work_local/d2n_data [--short-side 180]

Writes (all images resized so the shorter side is --short-side):
  train/day, train/night        frames extracted from the training clips, day/night stills,
                                AMOS webcam and phone photos (labeled/)
  holdout/day, holdout/night    independent dashcam stills that no training image comes from
  holdout/clips.txt             whole clips kept out (their frames are in neither set)
  manifest.json                 every file written, with its source
The data is never copied into the repository; see ../shared/data/SOURCES.md for origins.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from d2nvideo.images import list_images, read_image, write_image
from d2nvideo.video.decode import frames_at
from d2nvideo.video.probe import probe

# Kept out of training: one whole clip (and every still of the same project and camera), and
# independent dashcam stills for both directions.
HOLDOUT_CLIPS = ("udacity_solidWhiteRight",)
HOLDOUT_DAY_PREFIXES = (
    "udacity_adv_",
    "udacity_p1_",
    "sahan_",
    "hybridnets_",
    "twinlitenet_",
    "yolop_",
    "yolopv2_",
    "solesensei_",
    "vidframe_udacity_solidWhiteRight",
)
HOLDOUT_NIGHT_PREFIXES = ("sahan_", "hybridnets_", "twinlitenet_", "yolop_", "solesensei_")
TRAIN_VIDEO_EVERY_S = {"day": 0.5, "night": 0.4}
LABELED_SETS = {
    "day": ["labeled/amos_day_night/training/day", "labeled/amos_day_night/test/day"],
    "night": ["labeled/amos_day_night/training/night", "labeled/amos_day_night/test/night"],
}
# labeled/xinjue_day_dusk_night is left out: 200x200 phone photos of sky and sunsets, not roads.


def resized(image: np.ndarray, short: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--short-side", type=int, default=180)
    args = parser.parse_args()
    manifest: list[dict[str, str]] = []

    def put(image: np.ndarray, split: str, domain: str, stem: str, source: str) -> None:
        path = args.out / split / domain / f"{stem}.jpg"
        if not path.exists():
            write_image(path, resized(image, args.short_side), quality=95)
        manifest.append({"file": str(path.relative_to(args.out)), "source": source})

    for domain in ("day", "night"):
        for video in sorted((args.shared / "videos" / domain).glob("*.mp4")):
            if video.stem in HOLDOUT_CLIPS:
                continue
            info = probe(video)
            step = TRAIN_VIDEO_EVERY_S[domain]
            times = list(np.arange(0, info.duration, step))
            for frame in frames_at(video, times):
                put(
                    frame.image,
                    "train",
                    domain,
                    f"{video.stem}_{frame.time:010.3f}",
                    f"videos/{domain}/{video.name}@{frame.time:.3f}s",
                )
        holdout = HOLDOUT_DAY_PREFIXES if domain == "day" else HOLDOUT_NIGHT_PREFIXES
        for still in list_images(args.shared / "frames" / domain):
            if still.name.startswith("vidframe_") and not still.name.startswith(holdout):
                continue  # frames of training clips are re-extracted above, denser
            split = "holdout" if still.name.startswith(holdout) else "train"
            put(read_image(still), split, domain, still.stem, f"frames/{domain}/{still.name}")
        for folder in LABELED_SETS[domain]:
            for image in list_images(args.shared / folder):
                tag = "_".join(folder.split("/")[1:3])
                source = f"{folder}/{image.name}"
                put(read_image(image), "train", domain, f"{tag}_{image.stem}", source)
    (args.out / "holdout").mkdir(parents=True, exist_ok=True)
    (args.out / "holdout" / "clips.txt").write_text(
        "\n".join(f"videos/day/{c}.mp4" for c in HOLDOUT_CLIPS) + "\n"
    )
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    counts: dict[str, int] = {}
    for row in manifest:
        key = "/".join(row["file"].split("/")[:2])
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    main()
