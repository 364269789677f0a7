"""experiments/synth_stats.py: the copy-source figures it compares the synthetic set with."""

from __future__ import annotations

import pytest

from personpose.data.annotations import read_annotations, read_pairs
from tests.conftest import load_experiment


def test_copy_source_scores_reproduce_the_real_market_figures(real_data):
    """docs/data.md#pair-statistics: copy-source on the 100 real Market test pairs, under
    PATN's own rules, reads SSIM 0.148, mask-SSIM 0.7163 and L1 0.194 on [0, 1] images."""
    stats = load_experiment("synth_stats")
    market = real_data / "market"
    annotations = read_annotations(market / "market-annotation-test.csv")
    pairs = read_pairs(market / "market-pairs-test.csv")
    scores = stats.copy_source_scores(market / "test", annotations, pairs)
    assert scores["pairs"] == 100
    assert scores["ssim"] == pytest.approx(0.148, abs=5e-4)
    assert scores["mask_ssim"] == pytest.approx(0.7163, abs=5e-5)
    assert scores["l1"] == pytest.approx(0.194, abs=5e-4)
