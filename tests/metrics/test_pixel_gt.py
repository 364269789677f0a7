"""l1, psnr, gt_part_l1 and gt_fg_ssim: exact values on small inputs and against skimage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from personpose.metrics.gt_part import GtFgSSIM, GtPartL1, gt_fg_ssim, gt_part_l1
from personpose.metrics.pixel import L1, PSNR, l1, psnr
from tests.metrics.helpers import to01


def test_l1_and_psnr_against_numpy_and_skimage(market_pairs):
    src, tgt, _ = market_pairs
    x, y = to01(src), to01(tgt)
    ref_l1 = np.abs(src / 255.0 - tgt / 255.0).mean((1, 2, 3))
    np.testing.assert_allclose(l1(x, y).numpy(), ref_l1, atol=1e-12)
    ref_psnr = [
        peak_signal_noise_ratio(t / 255.0, g / 255.0, data_range=1) for g, t in zip(src, tgt)
    ]
    np.testing.assert_allclose(psnr(x, y).numpy(), ref_psnr, atol=1e-9)
    metric = L1()
    metric.update(x[:3].float(), y[:3].float())
    metric.update(x[3:].float(), y[3:].float())
    assert float(metric.compute()) == pytest.approx(ref_l1.mean(), abs=1e-7)


def test_psnr_leaves_out_identical_images():
    x = torch.rand(3, 3, 8, 8)
    y = x.clone()
    y[1] = 0.5
    metric = PSNR()
    metric.update(x, y)
    assert float(metric.compute()) == pytest.approx(psnr(x[1:2], y[1:2]).item())
    assert int(metric.excluded) == 2


def test_gt_part_l1_by_hand():
    pred = torch.zeros(1, 3, 2, 3)
    target = torch.zeros(1, 3, 2, 3)
    target[0, :, 0, 0] = 0.5  # label 1 (two pixels): errors 0.5 and 0
    target[0, :, 1, :] = 0.2  # label 2 (one pixel) error 0.2; label 0 (background) ignored
    label = torch.tensor([[[1, 1, 0], [0, 2, -1]]])
    values, valid = gt_part_l1(pred, target, label)
    assert valid.item()
    assert values.item() == pytest.approx((0.25 + 0.2) / 2)
    none = torch.zeros(1, 2, 3, dtype=torch.long)
    assert not gt_part_l1(pred, target, none)[1].item()


def test_gt_fg_ssim_is_the_skimage_map_over_the_person(market_pairs):
    src, tgt, _ = market_pairs
    label = np.zeros(src.shape[:3], np.int64)
    label[:, 20:100, 10:50] = 3
    label[:, 30:40, 20:30] = 1
    values, valid = gt_fg_ssim(to01(src), to01(tgt), torch.from_numpy(label))
    for i in range(len(src)):
        _, s = structural_similarity(
            tgt[i],
            src[i],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=src[i].max() - src[i].min(),
            full=True,
        )
        assert values[i].item() == pytest.approx(s.mean(-1)[label[i] > 0].mean(), abs=1e-10)
    assert valid.all()


def test_gt_metrics_skip_without_labels_and_check_shapes():
    x = torch.rand(2, 3, 16, 16)
    for metric in (GtPartL1(), GtFgSSIM()):
        metric.update(x, x)
        assert metric.compute().isnan() and "label2" in metric.skipped[metric.name]
    with pytest.raises(ValueError, match="label2 must be"):
        gt_part_l1(x, x, torch.zeros(2, 8, 8, dtype=torch.long))
    metric = GtFgSSIM()
    metric.update(x, x, label2=torch.ones(2, 16, 16, dtype=torch.long))
    assert float(metric.compute()) == pytest.approx(1.0)
