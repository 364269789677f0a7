"""pSSIM: the study's part-based SSIM (docs/protocols.md#pssim) reported as an evaluation metric.

Per image: ``(f + b) / 2`` with ``f`` the mean over the 10 body parts and 3 channels of the
mask-weighted global SSIM statistics, ``b`` the windowed SSIM (window 7, sigma 0.8, valid)
of the background-masked images; part masks from the target keypoints
(``personpose.data.pose.part_masks``), images in [0, 1], data range 1, with the loss's own
functions (``personpose.losses.part_ssim``). ``missing_parts``:
``"faithful"`` (the reference: a part with a missing joint has an all-zero mask and scores 1)
or ``"exclude"``. Computed in float32 by default (as the loss; ~2e-7 from float64); in
float32 on CPU the background SSIM and the part statistics come from personpose's native
kernel (:func:`personpose.kernels.native.pssim_parts`, the masks formed on the fly), combined
by the loss's own formulas.
"""

from __future__ import annotations

import torch
from torch import Tensor

from personpose.metrics.base import PerImageMetric

WIN_SIZE, WIN_SIGMA = 7, 0.8
CHUNK_ELEMENTS = 1 << 21  # image elements per slice (15 images of 3x256x176)


def pssim(
    pred: Tensor,
    target: Tensor,
    kp2: Tensor,
    missing_parts: str = "faithful",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Per-image pSSIM ``(N,)`` of images ``(N, 3, H, W)`` in [0, 1] with target keypoints."""
    from personpose.data.pose import part_mask_terms, part_masks
    from personpose.kernels import native
    from personpose.losses.part_ssim import part_ssim_from_sums, part_ssim_terms
    from personpose.losses.ssim import check_images, gaussian_taps
    from personpose.metrics.ssim_variants import chunked

    with torch.no_grad():
        p, t = pred.to(dtype).contiguous(), target.to(dtype).contiguous()
        if native.usable(p, t):  # masks formed on the fly, whole batch (personpose.kernels.native)
            check_images(p, t, WIN_SIZE, 1.0, fn="pssim")
            terms = part_mask_terms(kp2.to(dtype), p.shape[-2:])
            taps = gaussian_taps(WIN_SIZE, WIN_SIGMA)
            bg, stats, sums = native.pssim_parts(p, t, terms, taps, 0.01**2, 0.03**2)
            return part_ssim_from_sums(stats, sums, bg, 1.0, missing_parts).per_sample

        def one(p, t, kp):
            masks = part_masks(kp.to(dtype), p.shape[-2:])
            terms = part_ssim_terms(
                p,
                t,
                masks,
                win_size=WIN_SIZE,
                win_sigma=WIN_SIGMA,
                data_range=1.0,
                missing_parts=missing_parts,
            )
            return terms.per_sample.to(torch.float64)

        # slices of a few images: masks and planes stay in cache
        return chunked(one, p, t, kp2, budget=CHUNK_ELEMENTS)


class PartSSIM(PerImageMetric):
    """Mean pSSIM over images (needs ``kp2``)."""

    name = "pssim"
    requires = ("kp2",)
    min_size = WIN_SIZE

    def __init__(
        self, missing_parts: str = "faithful", dtype: torch.dtype = torch.float32, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if missing_parts not in ("faithful", "exclude"):
            raise ValueError(
                f"pssim: missing_parts must be 'faithful' or 'exclude'; got {missing_parts!r}"
            )
        self.missing_parts = missing_parts
        self.compute_dtype = dtype

    def score(self, preds, target, kp2):
        return pssim(preds, target, kp2, self.missing_parts, self.compute_dtype)
