"""Paired person-image data set over the PATN folder layout.

A data folder holds, per split (``train``, ``val``, ``test``): an image folder, an annotation
CSV, a pairs CSV and, for synthetic data, a folder of ground-truth part label maps::

    root/{split}/                      images (file names as in the CSVs)
    root/<annotation file for split>   name:keypoints_y:keypoints_x
    root/<pairs file for split>        from,to
    root/{split}-labels/<stem>.png     optional label maps (0 background, 1..K parts)

The file names differ per data set (:data:`LAYOUTS`). A :class:`PairDataset` yields
sample dicts::

    P1, P2      (3, H, W) float32 in [-1, 1]    source and target image
    BP1, BP2    (18, H, W) float32 in [0, 1]    Gaussian pose maps (sigma px)
    mask2       (11, H, W) float32 in [0, 1]    part masks of the target, background first
    kp1, kp2    (18, 2) int64 (row, col) px, -1 = missing
    name1, name2  str
    label2      (H, W) int64 target part labels (only when the folder has label maps)

In epoch mode (``pairs_per_epoch`` set, training) position i of epoch e is the pair
``epoch_pair_indices(num_pairs, pairs_per_epoch, seed, e)[i]``, a pure function of
(seed, e, i). Items can be addressed as ``ds[i]`` (uses ``ds.epoch``, see ``set_epoch``) or
``ds[(e, i)]``, which is what :class:`EpochPairSampler` yields, so DataLoader workers (also
persistent ones) never depend on a stale epoch. Without ``pairs_per_epoch`` (validation,
test) ``ds[k]`` is pair k in file order.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from personpose.data import pose
from personpose.data.annotations import (
    Annotations,
    DataFormatError,
    PairList,
    check_images_exist,
    read_annotations,
    read_pairs,
)
from personpose.data.images import SizePolicy, load_image, load_label_map
from personpose.data.images import verify_images as check_images


class CropWarning(UserWarning):
    """Joints fell outside the frame when the images were cropped (they became -1)."""


@dataclass(frozen=True)
class Layout:
    """File names of a PATN data folder; ``{split}`` is replaced by the split name.

    ``id_rule`` names the person-id rule (:func:`personpose.data.splits.person_id`).
    """

    annotation: str
    pairs: str
    images: str = "{split}"
    labels: str | None = "{split}-labels"
    id_rule: str = "market"


LAYOUTS: dict[str, Layout] = {
    "market": Layout("market-annotation-{split}.csv", "market-pairs-{split}.csv", id_rule="market"),
    "deepfashion": Layout(
        "fasion-resize-annotation-{split}.csv",
        "fasion-resize-pairs-{split}.csv",
        id_rule="deepfashion",
    ),
    "synth": Layout("synth-annotation-{split}.csv", "synth-pairs-{split}.csv", id_rule="synth"),
}


def resolve_layout(layout: str | Layout, files: Mapping | None = None) -> Layout:
    """A named layout with overrides of its keys (annotation, pairs, images, labels, id_rule);
    None values keep the layout's name, ``labels: ""`` ignores label maps."""
    if not isinstance(layout, Layout):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {sorted(LAYOUTS)}")
        layout = LAYOUTS[layout]
    if files:
        unknown = set(files) - {"annotation", "pairs", "images", "labels", "id_rule"}
        if unknown:
            raise ValueError(f"unknown keys in files: {sorted(unknown)}")
        chosen = {k: v for k, v in files.items() if v is not None}
        if chosen.get("labels") == "":
            chosen["labels"] = None
        layout = replace(layout, **chosen)
    return layout


@dataclass
class SplitFiles:
    """The validated tables of one split; keypoints already in the model frame."""

    image_dir: Path
    annotations: Annotations
    pairs: PairList
    label_dir: Path | None


def split_paths(root: Path, layout: Layout, split: str) -> tuple[Path, Path, Path, Path | None]:
    """(annotation CSV, pairs CSV, image folder, label folder or None) of ``split``."""
    names = (layout.annotation, layout.pairs, layout.images, layout.labels)
    return tuple(root / name.format(split=split) if name else None for name in names)


def has_split(root: Path, layout: Layout, split: str) -> bool:
    ann, pairs, images, _ = split_paths(root, layout, split)
    return ann.is_file() and pairs.is_file() and images.is_dir()


def fit_annotations(annotations: Annotations, policy: SizePolicy) -> Annotations:
    """Map keypoints to the model frame; one CropWarning counts joints that left the frame."""
    kp, lost = policy.keypoints(annotations.keypoints)
    if lost.any():
        (sh, sw), (h, w) = policy.source_size, policy.image_size
        warnings.warn(
            f"{annotations.path}: {policy.fit} {sh}x{sw} -> {h}x{w} puts {lost.sum()} joints of "
            f"{lost.any(-1).sum()} images outside the frame; they are set to -1 (missing)",
            CropWarning,
            stacklevel=2,
        )
    return replace(annotations, keypoints=kp)


def load_split(root: str | Path, layout: Layout, split: str, policy: SizePolicy) -> SplitFiles:
    """Read and validate the annotation and pairs CSVs of ``split``.

    Coordinates are checked against ``policy.source_size`` (the frame of the files), then
    mapped to ``policy.image_size``. Images are checked by :class:`PairDataset`.
    """
    root = Path(root)
    ann_path, pairs_path, image_dir, label_dir = split_paths(root, layout, split)
    for path, what in ((ann_path, "annotation CSV"), (pairs_path, "pairs CSV")):
        if not path.is_file():
            raise DataFormatError(
                f"{path}: {what} of split {split!r} does not exist; the data folder {root} "
                f"should hold {ann_path.name}, {pairs_path.name} and {image_dir.name}/"
            )
    annotations = fit_annotations(read_annotations(ann_path, policy.source_size), policy)
    labels = label_dir if label_dir is not None and label_dir.is_dir() else None
    return SplitFiles(image_dir, annotations, read_pairs(pairs_path, annotations), labels)


def epoch_pair_indices(
    num_pairs: int, pairs_per_epoch: int | None, seed: int, epoch: int
) -> np.ndarray:
    """Pair indices of one epoch, int64 (N,): a pure function of (seed, epoch).

    Without replacement when N <= num_pairs (N = num_pairs when ``pairs_per_epoch`` is None:
    a seeded shuffle of all pairs), with replacement otherwise.
    """
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    n = num_pairs if pairs_per_epoch is None else int(pairs_per_epoch)
    rng = np.random.default_rng([int(seed), int(epoch)])
    return rng.choice(num_pairs, size=n, replace=n > num_pairs).astype(np.int64)


class PairDataset(Dataset):
    """(source, target) pairs of one split; see the module docstring for the sample dict.

    Args:
        files: the split's tables from :func:`load_split`, which validated the CSVs (names
            annotated, joints inside the frame): image folder, annotations in the model
            frame, pairs and the folder of target label maps ``<stem>.png`` (adds ``label2``)
            or None. Image and label files are checked here.
        policy: image size policy (files of ``source_size`` -> tensors of ``image_size``).
        pairs_per_epoch: epoch mode with this many (>= 1) draws per epoch (None: file order).
        seed: seed of the per-epoch draws (>= 0).
        sigma: pose-map Gaussian sigma (px).
        mask_options: extra keyword arguments of ``pose.part_masks``.
        with_maps: False leaves out BP1, BP2 and mask2 (compute them on the device instead).
        verify_images: ``header`` (check every image's header and size now), ``decode``
            (decode every image now: also finds truncated files) or ``off``.
    """

    def __init__(
        self,
        files: SplitFiles,
        policy: SizePolicy,
        *,
        pairs_per_epoch: int | None = None,
        seed: int = 0,
        sigma: float = 6.0,
        mask_options: Mapping | None = None,
        with_maps: bool = True,
        verify_images: str | bool = "header",
    ) -> None:
        annotations, pairs = files.annotations, files.pairs
        self.image_dir, self.label_dir, self.policy = files.image_dir, files.label_dir, policy
        if len(pairs) == 0:
            raise DataFormatError(f"{pairs.path}: no pairs; expected at least one 'from,to' row")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.names = names = pairs.names()
        check_images_exist(self.image_dir, names, annotations)
        if self.label_dir is not None:
            targets = [self._label_path(n) for n in dict.fromkeys(b for _, b in pairs)]
            missing = [p.name for p in targets if not p.is_file()]
            if missing:
                raise DataFormatError(
                    f"{self.label_dir}: {len(missing)} of {len(targets)} target label maps "
                    f"do not exist (expected <image stem>.png): {', '.join(missing[:5])}"
                )
        self.keypoints = np.stack([annotations[n] for n in names])
        index = {n: i for i, n in enumerate(names)}
        self.pair_index = np.array([(index[a], index[b]) for a, b in pairs], dtype=np.int64)
        self.pairs_per_epoch = None if pairs_per_epoch is None else int(pairs_per_epoch)
        self.seed = int(seed)
        self.sigma = float(sigma)
        self.mask_options = dict(mask_options or {})
        self.with_maps = bool(with_maps)
        self.epoch = 0
        self._draws: tuple[int, np.ndarray] | None = None
        check_images((self.image_dir / n for n in names), policy, verify_images)

    @property
    def num_pairs(self) -> int:
        """Pairs in the file (epoch mode draws from these)."""
        return len(self.pair_index)

    def __len__(self) -> int:
        return self.num_pairs if self.pairs_per_epoch is None else self.pairs_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Epoch used by integer indices in epoch mode."""
        self.epoch = int(epoch)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """Pair indices (N,) drawn for ``epoch`` (cached for the latest epoch)."""
        if self._draws is None or self._draws[0] != epoch:
            draws = epoch_pair_indices(self.num_pairs, self.pairs_per_epoch, self.seed, epoch)
            self._draws = (epoch, draws)
        return self._draws[1]

    def pair_names(self, pair: int) -> tuple[str, str]:
        a, b = self.pair_index[pair]
        return self.names[a], self.names[b]

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        """The sample at a position (of epoch ``self.epoch``) or an (epoch, position) tuple."""
        epoch, pos = index if isinstance(index, tuple) else (self.epoch, index)
        epoch, pos = int(epoch), int(pos)
        if not 0 <= pos < len(self):
            raise IndexError(f"index {pos} out of range for {len(self)} items")
        pair = pos if self.pairs_per_epoch is None else int(self.epoch_indices(epoch)[pos])
        return self.sample(pair)

    def _label_path(self, name: str) -> Path:
        return self.label_dir / (Path(name).stem + ".png")

    def sample(self, pair: int) -> dict:
        """The sample dict of pair ``pair`` (file order)."""
        name1, name2 = self.pair_names(pair)
        kp = torch.from_numpy(self.keypoints[self.pair_index[pair]])  # (2, 18, 2) int64
        p1, p2 = (load_image(self.image_dir / name, self.policy) for name in (name1, name2))
        out = {"P1": p1, "P2": p2, "kp1": kp[0], "kp2": kp[1], "name1": name1, "name2": name2}
        if self.with_maps:
            size = self.policy.image_size
            bp = pose.pose_heatmaps(kp, size, sigma=self.sigma)
            out["BP1"], out["BP2"] = bp[0], bp[1]
            out["mask2"] = pose.part_masks(kp[1], size, **self.mask_options)
        if self.label_dir is not None:
            out["label2"] = load_label_map(self._label_path(name2), self.policy)
        return out


class EpochPairSampler(DistributedSampler):
    """Yields ``(epoch, position)`` for the positions of an epoch-mode :class:`PairDataset`.

    Lightning calls ``set_epoch(current_epoch)`` on the train loader's sampler at the start of
    every epoch (also after a resume), so the batches of epoch e are the same in every run.
    It subclasses DistributedSampler so Lightning does not wrap it under DDP: rank r takes
    positions r, r + R, ... (padded by wrapping so every rank gets the same count).
    """

    def __init__(self, dataset: PairDataset, num_replicas: int = 1, rank: int = 0) -> None:
        if dataset.pairs_per_epoch is None:
            raise ValueError("EpochPairSampler needs a PairDataset with pairs_per_epoch set")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        # (epoch, skip): the next pass over that epoch starts after ``skip`` positions (set by
        # ResumableLoader.load_state_dict for a mid-epoch resume)
        self._resume: tuple[int, int] | None = None

    def __iter__(self):
        epoch, n = int(self.epoch), len(self.dataset)
        start = self._resume[1] if self._resume is not None and self._resume[0] == epoch else 0
        self._resume = None
        for pos in range(self.rank, self.total_size, self.num_replicas)[start:]:
            yield (epoch, pos % n)


class ResumableLoader(DataLoader):
    """Training DataLoader over an :class:`EpochPairSampler` that Lightning can checkpoint.

    ``state_dict()`` holds the epoch and the batches already trained in it (from ``progress``,
    a callable set by the data module, else the batches this loader yielded); Lightning saves
    it in checkpoints and calls ``load_state_dict`` on resume, so a run resumed mid-epoch
    continues with the very batches the uninterrupted run would have seen.
    """

    progress = None  # callable () -> batches trained in the current epoch, or None
    _yielded = 0

    def __iter__(self):
        resume = getattr(self.sampler, "_resume", None)
        self._yielded = 0
        if resume is not None and resume[0] == self.sampler.epoch:
            self._yielded = resume[1] // (self.batch_size or 1)
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict:
        done = self.progress() if self.progress is not None else None
        done = self._yielded if done is None else done
        return {"epoch": int(self.sampler.epoch), "batches": int(done)}

    def load_state_dict(self, state_dict: dict) -> None:
        epoch = int(state_dict["epoch"])
        self.sampler.set_epoch(epoch)
        self.sampler._resume = (epoch, int(state_dict["batches"]) * int(self.batch_size or 1))
