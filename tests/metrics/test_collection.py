"""build_metrics: names and protocols, skipped metrics and their reasons, suite behaviour."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MetricCollection

from personpose.metrics import DEFINITIONS, PROTOCOLS, build_metrics, resolve_names, results_of
from personpose.metrics.protocols import SHORT


def test_protocols_name_defined_metrics():
    assert set(PROTOCOLS["all"]) == set(DEFINITIONS) == set(SHORT)
    for members in PROTOCOLS.values():
        assert set(members) <= set(DEFINITIONS)
    assert resolve_names("gfla")[:2] == ["ssim_gfla", "ssim_256_gfla"]
    assert "ssim_patn" not in resolve_names("gfla")  # PATN's 13 taps are not GFLA's SSIM_256
    assert resolve_names(["patn", "l1"])[-1] == "l1"
    with pytest.raises(ValueError, match="unknown protocol or metric 'ssim'"):
        resolve_names("ssim")


def test_suite_reports_values_and_reasons(market_pairs):
    from tests.metrics.helpers import to01

    src, tgt, kp2 = market_pairs
    suite = build_metrics(["ssim_patn", "mask_ssim", "l1", "gt_part_l1", "ssim_patn_padded"])
    assert set(suite.protocol) == {"ssim_patn", "mask_ssim", "l1", "gt_part_l1", "ssim_patn_padded"}
    x, y = to01(src).float(), to01(tgt).float()
    suite.update(x, y, kp2=torch.from_numpy(kp2), source=x)
    out = suite.compute()
    assert list(out) == ["ssim_patn", "mask_ssim", "l1"]
    assert 0 < out["ssim_patn"] < out["mask_ssim"] < 1
    assert "label2" in suite.skipped["gt_part_l1"]
    assert "256x176" in suite.skipped["ssim_patn_padded"]
    suite.reset()
    suite.update(x, y)  # no keypoints this time
    out = suite.compute()
    assert "mask_ssim" not in out and "kp2" in suite.skipped["mask_ssim"]
    with pytest.raises(TypeError, match="unknown extras"):
        suite.update(x, y, kp1=kp2)


def test_suite_is_a_module_that_accumulates_like_one_batch(market_pairs):
    from tests.metrics.helpers import to01

    src, tgt, kp2 = market_pairs
    x, y, kp = to01(src).float(), to01(tgt).float(), torch.from_numpy(kp2)
    one, two = build_metrics("patn"), build_metrics("patn")
    assert isinstance(one, torch.nn.Module)
    one.update(x, y, kp2=kp)
    two.update(x[:3], y[:3], kp2=kp[:3])
    two.update(x[3:], y[3:], kp2=kp[3:])
    a, b = results_of(one)[0], results_of(two)[0]
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-12) for k in a)
    assert "pckh_movenet" in one.skipped and "movenet_model" in one.skipped["pckh_movenet"]


def test_float32_precision_is_close(market_pairs):
    from tests.metrics.helpers import to01

    src, tgt, kp2 = market_pairs
    x, y, kp = to01(src).float(), to01(tgt).float(), torch.from_numpy(kp2)
    vals = []
    for dtype in (torch.float64, torch.float32):
        suite = build_metrics(["ssim_patn", "ssim_gfla", "mask_ssim"], dtype=dtype)
        suite.update(x, y, kp2=kp)
        vals.append(results_of(suite)[0])
    for k in vals[0]:
        assert vals[0][k] == pytest.approx(vals[1][k], abs=1e-4)


def test_suite_is_a_metric_collection_of_tensors(market_pairs, tmp_path, monkeypatch):
    from tests.metrics.helpers import to01

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no AlexNet weights: lpips_alex skipped

    src, tgt, kp2 = market_pairs
    x, y = to01(src).float(), to01(tgt).float()
    suite = build_metrics(["ssim_patn", "mask_ssim", "l1", "lpips_alex"])
    assert isinstance(suite, MetricCollection) and set(suite) == {"ssim_patn", "mask_ssim", "l1"}
    suite.update(x, y, kp2=torch.from_numpy(kp2))
    out = suite.compute()
    assert list(out) == ["ssim_patn", "mask_ssim", "l1"]
    assert all(
        torch.is_tensor(v) and v.dim() == 0 and v.dtype == torch.float64 for v in out.values()
    )
    values, skipped = results_of(suite)
    assert values == {k: float(v) for k, v in out.items()}
    assert (
        list(skipped) == ["lpips_alex"] and "AlexNet weights unavailable" in skipped["lpips_alex"]
    )


def test_skipped_reason_is_an_attribute_not_a_value(market_pairs):
    from tests.metrics.helpers import to01

    src, tgt, _ = market_pairs
    suite = build_metrics(["l1", "mask_ssim"])
    suite.update(to01(src).float(), to01(tgt).float())  # no keypoints
    assert list(suite.compute()) == ["l1"]
    metric = suite["mask_ssim"]
    assert metric.compute().isnan() and "needs kp2" in metric.skipped["mask_ssim"]
    assert suite.skipped == metric.skipped
    suite.reset()
    assert metric.skipped == {} and suite.skipped == {}


def test_target_without_keypoints_is_excluded_and_counted(market_pairs):
    """Item: a target whose every keypoint is -1 (allowed by the format) has an empty PATN
    mask; mask_ssim leaves it out and counts it instead of turning the mean into NaN."""
    from personpose.metrics.ssim_variants import mask_ssim
    from tests.metrics.helpers import to01

    src, tgt, kp2 = market_pairs
    kp = torch.from_numpy(kp2).clone()
    kp[3] = -1
    x, y = to01(src).float(), to01(tgt).float()
    suite = build_metrics(["ssim_patn", "mask_ssim", "pssim", "l1", "psnr"])
    suite.update(x, y, kp2=kp)
    values, skipped = results_of(suite)
    assert skipped == {} and all(v == v for v in values.values())  # no NaN
    assert suite.excluded == {"mask_ssim": 1}
    assert int(suite["mask_ssim"].count) == len(kp) - 1
    rest = torch.cat([torch.arange(3), torch.arange(4, len(kp))])
    expected = mask_ssim(x[rest], y[rest], kp[rest]).mean()
    assert values["mask_ssim"] == pytest.approx(float(expected), abs=1e-9)


def test_a_value_that_is_not_finite_is_skipped_not_reported(market_pairs):
    """No metric hands a results file NaN: a non-finite value becomes a skip with its reason."""
    from tests.metrics.helpers import to01

    src, tgt, _ = market_pairs
    suite = build_metrics(["l1", "psnr"])
    x = to01(src).float()
    suite.update(x, x)  # every image equals its target: PSNR has no image to average
    suite["l1"].total += float("nan")  # as a metric without a rule for undefined scores would
    values, skipped = results_of(suite)
    assert values == {} and "not finite" in skipped["l1"]
    assert "no image could be scored" in skipped["psnr"] and suite.excluded == {"psnr": len(x)}
