"""GeneratorLoss: the term registry, every term returned (active or not), exact weighted total,
VGG sharing, the adversarial term."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from personpose.losses import perceptual
from personpose.losses.adversarial import PATNAdversarial
from personpose.losses.composite import GeneratorLoss
from personpose.losses.config import LossConfig, WeightsConfig
from personpose.losses.part_ssim import PartSSIMLoss
from personpose.losses.pixel import PixelLoss
from personpose.losses.ssim import SSIMLoss

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
    """fake = 0 and a batch with target P2 = 0.5 in [-1, 1] (0.5 and 0.75 in [0, 1]) and
    constant masks. (Constant images are the worst case for float32 cancellation in
    var = E[x^2] - mu^2, so the exact-value test runs in float64.)"""
    fake = torch.zeros(2, 3, 12, 10, dtype=dtype, requires_grad=True)
    masks = torch.zeros(2, 11, 12, 10, dtype=dtype)
    masks[:, 0] = 0.5
    masks[:, 1] = 0.5  # one constant part; the 9 others missing (s = 1)
    batch = {
        "P2": torch.full((2, 3, 12, 10), 0.5, dtype=dtype),
        "mask2": masks,
        "P1": torch.zeros(2, 3, 12, 10, dtype=dtype),
        "BP2": torch.zeros(2, 18, 12, 10, dtype=dtype),
    }
    return fake, batch


def test_terms_are_a_registry_of_the_loss_modules():
    loss = GeneratorLoss({"ssim": {"enabled": True, "win_size": 5}}, WEIGHTS)
    assert isinstance(loss.terms, nn.ModuleDict)
    assert set(loss.terms) == {"l1", "ssim", "part_ssim", "adversarial"}  # no VGG network
    assert isinstance(loss.terms["l1"], PixelLoss) and isinstance(loss.terms["ssim"], SSIMLoss)
    assert isinstance(loss.terms["part_ssim"], PartSSIMLoss)
    assert loss.terms["ssim"].win_size == 5
    assert isinstance(loss.adversarial, PATNAdversarial) and loss.adversarial.weight == 17.0


def test_cheap_terms_exact_and_total():
    cfg = {"l1": {"enabled": True}, "ssim": {"enabled": True}, "adversarial": {"enabled": False}}
    loss = GeneratorLoss(cfg, WEIGHTS)
    assert loss.active_terms == ("l1", "ssim") and loss.adversarial is None
    assert loss.vgg is None and loss.pretrained_source is None
    fake, batch = _constant_batch(torch.float64)
    out = loss(fake, batch)
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


def test_adversarial_term_with_the_discriminators():
    loss = GeneratorLoss({"l1": {"enabled": True}, "adversarial": {"objective": "lsgan"}}, WEIGHTS)
    fake, batch = _constant_batch()
    seen = {}

    def disc(name, value):
        def d(x):
            seen[name] = x.shape[1]
            return torch.full((x.shape[0], 1, 2, 2), value) + 0 * x.mean()

        return d

    # LSGAN generator term: mean((D - 1)^2) per D, then the mean of the two: (1 + 0.25) / 2
    out = loss(fake, batch, {"appearance": disc("appearance", 0.0), "shape": disc("shape", 0.5)})
    assert seen == {"appearance": 6, "shape": 21}  # cat(img, P1), cat(img, BP2)
    assert out["adversarial"].item() == pytest.approx(0.625)
    assert out["adversarial_w"].item() == pytest.approx(17 * 0.625)
    assert out["total"].item() == pytest.approx(2 * 0.5 + 17 * 0.625)
    out = loss(fake, batch)  # no discriminators this call: left out of the total
    assert "adversarial" not in out and out["total"].item() == pytest.approx(1.0)


def test_vgg_terms_share_one_extraction(no_cache):
    cfg = {
        "perceptual": {"enabled": True},
        "part_ssim": {"enabled": True},
        "adversarial": {"enabled": False},
    }
    with pytest.warns(RuntimeWarning, match="RANDOM VGG-19"):
        loss = GeneratorLoss(cfg, WEIGHTS, allow_random_vgg=True)
    assert loss.pretrained_source.startswith("random (")
    calls = []
    loss.vgg.register_forward_hook(lambda *a: calls.append(1))
    fake, batch = _constant_batch()
    noise = torch.randn(batch["P2"].shape, generator=torch.Generator().manual_seed(0))
    batch["P2"] = (batch["P2"] + 0.1 * noise).clamp(-1, 1)  # seeded: not hostage to other tests
    # training mode: the inactive VGG terms are left for validation
    out = loss(fake, batch)
    assert len(calls) == 2  # fake and target, once each
    assert "style" not in out and "perceptual_ssim" not in out
    for name in ("l1", "ssim", "part_ssim", "perceptual"):
        assert name in out and torch.isfinite(out[name])
    # eval mode (validation): every term, still on one extraction for all three VGG terms
    calls.clear()
    out_eval = loss.eval()(fake, batch)
    assert len(calls) == 2
    for name in ("style", "perceptual_ssim"):
        assert torch.isfinite(out_eval[name]) and out_eval[name].grad_fn is None
    assert out["perceptual"].grad_fn is not None
    expected = 7 * out["perceptual"] + 5 * out["part_ssim"]
    assert out["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out_eval["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(k for k in out if k.endswith("_w")) == {"perceptual_w", "part_ssim_w"}


def test_no_vgg_network_without_active_vgg_term():
    loss = GeneratorLoss({"style": {"enabled": False}, "ssim": {"enabled": True}}, WEIGHTS)
    fake, batch = _constant_batch()
    out = loss.eval()(fake, batch)
    assert loss.vgg is None and not {"perceptual", "style", "perceptual_ssim"} & set(out)


def test_compute_inactive_false():
    loss = GeneratorLoss({"l1": {"enabled": True}, "compute_inactive": False}, WEIGHTS)
    fake, batch = _constant_batch()
    assert set(loss(fake, batch)) == {"l1", "l1_w", "total"}


def test_errors():
    fake, batch = _constant_batch()
    with pytest.raises(ValueError, match="no mask2"):
        GeneratorLoss({"part_ssim": {"enabled": True}}, WEIGHTS)(fake, {"P2": batch["P2"]})
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
    fake, batch = _constant_batch()
    out = loss(fake, batch)
    assert out["l1"].grad_fn is None and out["l1_w"].item() == 0  # logged, not trained
    with pytest.raises(ValueError, match="weight 0"):
        GeneratorLoss(cfg, WeightsConfig())
