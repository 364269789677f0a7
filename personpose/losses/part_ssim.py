"""Part-based SSIM (PSSIM), the loss of "Loss Functions for Person Image Generation" (BMVC 2020):
mask-weighted SSIM per body part + windowed SSIM of the background, in plain PyTorch.

For images ``x, y`` (N, C, H, W) in ``[0, L]`` and part masks ``M`` (N, 11, H, W) from
:func:`personpose.data.pose.part_masks` (background ``M_0`` first, 10 parts after):

- Foreground: for each part ``k = 1..10`` and channel ``c``, with weights
  ``w = M_k / (sum M_k + 1e-6)`` over all pixels (no window),
  ``mu_x = sum w x``, ``var_x = sum w x^2 - mu_x^2``, ``cov = sum w x y - mu_x mu_y``,
  ``s_kc = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * (2 cov + C2) / (var_x + var_y + C2)``
  and ``f = mean(s)`` over parts and channels.
- Background: ``b = ssim(M_0 x, M_0 y)`` (Gaussian window, valid, per channel).
- ``PSSIM = (f + b) / 2`` per sample, averaged over the batch; the loss is ``1 - PSSIM``.

The statistics of all parts and channels come from one contraction (a batched matrix product)
of the part masks (N, 10, HW) with the planes ``x, y, x^2 + y^2, x y`` (N, HW, 4C): the images
are never repeated per part. Missing parts (an end joint absent) have all-zero masks: then
``mu = var = cov = 0`` and ``s = 1``. ``missing_parts="faithful"`` (default) keeps those 1s in
the mean, as the reference does; ``"exclude"`` averages only the parts whose mask is non-zero
(a sample without any such part gets ``PSSIM = b``). The masks are constants (no gradient
flows to them) and must be >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from personpose.losses.ssim import (
    SSIMLoss,
    moment_planes,
    prepare_pair,
    run_full_precision,
    ssim_formula,
    windowed_ssim,
)

MISSING_PARTS = ("faithful", "exclude")
MASK_EPS = 1e-6  # added to each mask's sum, as in the reference


def _part_ssim(x: Tensor, y: Tensor, masks: Tensor, taps: tuple[float, ...], c1, c2):
    """Part SSIM (N, K, C), mask sums (N, K) and background SSIM per sample (N,)."""
    m0, parts = masks[:, :1], masks[:, 1:].flatten(2)  # (N, 1, H, W), (N, K, HW)
    background = windowed_ssim(m0 * x, m0 * y, taps, c1, c2, (1, 2, 3))
    sums = parts.sum(-1)
    stats = torch.bmm(parts, moment_planes(x, y).flatten(2).transpose(1, 2))  # (N, K, 4C)
    mu_x, mu_y, e_sq, e_xy = (stats / (sums + MASK_EPS).unsqueeze(-1)).split(x.shape[1], -1)
    return ssim_formula(mu_x, mu_y, e_sq, e_xy, c1, c2), sums, background


@dataclass
class PartSSIMResult:
    """All the pieces of a PSSIM evaluation (N samples, K = 10 parts).

    value: scalar PSSIM (the batch mean of ``per_sample``).
    per_sample: (N,) ``(f + b) / 2`` (``b`` alone for a sample without any counted part).
    foreground: (N,) ``f``, the mean of ``per_part`` over the counted parts.
    background: (N,) ``b``, the windowed SSIM of the masked background.
    per_part: (N, K) part SSIM averaged over colour channels (1 for a missing part).
    present: (N, K) bool, mask not all zero.
    """

    value: Tensor
    per_sample: Tensor
    foreground: Tensor
    background: Tensor
    per_part: Tensor
    present: Tensor


def check_missing_parts(missing_parts: str, fn: str) -> None:
    """Raise ValueError naming ``fn`` unless ``missing_parts`` is one of :data:`MISSING_PARTS`."""
    if missing_parts not in MISSING_PARTS:
        raise ValueError(
            f"{fn}: missing_parts must be one of {MISSING_PARTS}, got {missing_parts!r}"
        )


def _check_masks(x: Tensor, masks: Tensor) -> None:
    if not isinstance(masks, Tensor) or masks.dim() != 4:
        shape = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(f"part_ssim: masks must be (N, 1 + K, H, W), got {shape}")
    n, _, h, w = x.shape
    if masks.shape[0] != n or masks.shape[2:] != (h, w) or masks.shape[1] < 2:
        raise ValueError(
            f"part_ssim: masks {tuple(masks.shape)} do not match images {tuple(x.shape)}; "
            "expected (N, 1 + K, H, W), background first (part_masks output)"
        )
    if not masks.is_floating_point():
        raise ValueError(f"part_ssim: masks must be floating, got {masks.dtype}")


def part_ssim_terms(
    x: Tensor,
    y: Tensor,
    masks: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    missing_parts: str = "faithful",
    check_range: bool = True,
    compile: bool = False,
) -> PartSSIMResult:
    """PSSIM of images ``x, y`` (N, C, H, W) in ``[0, data_range]`` with ``masks``
    (N, 1 + K, H, W), background first; returns every term (see :class:`PartSSIMResult`).

    ``win_size``/``win_sigma`` set the background's Gaussian window (7 / 0.8 in the study);
    ``missing_parts`` is ``"faithful"`` or ``"exclude"`` (module docstring); ``compile`` runs
    the computation through ``torch.compile``.
    """
    check_missing_parts(missing_parts, "part_ssim")
    x, y, taps, c1, c2 = prepare_pair(
        x, y, win_size, win_sigma, data_range, check_range, "part_ssim"
    )
    _check_masks(x, masks)
    masks = masks.detach().to(x.dtype)
    s, sums, background = run_full_precision(_part_ssim, compile, x, y, masks, taps, c1, c2)
    per_part = s.mean(-1)  # (N, K)
    present = sums > 0  # masks are >= 0
    if missing_parts == "faithful":
        foreground = per_part.mean(-1)
        per_sample = (foreground + background) / 2
    else:
        count = present.sum(-1)
        foreground = (per_part * present).sum(-1) / count.clamp(min=1)
        per_sample = torch.where(count > 0, (foreground + background) / 2, background)
    return PartSSIMResult(per_sample.mean(), per_sample, foreground, background, per_part, present)


def part_ssim(
    x: Tensor,
    y: Tensor,
    masks: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    missing_parts: str = "faithful",
    check_range: bool = True,
    compile: bool = False,
) -> Tensor:
    """Scalar PSSIM of images (N, C, H, W) in ``[0, data_range]`` with part masks
    (N, 11, H, W), background first (module docstring). 1 for identical images.

    Example:
        >>> x = torch.rand(2, 3, 64, 32); m = torch.rand(2, 11, 64, 32)
        >>> float(part_ssim(x, x, m))
        1.0
    """
    return part_ssim_terms(
        x, y, masks, win_size, win_sigma, data_range, missing_parts, check_range, compile
    ).value


class PartSSIMLoss(SSIMLoss):
    """``1 - part_ssim((fake + 1) / 2, (target + 1) / 2, masks)`` for outputs in ``[-1, 1]``;
    ``compile`` runs PSSIM through ``torch.compile``."""

    def __init__(
        self,
        win_size: int = 7,
        win_sigma: float = 0.8,
        missing_parts: str = "faithful",
        compile: bool = False,
    ) -> None:
        super().__init__(win_size, win_sigma, compile)
        check_missing_parts(missing_parts, "PartSSIMLoss")
        self.missing_parts = missing_parts

    def forward(self, fake: Tensor, target: Tensor, masks: Tensor) -> Tensor:
        """``fake, target``: (N, C, H, W) in [-1, 1]; ``masks``: (N, 11, H, W). Scalar loss."""
        x, y = (fake + 1) / 2, (target + 1) / 2
        k, sigma, missing = self.win_size, self.win_sigma, self.missing_parts
        return 1.0 - part_ssim(x, y, masks, k, sigma, 1.0, missing, compile=self.use_compile)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, missing_parts={self.missing_parts!r}"
