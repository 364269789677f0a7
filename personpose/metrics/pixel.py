"""Pixel-error metrics on images in [0, 1]: ``l1`` and ``psnr`` (GFLA's definitions)."""

from __future__ import annotations

import torch
from torch import Tensor

from personpose.metrics.base import PerImageMetric


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image mean absolute error ``(N,)`` over channels and pixels, images in [0, 1]."""
    return (pred.to(torch.float64) - target.to(torch.float64)).abs().flatten(1).mean(1)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image ``10 log10(1 / MSE)`` dB ``(N,)``, data range 1 (skimage
    ``peak_signal_noise_ratio(target, pred, data_range=1)``); ``inf`` for identical images."""
    mse = (pred.to(torch.float64) - target.to(torch.float64)).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


class L1(PerImageMetric):
    """Mean over images of the per-image mean |pred - target| (images in [0, 1])."""

    name = "l1"
    higher_is_better = False

    def score(self, preds, target):
        return l1(preds, target)


class PSNR(PerImageMetric):
    """Mean over images of the per-image PSNR (dB, data range 1); images identical to their
    target (infinite PSNR) are left out and counted as excluded."""

    name = "psnr"

    def score(self, preds, target):
        values = psnr(preds, target)
        return values, torch.isfinite(values)
