"""Windowed Gaussian SSIM with a fast separable filter and an analytic backward pass.

SSIM (Wang et al., IEEE TIP 2004) between images ``x`` and ``y`` in ``[0, L]``, per colour
channel, with a Gaussian window ``G`` (``win_size`` taps, ``win_sigma`` px, normalised to
sum 1), applied separably and "valid" (no padding, the map is ``(H - k + 1) x (W - k + 1)``)::

    mu_x = G * x,   s_xx = G * x^2 - mu_x^2,   s_xy = G * (x y) - mu_x mu_y   (same for y)
    S = (2 mu_x mu_y + C1) (2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (s_xx + s_yy + C2))
    C1 = (0.01 L)^2,  C2 = (0.03 L)^2,  SSIM = mean(S) over batch, channels and map.

This is the SSIM of the study's reference code (window 7, sigma 0.8, DIGEST section 4) and
equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=0.8,
use_sample_covariance=False)`` and ``pytorch_msssim.ssim(win_size=7, win_sigma=0.8)``.

Speed: the five planes ``x, y, x^2, y^2, x y`` of each sample are written once into one
channels-last buffer (N, H, W, 5C) and filtered together by one depthwise convolution per
direction (on CPU several times faster than an NCHW grouped convolution or shifted adds);
the constants and factors of the formula ride along as the convolution's bias and per-plane
weights. The backward pass is analytic: with ``A1 = 2 mu_x mu_y + C1``,
``A2 = mu_x^2 + mu_y^2 + C1``, ``B1 = 2 s_xy + C2``, ``B2 = s_xx + s_yy + C2`` and ``g`` the
incoming gradient of the map,

    dL/dx = G^T [g a_x] + x G^T [g b] + y G^T [g c],
    a_x = 2 (mu_y (B1 - A1) + mu_x S (A2 - B2)) / (A2 B2),  b = -2 S / B2,  c = 2 A1 / (A2 B2)

(``G^T``: the transposed, i.e. "full", filter), and symmetrically for ``y``. The coefficient
planes are formed in the forward pass, so the backward is one transposed filtering of three
(four with ``y``) planes and two multiply-adds; for the mean, the incoming scalar gradient
is folded into the filter weights. The building blocks (:func:`_planes`, :func:`_gauss`,
:func:`_ssim_statistics`, ...) are shared with :mod:`personpose.losses.part_ssim`.
"""

from __future__ import annotations

import functools
import math
from contextlib import nullcontext

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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


_SQRT2 = math.sqrt(2.0)
# Per-plane filter scale and bias for the planes x, y, x^2, y^2, x y (see _SSIMFunction).
_SCALE = (_SQRT2, _SQRT2, 1.0, 1.0, 2.0)
# Backward filter scale per coefficient role (see _ssim_statistics).
_ROLE_SCALE = {"ax": _SQRT2, "ay": _SQRT2, "b": -2.0, "c": 2.0}


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


def _planes(n: int, p: int, h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """A (N, P, H, W) channels-last buffer and its (N, H, W, P) view (planes innermost)."""
    buf = torch.empty(
        (n, p, h, w), dtype=like.dtype, device=like.device, memory_format=torch.channels_last
    )
    return buf, buf.permute(0, 2, 3, 1)


def _fill_planes(view: Tensor, x: Tensor, y: Tensor) -> None:
    """Write ``x, y, x^2, y^2, x y`` (C planes each) into ``view`` (N, H, W, >= 5C)."""
    c = x.shape[1]
    xs, ys = view[..., 0:c], view[..., c : 2 * c]
    xs.copy_(x.permute(0, 2, 3, 1))
    ys.copy_(y.permute(0, 2, 3, 1))
    torch.mul(xs, xs, out=view[..., 2 * c : 3 * c])
    torch.mul(ys, ys, out=view[..., 3 * c : 4 * c])
    torch.mul(xs, ys, out=view[..., 4 * c : 5 * c])


def _plane_constants(c: int, c1: float, c2: float, extra: int, like: Tensor):
    """Filter scale and bias (P,) for the planes x, y, x^2, y^2, x y (C each) + ``extra``:
    ``mu' = sqrt2 G*x``, ``e' = G*x^2 + (C1 + C2)/2``, ``e_xy' = 2 G*(x y) + C1 + C2``."""
    half = (c1 + c2) / 2
    scale = [v for v in _SCALE for _ in range(c)] + [0.0] * extra
    bias = [0.0] * (2 * c) + [half] * (2 * c) + [c1 + c2] * c + [0.0] * extra
    return (
        torch.tensor(scale, dtype=like.dtype, device=like.device),
        torch.tensor(bias, dtype=like.dtype, device=like.device),
    )


def _gauss(
    planes: Tensor,
    taps: tuple[float, ...],
    scale: Tensor,
    bias: Tensor | None = None,
    full: bool = False,
) -> Tensor:
    """``scale * (G * planes) + bias`` for planes (N, P, H, W), channels-last.

    Valid (output ``(N, P, H - k + 1, W - k + 1)``) or, with ``full=True``, the adjoint
    filter (zero padding ``k - 1``, output ``(N, P, H + k - 1, W + k - 1)``). One depthwise
    convolution per direction in channels-last layout, which oneDNN (CPU) and cuDNN run
    without copies; on CPU several times faster than an NCHW grouped convolution or ``k``
    shifted adds. ``scale`` and ``bias`` (P,) are free: folded into the convolution.
    """
    k, p = len(taps), planes.shape[1]
    g = torch.tensor(taps if not full else taps[::-1], dtype=planes.dtype, device=planes.device)
    w_w = g.view(1, 1, 1, k) * scale.view(p, 1, 1, 1)
    w_h = g.view(1, 1, k, 1).expand(p, 1, k, 1).contiguous()
    pad = k - 1 if full else 0
    out = F.conv2d(planes, w_w, padding=(0, pad), groups=p)
    return F.conv2d(out, w_h, bias=bias, padding=(pad, 0), groups=p)


def _nhwp(t: Tensor) -> Tensor:
    """(N, P, H, W) -> (N, H, W, P) view (contiguous for channels-last ``t``)."""
    return t.permute(0, 2, 3, 1)


def _ssim_statistics(
    f: Tensor, c: int, c1: float, c2: float, need_x: bool, need_y: bool
) -> tuple[Tensor, Tensor | None, list[str]]:
    """SSIM map and gradient coefficients from the filtered planes ``f`` (N, H, W, >= 5C)
    (scaled and offset as in :func:`_plane_constants`); ``f`` is overwritten.

    With ``A1 = mu_x' mu_y' + C1``, ``B1 = e_xy' - A1``, ``A_x = mu_x'^2 / 2 + C1 / 2``,
    ``A2 = A_x + A_y``, ``B2 = (e_xx' - A_x) + (e_yy' - A_y)``, ``rA = 1/A2``, ``rB = 1/B2``,
    ``l = A1 rA``, ``cs = B1 rB``:
    ``S = l cs``; gradient coefficients (module docstring) ``a_x = sqrt2 (mu_y' u + mu_x' v)``,
    ``u = cs rA - l rB``, ``v = S (rB - rA)``, ``b = -2 S rB``, ``c = 2 l rB``, stored without
    their constant factors (:data:`_ROLE_SCALE`, applied by the backward filter).

    Returns ``S`` (N, H, W, C), the coefficient planes (N, R*C, H, W) channels-last (roles
    outer, channels inner; None without gradient) and the role names.
    """
    n, h, w = f.shape[:3]
    mu_x, mu_y = f[..., 0:c], f[..., c : 2 * c]
    e_xx, e_yy, e_xy = f[..., 2 * c : 3 * c], f[..., 3 * c : 4 * c], f[..., 4 * c : 5 * c]
    c1_t = torch.tensor(c1, dtype=f.dtype, device=f.device)
    a1 = torch.addcmul(c1_t, mu_x, mu_y)
    # x and y halves computed alike, so that identical images give B1 = B2, A1 = A2 exactly
    a_x = torch.addcmul(c1_t / 2, mu_x, mu_x, value=0.5)
    a_y = torch.addcmul(c1_t / 2, mu_y, mu_y, value=0.5)
    b1 = e_xy.sub_(a1)
    b2 = e_xx.sub_(a_x).add_(e_yy.sub_(a_y))
    a2 = a_x.add_(a_y)
    if not (need_x or need_y):
        return torch.mul(a1, b1).div_(a2.mul_(b2)), None, []
    ra, rb = a2.reciprocal_(), b2.reciprocal_()
    lum, cs = a1.mul_(ra), b1.mul_(rb)
    s = torch.mul(lum, cs)
    roles = (["ax"] if need_x else []) + (["ay"] if need_y else []) + ["b", "c"]
    coefs, cv = _planes(n, len(roles) * c, h, w, f)
    plane = {r: cv[..., i * c : (i + 1) * c] for i, r in enumerate(roles)}
    torch.mul(s, rb, out=plane["b"])
    torch.mul(lum, rb, out=plane["c"])
    u = cs.mul_(ra).sub_(plane["c"])
    v = rb.sub_(ra).mul_(s)
    if need_x:
        torch.mul(mu_y, u, out=plane["ax"]).addcmul_(mu_x, v)
    if need_y:
        torch.mul(mu_x, u, out=plane["ay"]).addcmul_(mu_y, v)
    return s, coefs, roles


def _backward_planes(
    coefs: Tensor, roles: list[str], taps: tuple[float, ...], factor: Tensor | float = 1.0
) -> Tensor:
    """``factor * G^T[coefficient planes]`` with the role constants: (N, H, W, R, C)."""
    n, rc = coefs.shape[:2]
    c = rc // len(roles)
    base = torch.tensor([_ROLE_SCALE[r] for r in roles], dtype=coefs.dtype, device=coefs.device)
    scale = (base * factor).repeat_interleave(c)
    t = _nhwp(_gauss(coefs, taps, scale, full=True))
    return t.reshape(*t.shape[:3], len(roles), c)


def _combine(t: Tensor, roles: list[str], x: Tensor, y: Tensor) -> tuple[Tensor | None, ...]:
    """``dL/dx = t_ax + x t_b + y t_c`` (and ``dL/dy = t_ay + y t_b + x t_c``) from the
    transposed-filtered planes ``t`` (N, H, W, R, C), as (N, C, H, W) tensors laid out like
    ``x``/``y``."""
    i = {r: k for k, r in enumerate(roles)}
    out = []
    for r, u, v in (("ax", x, y), ("ay", y, x)):
        if r not in i:
            out.append(None)
            continue
        g = torch.empty_like(u)  # the layout of the input (NCHW or channels-last)
        gv = g.permute(0, 2, 3, 1)
        torch.addcmul(t[..., i[r], :], u.permute(0, 2, 3, 1), t[..., i["b"], :], out=gv)
        gv.addcmul_(v.permute(0, 2, 3, 1), t[..., i["c"], :])
        out.append(g)
    return tuple(out)


class _SSIMFunction(torch.autograd.Function):
    """``(x, y) -> `` the SSIM map (``mode="map"``, (N, C, H-k+1, W-k+1)), its per-sample
    means (``"per_sample"``, (N,)) or its mean (``"mean"``), with the analytic backward.

    Layout: the five planes ``x, y, x^2, y^2, x y`` of every sample are stacked channels-last,
    (N, H, W, 5C), filtered by :func:`_gauss` with the constants of :func:`_plane_constants`
    folded in, and combined by :func:`_ssim_statistics`. For ``"mean"`` the incoming
    gradient (a scalar) is folded into the backward filter too.
    """

    @staticmethod
    @_full_precision
    def forward(
        ctx, x, y, taps: tuple[float, ...], c1: float, c2: float, mode: str, grad_enabled: bool
    ):
        # forward always runs in no-grad mode: the caller says whether a backward can follow
        need_x = grad_enabled and ctx.needs_input_grad[0]
        need_y = grad_enabled and ctx.needs_input_grad[1]
        n, c, h, w = x.shape
        stack, sv = _planes(n, 5 * c, h, w, x)
        _fill_planes(sv, x, y)
        scale, bias = _plane_constants(c, c1, c2, 0, x)
        f = _nhwp(_gauss(stack, taps, scale, bias))
        del stack, sv
        s, coefs, roles = _ssim_statistics(f, c, c1, c2, need_x, need_y)
        if coefs is not None:
            ctx.save_for_backward(x, y, coefs)
        ctx.taps, ctx.roles, ctx.mode = taps, roles, mode
        ctx.map_shape = s.shape
        if mode == "mean":
            return s.mean()
        if mode == "per_sample":
            return s.mean(dim=(1, 2, 3))
        return s.permute(0, 3, 1, 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    @_full_precision
    def backward(ctx, grad: Tensor):
        x, y, coefs = ctx.saved_tensors
        n, hh, ww, c = ctx.map_shape
        if ctx.mode == "mean":
            # d mean / d S = 1 / (N C H' W') everywhere: fold into the transposed filter
            t = _backward_planes(coefs, ctx.roles, ctx.taps, grad / (n * c * hh * ww))
            gx, gy = _combine(t, ctx.roles, x, y)
        else:
            if ctx.mode == "per_sample":
                g = (grad / (c * hh * ww)).view(n, 1, 1, 1, 1)
            else:
                g = grad.permute(0, 2, 3, 1).unsqueeze(3)  # (N, H', W', 1, C)
            k = len(ctx.roles)
            planes, pv = _planes(n, k * c, hh, ww, coefs)
            torch.mul(_nhwp(coefs).view(n, hh, ww, k, c), g, out=pv.view(n, hh, ww, k, c))
            t = _backward_planes(planes, ctx.roles, ctx.taps)
            gx, gy = _combine(t, ctx.roles, x, y)
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
