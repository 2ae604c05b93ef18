"""Unpaired day and night training images.

Sources: image folders, NEXET's train.csv, BDD100K's label JSON, and the train lists that
``d2nvideo relabel`` writes. Listed files that are missing are skipped and counted; files that
turn out unreadable are replaced by another image and reported, never a crash.

Data order and augmentation are functions of (seed, epoch, index), so a resumed run sees exactly
the batches an uninterrupted one would, whatever the number of worker processes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from d2nvideo.data.sources import Sources, from_bdd, from_nexet
from d2nvideo.errors import ConfigError, D2NError, InputError
from d2nvideo.fileio import NAME_ERRORS, not_a_folder
from d2nvideo.images import list_images, read_image_reduced
from d2nvideo.processes import HANGUP
from d2nvideo.video.flow import FlowEstimator, gray, occlusion
from d2nvideo.video.smooth import is_cut

from .config import DataConfig

log = logging.getLogger(__name__)


@dataclass
class DomainLists:
    """Image paths per domain, and what was left out on the way."""

    day: list[Path] = field(default_factory=list)
    night: list[Path] = field(default_factory=list)
    missing: int = 0  # listed but absent
    dropped: int = 0  # labels outside day/night (twilight, undefined)
    # consecutive frames (NAME_a, NAME_b) of each domain's clips, for loss.temporal
    pairs: dict[str, list[tuple[Path, Path]]] = field(
        default_factory=lambda: {"day": [], "night": []}
    )

    def add(self, label: str, path: Path, twilight: str) -> None:
        if label == "twilight" and twilight != "drop":
            label = twilight
        if label not in ("day", "night"):
            self.dropped += 1
        elif not path.is_file():
            self.missing += 1
        else:
            getattr(self, label).append(path)


def collect(cfg: DataConfig) -> DomainLists:
    """Gather every configured source; raises ConfigError if a domain ends up empty."""
    lists = DomainLists()
    for domain in ("day", "night"):
        for folder in getattr(cfg, domain):
            root = Path(folder)
            if not root.is_dir():
                raise ConfigError(f"data.{domain} folder '{root}' {not_a_folder(root)}", root)
            found = list_images(root)
            if not found:
                raise ConfigError(f"data.{domain} folder '{root}' holds no images", root)
            getattr(lists, domain).extend(found)
    for domain in ("day", "night"):
        for folder in getattr(cfg, f"pairs_{domain}"):
            lists.pairs[domain].extend(list_pairs(Path(folder), f"data.pairs_{domain}"))
    if cfg.nexet_csv:
        nexet = from_nexet(Path(cfg.nexet_csv), _images_dir(cfg, "nexet_csv"))
        _add_labelled(nexet, lists, cfg.twilight)
    if cfg.bdd_json:
        _add_labelled(
            from_bdd(Path(cfg.bdd_json), _images_dir(cfg, "bdd_json")), lists, cfg.twilight
        )
    if cfg.relabeled:
        _read_relabeled(Path(cfg.relabeled), lists)
    for domain in ("day", "night"):
        if not getattr(lists, domain):
            raise ConfigError(
                f"no {domain} images: give data.{domain} folders (--{domain}), a NEXET csv, a "
                "BDD100K json or a relabel folder"
            )
    return _each_once(lists)


def _each_once(lists: DomainLists) -> DomainLists:
    """Each image once per domain, and in one domain only: a folder given twice (``--day d
    --day ./d/``) was trained on twice as often as the others, uncounted, and one folder given
    as both domains trained on nothing to tell apart, without a word."""
    seen: dict[str, dict[str, Path]] = {}
    for domain in ("day", "night"):
        paths = getattr(lists, domain)
        seen[domain] = {}
        for path in paths:
            seen[domain].setdefault(os.path.realpath(path), path)  # a linked folder too
        if len(paths) > len(seen[domain]):
            extra = _images_are(len(paths) - len(seen[domain])).replace(" ", f" {domain} ", 1)
            log.warning("%s listed more than once: each is used once", extra)
            setattr(lists, domain, list(seen[domain].values()))
    both = seen["day"].keys() & seen["night"].keys()
    if both:
        raise ConfigError(
            f"{_images_are(len(both))} in both the day and the night data (such as "
            f"'{min(both)}'): give each domain its own images"
        )
    return lists


def _images_are(n: int) -> str:
    return f"{n} image is" if n == 1 else f"{n} images are"


def list_pairs(root: Path, key: str) -> list[tuple[Path, Path]]:
    """The (first, next) frame pairs in ``root`` (searched recursively): images named
    ``NAME_a.EXT`` and ``NAME_b.EXT`` side by side. A folder without any is refused; a half
    pair is left out with a warning."""
    if not root.is_dir():
        raise ConfigError(f"{key} folder '{root}' {not_a_folder(root)}", root)
    found = list_images(root)
    present = set(found)
    pairs: list[tuple[Path, Path]] = []
    for path in found:
        after = path.with_name(f"{path.stem[:-2]}_b{path.suffix}")
        if path.stem.endswith("_a") and after in present:
            pairs.append((path, after))
    if alone := len(found) - 2 * len(pairs):
        log.warning("%s folder '%s': %d image(s) not in a NAME_a/NAME_b pair", key, root, alone)
    if not pairs:
        raise ConfigError(
            f"{key} folder '{root}' holds no frame pairs (images named NAME_a and NAME_b)", root
        )
    return pairs


def _images_dir(cfg: DataConfig, source: str) -> Path:
    if not cfg.images:
        raise ConfigError(f"data.{source} needs data.images (--images), the folder of its images")
    root = Path(cfg.images)
    if not root.is_dir():
        raise ConfigError(f"data.images folder '{root}' {not_a_folder(root)}", root)
    return root


def _add_labelled(sources: Sources, lists: DomainLists, twilight: str) -> None:
    """NEXET/BDD100K items, read by the relabeler's parsers, sorted into the domains."""
    lists.dropped += sources.skipped_rows
    for item in sources.items:
        lists.add(item.normal, item.path, twilight)


def _read_relabeled(folder: Path, lists: DomainLists) -> None:
    """A relabel output folder's train lists: train_day.txt and train_night.txt."""
    if not folder.is_dir():
        raise ConfigError(f"relabel folder '{folder}' {not_a_folder(folder)}", folder)
    for domain in ("day", "night"):
        listing = folder / f"train_{domain}.txt"
        if not listing.is_file():
            raise ConfigError(f"relabel folder '{folder}' has no {listing.name}", listing)
        for line in listing.read_text(encoding="utf-8", errors=NAME_ERRORS).splitlines():
            if line.strip():
                lists.add(domain, Path(line.strip()), "drop")


# --- images ---------------------------------------------------------------------------------


def load_training_image(
    path: Path, resize: int, crop: tuple[int, int], flip: bool, rng: np.random.Generator
) -> np.ndarray:
    """Read, resize (shorter side to ``resize``), random-crop to ``crop`` (h, w), maybe flip.

    Large JPEGs are decoded at 1/2, 1/4 or 1/8 size when that still leaves the shorter side at
    least ``resize``, which is several times faster. Returns ``(h, w, 3) uint8``.
    """
    image = read_image_reduced(path, min_side=max(resize, *crop))
    return fit_and_crop(image, resize, crop, flip, rng)


def fit_and_crop(
    image: np.ndarray, resize: int, crop: tuple[int, int], flip: bool, rng: np.random.Generator
) -> np.ndarray:
    """:func:`load_training_image` after the read."""
    h, w = image.shape[:2]
    scale = (resize / min(h, w)) if resize else 1.0
    scale = max(scale, crop[0] / h, crop[1] / w)  # the crop must fit
    if abs(scale - 1.0) > 1e-6:
        size = (max(crop[1], round(w * scale)), max(crop[0], round(h * scale)))
        image = cv2.resize(
            image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        )
    h, w = image.shape[:2]
    top = int(rng.integers(0, h - crop[0] + 1))
    left = int(rng.integers(0, w - crop[1] + 1))
    image = image[top : top + crop[0], left : left + crop[1]]
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def first_readable(
    count: int,
    index: int,
    load: Callable[[int], torch.Tensor],
    path: Callable[[int], Path],
    what: str,
) -> torch.Tensor:
    """``load(index)``, or where the file cannot be read or decoded (InputError, OSError;
    reported), the next item that loads, in a fixed stride: one bad file must not stop a long
    run, and the substitute is a function of ``index``. Any other failure (memory, a setting
    that does not fit) is not the file's: it stops the run with one line, not blaming it."""
    for attempt in range(count):
        i = (index + attempt * 7919) % count
        try:
            return load(i)
        except (InputError, OSError) as exc:
            log.warning("skipping unreadable %s %s (%s)", what, path(i), _first_line(exc))
        except Exception as exc:
            raise D2NError(
                f"preparing {what} '{path(i)}' failed, though it reads: {_first_line(exc)}"
            ) from exc
    raise ConfigError(  # "in this domain" named neither the domain nor a folder
        f"no {what} of the {count} in the data with '{path(index)}' can be read"
    )


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (OpenCV's run over several), or its type's name."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


class DomainDataset(Dataset[torch.Tensor]):
    """Images of one domain; an item is keyed by (index, epoch, seed) so its augmentation is
    reproducible. Returns ``(3, h, w)`` float in [-1, 1]."""

    def __init__(self, paths: list[Path], cfg: DataConfig) -> None:
        self.paths = paths
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int, int]) -> torch.Tensor:
        index, epoch, seed = key
        cfg = self.cfg

        def load(i: int) -> torch.Tensor:
            rng = np.random.default_rng([seed, epoch, i])
            image = load_training_image(self.paths[i], cfg.resize, cfg.crop, cfg.flip, rng)
            return torch.from_numpy(image).permute(2, 0, 1).float().div(127.5).sub(1.0)

        return first_readable(
            len(self.paths), index, load, self.paths.__getitem__, "training image"
        )


class PairDataset(Dataset[torch.Tensor]):
    """Consecutive frames of one domain, cropped and flipped alike, with the flow between them
    and where it holds, measured as ``evaluate``'s E_warp measures it (DIS flow on the inputs,
    Lai et al.'s occlusion test). An item is ``(9, h, w)`` float: the first frame and the next
    in [-1, 1] (channels 0-2, 3-5), the flow from the first to the next in pixels (6-7: dx,
    dy) and 1 where it holds, 0 where occluded or leaving the crop (8)."""

    def __init__(self, pairs: list[tuple[Path, Path]], cfg: DataConfig) -> None:
        self.pairs = pairs
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int, int]) -> torch.Tensor:
        index, epoch, seed = key

        def load(i: int) -> torch.Tensor:
            return self._item(*self._load(self.pairs[i], [seed, epoch, i]))

        return first_readable(
            len(self.pairs), index, load, lambda i: self.pairs[i][0], "frame pair"
        )

    def _load(self, pair: tuple[Path, Path], seed: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Both frames, cropped and flipped alike (the same draws from the same seed)."""
        cfg = self.cfg
        first, after = (read_image_reduced(p, min_side=max(cfg.resize, *cfg.crop)) for p in pair)
        if first.shape != after.shape:
            sizes = f"{first.shape[:2]}, {after.shape[:2]}"
            raise InputError(f"its frames differ in size: {sizes}", pair[0])
        a, b = (
            fit_and_crop(x, cfg.resize, cfg.crop, cfg.flip, np.random.default_rng(seed))
            for x in (first, after)
        )
        return a, b

    def _item(self, first: np.ndarray, after: np.ndarray) -> torch.Tensor:
        # a fresh estimator for each flow: OpenCV's DIS object keeps state from its last call,
        # which would make an item depend on the items loaded before it
        a, b = gray(first), gray(after)
        fw = FlowEstimator(max_side=max(first.shape))(a, b)
        holds = ~occlusion(fw, FlowEstimator(max_side=max(first.shape))(b, a))
        if is_cut(a, b):  # two shots (as evaluate's E_warp leaves them out): nothing holds
            holds[:] = False
        images = np.concatenate([first, after], axis=2).astype(np.float32) / 127.5 - 1.0
        stacked = np.concatenate([images, fw, holds[..., None].astype(np.float32)], axis=2)
        return torch.from_numpy(np.ascontiguousarray(stacked.transpose(2, 0, 1)))


def source_weights(paths: list[Path], balance: str) -> list[float] | None:
    """Sampling weights that give every source (an image's folder) the same share of the
    draws, or None for uniform over images. Without them a clip with 100 extracted frames
    outweighs a set of 10 stills tenfold, and the model learns the clip's look as "night"."""
    if balance == "image":
        return None
    counts: dict[Path, int] = {}
    for p in paths:
        counts[p.parent] = counts.get(p.parent, 0) + 1
    return [1.0 / (counts[p.parent] * len(counts)) for p in paths]


class _ResumableSampler(torch.utils.data.Sampler[tuple[int, int, int]]):
    """Endless keys (index, epoch, seed), starting at any step: DistributedSampler order, or
    with ``weights`` a seeded weighted draw per epoch (with replacement), split by rank."""

    def __init__(
        self,
        size: int,
        batch: int,
        rank: int,
        world: int,
        seed: int,
        step: int,
        weights: list[float] | None = None,
    ) -> None:
        self.size, self.batch, self.rank, self.world = size, batch, rank, world
        self.seed, self.step, self.weights = seed, step, weights

    def _epoch_order(self, sampler: DistributedSampler[int], epoch: int) -> list[int]:
        if self.weights is None:
            sampler.set_epoch(epoch)
            return list(sampler)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        draws = torch.multinomial(
            torch.tensor(self.weights, dtype=torch.float64),
            len(sampler) * self.world,
            True,
            generator=g,
        )
        return draws.tolist()[self.rank :: self.world]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        sampler: DistributedSampler[int] = DistributedSampler(
            range(self.size),  # type: ignore[arg-type]  # only len() is used
            self.world,
            self.rank,
            shuffle=True,
            seed=self.seed,
            drop_last=False,
        )
        per_epoch = max(1, len(sampler) // self.batch)
        epoch, skip = divmod(self.step, per_epoch)
        while True:
            order = self._epoch_order(sampler, epoch)[: per_epoch * self.batch]
            if len(order) < self.batch:  # fewer images than a batch: repeat them
                order = (order * math.ceil(self.batch / max(1, len(order))))[: self.batch]
            for index in order[skip * self.batch :]:
                yield index, epoch, self.seed
            skip = 0
            epoch += 1


def domain_batches(
    paths: list[Path],
    cfg: DataConfig,
    batch: int,
    seed: int,
    step: int,
    rank: int,
    world: int,
    dataset: Dataset[torch.Tensor] | None = None,
) -> Iterator[torch.Tensor]:
    """Endless ``(batch, 3, h, w)`` batches of one domain, from ``step`` on; or of
    ``dataset``'s items, one per path of ``paths`` (whose folders balance the draws)."""
    weights = source_weights(paths, cfg.balance)
    loader = DataLoader(
        dataset if dataset is not None else DomainDataset(paths, cfg),
        batch_size=batch,
        sampler=_ResumableSampler(len(paths), batch, rank, world, seed, step, weights),
        num_workers=(workers := workers_here(cfg.workers)),
        persistent_workers=workers > 0,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),  # leaves the global RNG alone
        worker_init_fn=_leave_signals_to_the_trainer,
    )
    return iter(loader)


def workers_here(asked: int) -> int:
    """``data.workers``, at most 4 a core of this machine (a run saved on a larger one asks
    for more than this one holds), with a warning once when cut."""
    most = 4 * (os.cpu_count() or 1)
    if asked > most and asked not in _CUT:
        _CUT.add(asked)
        log.warning(
            "data.workers is %d; this machine has %d cores: using %d", asked, most // 4, most
        )
    return min(asked, most)


_CUT: set[int] = set()


def _leave_signals_to_the_trainer(worker: int) -> None:
    """A data-loading worker ignores Ctrl-C, a hang-up and a SIGTERM sent to the whole process
    group (a scheduler's stop, ``kill -- -PGID``): torch's handler let it die of the latter, and the
    trainer then failed with 'DataLoader worker ... is killed by signal' instead of saving
    its state. A SIGTERM from the trainer itself (torch's and multiprocessing's shut-down)
    still ends it: SIGTERM is blocked and a thread waits for it, asking who sent it."""
    import os
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if HANGUP is not None:  # a closed terminal hangs up the group: the trainer saves
        signal.signal(HANGUP, signal.SIG_IGN)
    if not hasattr(signal, "sigwaitinfo"):  # not POSIX: as torch leaves it
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    trainer = os.getppid()

    def wait() -> None:
        while True:
            if signal.sigwaitinfo({signal.SIGTERM}).si_pid == trainer:
                os._exit(0)  # as torch's own handler does for its parent's SIGTERM

    threading.Thread(target=wait, name="sigterm-from-trainer", daemon=True).start()


class UnpairedBatches:
    """Endless steps of ``{"day": (B, 3, h, w), "night": (B, 3, h, w)}``, with
    ``"pairs_day"``/``"pairs_night"`` ``(B, 9, h, w)`` (:class:`PairDataset`) where given."""

    def __init__(
        self,
        day: Iterator[torch.Tensor],
        night: Iterator[torch.Tensor],
        pairs: dict[str, Iterator[torch.Tensor]] | None = None,
    ) -> None:
        self.day = day
        self.night = night
        self.pairs = pairs or {}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = {"day": next(self.day), "night": next(self.night)}
        return batch | {f"pairs_{d}": next(it) for d, it in self.pairs.items()}


def unpaired_batches(
    lists: DomainLists, cfg: DataConfig, batch: int, seed: int, step: int, rank: int, world: int
) -> UnpairedBatches:
    """Each stream is seeded on its own (day ``seed``, night ``seed + 1``, day pairs
    ``seed + 2``, night pairs ``seed + 3``), so that adding pairs leaves the images' order."""
    pairs = {}
    for offset, domain in ((2, "day"), (3, "night")):
        if found := lists.pairs[domain]:
            firsts = [a for a, _ in found]
            dataset = PairDataset(found, cfg)
            pairs[domain] = domain_batches(
                firsts, cfg, batch, seed + offset, step, rank, world, dataset
            )
    return UnpairedBatches(
        domain_batches(lists.day, cfg, batch, seed, step, rank, world),
        domain_batches(lists.night, cfg, batch, seed + 1, step, rank, world),
        pairs,
    )
