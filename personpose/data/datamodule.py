"""LightningDataModule over a PATN data folder (real or synthetic).

Splits: ``train`` and ``test`` come from their files; ``val`` comes from its files when the
folder has them (the synthetic set does), otherwise it is carved from the training
identities (seeded by ``seed``), so train, val and test never share a person.

Training draws ``pairs_per_epoch`` pairs per epoch; the pair at position i of epoch e is a
pure function of (``pair_seed``, e, i). The train loader's sampler
(:class:`~personpose.data.dataset.EpochPairSampler`) receives the epoch from Lightning
(``set_epoch`` at each epoch start, also after resuming from a checkpoint), and passes it with
every index, so workers (persistent or not) and DDP ranks all agree.
"""

from __future__ import annotations

import functools
import math
import os
import random
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from personpose.data import pose
from personpose.data.annotations import DataFormatError
from personpose.data.dataset import (
    EpochPairSampler,
    PairDataset,
    ResumableLoader,
    SplitFiles,
    has_split,
    load_split,
    resolve_layout,
    split_paths,
)
from personpose.data.images import IMAGE_SUFFIXES, SizePolicy
from personpose.data.splits import (
    carve_val_ids,
    check_disjoint,
    pair_ids,
    split_pairs,
    subsample_pairs,
)

VAL_SPLITS = ("auto", "file", "carve")


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed.

    The torch seed of a worker is the loader's base seed (drawn from the loader's seeded
    ``generator``) plus the worker id, so every worker's RNGs are deterministic.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 - the global RNG is what third-party code uses
    random.seed(seed)


def _check_at_least(low: int, optional: bool = True, **values: Any) -> None:
    """ValueError naming ``data.<key>`` unless each value is an integer >= ``low`` (or None,
    when ``optional``)."""
    for key, value in values.items():
        if (value is not None or not optional) and (type(value) is not int or value < low):
            raise ValueError(f"data.{key} must be an integer >= {low}, got {value!r}")


def build_datamodule(cfg: Mapping) -> PersonPoseDataModule:
    """Instantiate the ``_target_`` of a data config (``conf/data/*.yaml``; default
    :class:`PersonPoseDataModule`)."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    plain.setdefault("_target_", f"{__name__}.PersonPoseDataModule")
    return instantiate(plain, _convert_="all")


class PersonPoseDataModule(L.LightningDataModule):
    """Train / val / test loaders of person-image pairs (sample dict: see ``dataset.py``).

    Args:
        root: data folder; for synthetic data (``synth`` given) the cache folder under which
            ``personpose.data.synth.ensure_dataset`` creates (once) and returns the data folder.
        layout: file naming: ``market``, ``deepfashion`` or ``synth`` (also the person-id rule).
        image_size: [H, W] px given to the model.
        batch_size: training batch size (per process); ``eval_batch_size`` for val/test
            (None: ``batch_size``).
        num_workers, pin_memory, persistent_workers: DataLoader settings.
        pairs_per_epoch: training pairs drawn per epoch (None: every pair once, shuffled).
        seed: data seed: synthetic generation and the val carving (not the training seed).
        pair_seed: seed of the per-epoch pair draws (None: ``seed``).
        val_split: ``auto`` (val files if present, else carve), ``file`` or ``carve``.
        val_fraction: share of training identities held out when carving.
        val_max_pairs: cap on validation pairs (seeded subset in file order; None: all).
        fit: ``none``, ``center_crop`` or ``resize`` when files are not ``image_size``.
        source_size: [H, W] px of the files (and of the annotation coordinates) when ``fit``
            is not ``none``; None means ``image_size``.
        files: overrides of the layout's file names (annotation, pairs, images, labels,
            id_rule; ``{split}`` is replaced by the split name).
        synth: synthetic-set options ``{preset, ids, options: {...}}``, or None for a real set.
        sigma: pose-map sigma (px).
        mask_options: keyword arguments of ``part_masks`` (e.g. scale_with_height).
        with_maps: False: samples carry no BP1/BP2/mask2 (compute them on the device).
        verify_images: at setup, check every image's header and size (``header``, default),
            decode every image (``decode``: also finds truncated files) or nothing (``off``).
        require_disjoint: error if two splits share a person identity.
        drop_last: drop the last incomplete training batch.
        allow_random_weights: whether the training may run with randomly initialised
            pretrained networks (VGG-19 for the perceptual losses) on this data set; read by
            the training code from this attribute, and the choice is recorded.
            (No ``save_hyperparameters``: Lightning fails when module and data module log the
            same key with different values; ``results.json`` records the data identity.)
        name: data set name for logs and results (None: ``layout``).
    """

    def __init__(
        self,
        root: str | Path,
        layout: str = "synth",
        image_size=(128, 64),
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pairs_per_epoch: int | None = 4000,
        seed: int = 0,
        pair_seed: int | None = None,
        val_split: str = "auto",
        val_fraction: float = 0.05,
        val_max_pairs: int | None = None,
        fit: str = "none",
        source_size=None,
        files: Mapping | None = None,
        synth: Mapping | None = None,
        sigma: float = 6.0,
        mask_options: Mapping | None = None,
        with_maps: bool = True,
        verify_images: str | bool = "header",
        require_disjoint: bool = True,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = True,
        allow_random_weights: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if val_split not in VAL_SPLITS:
            raise ValueError(f"data.val_split must be one of {VAL_SPLITS}, got {val_split!r}")
        _check_at_least(1, optional=False, batch_size=batch_size)
        _check_at_least(1, eval_batch_size=eval_batch_size)
        _check_at_least(1, pairs_per_epoch=pairs_per_epoch, val_max_pairs=val_max_pairs)
        _check_at_least(0, num_workers=num_workers)
        if not 0 < float(val_fraction) < 1:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {val_fraction}")
        self.root = Path(str(root)).expanduser()
        self.layout = resolve_layout(layout, files)
        self.policy = SizePolicy.create(image_size, source_size, fit)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pairs_per_epoch = None if pairs_per_epoch is None else int(pairs_per_epoch)
        self.seed = int(seed)
        self.pair_seed = self.seed if pair_seed is None else int(pair_seed)
        self.val_split = val_split
        self.val_fraction = float(val_fraction)
        self.val_max_pairs = None if val_max_pairs is None else int(val_max_pairs)
        self.synth = synth
        self.dataset_kwargs = {
            "sigma": float(sigma),
            "mask_options": dict(mask_options or {}),
            "with_maps": bool(with_maps),
            "verify_images": verify_images,
        }
        self.require_disjoint = bool(require_disjoint)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers)
        self.drop_last = bool(drop_last)
        self.allow_random_weights = bool(allow_random_weights)
        self.name = name or (layout if isinstance(layout, str) else "custom")
        self._tables: dict[str, SplitFiles] | None = None
        self.train_set: PairDataset | None = None
        self.val_set: PairDataset | None = None
        self.test_set: PairDataset | None = None

    # -- data folder and tables -------------------------------------------------------------
    def _ensure_synthetic(self) -> Path:
        from personpose.data.synth import ensure_dataset

        cfg = dict(self.synth or {})
        unknown = set(cfg) - {"preset", "ids", "options"}
        if unknown or "preset" not in cfg or "ids" not in cfg:
            raise ValueError(
                f"synth must be {{preset, ids, options}}, got keys {sorted(cfg)} "
                f"(unknown: {sorted(unknown)})"
            )
        options = dict(cfg.get("options") or {})
        return Path(ensure_dataset(self.root, cfg["preset"], int(cfg["ids"]), self.seed, **options))

    @functools.cached_property
    def data_dir(self) -> Path:
        """The folder the splits are read from (generated first for synthetic data)."""
        path = self._ensure_synthetic() if self.synth else self.root
        if not path.is_dir():
            raise DataFormatError(
                f"{path}: data folder does not exist; set data.root to your copy of the "
                f"{self.name} data set (PATN layout)"
            )
        return path

    def prepare_data(self) -> None:
        """Generate the synthetic set once per node (no-op for real data)."""
        if self.synth:
            self._ensure_synthetic()

    def tables(self) -> dict[str, SplitFiles]:
        """Validated tables of the splits present: train, val (file or carved), test."""
        if self._tables is not None:
            return self._tables
        root, layout = self.data_dir, self.layout
        tables: dict[str, SplitFiles] = {}
        for split in ("train", "test"):
            if has_split(root, layout, split):
                self._check_frame(split)
                tables[split] = load_split(root, layout, split, self.policy)
        auto_file = self.val_split == "auto" and has_split(root, layout, "val")
        if self.val_split == "file" or auto_file:
            tables["val"] = load_split(root, layout, "val", self.policy)
        elif "train" in tables:
            train = tables["train"]
            ids = pair_ids(train.pairs, layout.id_rule)
            held = carve_val_ids(ids, self.val_fraction, self.seed)
            rest, held_pairs = split_pairs(train.pairs, held, layout.id_rule)
            tables["train"] = replace(train, pairs=rest)
            tables["val"] = replace(train, pairs=held_pairs)
        if (val := tables.get("val")) is not None:
            val.pairs = subsample_pairs(val.pairs, self.val_max_pairs, self.seed)
        if self.require_disjoint:
            check_disjoint({k: t.pairs for k, t in tables.items()}, layout.id_rule)
        self._tables = tables
        return tables

    def _check_frame(self, split: str) -> None:
        """Compare one image of ``split`` with the configured frame before the annotations are
        read, so that a wrong ``data.image_size`` is named as such (not as joints outside the
        image). Unreadable files are left to the full check of every image."""
        image_dir = split_paths(self.data_dir, self.layout, split)[2]
        images = (p for p in image_dir.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))
        if (first := min(images, default=None)) is None:
            return
        try:
            with Image.open(first) as img:
                h, w = img.height, img.width
        except (OSError, ValueError):
            return
        if (h, w) == self.policy.source_size:
            return
        key, hint, size = "data.source_size", "", list(self.policy.source_size)
        if self.policy.fit == "none":
            key = "data.image_size"
            hint = f" (or data.source_size=[{h},{w}] with data.fit=resize or center_crop to train "
            hint += f"at {size})"
        raise DataFormatError(
            f"{key}={size} (H, W) does not match the images of {image_dir}: {first.name} is "
            f"{h}x{w}; set {key}=[{h},{w}]{hint}"
        )

    def _dataset(self, split: str, **kwargs) -> PairDataset:
        tables = self.tables()
        if split not in tables:
            paths = split_paths(self.data_dir, self.layout, split)[:3]
            ann, pairs, images = (p.relative_to(self.data_dir) for p in paths)
            raise DataFormatError(
                f"{self.data_dir}: no {split!r} split; expected {ann}, {pairs} and {images}/"
            )
        return PairDataset(tables[split], self.policy, **self.dataset_kwargs, **kwargs)

    def setup(self, stage: str | None = None) -> None:
        """Build the data sets of ``stage`` (fit: train + val; validate: val; test: test); each
        is built once, so the loaders call this freely."""
        if stage in (None, "fit") and self.train_set is None:
            train = self.tables().get("train")
            per_epoch = self.pairs_per_epoch or (len(train.pairs) if train else 0)
            self.train_set = self._dataset("train", pairs_per_epoch=per_epoch, seed=self.pair_seed)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset("val")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._dataset("test")

    @property
    def world_size(self) -> int:
        """Processes sharing the training draws (the trainer's, else env WORLD_SIZE, else 1)."""
        trainer = self.trainer
        return int(trainer.world_size if trainer is not None else os.environ.get("WORLD_SIZE", 1))

    def steps_per_epoch_for(self, world_size: int) -> int:
        """Training batches per epoch per process when ``world_size`` processes share the
        draws (pass devices x nodes before ``trainer.fit`` under DDP)."""
        self.setup("fit")
        per_rank = math.ceil(len(self.train_set) / int(world_size))
        rounding = math.floor if self._drop_last(per_rank) else math.ceil
        return rounding(per_rank / self.batch_size)

    def _drop_last(self, per_rank: int) -> bool:
        # never drop the only (incomplete) batch of a tiny epoch
        return self.drop_last and per_rank >= self.batch_size

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, dataset, batch_size: int, loader_class=DataLoader, **kwargs) -> DataLoader:
        return loader_class(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.pair_seed),
            **kwargs,
        )

    def train_sampler(self) -> EpochPairSampler:
        """The epoch-aware sampler (sharded over DDP ranks when attached to a trainer)."""
        self.setup("fit")
        rank = int(self.trainer.global_rank) if self.trainer is not None else 0
        sampler = EpochPairSampler(self.train_set, num_replicas=self.world_size, rank=rank)
        if self.trainer is not None:
            sampler.set_epoch(int(self.trainer.current_epoch))
        return sampler

    def train_dataloader(self) -> DataLoader:
        sampler = self.train_sampler()
        loader = self._loader(
            self.train_set,
            self.batch_size,
            loader_class=ResumableLoader,
            sampler=sampler,
            drop_last=self._drop_last(len(sampler)),
        )
        loader.progress = self._batches_trained
        return loader

    def _batches_trained(self) -> int | None:
        """Batches of the current epoch whose training step ran (Lightning's progress)."""
        if self.trainer is None:
            return None
        return int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int = 0) -> dict:
        """Add the pose maps ``BP1``, ``BP2`` (N, 18, H, W) and part masks ``mask2``
        (N, 11, H, W), computed on the batch's device, when the samples leave them out
        (``with_maps=false``): the same functions and settings as in the data set, batched."""
        if "BP1" in batch:
            return batch
        size = tuple(batch["P1"].shape[-2:])
        kp = torch.stack([batch["kp1"], batch["kp2"]], 1)
        bp = pose.pose_heatmaps(kp, size, sigma=self.dataset_kwargs["sigma"])
        masks = pose.part_masks(batch["kp2"], size, **self.dataset_kwargs["mask_options"])
        return {**batch, "BP1": bp[:, 0], "BP2": bp[:, 1], "mask2": masks}

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the settings that fix the pair sequence."""
        return {k: getattr(self, k) for k in ("pair_seed", "pairs_per_epoch", "seed")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Warn when a resumed run would see a different pair sequence."""
        now = self.state_dict()
        changed = {k: (v, now.get(k)) for k, v in state_dict.items() if v != now.get(k)}
        if changed:
            warnings.warn(
                f"resuming with different data settings {changed} (checkpoint, now): the "
                "training pair sequence differs from the original run",
                stacklevel=2,
            )
