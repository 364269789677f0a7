"""pSSIM as a metric: the study authors' golden values, per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personpose.metrics.part_ssim_metric import PartSSIM, pssim


@pytest.fixture(scope="module")
def golden(golden_dir):
    pair = np.load(golden_dir / "pair_128x64.npz")
    masks = np.load(golden_dir / "masks_128x64.npz")
    x = (torch.from_numpy(pair["X"]).double() + 1) / 2
    y = (torch.from_numpy(pair["Y"]).double() + 1) / 2
    return x, y, torch.from_numpy(masks["keypoints_yx"]), pair


def test_per_image_values_equal_the_reference(golden):
    x, y, kp, pair = golden
    ref = pair["fpart_bssim_per_sample"]
    np.testing.assert_allclose(pssim(x, y, kp, dtype=torch.float64).numpy(), ref, atol=5e-8)
    np.testing.assert_allclose(pssim(x.float(), y.float(), kp).numpy(), ref, atol=1e-6)


def test_metric_mean_and_exclude_mode(golden):
    x, y, kp, pair = golden
    metric = PartSSIM()
    metric.update(x.float(), y.float(), kp2=kp)
    assert float(metric.compute()) == pytest.approx(float(pair["fpart_bssim_float64"]), abs=1e-6)
    # the second pose misses joints: excluding its empty parts lowers its score, not the first's
    faithful, exclude = pssim(x, y, kp), pssim(x, y, kp, missing_parts="exclude")
    assert exclude[0] == pytest.approx(faithful[0].item(), abs=1e-12)
    assert exclude[1] < faithful[1]
    with pytest.raises(ValueError, match=r"pssim: missing_parts must be one of .*'drop'"):
        PartSSIM(missing_parts="drop")
