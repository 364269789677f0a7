"""PersonPoseDataModule: configs, splits, loaders, epoch-seeded training draws and resume."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import Dataset

from personpose.data.annotations import DataFormatError
from personpose.data.datamodule import PersonPoseDataModule, build_datamodule
from personpose.data.splits import person_id
from tests.data.test_dataset import TINY, write_patn_folder

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
CONFIGS = ("synthetic", "synthetic_fashion", "market", "deepfashion", "deepfashion256")


def _compose(name: str, overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


@pytest.fixture
def fake_synth(monkeypatch, tmp_path):
    """Stand-in for personpose.data.synth (test only): writes a tiny folder, records calls."""
    calls = []

    def ensure_dataset(root, preset, ids, seed, **options):
        calls.append({"root": Path(root), "preset": preset, "ids": ids, "seed": seed, **options})
        folder = Path(root) / f"{preset}-{ids}-{seed}"
        if not folder.exists():
            write_patn_folder(folder, size=TINY)
        return folder

    module = types.ModuleType("personpose.data.synth")
    module.ensure_dataset = ensure_dataset
    monkeypatch.setitem(sys.modules, "personpose.data.synth", module)
    return calls


def _small(root, **kw) -> PersonPoseDataModule:
    args = dict(layout="synth", image_size=TINY, batch_size=2, pairs_per_epoch=6, seed=0)
    args.update(kw)
    return PersonPoseDataModule(root, **args)


def test_configs(monkeypatch):
    monkeypatch.setenv("PERSONPOSE_DATA", "/cache/here")
    expected = {
        "synthetic": ([128, 64], True, "market"),
        "synthetic_fashion": ([256, 176], True, "fashion"),
        "market": ([128, 64], False, None),
        "deepfashion": ([256, 176], False, None),
        "deepfashion256": ([256, 256], False, None),
    }
    for name in CONFIGS:
        cfg = _compose(name)
        size, allow, preset = expected[name]
        assert cfg._target_ == "personpose.data.datamodule.PersonPoseDataModule"
        assert list(cfg.image_size) == size and cfg.allow_random_weights is allow, name
        assert cfg.pairs_per_epoch == 4000 and cfg.sigma == 6.0
        if preset:
            assert cfg.synth.preset == preset and cfg.root == "/cache/here/synth"
        else:
            assert cfg.synth is None and cfg._get_node("root")._is_missing()
            assert cfg.val_split == "carve"
    monkeypatch.delenv("PERSONPOSE_DATA")
    assert _compose("synthetic").root == "~/.cache/personpose/synth"
    assert _compose("deepfashion256").files.annotation == "fasion-annotation-{split}.csv"
    # every config key is a constructor argument
    import inspect

    params = set(inspect.signature(PersonPoseDataModule).parameters)
    for name in CONFIGS:
        assert set(_compose(name)) - {"_target_"} <= params, name


def test_synthetic_config_generates_through_ensure_dataset(fake_synth, tmp_path):
    cfg = _compose("synthetic", [f"root={tmp_path}/cache", "image_size=[16,8]", "synth.ids=3"])
    dm = build_datamodule(cfg)
    assert dm.allow_random_weights is True
    assert instantiate_plain(cfg).allow_random_weights is True  # plain instantiate works too
    dm.prepare_data()
    dm.setup("fit")
    assert fake_synth[0] == {"root": tmp_path / "cache", "preset": "market", "ids": 3, "seed": 0}
    assert dm.data_dir == tmp_path / "cache/market-3-0"
    assert dm.tables()["val"].pairs.path == dm.data_dir / "synth-pairs-val.csv"  # val from file
    train = dm.tables()["train"]
    assert (len(train.pairs), len(train.pairs.names()), train.label_dir is not None) == (
        18,
        9,
        True,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["P1"].shape == (8, 3, 16, 8) and batch["label2"].shape == (8, 16, 8)
    val = next(iter(dm.val_dataloader()))
    assert val["name1"][:2] == ["0004_0.png", "0004_0.png"]
    assert dm.steps_per_epoch_for(1) == 4000 // 8


def instantiate_plain(cfg):
    from hydra.utils import instantiate

    return instantiate(cfg, _convert_="all")


def _val_ids(dm) -> set[str]:
    return {person_id(n, "market") for pair in dm.tables()["val"].pairs for n in pair}


def test_real_market_val_carved_from_train_identities(real_data):
    cfg = _compose(
        "market",
        [f"root={real_data / 'market'}", "num_workers=0", "pin_memory=false", "val_fraction=0.2"],
    )
    dm = build_datamodule(cfg)
    dm.setup("fit")
    dm.setup("test")
    tables = dm.tables()
    ids = {
        split: {person_id(n, "market") for pair in t.pairs for n in pair}
        for split, t in tables.items()
    }
    assert ids["val"] and ids["train"] and ids["test"]
    assert not (ids["val"] & ids["train"]) and not (ids["val"] & ids["test"])
    assert not (ids["train"] & ids["test"])
    assert tables["val"].pairs.path == tables["train"].pairs.path  # carved from train
    assert len(tables["train"].pairs) + len(tables["val"].pairs) == 100
    assert len(dm.test_set) == 100 and len(dm.train_set) == 4000
    # seeded: the same seed gives the same identities, another seed others
    again = build_datamodule(cfg)
    again.setup("fit")
    assert _val_ids(again) == ids["val"]
    other = build_datamodule(
        _compose("market", [f"root={real_data / 'market'}", "seed=1", "val_fraction=0.2"])
    )
    other.setup("fit")
    assert _val_ids(other) != ids["val"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["P1"].shape == (8, 3, 128, 64) and "label2" not in batch
    assert batch["mask2"].shape == (8, 11, 128, 64)
    test = next(iter(dm.test_dataloader()))
    assert test["name1"][0] == "0001_c3s1_000551_03.jpg"
    capped = build_datamodule(
        _compose("market", [f"root={real_data / 'market'}", "val_fraction=0.2", "val_max_pairs=3"])
    )
    capped.setup("validate")
    kept = capped.val_set
    assert len(kept) == 3
    order = [tables["val"].pairs.pairs.index(kept.pair_names(i)) for i in range(3)]
    assert order == sorted(order)  # a subset in file order


def test_real_deepfashion_config(real_data):
    cfg = _compose(
        "deepfashion", [f"root={real_data / 'deepfashion'}", "num_workers=0", "pin_memory=false"]
    )
    dm = build_datamodule(cfg)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["P1"].shape == (4, 3, 256, 176)
    with pytest.raises(
        DataFormatError, match="no 'train' split; expected fasion-resize-annotation"
    ):
        dm.setup("fit")


def test_missing_root_and_shared_identities(tmp_path):
    with pytest.raises(DataFormatError, match="data folder does not exist; set data.root"):
        _small(tmp_path / "absent").setup("fit")
    root = write_patn_folder(
        tmp_path / "leak", {"train": ["0001", "0002"], "test": ["0002"]}, labels=False
    )
    with pytest.raises(ValueError, match="share 1 person identities \\(e.g. 0002\\)"):
        _small(root, val_split="carve", val_fraction=0.4).setup("fit")
    with pytest.raises(DataFormatError, match="synth-annotation-val.csv"):
        _small(root, val_split="file").setup("fit")


class Recorder(L.LightningModule):
    """Records the (source, target) names of every training batch, per epoch."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list] = {}

    def training_step(self, batch, batch_idx):
        self.seen.setdefault(self.current_epoch, []).extend(zip(batch["name1"], batch["name2"]))
        return (self.w - 1).pow(2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SaveEveryStep(L.Callback):
    """Checkpoint after every training batch (as the project's periodic checkpoint does)."""

    def __init__(self, dirpath: Path):
        self.dirpath = dirpath

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        trainer.save_checkpoint(
            self.dirpath / f"step{trainer.global_step}.ckpt", weights_only=False
        )


def _fit(dm, epochs, ckpt_dir=None, ckpt_path=None, max_steps=-1, callbacks=()):
    callbacks = list(callbacks)
    if ckpt_dir is not None:
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True))
    root_dir = Path(dm.root).parent  # never the working directory
    trainer = L.Trainer(
        max_epochs=epochs,
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=ckpt_dir is not None,
        default_root_dir=root_dir,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    model = Recorder()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model.seen


def test_lightning_epochs_resume_and_persistent_workers(tmp_path):
    root = write_patn_folder(tmp_path / "data", labels=False)
    full = _fit(_small(root), 3)
    assert sorted(full) == [0, 1, 2] and all(len(v) == 6 for v in full.values())
    assert full[0] != full[1] != full[2]
    ds = _small(root)
    ds.setup("fit")
    for epoch, seen in full.items():  # position i of epoch e is the draw (seed, e, i)
        assert seen == [ds.train_set.pair_names(int(k)) for k in ds.train_set.epoch_indices(epoch)]
    # stop after 2 epochs, resume for the third: the same pairs as the uninterrupted run
    first = _fit(_small(root), 2, ckpt_dir=tmp_path / "ckpt")
    assert first == {0: full[0], 1: full[1]}
    resumed = _fit(_small(root), 3, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert resumed == {2: full[2]}
    # persistent workers see each new epoch (the epoch travels with every index)
    workers = _fit(_small(root, num_workers=2, persistent_workers=True), 3)
    assert workers == full
    # another pair seed, another sequence
    assert _fit(_small(root, pair_seed=5), 1)[0] != full[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_mid_epoch_resume_continues_the_sequence(tmp_path, workers):
    """Checkpoints taken inside an epoch (3 batches per epoch here) resume with the very
    batches the uninterrupted run saw next (the train loader is Lightning-stateful)."""
    root = write_patn_folder(tmp_path / "data", labels=False)
    kw = dict(num_workers=workers, persistent_workers=workers > 0, with_maps=False)
    full = _fit(_small(root, **kw), -1, max_steps=9, callbacks=[SaveEveryStep(tmp_path)])
    flat = [(e, p) for e in sorted(full) for p in full[e]]
    assert len(flat) == 18
    for step in (1, 2, 4) if workers == 0 else (4,):
        resumed = _fit(
            _small(root, **kw), -1, max_steps=9, ckpt_path=str(tmp_path / f"step{step}.ckpt")
        )
        assert [(e, p) for e in sorted(resumed) for p in resumed[e]] == flat[2 * step :], step


def test_loader_state_without_trainer(tmp_path):
    root = write_patn_folder(tmp_path / "data", labels=False)
    dm = _small(root, pairs_per_epoch=6, batch_size=2)
    loader = dm.train_dataloader()
    it = iter(loader)
    first = next(it)
    assert loader.state_dict() == {"epoch": 0, "batches": 1}
    rest = [b["name1"] for b in it]
    other = _small(root, pairs_per_epoch=6, batch_size=2).train_dataloader()
    other.load_state_dict({"epoch": 0, "batches": 1})
    assert [b["name1"] for b in other] == rest
    assert len(list(other)) == 3  # the skip applies to one pass only
    assert first["name1"] != rest[0]


def test_reload_dataloaders_keeps_the_sequence(tmp_path):
    root = write_patn_folder(tmp_path / "data", labels=False)
    plain = _fit(_small(root), 2)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        reload_dataloaders_every_n_epochs=1,
        default_root_dir=tmp_path,
    )
    model = Recorder()
    trainer.fit(model, datamodule=_small(root))
    assert model.seen == plain


class _RandomItems(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return float(np.random.random())  # noqa: NPY002 - the global RNG is what is tested


def test_worker_seeding_is_deterministic(tmp_path):
    root = write_patn_folder(tmp_path / "data", labels=False)

    def draw(seed):
        dm = _small(root, num_workers=2, pair_seed=seed)
        return [float(v) for b in dm._loader(_RandomItems(), 2, shuffle=False) for v in b]

    a = draw(3)
    assert a == draw(3) and a != draw(4)
    assert len(set(a)) == 4  # the two workers do not share a stream


def test_steps_per_epoch_and_drop_last(tmp_path):
    root = write_patn_folder(tmp_path / "data", labels=False)
    dm = _small(root, pairs_per_epoch=7, batch_size=2)
    assert dm.steps_per_epoch_for(1) == 3 and len(dm.train_dataloader()) == 3
    assert dm.steps_per_epoch_for(2) == 2  # 4 positions per rank (padded), batches of 2
    keep = _small(root, pairs_per_epoch=7, batch_size=2, drop_last=False)
    assert keep.steps_per_epoch_for(1) == 4 and len(keep.train_dataloader()) == 4
    tiny = _small(root, pairs_per_epoch=1, batch_size=2)
    assert tiny.steps_per_epoch_for(1) == 1 and len(tiny.train_dataloader()) == 1
    every = _small(root, pairs_per_epoch=None)
    every.setup("fit")
    assert len(every.train_set) == 18


@pytest.mark.slow
def test_real_synthetic_generator(tmp_path):
    """The real personpose.data.synth feeds the same loader."""
    cfg = _compose("synthetic", [f"root={tmp_path}", "synth.ids=4", "pairs_per_epoch=4"])
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["P1"].shape[1:] == (3, 128, 64) and "label2" in batch


def test_train_sampler_follows_the_trainer(tmp_path):
    root = write_patn_folder(tmp_path / "data", labels=False)
    shards = []
    for rank in (0, 1):
        dm = _small(root, pairs_per_epoch=6)
        dm.trainer = types.SimpleNamespace(world_size=2, global_rank=rank, current_epoch=3)
        shards.append(list(dm.train_sampler()))
        assert dm.steps_per_epoch_for(dm.world_size) == 1
    assert shards == [[(3, 0), (3, 2), (3, 4)], [(3, 1), (3, 3), (3, 5)]]
