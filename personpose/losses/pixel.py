"""Pixel losses: L1 (``mean |fake - target|``) and MSE (``mean (fake - target)^2``).

On generator outputs in ``[-1, 1]`` as the reference computes them (no mapping); the mean is
over every element (batch, channels, pixels).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

PIXEL_CRITERIA = ("l1", "mse")


def pixel_loss(fake: Tensor, target: Tensor, criterion: str = "l1") -> Tensor:
    """Mean absolute (``"l1"``) or squared (``"mse"``) difference of two same-shape tensors."""
    if criterion not in PIXEL_CRITERIA:
        raise ValueError(
            f"pixel_loss: criterion must be one of {PIXEL_CRITERIA}, got {criterion!r}"
        )
    if fake.shape != target.shape:
        raise ValueError(
            f"pixel_loss: fake {tuple(fake.shape)} and target "
            f"{tuple(target.shape)} must have the same shape"
        )
    return F.l1_loss(fake, target) if criterion == "l1" else F.mse_loss(fake, target)


class PixelLoss(nn.Module):
    """:func:`pixel_loss` as a module; ``fake, target`` (N, C, H, W), typically in [-1, 1]."""

    def __init__(self, criterion: str = "l1") -> None:
        super().__init__()
        self.criterion = criterion

    def forward(self, fake: Tensor, target: Tensor) -> Tensor:
        return pixel_loss(fake, target, self.criterion)

    def extra_repr(self) -> str:
        return f"criterion={self.criterion!r}"
