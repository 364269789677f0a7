"""Windowed Gaussian SSIM with a fast separable filter and an analytic backward pass.

SSIM (Wang et al., IEEE TIP 2004) between images ``x`` and ``y`` in ``[0, L]``, per colour
channel, with a Gaussian window ``G`` (``win_size`` taps, ``win_sigma`` px, normalised to
sum 1), applied separably and "valid" (no padding, the map is ``(H - k + 1) x (W - k + 1)``)::

    mu_x = G * x,   s_xx = G * x^2 - mu_x^2,   s_xy = G * (x y) - mu_x mu_y   (same for y)
    S = (2 mu_x mu_y + C1) (2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (s_xx + s_yy + C2))
    C1 = (0.01 L)^2,  C2 = (0.03 L)^2,  SSIM = mean(S) over batch, channels and map.

This is the SSIM of the study's reference code (window 7, sigma 0.8; docs/losses.md#ssim) and
equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=0.8,
use_sample_covariance=False)`` and ``pytorch_msssim.ssim(win_size=7, win_sigma=0.8)``.

Speed: the kernels are pure tensor functions in :mod:`personpose.kernels.ssim`, compiled
by ``torch.compile`` on large inputs (:mod:`personpose.kernels.compiled`: the four planes
``x, y, x^2 + y^2, x y``, the two 1-D filters and the statistics become a few fused loops) and
run eagerly on small ones. The backward pass is analytic: with ``A1 = 2 mu_x mu_y + C1``,
``A2 = mu_x^2 + mu_y^2 + C1``, ``B1 = 2 s_xy + C2``, ``B2 = s_xx + s_yy + C2`` and ``g`` the
incoming gradient of the map,

    dL/dx = G^T [g a_x] + x G^T [g b] + y G^T [g c],
    a_x = 2 (mu_y (B1 - A1) + mu_x S (A2 - B2)) / (A2 B2),  b = -2 S / B2,  c = 2 A1 / (A2 B2)

(``G^T``: the transposed, i.e. "full", filter), and symmetrically for ``y``. The coefficient
planes are formed in the forward pass, so the backward is one transposed filtering of three
(four with ``y``) planes and two multiply-adds.
"""

from __future__ import annotations

import functools
import math
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from personpose.kernels import ssim as kernels

__all__ = ["SSIMLoss", "check_images", "gaussian_taps", "ssim", "ssim_map", "ssim_per_sample"]

K1, K2 = 0.01, 0.03


def gaussian_taps(win_size: int, win_sigma: float) -> tuple[float, ...]:
    """Normalised 1-D Gaussian window: ``exp(-t^2 / (2 sigma^2))`` at ``t = -k//2 .. k//2``."""
    if not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"ssim: win_size must be a positive odd int, got {win_size!r}")
    if not win_sigma > 0:
        raise ValueError(f"ssim: win_sigma must be > 0, got {win_sigma!r}")
    r = win_size // 2
    g = [math.exp(-(t * t) / (2.0 * win_sigma**2)) for t in range(-r, r + 1)]
    total = math.fsum(g)
    return tuple(v / total for v in g)


def _full_precision(fn):
    """Run an autograd Function's forward/backward with autocast off: the variance terms
    ``E[x^2] - mu^2`` cancel catastrophically in half precision."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        t = next(a for a in args if isinstance(a, Tensor))
        kind = t.device.type
        guard = torch.autocast(kind, enabled=False) if kind in ("cpu", "cuda") else nullcontext()
        with guard:
            return fn(ctx, *args)

    return wrapper


class _SSIMFunction(torch.autograd.Function):
    """``(x, y) -> `` the SSIM map (``mode="map"``, (N, C, H-k+1, W-k+1)), its per-sample
    means (``"per_sample"``, (N,)) or its mean (``"mean"``), with the analytic backward
    (kernels: :func:`personpose.kernels.ssim.ssim_forward` / ``ssim_backward``)."""

    @staticmethod
    @_full_precision
    def forward(
        ctx, x, y, taps: tuple[float, ...], c1: float, c2: float, mode: str, grad_enabled: bool
    ):
        # forward always runs in no-grad mode: the caller says whether a backward can follow
        need_x = grad_enabled and ctx.needs_input_grad[0]
        need_y = grad_enabled and ctx.needs_input_grad[1]
        n, c, h, w = x.shape
        k = len(taps)
        out, coefs = kernels.ssim_forward(x, y, taps, c1, c2, need_x, need_y, mode != "map")
        if coefs is not None:
            ctx.save_for_backward(x, y, coefs)
        ctx.taps, ctx.mode, ctx.need = taps, mode, (need_x, need_y)
        ctx.count = c * (h - k + 1) * (w - k + 1)
        if mode == "mean":
            return out.sum() / (n * ctx.count)
        if mode == "per_sample":
            return out / ctx.count
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_full_precision
    def backward(ctx, grad: Tensor):
        x, y, coefs = ctx.saved_tensors
        n = x.shape[0]
        need_x, need_y = ctx.need
        if ctx.mode == "mean":
            scale = grad / (n * ctx.count)
        elif ctx.mode == "per_sample":
            scale = (grad / ctx.count).view(n, 1, 1, 1)
        else:  # the map's gradient multiplies each role's planes before the adjoint filter
            r = coefs.shape[1] // x.shape[1]
            coefs = (coefs.unflatten(1, (r, -1)) * grad.unsqueeze(1)).flatten(1, 2)
            scale = torch.ones((), dtype=x.dtype, device=x.device)
        t_pad = kernels.pad_full(coefs, len(ctx.taps))
        gx, gy = kernels.ssim_backward(t_pad, x, y, scale.to(x.dtype), ctx.taps, need_x, need_y)
        return gx, gy, None, None, None, None, None


def check_images(
    x: Tensor,
    y: Tensor,
    win_size: int,
    data_range: float | None,
    fn: str = "ssim",
) -> None:
    """Validate an image pair: 4-D ``(N, C, H, W)``, same shape, floating, larger than the window,
    and (when ``data_range`` is given) values in ``[0, data_range]``. Raises ``ValueError``."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{fn}: {name} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{fn}: {name} must be a floating tensor, got {t.dtype}")
    if x.shape != y.shape:
        raise ValueError(
            f"{fn}: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"{fn}: x and y are on different devices ({x.device}, {y.device})")
    h, w = x.shape[-2:]
    if h < win_size or w < win_size:
        raise ValueError(
            f"{fn}: images of {h}x{w} px are smaller than the {win_size}x{win_size} "
            "window (valid filtering needs H, W >= win_size)"
        )
    if data_range is not None:
        if not data_range > 0:
            raise ValueError(f"{fn}: data_range must be > 0, got {data_range!r}")
        tol = 1e-3 * data_range
        for name, t in (("x", x), ("y", y)):
            lo, hi = torch.aminmax(t.detach())
            lo, hi = float(lo), float(hi)
            if not (lo >= -tol and hi <= data_range + tol):
                raise ValueError(
                    f"{fn}: {name} must lie in [0, data_range={data_range}], found "
                    f"[{lo:.4g}, {hi:.4g}] (map [-1, 1] images with (t + 1) / 2)"
                )


def _prepare(x, y, win_size, win_sigma, data_range, check_range):
    check_images(x, y, win_size, data_range if check_range else None)
    if not data_range > 0:
        raise ValueError(f"ssim: data_range must be > 0, got {data_range!r}")
    taps = gaussian_taps(win_size, win_sigma)
    dtype = torch.promote_types(x.dtype, y.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return x.to(dtype), y.to(dtype), taps, c1, c2  # any layout: NCHW or channels-last


def ssim_map(
    x: Tensor,
    y: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    check_range: bool = True,
) -> Tensor:
    """SSIM map ``(N, C, H - win_size + 1, W - win_size + 1)`` of images ``(N, C, H, W)`` in
    ``[0, data_range]`` (see the module docstring for the formula). Half precision inputs are
    computed in float32. ``check_range=False`` skips the value check (e.g. on feature maps)."""
    x, y, taps, c1, c2 = _prepare(x, y, win_size, win_sigma, data_range, check_range)
    return _SSIMFunction.apply(x, y, taps, c1, c2, "map", torch.is_grad_enabled())


def ssim_per_sample(
    x: Tensor,
    y: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    check_range: bool = True,
) -> Tensor:
    """Mean SSIM of each sample, ``(N,)``; same arguments as :func:`ssim`."""
    x, y, taps, c1, c2 = _prepare(x, y, win_size, win_sigma, data_range, check_range)
    return _SSIMFunction.apply(x, y, taps, c1, c2, "per_sample", torch.is_grad_enabled())


def ssim(
    x: Tensor,
    y: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    return_map: bool = False,
    check_range: bool = True,
) -> Tensor | tuple[Tensor, Tensor]:
    """Mean windowed Gaussian SSIM of images ``(N, C, H, W)`` in ``[0, data_range]``.

    Args:
        x, y: images, same shape, floating, ``H, W >= win_size``.
        win_size, win_sigma: Gaussian window (taps, px); the study uses 7 and 0.8.
        data_range: ``L`` in ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        return_map: also return the SSIM map ``(N, C, H - k + 1, W - k + 1)``;
            per-sample values are ``map.mean((1, 2, 3))`` (or use :func:`ssim_per_sample`).
        check_range: check that values lie in ``[0, data_range]`` (one min/max pass).

    Returns:
        The scalar mean SSIM (1 for identical images), or ``(mean, map)``.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(ssim(x, x))
        1.0
    """
    if return_map:
        s = ssim_map(x, y, win_size, win_sigma, data_range, check_range)
        return s.mean(), s
    x, y, taps, c1, c2 = _prepare(x, y, win_size, win_sigma, data_range, check_range)
    return _SSIMFunction.apply(x, y, taps, c1, c2, "mean", torch.is_grad_enabled())


class SSIMLoss(nn.Module):
    """``1 - ssim((fake + 1) / 2, (target + 1) / 2)`` for generator outputs in ``[-1, 1]``."""

    def __init__(self, win_size: int = 7, win_sigma: float = 0.8) -> None:
        super().__init__()
        gaussian_taps(win_size, win_sigma)  # validate early
        self.win_size, self.win_sigma = win_size, win_sigma

    def forward(self, fake: Tensor, target: Tensor) -> Tensor:
        """``fake, target``: (N, C, H, W) in [-1, 1]. Returns a scalar loss in [0, 2]."""
        x, y = (fake + 1) / 2, (target + 1) / 2
        return 1.0 - ssim(x, y, self.win_size, self.win_sigma, data_range=1.0)

    def extra_repr(self) -> str:
        return f"win_size={self.win_size}, win_sigma={self.win_sigma}"
