"""Slow: the small PATN overfits the 100 real Market training pairs in ../shared."""

from __future__ import annotations

import pytest

from personpose.run import train_and_evaluate
from personpose.training.loggers import read_csv_logs

from .conftest import compose_cfg


@pytest.mark.slow
def test_small_patn_overfits_real_market_pairs(tmp_path, real_data):
    market = real_data / "market"
    cfg = compose_cfg(
        [
            "data=market",
            f"data.root={market}",
            # train, val and test all read the 100 training pairs: this is an overfitting check
            "data.files.annotation=market-annotation-train.csv",
            "data.files.pairs=market-pairs-train.csv",
            "data.files.images=train",
            "data.val_split=file",
            "data.require_disjoint=false",
            "data.allow_random_weights=true",
            "data.pairs_per_epoch=100",
            "data.num_workers=0",
            "data.persistent_workers=false",
            "data.pin_memory=false",
            "model=patn_small",
            "weights=market",
            "trainer.max_steps=400",
            "trainer.val_check_interval=200",
            "trainer.log_every_n_steps=5",
            "trainer.enable_progress_bar=false",
            "logger=csv",
            "eval.protocol=patn",
        ]
    )
    results = train_and_evaluate(cfg, tmp_path / "overfit", "overfit", None)
    rows = read_csv_logs(tmp_path / "overfit")
    totals = [float(r["train/g/total"]) for r in rows if r.get("train/g/total")]
    first, last = sum(totals[:10]) / 10, sum(totals[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    assert results["metrics"]["mask_ssim"] > results["baselines"]["copy_source"]["mask_ssim"]
