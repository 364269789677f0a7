"""VGG-19 feature extractor (weight loading, errors, random fallback) and the feature losses."""

from __future__ import annotations

import warnings

import pytest
import torch
from torchvision.models import vgg as tv_vgg

from personpose import pretrained
from personpose.losses import perceptual
from personpose.losses.perceptual import (
    VGG19_LAYERS,
    PerceptualLoss,
    PerceptualSSIMLoss,
    StyleLoss,
    VGGFeatures,
    gram_matrix,
)
from personpose.losses.ssim import ssim


@pytest.fixture()
def no_cache(tmp_path, monkeypatch):
    """An empty torch hub cache, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("PERSONPOSE_OFFLINE", "1")
    monkeypatch.setattr(perceptual, "_warned", set())


@pytest.fixture(scope="module")
def tv_features():
    """torchvision's own vgg19 ``features`` (random init), first 9 layers (to relu2_2)."""
    torch.manual_seed(0)
    return tv_vgg.make_layers(tv_vgg.cfgs["E"])[:9].eval()


@pytest.fixture()
def vgg_file(tmp_path, tv_features):
    """A torchvision-layout state dict (``features.<i>.*`` keys plus a classifier key)."""
    sd = {f"features.{k}": v.clone() for k, v in tv_features.state_dict().items()}
    sd["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path / "vgg19-test.pth"
    torch.save(sd, path)
    return path


def test_layer_names():
    assert VGG19_LAYERS["conv1_1"] == 0 and VGG19_LAYERS["relu1_2"] == 3
    assert VGG19_LAYERS["relu2_2"] == 8 and VGG19_LAYERS["relu3_4"] == 17
    assert VGG19_LAYERS["relu4_4"] == 26 and VGG19_LAYERS["relu5_4"] == 35


def test_loads_torchvision_state_dict_and_matches_torchvision(vgg_file, tv_features, no_cache):
    ext = VGGFeatures(["relu1_2", "relu2_2"], weights_path=str(vgg_file))
    assert ext.pretrained_source == f"path: {vgg_file}"
    assert len(ext.features) == 9  # only the layers up to relu2_2 are built
    assert all(not p.requires_grad for p in ext.parameters())
    x = torch.rand(2, 3, 32, 24) * 2 - 1
    feats = ext(x)
    norm = ((x + 1) / 2 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(feats["relu1_2"], tv_features[:4](norm))
        torch.testing.assert_close(feats["relu2_2"], tv_features(norm))


def test_default_builds_only_relu1_2(vgg_file, no_cache):
    ext = VGGFeatures(weights_path=str(vgg_file))
    assert ext.layers == ["relu1_2"]
    assert sum(p.numel() for p in ext.parameters()) == 3 * 64 * 9 + 64 + 64 * 64 * 9 + 64


def test_missing_weights_raise_with_instructions(no_cache):
    with pytest.raises(pretrained.WeightsUnavailable) as err:
        VGGFeatures(["relu1_2"])
    msg = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in msg and "download" in msg and "allow_random" in msg


def test_missing_explicit_file_raises_even_when_random_allowed(tmp_path, no_cache):
    with pytest.raises(pretrained.WeightsUnavailable, match="does not exist"):
        VGGFeatures(["relu1_2"], weights_path=str(tmp_path / "nope.pth"), allow_random=True)


def test_random_fallback_warns_once_and_is_recorded(no_cache):
    with pytest.warns(RuntimeWarning, match="RANDOM VGG-19"):
        ext = VGGFeatures(["relu1_2"], allow_random=True)
    assert ext.pretrained_source.startswith("random (")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VGGFeatures(["relu1_2"], allow_random=True)  # second time: no warning


def test_wrong_state_dict_is_rejected(tmp_path, no_cache):
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, path)
    with pytest.raises(pretrained.WeightsUnavailable, match="lacks|shape"):
        VGGFeatures(["relu1_2"], weights_path=str(path))


def test_unknown_layer():
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        VGGFeatures(["relu9_9"], allow_random=True)


def test_gram_matrix_exact():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    torch.testing.assert_close(gram_matrix(f), expected)


def test_feature_distances_exact():
    a = {"relu1_2": torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])}
    b = {"relu1_2": torch.tensor([[[[0.0, 2.0]], [[3.0, 1.0]]]])}
    assert PerceptualLoss(["relu1_2"])(a, b).item() == pytest.approx(4 / 4)
    assert PerceptualLoss(["relu1_2"], "mse")(a, b).item() == pytest.approx(10 / 4)
    # Gram(b) = [[4, 2], [2, 10]] / 4; Gram(a) = [[5, 11], [11, 25]] / 4
    assert StyleLoss(["relu1_2"])(a, b).item() == pytest.approx((1 + 9 + 9 + 15) / 16)
    two = {"relu1_2": a["relu1_2"], "relu2_2": a["relu1_2"]}  # sum over layers
    assert PerceptualLoss(["relu1_2", "relu2_2"])(two, {**b, "relu2_2": b["relu1_2"]}).item() == 2
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss(criterion="huber")


def test_perceptual_ssim_distance_is_one_minus_feature_ssim():
    g = torch.Generator().manual_seed(0)
    a = {"relu1_2": torch.rand(2, 5, 12, 10, generator=g) * 3}
    b = {"relu1_2": torch.rand(2, 5, 12, 10, generator=g) * 3}
    d = PerceptualSSIMLoss(["relu1_2"])(a, b)
    expected = 1 - ssim(a["relu1_2"], b["relu1_2"], check_range=False)
    assert d.item() == pytest.approx(expected.item(), abs=1e-6)
    assert PerceptualSSIMLoss(["relu1_2"])(a, a).item() == pytest.approx(0, abs=1e-6)


def test_losses_give_gradient_to_fake_only(vgg_file, no_cache):
    ext = VGGFeatures(["relu1_2"], weights_path=str(vgg_file))
    fake = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    target = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    for loss in (PerceptualLoss(), StyleLoss(), PerceptualSSIMLoss()):
        fake.grad = target.grad = None
        v = loss(ext(fake), ext(target))
        v.backward()
        assert v.item() > 0
        assert fake.grad is not None and torch.isfinite(fake.grad).all()
        assert target.grad is None
        assert loss(ext(fake), ext(fake)).item() == pytest.approx(0, abs=1e-6)
