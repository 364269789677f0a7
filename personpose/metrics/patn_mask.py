"""PATN's person mask for mask-SSIM and mask-IS, rasterised in torch (batched, no Python loop
over images, limbs or joints).

From the target keypoints (PATN's ``produce_ma_mask``): for each of the 23 ``PATN_MASK_LIMBS``
whose two joints are present, the rectangle ``f + n, f - n, t - n, t + n`` where ``n`` is the limb's
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

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from personpose.data.keypoints import MISSING, NUM_JOINTS, PATN_MASK_LIMBS, PATN_MASK_RADIUS

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
    rows, start, end = _polygon_rows(verts, ok, h, w)  # (N, L, R): rows, column ranges

    # Union of the row intervals of all limbs: +1 at the start, -1 after the end, cumsum.
    # (Scatter-adds of 0/1 at every (image, limb, row), not boolean indexing: no nonzero;
    # float32: exact for these small counts, and its cumsum is ~10x faster than int32's.)
    n, h1 = kp.shape[0], w + 1
    drawn = (start <= end).to(torch.float32)
    base = (torch.arange(n, device=kp.device)[:, None, None] * h + rows) * h1
    diff = torch.zeros(n * h * h1, dtype=torch.float32, device=kp.device)
    diff.scatter_add_(0, (base + start.clamp(max=w)).flatten(), drawn.flatten())
    diff.scatter_add_(0, (base + (end + 1).clamp(min=0, max=w)).flatten(), -drawn.flatten())
    mask = diff.view(n, h, h1).cumsum(-1)[..., :w] > 0.5

    _draw_disks(mask, kp, present, radius)

    mask = _closing(mask, closing)
    return mask.reshape(*lead, h, w)


def _closing(mask: Tensor, size: int) -> Tensor:
    """Binary closing with a ``size x size`` square: dilation, then erosion."""
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


def _inside_exact(yv: list[Tensor], xv: list[Tensor], y: Tensor, x: Tensor) -> Tensor:
    """skimage's point_in_polygon != OUTSIDE, elementwise: polygons given by their vertices'
    rows ``yv`` and columns ``xv`` (lists of V tensors), points ``(y, x)``, all broadcastable.

    O'Rourke: with vertices shifted to the point, edge (i-1, i) counts as a right crossing
    when it straddles the row from above/below and ``(x0 y1 - x1 y0) / (y1 - y0) > 0``, as a
    left crossing when straddling the other way and the value is < 0; a point within 1e-12
    of a vertex, or with odd right or odd left crossings, is inside or on the boundary.
    """
    vertex = right = left = None
    for i in range(len(yv)):
        x0, y0 = xv[i] - x, yv[i] - y
        x1, y1 = xv[i - 1] - x, yv[i - 1] - y
        den = y1 - y0
        val = (x0 * y1 - x1 * y0) / torch.where(den == 0, 1.0, den)  # used where den != 0
        v_i = (x0.abs() < VERTEX_EPS) & (y0.abs() < VERTEX_EPS)
        r_i = ((y0 > 0) != (y1 > 0)) & (val > 0)
        l_i = ((y0 < 0) != (y1 < 0)) & (val < 0)
        vertex = v_i if vertex is None else vertex | v_i
        right = r_i if right is None else right ^ r_i  # parity of the crossings
        left = l_i if left is None else left ^ l_i
    return vertex | right | left


def _row_bounds(
    yv: list[Tensor], xv: list[Tensor], ok: Tensor, rows: Tensor, w: int
) -> tuple[Tensor, Tensor, Tensor]:
    """In each row ``y`` of ``rows`` (N, L, R) float64, the real bounds ``lo <= x <= hi`` of
    the convex polygon (vertex lists ``yv``, ``xv`` of (N, L, 1)), and whether the row can
    hold any pixel of it (see :func:`_polygon_rows`). The loop over the V edges is unrolled:
    every operation is elementwise over (N, L, R)."""
    area2 = sum(xv[i - 1] * yv[i] - xv[i] * yv[i - 1] for i in range(len(yv)))  # shoelace
    sigma = -torch.sign(area2)  # interior: sigma * cross >= 0
    lo = hi = None
    row_ok = ok
    for i in range(len(yv)):  # edge (i - 1, i)
        b = yv[i] - rows  # y0 of the point test
        a = yv[i - 1] - rows  # y1
        den = sigma * (a - b)
        num = sigma * (xv[i] * a - xv[i - 1] * b)
        flat = (a - b) == 0
        tau = num / torch.where(flat, torch.ones_like(den), den)
        lo_i = torch.where(~flat & (den < 0), tau, -math.inf)  # x >= tau
        hi_i = torch.where(~flat & (den > 0), tau, math.inf)  # x <= tau
        lo = lo_i if lo is None else torch.maximum(lo, lo_i)
        hi = hi_i if hi is None else torch.minimum(hi, hi_i)
        flat_sign = sigma * torch.sign(xv[i] - xv[i - 1]) * torch.sign(a)
        row_ok = row_ok & ~(flat & (flat_sign < 0))
    return lo.clamp(min=-1.0), hi.clamp(max=float(w)), row_ok


def _row_intervals(verts: Tensor, ok: Tensor, rows: Tensor, w: int) -> tuple[Tensor, Tensor]:
    """Inclusive pixel columns ``start``, ``end`` (N, L, R) float64 of each polygon's interval
    in the rows ``rows`` (N, L, R) (``start = w``, ``end = -1``: none). A crossing within
    ``TIE_TOL`` of a pixel centre is decided by the exact test at that pixel, as skimage does."""
    nv = verts.shape[-2]
    yv = [verts[..., i, 0:1] for i in range(nv)]  # (N, L, 1) each
    xv = [verts[..., i, 1:2] for i in range(nv)]
    lo, hi, row_ok = _row_bounds(yv, xv, ok[..., None], rows, w)
    empty = ~row_ok | torch.isnan(lo) | torch.isnan(hi)
    start = torch.where(empty, float(w), torch.ceil(lo + TIE_TOL).clamp(min=0))
    end = torch.where(empty, -1.0, torch.floor(hi - TIE_TOL).clamp(max=w - 1))
    out = []
    for bound, value in ((lo, start), (hi, end)):
        px = torch.round(bound)
        tie = ~empty & ((bound - px).abs() <= TIE_TOL) & (px >= 0) & (px <= w - 1)
        out.append(torch.where(tie & _inside_exact(yv, xv, rows, px), px, value))
    return out[0], out[1]


def _polygon_rows(verts: Tensor, ok: Tensor, h: int, w: int) -> tuple[Tensor, Tensor, Tensor]:
    """The rows that each convex polygon can touch and, in each, its first and last pixel
    column: ``rows``, ``start``, ``end`` (N, L, R) long (start > end: none in that row).

    ``verts`` (N, L, V, 2) (row, col), ``ok`` (N, L) which polygons to draw. Each polygon gets
    the same number R of rows, from one above its top vertex to one below its bottom one
    (clamped to the image; R the largest such span in the batch), instead of all H rows.
    The closed polygon is the intersection of its edges' half-planes; in row ``y`` an edge
    with end points i, j (rows shifted by -y: ``b = y_i - y``, ``a = y_j - y``) bounds the row
    at the crossing ``x = (x_i a - x_j b) / (a - b)``; horizontal edges (``a == b``) keep or
    drop the whole row by the sign of ``(x_i - x_j) a``.
    """
    ys = torch.where(ok[..., None], verts[..., 0], 0.0)  # (N, L, V); undrawn: row 0
    top = (torch.floor(ys.amin(-1)) - 1).clamp(0, h - 1)
    bottom = (torch.ceil(ys.amax(-1)) + 1).clamp(0, h - 1)
    span = int((bottom - top).amax()) + 1 if ys.numel() else 1
    first = top.clamp(max=h - span)  # (N, L): R = span rows from here stay in the image
    rows = first[..., None] + torch.arange(span, dtype=verts.dtype, device=verts.device)
    start, end = _row_intervals(verts, ok, rows, w)
    return rows.long(), start.long(), end.long()


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
