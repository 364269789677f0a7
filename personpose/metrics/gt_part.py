"""Metrics judged by the synthetic set's ground-truth part labels, which no loss optimises.

``label2`` (N, H, W) int64: 0 background, 1..K body parts / garment regions, -1 unknown.

- ``gt_part_l1``: per image, for every label k >= 1 present in ``label2``, the mean of
  |pred - target| over that region's pixels and the 3 channels; the mean over those labels
  (each part weighs the same, whatever its size); then the mean over images. Images in [0, 1].
- ``gt_fg_ssim``: per image, the full-size SSIM map of ``ssim_256_gfla`` (today's skimage
  ``full=True``: Gaussian sigma 1.5, 11 taps, population covariance, data range of the
  generated image, ``reflect`` border) averaged over channels and over the true person region
  ``label2 > 0``; then the mean over images. Images with no person pixel, or a constant
  generated image (SSIM 0/0), are left out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from personpose.metrics.base import PerImageMetric
from personpose.metrics.ssim_variants import ssim_256_gfla_map


def _check_labels(label2: Tensor, pred: Tensor, name: str) -> Tensor:
    if label2.shape != (pred.shape[0], *pred.shape[-2:]):
        raise ValueError(
            f"{name}: label2 must be (N, H, W) = {(pred.shape[0], *pred.shape[-2:])}; "
            f"got {tuple(label2.shape)}"
        )
    return label2.long()


def gt_part_l1(pred: Tensor, target: Tensor, label2: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image mean over present part labels of the region's mean L1; ``(values, valid)``."""
    label2 = _check_labels(label2, pred, "gt_part_l1")
    n = pred.shape[0]
    k = int(label2.max().clamp(min=0)) + 1
    err = (pred.to(torch.float64) - target.to(torch.float64)).abs().mean(1).flatten(1)  # (N, HW)
    lab = label2.flatten(1).clamp(min=0)  # -1 (unknown) joins label 0, which is not scored
    sums = torch.zeros(n, k, dtype=torch.float64, device=pred.device).scatter_add_(1, lab, err)
    counts = torch.zeros_like(sums).scatter_add_(1, lab, torch.ones_like(err))
    per_part = sums[:, 1:] / counts[:, 1:].clamp(min=1)
    present = counts[:, 1:] > 0
    n_parts = present.sum(1)
    values = (per_part * present).sum(1) / n_parts.clamp(min=1)
    return values, n_parts > 0


def gt_fg_ssim(
    pred: Tensor, target: Tensor, label2: Tensor, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """Per-image mean of the ``ssim_256_gfla`` map over ``label2 > 0``; ``(values, valid)``."""
    label2 = _check_labels(label2, pred, "gt_fg_ssim")
    fg = (label2 > 0).to(torch.float64)  # (N, H, W)
    s = ssim_256_gfla_map(pred, target, dtype=dtype).to(torch.float64).mean(1)  # (N, H, W)
    area = fg.flatten(1).sum(1)
    values = (s * fg).flatten(1).sum(1) / area.clamp(min=1)
    return values, (area > 0) & ~values.isnan()


class GtPartL1(PerImageMetric):
    """Mean :func:`gt_part_l1` over images with at least one labelled part (needs label2)."""

    name = "gt_part_l1"
    requires = ("label2",)
    higher_is_better = False

    def score(self, preds, target, label2):
        return gt_part_l1(preds, target, label2)


class GtFgSSIM(PerImageMetric):
    """Mean :func:`gt_fg_ssim` over images with a person region (needs label2)."""

    name = "gt_fg_ssim"
    requires = ("label2",)
    min_size = 5  # the reflect padding of the 11-tap window needs 5 px

    def __init__(self, dtype: torch.dtype = torch.float64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.compute_dtype = dtype

    def score(self, preds, target, label2):
        return gt_fg_ssim(preds, target, label2, self.compute_dtype)
