"""GeneratorLoss: every term returned (active or not), exact weighted total, VGG sharing."""

from __future__ import annotations

import pytest
import torch

from personpose.losses import perceptual
from personpose.losses.composite import GeneratorLoss
from personpose.losses.config import LossConfig, WeightsConfig

C1, C2 = 0.01**2, 0.03**2
WEIGHTS = {
    "l1": 2.0,
    "ssim": 3.0,
    "part_ssim": 5.0,
    "perceptual": 7.0,
    "style": 11.0,
    "perceptual_ssim": 13.0,
    "adversarial": 17.0,
}


@pytest.fixture()
def no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("PERSONPOSE_OFFLINE", "1")
    monkeypatch.setattr(perceptual, "_warned", set())


def _lum(a: float, b: float) -> float:
    return (2 * a * b + C1) / (a * a + b * b + C1)


def _constant_batch(dtype=torch.float32):
    """fake = 0 and target = 0.5 in [-1, 1] (0.5 and 0.75 in [0, 1]); constant masks.
    (Constant images are the worst case for float32 cancellation in var = E[x^2] - mu^2, so
    the exact-value test runs in float64.)"""
    fake = torch.zeros(2, 3, 12, 10, dtype=dtype, requires_grad=True)
    target = torch.full((2, 3, 12, 10), 0.5, dtype=dtype)
    masks = torch.zeros(2, 11, 12, 10, dtype=dtype)
    masks[:, 0] = 0.5
    masks[:, 1] = 0.5  # one constant part; the 9 others missing (s = 1)
    return fake, target, masks


def test_cheap_terms_exact_and_total():
    cfg = {"l1": {"enabled": True}, "ssim": {"enabled": True}, "adversarial": {"enabled": False}}
    loss = GeneratorLoss(cfg, WEIGHTS)
    assert loss.active_terms == ("l1", "ssim") and not loss.needs_discriminators
    assert loss.extractor is None and loss.pretrained_source is None
    fake, target, masks = _constant_batch(torch.float64)
    out = loss(fake, target, masks)
    assert set(out) == {"l1", "ssim", "part_ssim", "l1_w", "ssim_w", "total"}
    ssim_raw = 1 - _lum(0.5, 0.75)  # constant images: only the luminance factor remains
    f = (_lum(0.5, 0.75) + 9) / 10
    b = _lum(0.25, 0.375)  # background 0.5 * x
    assert out["l1"].item() == pytest.approx(0.5)
    assert out["ssim"].item() == pytest.approx(ssim_raw, abs=1e-12)
    assert out["part_ssim"].item() == pytest.approx(1 - (f + b) / 2, abs=1e-6)
    assert out["part_ssim"].grad_fn is None  # inactive: computed without gradient
    assert out["total"].item() == pytest.approx(2 * 0.5 + 3 * ssim_raw, abs=1e-11)
    out["total"].backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()


def test_adversarial_term_passed_in():
    loss = GeneratorLoss({"l1": {"enabled": True}}, WEIGHTS)  # adversarial on by default
    assert loss.needs_discriminators
    fake, target, masks = _constant_batch()
    out = loss(fake, target, masks, adversarial=torch.tensor(0.25))
    assert out["adversarial"].item() == 0.25
    assert out["adversarial_w"].item() == pytest.approx(17 * 0.25)
    assert out["total"].item() == pytest.approx(2 * 0.5 + 17 * 0.25)
    out = loss(fake, target, masks)  # not passed this step: left out of the total
    assert "adversarial" not in out and out["total"].item() == pytest.approx(1.0)


def test_vgg_terms_share_one_extraction(no_cache):
    cfg = {
        "perceptual": {"enabled": True},
        "part_ssim": {"enabled": True},
        "adversarial": {"enabled": False},
        "vgg": {"allow_random": True},
    }
    with pytest.warns(RuntimeWarning, match="RANDOM VGG-19"):
        loss = GeneratorLoss(cfg, WEIGHTS)
    assert loss.pretrained_source.startswith("random (")
    calls = []
    loss.extractor.register_forward_hook(lambda *a: calls.append(1))
    fake, target, masks = _constant_batch()
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    target = (target + 0.1 * noise).clamp(-1, 1)  # seeded: not hostage to the tests run before
    out = loss(fake, target, masks)
    assert len(calls) == 2  # fake and target, once each, for all three VGG terms
    for name in ("l1", "ssim", "part_ssim", "perceptual", "style", "perceptual_ssim"):
        assert name in out and torch.isfinite(out[name])
    assert out["perceptual"].grad_fn is not None
    assert out["style"].grad_fn is None and out["perceptual_ssim"].grad_fn is None
    expected = 7 * out["perceptual"] + 5 * out["part_ssim"]
    assert out["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(k for k in out if k.endswith("_w")) == {"perceptual_w", "part_ssim_w"}


def test_no_vgg_network_without_active_vgg_term():
    loss = GeneratorLoss({"style": {"enabled": False}, "ssim": {"enabled": True}}, WEIGHTS)
    fake, target, masks = _constant_batch()
    out = loss(fake, target, masks)
    assert not {"perceptual", "style", "perceptual_ssim"} & set(out)


def test_compute_inactive_false():
    loss = GeneratorLoss({"l1": {"enabled": True}, "compute_inactive": False}, WEIGHTS)
    fake, target, masks = _constant_batch()
    assert set(loss(fake, target, masks)) == {"l1", "l1_w", "total"}


def test_errors():
    fake, target, _ = _constant_batch()
    with pytest.raises(ValueError, match="no masks"):
        GeneratorLoss({"part_ssim": {"enabled": True}}, WEIGHTS)(fake, target)
    with pytest.raises(ValueError, match="no loss term"):
        GeneratorLoss({"adversarial": {"enabled": False}}, WEIGHTS)
    with pytest.raises(Exception, match="enabeld"):
        GeneratorLoss({"part_ssim": {"enabeld": True}}, WEIGHTS)
    with pytest.raises(Exception, match="stlye"):
        GeneratorLoss({"l1": {"enabled": True}}, {"stlye": 1.0})
    with pytest.raises(ValueError, match="loss.adversarial.objective"):
        GeneratorLoss({"adversarial": {"objective": "wgan"}}, WEIGHTS)
    with pytest.raises(ValueError, match="loss.perceptual.layers"):
        GeneratorLoss({"perceptual": {"enabled": True, "layers": ["relu7_1"]}}, WEIGHTS)


def test_accepts_dataclasses_and_warns_on_zero_weight():
    cfg = LossConfig()
    cfg.l1.enabled = True
    with pytest.warns(UserWarning, match="weight 0"):
        loss = GeneratorLoss(cfg, WeightsConfig(adversarial=5.0))
    assert loss.active_terms == ("l1", "adversarial")
