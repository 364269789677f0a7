"""The XingGAN experiments compose with XingGAN's settings and run 2 steps on the real samples."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from personpose.run import train_and_evaluate
from tests.training.conftest import compose_cfg

# experiment -> (data, norm, objective, pool, weights (GAN, L1, perceptual, PSSIM), loss terms on)
EXPERIMENTS = {
    "market_xinggan_pssim": ("market", "batch", "bce", 50, (5, 10, 10, 10), "adv perc pssim"),
    "market_xinggan": ("market", "batch", "bce", 50, (5, 50, 50, None), "adv l1 perc"),
    "deepfashion_xinggan_pssim": (
        "deepfashion",
        "instance",
        "lsgan",
        0,
        (5, 1, 1, 1),
        "adv perc pssim",
    ),
    "deepfashion_xinggan": ("deepfashion", "instance", "lsgan", 0, (5, 50, 1, None), "adv l1 perc"),
}
SCHEDULE = {"market": (500, 200, 87_500), "deepfashion": (200, 100, 37_500)}
TERMS = {"adv": "adversarial", "l1": "l1", "perc": "perceptual", "pssim": "part_ssim"}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_xinggan_experiment_composes_with_its_settings(name):
    data, norm, objective, pool, weights, terms = EXPERIMENTS[name]
    cfg = compose_cfg([f"experiment={name}"])
    assert cfg.model.name == "xinggan" and cfg.model.generator._target_.endswith("XingGANGenerator")
    assert (cfg.data.name, cfg.model.norm, cfg.data.batch_size) == (data, norm, 32)
    assert (cfg.loss.adversarial.objective, cfg.loss.adversarial.pool_size) == (objective, pool)
    on = {TERMS[t] for t in terms.split()}
    assert {t for t in TERMS.values() if cfg.loss[t].enabled} == on
    w = cfg.weights
    assert (w.adversarial, w.l1, w.perceptual) == weights[:3]
    if weights[3] is not None:
        assert w.part_ssim == weights[3]
    niter, decay, steps = SCHEDULE[data]
    assert (cfg.optim.lr_rule.niter, cfg.optim.lr_rule.niter_decay) == (niter, decay)
    assert cfg.trainer.max_steps == steps == (niter + decay) * (4000 // 32)


TEST_PAIRS = 4  # test pairs kept: the 2-step runs check the wiring, not the scores


def _write_pairs(path: Path, header: list[str], pairs: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *pairs])


def _market_root(source: Path, root: Path) -> Path:
    """The Market samples with only the first ``TEST_PAIRS`` test pairs (the rest symlinked)."""
    root.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != "market-pairs-test.csv":
            (root / entry.name).symlink_to(entry)
    with open(source / "market-pairs-test.csv", newline="") as f:
        header, *pairs = list(csv.reader(f))
    _write_pairs(root / "market-pairs-test.csv", header, pairs[:TEST_PAIRS])
    return root


def _split_deepfashion_by_identity(source: Path, root: Path) -> Path:
    """A PATN-layout root from the DeepFashion test samples: every other identity (id = name
    before the last ``_``) becomes training data, the rest test data (its first ``TEST_PAIRS``
    pairs); images are symlinked, not copied."""
    with open(source / "fasion-resize-annotation-test.csv", newline="") as f:
        header, *rows = list(csv.reader(f, delimiter=":"))
    ids = sorted({r[0].rsplit("_", 1)[0] for r in rows})
    train_ids = set(ids[::2])
    split_of = {r[0]: "train" if r[0].rsplit("_", 1)[0] in train_ids else "test" for r in rows}
    with open(source / "fasion-resize-pairs-test.csv", newline="") as f:
        pairs_header, *pairs = list(csv.reader(f))
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        names = [r[0] for r in rows if split_of[r[0]] == split]
        for name in names:
            (root / split / name).symlink_to(source / "test" / name)
        with open(root / f"fasion-resize-annotation-{split}.csv", "w", newline="") as f:
            csv.writer(f, delimiter=":").writerows([header, *(r for r in rows if r[0] in names)])
        kept = [p for p in pairs if split_of.get(p[0]) == split == split_of.get(p[1])]
        assert kept, f"no {split} pairs after the identity split"
        kept = kept if split == "train" else kept[:TEST_PAIRS]
        _write_pairs(root / f"fasion-resize-pairs-{split}.csv", pairs_header, kept)
    return root


def _two_steps(tmp_path: Path, experiment: str, root: Path) -> dict:
    cfg = compose_cfg(
        [
            f"experiment={experiment}",
            "model=xinggan_small",
            "data.batch_size=2",
            f"data.root={root}",
            "data.num_workers=0",
            "data.persistent_workers=false",
            "data.pin_memory=false",
            "data.allow_random_weights=true",
            "data.pairs_per_epoch=8",
            "data.val_max_pairs=2",
            "trainer=cpu",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false",
            "logger=csv",
            "eval.val_metrics=[mask_ssim,l1]",
            "eval.test_metrics=[mask_ssim,l1]",
            "eval.save_outputs=false",
            "eval.grid_samples=2",
        ]
    )
    assert cfg.model.generator._target_.endswith("XingGANGenerator")
    return train_and_evaluate(cfg, tmp_path / experiment, experiment, None)


@pytest.mark.parametrize("experiment", ["market_xinggan_pssim", "market_xinggan"])
def test_market_xinggan_runs_two_steps_on_the_real_samples(tmp_path, real_data, experiment):
    root = _market_root(real_data / "market", tmp_path / "market")
    results = _two_steps(tmp_path, experiment, root)
    assert results["status"] == "complete" and results["max_steps"] == 2
    assert 0 < results["metrics"]["mask_ssim"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["deepfashion_xinggan_pssim", "deepfashion_xinggan"])
def test_deepfashion_xinggan_runs_two_steps_on_the_real_samples(tmp_path, real_data, experiment):
    root = _split_deepfashion_by_identity(real_data / "deepfashion", tmp_path / "fashion")
    results = _two_steps(tmp_path, experiment, root)
    assert results["status"] == "complete" and results["max_steps"] == 2
    assert 0 < results["metrics"]["mask_ssim"] <= 1
