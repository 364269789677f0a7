"""LPIPS: the arithmetic by hand, against a random AlexNet trunk the test saves."""

from __future__ import annotations

from pathlib import Path

import lpips
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import alexnet

from personpose.metrics import build_metrics

RELU_OUTPUTS = (1, 4, 7, 9, 11)  # torchvision alexnet.features indices after each ReLU
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1)  # v0.1 scaling layer
SCALE = torch.tensor([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1)


@pytest.fixture(scope="module")
def random_alexnet(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = alexnet(weights=None)
    path = tmp_path_factory.mktemp("weights") / "alexnet-random.pth"
    torch.save(net.state_dict(), path)
    return path


def by_hand(x01: torch.Tensor, y01: torch.Tensor, weights: Path, version: str) -> torch.Tensor:
    """Per-image LPIPS: unit-normalised ReLU features, squared differences, the package's
    linear weights (1x1), spatial mean, sum over the 5 layers."""
    features = alexnet(weights=None).features
    features.load_state_dict(
        {
            k.removeprefix("features."): v
            for k, v in torch.load(weights).items()
            if k.startswith("features.")
        }
    )
    features.eval()
    lin_path = Path(lpips.__file__).parent / "weights" / f"v{version}" / "alex.pth"
    lin = torch.load(lin_path, map_location="cpu")
    x, y = x01 * 2 - 1, y01 * 2 - 1
    if version == "0.1":
        x, y = (x - SHIFT) / SCALE, (y - SHIFT) / SCALE
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    layer = 0
    hx, hy = x, y
    with torch.no_grad():
        for i, module in enumerate(features):
            hx, hy = module(hx), module(hy)
            if i in RELU_OUTPUTS:
                nx = hx / (hx.square().sum(1, keepdim=True).sqrt() + 1e-10)
                ny = hy / (hy.square().sum(1, keepdim=True).sqrt() + 1e-10)
                w = lin[f"lin{layer}.model.1.weight"]  # (1, C, 1, 1)
                d = F.conv2d((nx - ny).square(), w)  # sum_c w_c (nx_c - ny_c)^2
                total += d.mean((1, 2, 3)).double()
                layer += 1
    assert layer == 5
    return total


@pytest.mark.parametrize("name,version", [("lpips_alex", "0.1"), ("lpips_alex_v00", "0.0")])
def test_lpips_equals_hand_arithmetic(random_alexnet, name, version):
    torch.manual_seed(1)
    x = torch.round(torch.rand(3, 3, 64, 64) * 255) / 255
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    y = torch.round(y * 255) / 255
    suite = build_metrics([name], pretrained={"alexnet": str(random_alexnet)})
    assert name in suite and not suite.skipped
    suite.update(x, y)
    value = float(suite.compute()[name])
    expected = by_hand(x, y, random_alexnet, version).mean().item()
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert value > 0
    assert "alexnet-random.pth" in suite.info["alexnet_weights"]


def test_lpips_of_identical_images_is_zero(random_alexnet):
    x = torch.rand(2, 3, 64, 64)
    suite = build_metrics(["lpips_alex"], pretrained={"alexnet": str(random_alexnet)})
    suite.update(x, x)
    assert float(suite.compute()["lpips_alex"]) == pytest.approx(0.0, abs=1e-7)


def test_lpips_skipped_with_reason_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PERSONPOSE_OFFLINE", "1")
    suite = build_metrics(["lpips_alex", "lpips_alex_v00", "l1"])
    assert set(suite.skipped) == {"lpips_alex", "lpips_alex_v00"}
    assert "pretrained.alexnet" in suite.skipped["lpips_alex"]
    suite.update(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert set(suite.compute()) == {"l1"}
    assert not list(tmp_path.rglob("*.pth"))  # nothing downloaded


def test_wrong_state_dict_is_an_error(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(KeyError, match="features.0.bias"):
        build_metrics(["lpips_alex"], pretrained={"alexnet": str(path)})


def test_deterministic(random_alexnet):
    """Two suites from the same weights give the same value (eval mode, no dropout)."""
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    vals = []
    for _ in range(2):
        suite = build_metrics(["lpips_alex"], pretrained={"alexnet": str(random_alexnet)})
        suite.update(x, y)
        vals.append(float(suite.compute()["lpips_alex"]))
    assert vals[0] == vals[1]


def test_pretrained_networks_stay_out_of_a_parent_state_dict(random_alexnet):
    """A LightningModule holding the suite must not checkpoint the LPIPS trunk."""
    parent = torch.nn.Module()
    parent.head = torch.nn.Linear(2, 2)
    parent.val_metrics = build_metrics(["lpips_alex"], pretrained={"alexnet": str(random_alexnet)})
    assert list(parent.state_dict()) == ["head.weight", "head.bias"]
    parent.load_state_dict(parent.state_dict())
    net = parent.val_metrics["lpips_alex"].net
    parent.double()  # conversions and moves still reach the hidden networks
    assert next(net.parameters()).dtype == torch.float64
