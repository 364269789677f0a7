"""Pixel losses: exact values."""

from __future__ import annotations

import pytest
import torch

from personpose.losses.pixel import PixelLoss, pixel_loss


def test_exact_values():
    a = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    b = torch.tensor([[[[0.0, -1.0], [-0.5, 1.0]]]])
    assert pixel_loss(a, b).item() == pytest.approx(3 / 4)
    assert pixel_loss(a, b, "mse").item() == pytest.approx(3 / 4)
    assert PixelLoss("mse")(a, 2 * b).item() == pytest.approx((1 + 1 + 2.25 + 4) / 4)


def test_validation():
    with pytest.raises(ValueError, match="criterion"):
        pixel_loss(torch.zeros(1), torch.zeros(1), "huber")
    with pytest.raises(ValueError, match="same shape"):
        pixel_loss(torch.zeros(1, 2), torch.zeros(2, 1))
