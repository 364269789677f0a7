"""PATN's person mask for mask-SSIM and mask-IS, rasterised in torch (batched, no Python loop
over images, limbs or joints).

From the target keypoints (DIGEST section 6): for each of the 23 ``PATN_MASK_LIMBS`` whose two
joints are present, the rectangle ``f + n, f - n, t - n, t + n`` where ``n`` is the limb's
normal scaled to 4 px; a disk of radius 4 px at every present joint; then a closing with a
5x5 square (dilation, then erosion). Pixel inclusion is scikit-image's, exactly:

- ``skimage.draw.polygon``: O'Rourke's point-in-polygon test at the pixel centre, which counts
  pixels on an edge or a vertex as inside (a closed polygon). Each rectangle is convex, so its
  pixels in a row form one interval, bounded by the edges' crossings of that row; a pixel
  within 1e-6 px of a crossing is decided by the test itself in float64 (what skimage does),
  so floating-point ties come out as in skimage. Rows are then filled by a difference array.
- ``skimage.draw.disk``: ``((r - r0) / 4)^2 + ((c - c0) / 4)^2 < 1`` (exact for integer
  keypoints), evaluated on a 10x10 window about each joint.
- ``skimage.morphology.dilation`` / ``erosion`` with ``reflect`` borders: a max / min over the
  5x5 window clipped to the image.

A limb whose joints coincide draws nothing (its normal is 0/0), as in PATN. A joint is missing
when either coordinate is -1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from personpose.data.keypoints import MISSING, NUM_JOINTS, PATN_MASK_LIMBS, PATN_MASK_RADIUS
from personpose.kernels import fused

__all__ = ["patn_mask"]

CLOSING_SIZE = 5  # px: side of the square structuring element
TIE_TOL = 1e-6  # px: crossings this close to a pixel centre are decided by the exact test
VERTEX_EPS = 1e-12  # skimage's vertex tolerance


def patn_mask(
    kp: Tensor,
    size: Sequence[int],
    radius: float = PATN_MASK_RADIUS,
    closing: int = CLOSING_SIZE,
) -> Tensor:
    """PATN's mask ``(..., H, W)`` bool from keypoints ``(..., 18, 2)`` (row, col) px."""
    kp = torch.as_tensor(kp)
    if kp.dim() < 2 or tuple(kp.shape[-2:]) != (NUM_JOINTS, 2):
        raise ValueError(f"patn_mask: kp must be (..., {NUM_JOINTS}, 2); got {tuple(kp.shape)}")
    h, w = (int(s) for s in size)
    lead = kp.shape[:-2]
    kp = kp.reshape(-1, NUM_JOINTS, 2).to(torch.float64)
    present = (kp != MISSING).all(-1)  # (N, 18)

    limbs = torch.tensor(PATN_MASK_LIMBS, device=kp.device)
    f, t = kp[:, limbs[:, 0]], kp[:, limbs[:, 1]]  # (N, L, 2)
    d = f - t
    normal = torch.stack([-d[..., 1], d[..., 0]], -1)
    length = torch.sqrt(normal[..., 0] * normal[..., 0] + normal[..., 1] * normal[..., 1])
    normal = radius * normal / length.unsqueeze(-1)
    verts = torch.stack([f + normal, f - normal, t - normal, t + normal], dim=-2)  # (N, L, 4, 2)
    ok = present[:, limbs[:, 0]] & present[:, limbs[:, 1]] & (length > 0)
    start, end = _polygon_rows(verts, ok, h, w)  # (N, L, H) inclusive column ranges

    # Union of the row intervals of all limbs: +1 at the start, -1 after the end, cumsum.
    # (Scatter-adds of 0/1 at every (image, limb, row), not boolean indexing: no nonzero.)
    n, h1 = kp.shape[0], w + 1
    drawn = (start <= end).to(torch.int32)
    base = (
        torch.arange(n, device=kp.device)[:, None, None] * h + torch.arange(h, device=kp.device)
    ) * h1
    diff = torch.zeros(n * h * h1, dtype=torch.int32, device=kp.device)
    diff.scatter_add_(0, (base + start.clamp(max=w)).flatten(), drawn.flatten())
    diff.scatter_add_(0, (base + (end + 1).clamp(min=0, max=w)).flatten(), -drawn.flatten())
    mask = diff.view(n, h, h1).cumsum(-1)[..., :w] > 0

    _draw_disks(mask, kp, present, radius)

    mask = _closing(mask, closing)
    return mask.reshape(*lead, h, w)


def _closing(mask: Tensor, size: int) -> Tensor:
    """Binary closing with a ``size x size`` square: dilation, then erosion. (Eager: compiled,
    inductor would recompute each dilated pixel for all 25 erosion reads.)"""
    return _erode(_dilate(mask, size), size)


def _window_reduce(mask: Tensor, size: int, fill: int, reduce) -> Tensor:
    """Separable reduction over ``size x size`` windows clipped to the image (bool (N, H, W))."""
    r = size // 2
    m = F.pad(mask.to(torch.uint8), (r, r, r, r), value=fill)
    h, w = mask.shape[-2:]
    rows = m[:, 0:h]
    for i in range(1, size):
        rows = reduce(rows, m[:, i : i + h])
    out = rows[..., 0:w]
    for i in range(1, size):
        out = reduce(out, rows[..., i : i + w])
    return out.bool()


def _dilate(mask: Tensor, size: int) -> Tensor:
    """Binary dilation with a square (skimage ``dilation``, reflect border)."""
    return _window_reduce(mask, size, 0, torch.maximum)


def _erode(mask: Tensor, size: int) -> Tensor:
    """Binary erosion with a square (skimage ``erosion``, reflect border)."""
    return _window_reduce(mask, size, 1, torch.minimum)


def _inside_exact(verts: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """skimage's point_in_polygon != OUTSIDE for polygons ``(K, V, 2)`` and points ``(K,)``.

    O'Rourke: with vertices shifted to the point, edge (i-1, i) counts as a right crossing
    when it straddles the row from above/below and ``(x0 y1 - x1 y0) / (y1 - y0) > 0``, as a
    left crossing when straddling the other way and the value is < 0; a point within 1e-12
    of a vertex, or with odd right or odd left crossings, is inside or on the boundary.
    """
    x0 = verts[..., 1] - x[:, None]
    y0 = verts[..., 0] - y[:, None]
    x1, y1 = x0.roll(1, dims=1), y0.roll(1, dims=1)
    vertex = ((x0.abs() < VERTEX_EPS) & (y0.abs() < VERTEX_EPS)).any(1)
    val = (x0 * y1 - x1 * y0) / (y1 - y0)
    right = (((y0 > 0) != (y1 > 0)) & (val > 0)).sum(1) % 2 == 1
    left = (((y0 < 0) != (y1 < 0)) & (val < 0)).sum(1) % 2 == 1
    return vertex | right | left


def _row_bounds(verts: Tensor, ok: Tensor, h: int, w: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per row ``y`` of the image, the real bounds ``lo <= x <= hi`` of each convex polygon
    (N, L, H) float64, and whether the row can hold any pixel of it (see :func:`_polygon_rows`).
    """
    dev = verts.device
    yv, xv = verts[..., 0], verts[..., 1]  # (N, L, V)
    xj, yj = xv.roll(1, dims=-1), yv.roll(1, dims=-1)  # the previous vertex: edge (j, i)
    area2 = (xj * yv - xv * yj).sum(-1)  # twice the signed area (shoelace)
    sigma = -torch.sign(area2)[..., None, None]  # interior: sigma * cross >= 0
    rows = torch.arange(h, dtype=torch.float64, device=dev)[:, None]  # (H, 1)
    b = yv[..., None, :] - rows  # (N, L, H, V): y0 of the point test
    a = yj[..., None, :] - rows  # y1
    den = sigma * (a - b)
    num = sigma * (xv[..., None, :] * a - xj[..., None, :] * b)
    flat = (a - b) == 0
    tau = num / torch.where(flat, torch.ones_like(den), den)
    inf = torch.full_like(tau, float("inf"))
    lo = torch.where(~flat & (den < 0), tau, -inf).amax(-1)  # x >= tau
    hi = torch.where(~flat & (den > 0), tau, inf).amin(-1)  # x <= tau
    flat_sign = sigma * torch.sign(xv - xj)[..., None, :] * torch.sign(a)
    row_ok = ~(flat & (flat_sign < 0)).any(-1) & ok[..., None]  # (N, L, H)
    lo, hi = lo.clamp(min=-1.0), hi.clamp(max=float(w))
    return lo, hi, row_ok


@fused(min_elements=4 * len(PATN_MASK_LIMBS) * 8)  # 4 images and more
def _row_intervals(verts: Tensor, ok: Tensor, h: int, w: int):
    """Inclusive pixel columns ``start``, ``end`` (N, L, H) float64 of each polygon's row
    intervals (``start = w``, ``end = -1``: none), and for each of them the nearest pixel
    ``px`` and whether the crossing is a tie within ``TIE_TOL`` of it, for the exact test."""
    lo, hi, row_ok = _row_bounds(verts, ok, h, w)
    empty = ~row_ok | torch.isnan(lo) | torch.isnan(hi)
    start = torch.where(empty, float(w), torch.ceil(lo + TIE_TOL).clamp(min=0))
    end = torch.where(empty, -1.0, torch.floor(hi - TIE_TOL).clamp(max=w - 1))
    ties = []
    for bound in (lo, hi):
        px = torch.round(bound)
        ties.append((px, ~empty & ((bound - px).abs() <= TIE_TOL) & (px >= 0) & (px <= w - 1)))
    return start, end, ties


def _polygon_rows(verts: Tensor, ok: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Per row, the first and last pixel column of each convex polygon (start > end: none).

    ``verts`` (N, L, V, 2) (row, col), ``ok`` (N, L) which polygons to draw. The closed
    polygon is the intersection of its edges' half-planes; in row ``y`` an edge with end
    points i, j (rows shifted by -y: ``b = y_i - y``, ``a = y_j - y``) bounds the row at the
    crossing ``x = (x_i a - x_j b) / (a - b)``; horizontal edges (``a == b``) keep or drop
    the whole row by the sign of ``(x_i - x_j) a``.
    """
    start, end, ties = _row_intervals(verts, ok, h, w)
    # Crossings within TIE_TOL of a pixel centre: ask the exact test about that pixel.
    for out, (px, tie) in zip((start, end), ties):
        if not tie.any():
            continue
        ni, li, yi = tie.nonzero(as_tuple=True)
        inside = _inside_exact(verts[ni, li], yi.to(torch.float64), px[ni, li, yi])
        out[ni, li, yi] = torch.where(inside, px[ni, li, yi], out[ni, li, yi])
    return start.long(), end.long()


def _draw_disks(mask: Tensor, kp: Tensor, present: Tensor, radius: float) -> None:
    """Set the pixels of a disk of ``radius`` px about every present joint (in place)."""
    n, h, w = mask.shape
    r = int(radius) + 1
    offs = torch.arange(-r, r + 2, device=kp.device)  # covers ceil(c - radius)..floor(c + radius)
    base = torch.floor(kp)  # (N, 18, 2)
    yy = base[..., 0, None, None] + offs[:, None]  # (N, 18, K, 1)
    xx = base[..., 1, None, None] + offs[None, :]  # (N, 18, 1, K)
    inside = ((yy - kp[..., 0, None, None]) / radius) ** 2 + (
        (xx - kp[..., 1, None, None]) / radius
    ) ** 2 < 1
    inside &= present[..., None, None] & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    # set the inside pixels by a max-scatter of 0/1 (outside ones point at pixel 0 with a 0)
    idx = (torch.arange(n, device=kp.device)[:, None, None, None] * h + yy.long()) * w + xx.long()
    idx = torch.where(inside, idx, torch.zeros_like(idx))
    flat = mask.view(-1)
    flat.copy_(
        flat.to(torch.uint8)
        .scatter_reduce_(0, idx.flatten(), inside.flatten().to(torch.uint8), reduce="amax")
        .bool()
    )
