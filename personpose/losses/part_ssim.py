"""Part-based SSIM (PSSIM), the study's loss: mask-weighted SSIM per body part + windowed
SSIM of the background (docs/losses.md#pssim).

For images ``x, y`` (N, C, H, W) in ``[0, L]`` and part masks ``M`` (N, 11, H, W) from
:func:`personpose.data.pose.part_masks` (background ``M_0`` first, 10 parts after):

- Foreground: for each part ``k = 1..10`` and channel ``c``, with weights
  ``w = M_k / (sum M_k + 1e-6)`` over all pixels (no window),
  ``mu_x = sum w x``, ``var_x = sum w x^2 - mu_x^2``, ``cov = sum w x y - mu_x mu_y``,
  ``s_kc = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * (2 cov + C2) / (var_x + var_y + C2)``
  and ``f = mean(s)`` over parts and channels.
- Background: ``b = ssim(M_0 x, M_0 y)`` (Gaussian window, valid, per channel).
- ``PSSIM = (f + b) / 2`` per sample, averaged over the batch; the loss is ``1 - PSSIM``.

Missing parts (an end joint absent) have all-zero masks: then ``mu = var = cov = 0`` and
``s = 1``. ``missing_parts="faithful"`` (default) keeps those 1s in the mean, as the reference
does; ``"exclude"`` averages only the parts whose mask is non-zero (a sample without any
such part gets ``PSSIM = b``).

Speed: the windowed background SSIM comes from one fused kernel
(:func:`personpose.kernels.ssim.part_forward`); the statistics of all parts and channels are
one contraction of the part masks with the planes ``x, y, x^2 + y^2, x y``, never repeating the
images per part. The backward is analytic: the background's transposed filter, scaled by
``M_0``, plus ``sum_k M_k (a_k + x b_k + y c_k)``. For float32 CPU tensors the contraction and
the parts' sum over masks run in personpose's native kernels
(:func:`personpose.kernels.native.part_contract` / ``part_grad``: planes formed on the fly,
masks read once per pass, on torch's thread pool; the parts' gradient added in place to the
background's); otherwise the contraction is a batched
matrix product with the planes from ``part_forward`` and the sum over masks is fused into
:func:`personpose.kernels.ssim.part_backward`. The windowed SSIM kernels are the same as plain
:func:`personpose.losses.ssim.ssim`'s either way.
Measured with ``experiments/bench_losses.py``. The masks are treated as constants (no
gradient flows to them) and must be >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from personpose.kernels import native
from personpose.kernels import ssim as kernels
from personpose.losses.ssim import K1, K2, _full_precision, check_images, gaussian_taps

__all__ = [
    "MISSING_PARTS",
    "PartSSIMLoss",
    "PartSSIMResult",
    "part_ssim",
    "part_ssim_from_sums",
    "part_ssim_terms",
]

MISSING_PARTS = ("faithful", "exclude")
MASK_EPS = 1e-6  # added to each mask's sum, as in the reference
CONTRACT_CHUNK = 4096  # px per slice of the part contraction (float32 accuracy, see _contract)


def _part_statistics(e: Tensor, c: int, c1: float, c2: float, need_x: bool, need_y: bool):
    """Part SSIM ``s`` (N, K, C) from the normalised statistics ``e`` (N, K, 4C) of
    ``x, y, x^2 + y^2, x y``, and the derivatives of ``s`` (N, K, C) by role ``[a_x] [a_y] b c``
    (with respect to ``mu_x``, ``mu_y`` and, times the pixel values, ``x^2 + y^2`` and
    ``x y``; :func:`personpose.kernels.ssim.ssim_statistics`)."""
    return kernels.ssim_statistics(*e.split(c, dim=-1), c1, c2, need_x, need_y)


def _contract(planes: Tensor, parts: Tensor, chunk: int = CONTRACT_CHUNK) -> Tensor:
    """``sum_p parts[n, k, p] planes[n, j, p]`` (N, K, J) for ``planes`` (N, J, P) and ``parts``
    (N, K, P): batched products over slices of ``chunk`` pixels, accumulated. (One product
    over all P pixels sums up to 45,056 float32 terms in a row, ~5e-5 relative error at
    256x176; slices keep it near 1e-6 at the same speed.)"""
    # bmm takes any batch and row strides: only the pixel dimension must be dense (the part
    # masks are a channel slice of the (N, 11, H, W) masks; a copy would cost a pass of its own)
    planes, parts = (t if t.stride(-1) == 1 else t.contiguous() for t in (planes, parts))
    p = planes.shape[-1]
    e = torch.bmm(planes[..., :chunk], parts[..., :chunk].transpose(1, 2))
    for s in range(chunk, p, chunk):
        e.baddbmm_(planes[..., s : s + chunk], parts[..., s : s + chunk].transpose(1, 2))
    return e.transpose(1, 2)


class _PSSIMFunction(torch.autograd.Function):
    """``(x, y, masks) -> (s, sums, b)``: part SSIM (N, K, C), mask sums (N, K) (not
    differentiable) and background SSIM per sample (N,), with the analytic backward.

    Forward: :func:`personpose.kernels.ssim.part_forward` gives the background's windowed SSIM
    (of ``M_0 x``, ``M_0 y``) with its gradient coefficients, and the planes
    ``x, y, x^2 + y^2, x y``; the part statistics are one batched product of the part masks
    (N, K, HW) with those planes. Backward: :func:`personpose.kernels.ssim.part_backward`.
    """

    @staticmethod
    @_full_precision
    def forward(
        ctx, x, y, masks, taps: tuple[float, ...], c1: float, c2: float, grad_enabled: bool
    ):
        need_x = grad_enabled and ctx.needs_input_grad[0]
        need_y = grad_enabled and ctx.needs_input_grad[1]
        n, c, h, w = x.shape
        k = masks.shape[1] - 1
        m0, parts = masks[:, :1], masks[:, 1:]
        use_native = native.usable(x, y, masks) and c <= native.MAX_CHANNELS
        s_bg, coefs, planes = kernels.part_forward(
            x, y, m0, taps, c1, c2, need_x, need_y, not use_native
        )
        if use_native:  # the planes formed on the fly, the masks read once
            stats, sums64 = native.part_contract(x, y, masks)
            inv64 = (sums64 + MASK_EPS).reciprocal_()
            e = (stats * inv64.unsqueeze(-1)).to(x.dtype)
            sums, inv = sums64.to(x.dtype), inv64.to(x.dtype)
        else:
            flat = parts.reshape(n, k, h * w)
            e = _contract(planes.reshape(n, 4 * c, h * w), flat)  # (N, K, 4C)
            del planes
            sums = flat.sum(-1)
            inv = (sums + MASK_EPS).reciprocal_()
            e = e * inv.unsqueeze(-1)
        s_parts, d = _part_statistics(e, c, c1, c2, need_x, need_y)
        if coefs is not None:
            ctx.save_for_backward(x, y, masks, inv, coefs, *d)
        ctx.taps, ctx.need, ctx.native = taps, (need_x, need_y), use_native
        ctx.count = c * (h - len(taps) + 1) * (w - len(taps) + 1)
        ctx.mark_non_differentiable(sums)
        return s_parts, sums, s_bg / ctx.count

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_full_precision
    def backward(ctx, grad_s: Tensor, _grad_sums: Tensor, grad_b: Tensor):
        x, y, masks, inv, coefs, *d = ctx.saved_tensors
        n = x.shape[0]
        need_x, need_y = ctx.need
        # parts: per-part coefficients times d s / d (statistic) and the incoming gradient
        g = grad_s * inv.unsqueeze(-1)  # (N, K, C)
        coef = torch.stack([g * dr for dr in d], dim=2)  # (N, K, R, C)
        scale_bg = (grad_b / ctx.count).view(n, 1, 1, 1)
        t_pad = kernels.pad_full(coefs, len(ctx.taps))
        if ctx.native:  # the background's filter compiled, the parts' sum over masks in C
            gx, gy = kernels.background_backward(
                t_pad, x, y, masks[:, :1], scale_bg, ctx.taps, need_x, need_y
            )  # the parts' terms added in place: no parts' gradient tensor to write, read back
            out = tuple(None if g is None else g.contiguous() for g in (gx, gy))  # channels-last
            gx, gy = native.part_grad(x, y, masks, coef, need_x, need_y, out=out)
        else:
            gx, gy = kernels.part_backward(
                t_pad, x, y, masks[:, :1], masks[:, 1:], coef, scale_bg, ctx.taps, need_x, need_y
            )
        return gx, gy, None, None, None, None, None


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


def _check_missing_parts(missing_parts: str, fn: str) -> None:
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
) -> PartSSIMResult:
    """PSSIM of images ``x, y`` (N, C, H, W) in ``[0, data_range]`` with ``masks``
    (N, 1 + K, H, W), background first; returns every term (see :class:`PartSSIMResult`).

    ``win_size``/``win_sigma`` set the background's Gaussian window (7 / 0.8 in the study);
    ``missing_parts`` is ``"faithful"`` or ``"exclude"`` (module docstring).
    """
    _check_missing_parts(missing_parts, "part_ssim")
    check_images(x, y, win_size, data_range if check_range else None, fn="part_ssim")
    _check_masks(x, masks)
    dtype = torch.promote_types(x.dtype, y.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    x, y = x.to(dtype), y.to(dtype)
    masks = masks.detach().to(dtype).contiguous()
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    taps = gaussian_taps(win_size, win_sigma)

    s, sums, background = _PSSIMFunction.apply(x, y, masks, taps, c1, c2, torch.is_grad_enabled())
    return _result(s, sums, background, missing_parts)


def part_ssim_from_sums(
    stats: Tensor,
    sums: Tensor,
    background: Tensor,
    data_range: float = 1.0,
    missing_parts: str = "faithful",
) -> PartSSIMResult:
    """PSSIM (no gradient) from its pieces: ``stats`` (N, K, 4C) the sums over pixels of each
    part mask ``M_k`` times ``x, y, x^2 + y^2, x y`` (roles in that order, C channels each),
    ``sums`` (N, K) the mask sums and ``background`` (N,) the background's windowed SSIM,
    as :func:`personpose.kernels.native.pssim_parts` gives them."""
    _check_missing_parts(missing_parts, "part_ssim")
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    e = stats / (sums + MASK_EPS).unsqueeze(-1)
    s, _ = _part_statistics(e, stats.shape[-1] // 4, c1, c2, False, False)
    return _result(s, sums, background, missing_parts)


def _result(s: Tensor, sums: Tensor, background: Tensor, missing_parts: str) -> PartSSIMResult:
    """The terms from the part SSIM ``s`` (N, K, C), mask sums (N, K), background (N,)."""
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
) -> Tensor:
    """Scalar PSSIM of images (N, C, H, W) in ``[0, data_range]`` with part masks
    (N, 11, H, W), background first (module docstring). 1 for identical images.

    Example:
        >>> x = torch.rand(2, 3, 64, 32); m = torch.rand(2, 11, 64, 32)
        >>> float(part_ssim(x, x, m))
        1.0
    """
    return part_ssim_terms(
        x, y, masks, win_size, win_sigma, data_range, missing_parts, check_range
    ).value


class PartSSIMLoss(nn.Module):
    """``1 - part_ssim((fake + 1) / 2, (target + 1) / 2, masks)`` for outputs in ``[-1, 1]``."""

    def __init__(
        self, win_size: int = 7, win_sigma: float = 0.8, missing_parts: str = "faithful"
    ) -> None:
        super().__init__()
        gaussian_taps(win_size, win_sigma)
        _check_missing_parts(missing_parts, "PartSSIMLoss")
        self.win_size, self.win_sigma, self.missing_parts = win_size, win_sigma, missing_parts

    def forward(self, fake: Tensor, target: Tensor, masks: Tensor) -> Tensor:
        """``fake, target``: (N, C, H, W) in [-1, 1]; ``masks``: (N, 11, H, W). Scalar loss."""
        x, y = (fake + 1) / 2, (target + 1) / 2
        return 1.0 - part_ssim(x, y, masks, self.win_size, self.win_sigma, 1.0, self.missing_parts)

    def extra_repr(self) -> str:
        return (
            f"win_size={self.win_size}, win_sigma={self.win_sigma}, "
            f"missing_parts={self.missing_parts!r}"
        )
