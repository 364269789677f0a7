"""SSIM and part-based SSIM kernels: pure tensor functions, fused by :mod:`.compiled`.

Images are planar ``(N, C, H, W)``. A window ``G`` is given by its 1-D ``taps`` (a tuple of
floats, normalised) and applied separably, "valid" (no padding: ``H' = H - k + 1``). With
``mu_x = G * x``, ``e_xx = G * x^2``, ``e_xy = G * (x y)`` (likewise for ``y``)::

    A1 = 2 mu_x mu_y + C1    A2 = mu_x^2 + mu_y^2 + C1
    B1 = 2 (e_xy - mu_x mu_y) + C2    B2 = (e_xx + e_yy) - (mu_x^2 + mu_y^2) + C2
    S = (A1 / A2) (B1 / B2)

(population covariance). Gradients, with ``l = A1 / A2``, ``cs = B1 / B2``,
``u = 2 (cs / A2 - l / B2)``, ``v = 2 S (1 / B2 - 1 / A2)``::

    dL/dx = G^T[g a_x] + x G^T[g b] + y G^T[g c],   dL/dy = G^T[g a_y] + y G^T[g b] + x G^T[g c]
    a_x = mu_y u + mu_x v,   a_y = mu_x u + mu_y v,   b = -2 S / B2,   c = 2 l / B2

with ``g`` the incoming gradient of the map and ``G^T`` the adjoint ("full") filter: the valid
filter with reversed taps of the coefficient planes zero-padded by ``k - 1``. The forward
kernels return the coefficient planes (roles ``a_x``, ``a_y`` as asked, then ``b``, ``c``;
``C`` planes each) so that the backward is one filtering and a multiply-add.

``e_xx`` and ``e_yy`` enter only as their sum, so four planes per channel are filtered
(``x, y, x^2 + y^2, x y``), not five. Eagerly each line is a pass over memory; compiled, the
planes, the filters and the statistics become a few fused loops (see
``experiments/bench_losses.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from personpose.kernels.compiled import fused

__all__ = [
    "background_backward",
    "filter_valid",
    "moment_planes",
    "pad_full",
    "part_backward",
    "part_forward",
    "ssim_backward",
    "ssim_forward",
    "ssim_range_per_image",
    "ssim_statistics",
]


def filter_valid(p: Tensor, taps: tuple[float, ...]) -> Tensor:
    """Separable valid correlation of the last two dims of ``p`` with 1-D ``taps``:
    ``(..., H, W) -> (..., H - k + 1, W - k + 1)`` (along W first, then H)."""
    k = len(taps)
    h, w = p.shape[-2] - k + 1, p.shape[-1] - k + 1
    r = p[..., 0:w] * taps[0]
    for i in range(1, k):
        r.add_(p[..., i : i + w], alpha=taps[i])
    o = r[..., 0:h, :] * taps[0]
    for i in range(1, k):
        o.add_(r[..., i : i + h, :], alpha=taps[i])
    return o


def pad_full(t: Tensor, k: int) -> Tensor:
    """Zero padding by ``k - 1`` px on every side: the input of the adjoint filter."""
    return F.pad(t, (k - 1, k - 1, k - 1, k - 1))


def moment_planes(x: Tensor, y: Tensor) -> Tensor:
    """``x, y, x^2 + y^2, x y`` (N, 4C, H, W): SSIM needs ``e_xx`` and ``e_yy`` only as their
    sum (in ``B2``), so one plane carries both, and every filter or contraction of the planes
    costs 4/5 of the textbook five."""
    return torch.cat([x, y, x * x + y * y, x * y], 1)


def _moments(x: Tensor, y: Tensor, taps: tuple[float, ...]):
    """``mu_x, mu_y, e_xx + e_yy, e_xy``, each (N, C, H', W')."""
    return filter_valid(moment_planes(x, y), taps).split(x.shape[1], 1)


def ssim_statistics(
    mu_x: Tensor,
    mu_y: Tensor,
    e_sq: Tensor,
    e_xy: Tensor,
    c1: float | Tensor,
    c2: float | Tensor,
    need_x: bool,
    need_y: bool,
) -> tuple[Tensor, list[Tensor]]:
    """SSIM ``S`` from the moments ``mu_x, mu_y, e_xx + e_yy, e_xy`` (any equal shapes, windowed
    or mask-weighted; population covariance), and its gradient coefficients ``[a_x] [a_y] b c``
    (module docstring; empty without gradient). ``c1``, ``c2``: floats or broadcastable."""
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    a1 = 2 * mu_xy + c1
    a2 = mu_sq + c1
    b1 = 2 * (e_xy - mu_xy) + c2
    b2 = (e_sq - mu_sq) + c2
    lum, cs = a1 / a2, b1 / b2  # divisions: exactly 1 where x = y (or a part is missing)
    s = lum * cs
    if not (need_x or need_y):
        return s, []
    ra, rb = 1 / a2, 1 / b2
    u = 2 * (cs * ra - lum * rb)
    v = 2 * s * (rb - ra)
    roles = []
    if need_x:
        roles.append(mu_y * u + mu_x * v)
    if need_y:
        roles.append(mu_x * u + mu_y * v)
    return s, roles + [-2 * s * rb, 2 * lum * rb]


def _ssim_and_coefs(x, y, taps, c1, c2, need_x: bool, need_y: bool):
    """SSIM map (N, C, H', W') and coefficient planes (N, R*C, H', W') or None."""
    s, roles = ssim_statistics(*_moments(x, y, taps), c1, c2, need_x, need_y)
    return s, (torch.cat(roles, 1) if roles else None)


@fused
def ssim_forward(
    x: Tensor,
    y: Tensor,
    taps: tuple[float, ...],
    c1: float,
    c2: float,
    need_x: bool,
    need_y: bool,
    reduce: bool,
) -> tuple[Tensor, Tensor | None]:
    """SSIM of ``x, y`` (N, C, H, W): the per-sample sum of the map ``(N,)`` (``reduce``) or
    the map ``(N, C, H', W')``, and the coefficient planes (module docstring) or None."""
    s, coefs = _ssim_and_coefs(x, y, taps, c1, c2, need_x, need_y)
    return (s.sum(dim=(1, 2, 3)) if reduce else s), coefs


def _combine(t: Tensor, x: Tensor, y: Tensor, need_x: bool, need_y: bool):
    c = x.shape[1]
    parts = t.split(c, 1)
    tb, tc = parts[-2], parts[-1]
    gx = parts[0] + x * tb + y * tc if need_x else None
    gy = parts[1 if need_x else 0] + y * tb + x * tc if need_y else None
    return gx, gy


@fused
def ssim_backward(
    t_pad: Tensor,
    x: Tensor,
    y: Tensor,
    scale: Tensor,
    taps: tuple[float, ...],
    need_x: bool,
    need_y: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """``dL/dx``, ``dL/dy`` (N, C, H, W) (None where not needed) from the coefficient planes,
    already multiplied by the map's gradient where it is not uniform, zero-padded by ``k - 1``
    (:func:`pad_full`); ``scale`` (a 0-d or (N, 1, 1, 1) tensor) multiplies the result."""
    t = filter_valid(t_pad, taps[::-1])
    gx, gy = _combine(t, x, y, need_x, need_y)
    return (gx * scale if need_x else None), (gy * scale if need_y else None)


@fused
def part_forward(
    x: Tensor,
    y: Tensor,
    m0: Tensor,
    taps: tuple[float, ...],
    c1: float,
    c2: float,
    need_x: bool,
    need_y: bool,
    want_planes: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The windowed half of PSSIM and the planes of its part half.

    ``x, y`` (N, C, H, W), ``m0`` (N, 1, H, W) the background mask. Returns the per-sample sum
    of the SSIM map of ``m0 x, m0 y`` ``(N,)``, its coefficient planes (or None) and the planes
    ``x, y, x^2 + y^2, x y`` (N, 4C, H, W) that the part masks are contracted with (None
    unless ``want_planes``: the native contraction forms them itself).
    """
    s, coefs = _ssim_and_coefs(m0 * x, m0 * y, taps, c1, c2, need_x, need_y)
    planes = moment_planes(x, y) if want_planes else None
    return s.sum(dim=(1, 2, 3)), coefs, planes


@fused
def part_backward(
    t_pad: Tensor,
    x: Tensor,
    y: Tensor,
    m0: Tensor,
    parts: Tensor,
    d: Tensor,
    scale_bg: Tensor,
    taps: tuple[float, ...],
    need_x: bool,
    need_y: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """PSSIM's ``dL/dx``, ``dL/dy`` (N, C, H, W).

    Background (the SSIM of ``m0 x``, ``m0 y``): ``m0 (t_a + m0 (x t_b + y t_c))`` times
    ``scale_bg`` (N, 1, 1, 1), ``t`` the adjoint-filtered coefficient planes ``t_pad``. Parts:
    ``sum_k M_k (d_a + x d_b + y d_c)``, ``parts`` (N, K, H, W) the masks ``M_k`` and ``d``
    (N, K, R, C) the per-part coefficients (roles as the planes, already times the gradient).
    """
    t = filter_valid(t_pad, taps[::-1])
    gx_b, gy_b = _combine(t, x * m0, y * m0, need_x, need_y)  # dL/d(m0 x), dL/d(m0 y)
    m = parts.unsqueeze(2)  # (N, K, 1, H, W)
    dd = d[..., None, None]  # (N, K, R, C, 1, 1)

    def mix(role: int) -> Tensor:  # sum_k M_k d[:, k, role]: (N, C, H, W)
        if torch.compiler.is_compiling():  # one fused loop over the K masks
            return (m * dd[:, :, role]).sum(1)
        return torch.einsum("nkhw,nkc->nchw", parts, d[:, :, role])  # eager: no (N, K, C, H, W)

    g_b, g_c = mix(-2), mix(-1)
    gx = gy = None
    if need_x:
        gx = m0 * gx_b * scale_bg + mix(0) + x * g_b + y * g_c
    if need_y:
        gy = m0 * gy_b * scale_bg + mix(1 if need_x else 0) + y * g_b + x * g_c
    return gx, gy


@fused
def background_backward(
    t_pad: Tensor,
    x: Tensor,
    y: Tensor,
    m0: Tensor,
    scale_bg: Tensor,
    taps: tuple[float, ...],
    need_x: bool,
    need_y: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """The background's terms of PSSIM's ``dL/dx``, ``dL/dy`` (N, C, H, W) (see
    :func:`part_backward`): ``m0 (t_a + m0 (x t_b + y t_c))`` times ``scale_bg``. The parts'
    terms are added to them in place (:func:`personpose.kernels.native.part_grad`)."""
    t = filter_valid(t_pad, taps[::-1])
    gx_b, gy_b = _combine(t, x * m0, y * m0, need_x, need_y)
    gx = m0 * gx_b * scale_bg if need_x else None
    gy = m0 * gy_b * scale_bg if need_y else None
    return gx, gy


@fused
def ssim_range_per_image(
    x: Tensor, y: Tensor, mask: Tensor | None, taps: tuple[float, ...], k1: float, k2: float
) -> Tensor:
    """PATN's SSIM per image ``(N,)`` float64 (the metrics' protocol): the mean windowed
    (valid) SSIM map of ``x, y`` (times ``mask`` (N, 1, H, W) when given), population
    covariance, with ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2`` from the data range
    ``R = max - min`` of each (masked) ``x``."""
    if mask is not None:
        x, y = x * mask, y * mask
    flat = x.flatten(1)
    r = (flat.amax(1) - flat.amin(1)).view(-1, 1, 1, 1)
    s, _ = ssim_statistics(*_moments(x, y, taps), (k1 * r) ** 2, (k2 * r) ** 2, False, False)
    # mean accumulated in float64: ~1e-9 from float64 throughout, where a float32 sum of the
    # 10^5 map values of a 256x176 image drifts by ~1e-6
    return s.to(torch.float64).mean(dim=(1, 2, 3))
