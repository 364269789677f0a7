"""pSSIM: the study's part-based SSIM loss ("Loss Functions for Person Image Generation", BMVC
2020) reported as an evaluation metric.

Per image: ``(f + b) / 2`` with ``f`` the mean over the 10 body parts and 3 channels of the
mask-weighted global SSIM statistics, ``b`` the windowed SSIM (window 7, sigma 0.8, valid)
of the background-masked images; part masks from the target keypoints
(:func:`personpose.data.pose.part_masks`), images in [0, 1], data range 1, computed by the
loss's own function (:func:`personpose.losses.part_ssim.part_ssim_terms`). ``missing_parts``:
``"faithful"`` (the reference: a part with a missing joint has an all-zero mask and scores 1)
or ``"exclude"``. Computed in float32 by default (as the loss; ~1e-6 from float64).
"""

from __future__ import annotations

import torch
from torch import Tensor

from personpose.data.pose import part_masks
from personpose.losses.part_ssim import check_missing_parts, part_ssim_terms
from personpose.metrics.base import PerImageMetric
from personpose.metrics.ssim_variants import chunked

WIN_SIZE, WIN_SIGMA = 7, 0.8
CHUNK_ELEMENTS = 1 << 19  # image elements per slice (3 images of 3x256x176)


def pssim(
    pred: Tensor,
    target: Tensor,
    kp2: Tensor,
    missing_parts: str = "faithful",
    dtype: torch.dtype = torch.float32,
    compile: bool = False,
) -> Tensor:
    """Per-image pSSIM ``(N,)`` float64 of images ``(N, 3, H, W)`` in [0, 1] with target
    keypoints ``kp2`` (N, 18, 2); ``compile`` runs it through ``torch.compile``."""

    def one(p, t, kp):
        masks = part_masks(kp.to(dtype), p.shape[-2:])
        terms = part_ssim_terms(
            p, t, masks, WIN_SIZE, WIN_SIGMA, 1.0, missing_parts, compile=compile
        )
        return terms.per_sample.to(torch.float64)

    with torch.no_grad():
        return chunked(one, pred.to(dtype), target.to(dtype), kp2, budget=CHUNK_ELEMENTS)


class PartSSIM(PerImageMetric):
    """Mean pSSIM over images (needs ``kp2``), computed in float32 as the loss."""

    name = "pssim"
    requires = ("kp2",)
    min_size = WIN_SIZE

    def __init__(self, missing_parts: str = "faithful", compile: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        check_missing_parts(missing_parts, "pssim")
        self.missing_parts, self.use_compile = missing_parts, compile

    def score(self, preds, target, kp2):
        return pssim(preds, target, kp2, self.missing_parts, compile=self.use_compile)
