"""FID: closed forms, torchmetrics agreement, reference caching; Inception Score arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn

from personpose.metrics import build_metrics
from personpose.metrics.fid import (
    FID,
    feature_statistics,
    frechet_distance,
    keep_full_batches,
)
from personpose.metrics.inception_score import inception_score


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.5])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_general_gaussians_equals_sqrtm_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_closed_form():
    # N(0, 1) vs N(3, 4): (0 - 3)^2 + (1 - 2)^2 = 10
    assert frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10.0)


class TinyFeatures(nn.Module):
    """A small random feature extractor with InceptionFeatures' interface."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3)
        self.num_features = 8

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


class Adapter(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x), None


def test_fid_agrees_with_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    feats = TinyFeatures().eval()
    torch.manual_seed(1)
    real = torch.rand(40, 3, 16, 16)
    fake = (torch.rand(40, 3, 16, 16) * 0.8 + 0.1).clamp(0, 1)
    ref_mu, ref_sigma = feature_statistics(feats(real).detach().double().numpy())
    ours = FID(Adapter(feats), {"mu": ref_mu, "sigma": ref_sigma})
    for i in range(0, 40, 16):
        ours.update(fake[i : i + 16], fake[i : i + 16])
    value = float(ours.compute())

    tm = FrechetInceptionDistance(feature=feats, normalize=True)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    assert value == pytest.approx(float(tm.compute()), rel=1e-5)
    assert value > 0


def test_drop_last_keeps_whole_batches_of_64():
    assert keep_full_batches(130) == 128 and keep_full_batches(63) == 0
    feats = TinyFeatures().eval()
    ref = feature_statistics(feats(torch.rand(10, 3, 8, 8)).detach().double().numpy())
    metric = FID(Adapter(feats), {"mu": ref[0], "sigma": ref[1]}, drop_last=True)
    metric.update(torch.rand(20, 3, 8, 8), torch.rand(20, 3, 8, 8))
    assert metric.compute().isnan() and "usable" in metric.skipped["fid_tv"]


def test_inception_score_arithmetic():
    n, c = 100, 10
    uniform = np.full((n, c), 1.0 / c)
    assert inception_score(uniform)[0] == pytest.approx(1.0)
    # every split holds one-hot predictions over 5 classes, equally often: IS = 5
    onehot = np.eye(c)[np.arange(n) % 5] * (1 - 1e-12) + 1e-12 / c
    mean, std = inception_score(onehot)
    assert mean == pytest.approx(5.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="splits"):
        inception_score(uniform[:5])


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=True)
    path = tmp_path_factory.mktemp("weights") / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


class StubInception(nn.Module):
    """InceptionFeatures' interface on a tiny network: preprocess, from_preprocessed, net.fc."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Module()
        self.net.fc = nn.Linear(3, 5)

    def preprocess(self, x):
        return torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear")

    def from_preprocessed(self, x):
        pool = x.mean((2, 3))
        return pool, self.net.fc(pool)

    def forward(self, x):
        return self.from_preprocessed(self.preprocess(x))


def _write_images(folder, n, seed=0):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )


def test_reference_statistics_are_cached_by_folder_contents(tmp_path):
    from personpose.metrics.fid import reference_statistics

    _write_images(tmp_path / "ref", 70)
    stub = StubInception()
    first = reference_statistics(tmp_path / "ref", stub, cache_dir=tmp_path / "c")
    assert not first["cached"] and first["n"] == 70
    again = reference_statistics(tmp_path / "ref", stub, cache_dir=tmp_path / "c")
    assert again["cached"] and again["key"] == first["key"]
    np.testing.assert_allclose(again["sigma"], first["sigma"])
    dropped = reference_statistics(tmp_path / "ref", stub, cache_dir=tmp_path / "c", drop_last=True)
    assert dropped["n"] == 64 and dropped["key"] != first["key"]
    (tmp_path / "ref" / "000.png").unlink()
    changed = reference_statistics(tmp_path / "ref", stub, cache_dir=tmp_path / "c")
    assert changed["key"] != first["key"] and changed["n"] == 69
    assert len(list((tmp_path / "c").glob("fid_ref_*.npz"))) == 3


def test_inception_score_metric_masks_with_target_keypoints():
    from personpose.metrics.inception_score import InceptionScore

    stub = StubInception()
    x = torch.rand(12, 3, 32, 24)
    kp = torch.full((12, 18, 2), -1)
    plain, masked = InceptionScore(stub), InceptionScore(stub, masked=True)
    plain.update(x, x)
    masked.update(x, x, kp2=kp)  # no joint: the mask is empty, every image black
    probs = torch.softmax(stub(x)[1].double(), 1).detach().numpy()
    assert float(plain.compute()["is_tv"]) == pytest.approx(inception_score(probs)[0], rel=1e-9)
    black = torch.softmax(stub(torch.zeros_like(x))[1].double(), 1).detach().numpy()
    assert float(masked.compute()["mask_is_tv"]) == pytest.approx(inception_score(black)[0])
    missing = InceptionScore(stub, masked=True)
    missing.update(x, x)
    assert set(missing.compute()) == {"mask_is_tv"} and "kp2" in missing.skipped["mask_is_tv"]


@pytest.mark.slow
def test_inception_metrics_with_reference_cache(tmp_path, random_inception):
    ref_dir = tmp_path / "train"
    ref_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 24, 3), dtype=np.uint8)).save(
            ref_dir / f"{i}.png"
        )
    cache = tmp_path / "cache"
    kwargs = dict(
        pretrained={"inception_v3": str(random_inception)},
        fid_reference=ref_dir,
        fid_cache_dir=cache,
    )
    suite = build_metrics(["fid_tv", "is_tv", "mask_is_tv"], **kwargs)
    assert not suite.skipped, suite.skipped
    cached = list(cache.glob("fid_ref_*.npz"))
    assert len(cached) == 1
    assert "4 images" in suite.protocol["fid_tv"] and "every image used" in suite.protocol["fid_tv"]
    x = torch.rand(10, 3, 32, 24)
    kp = torch.full((10, 18, 2), -1)
    kp[:, 1] = torch.tensor([10, 12])
    suite.update(x, x, kp2=kp)
    out = suite.compute()
    assert out["fid_tv"] >= 0 and out["is_tv"] >= 1 and out["mask_is_tv"] >= 1
    assert set(out) == {"fid_tv", "is_tv", "is_tv_std", "mask_is_tv", "mask_is_tv_std"}
    # a second build reads the cache; a changed folder gets a new key
    again = build_metrics(["fid_tv"], **kwargs)
    assert again.info["fid_reference"]["n"] == 4
    (ref_dir / "0.png").unlink()
    build_metrics(["fid_tv"], **kwargs)
    assert len(list(cache.glob("fid_ref_*.npz"))) == 2


def test_fid_skipped_without_reference_or_weights(tmp_path, monkeypatch, random_inception):
    suite = build_metrics(["fid_tv"], pretrained={"inception_v3": str(random_inception)})
    assert "reference" in suite.skipped["fid_tv"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    suite = build_metrics(["fid_tv", "is_tv"])
    assert "pretrained.inception_v3" in suite.skipped["is_tv"]
