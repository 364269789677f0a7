"""PATN's person mask for mask-SSIM and mask-IS, rasterised in torch (batched, no Python loop
over images, limbs or joints).

From the target keypoints (PATN's ``produce_ma_mask``): for each of the 23 ``PATN_MASK_LIMBS``
whose two joints are present, the rectangle ``f + n, f - n, t - n, t + n`` where ``n`` is the limb's
normal scaled to 4 px; a disk of radius 4 px at every present joint; then a closing with a
5x5 square (dilation, then erosion). Pixel inclusion is that of scikit-image 0.14.2, which
PATN pins:

- ``skimage.draw.polygon``: the crossing-number test at the pixel centre ``(x, y)``: edge
  ``(j, i)`` crosses when ``y_i <= y < y_j`` or ``y_j <= y < y_i`` and
  ``x < (x_j - x_i) (y - y_i) / (y_j - y_i) + x_i`` (float64, in that order); odd crossings
  are inside. The rule is half-open: pixels on a left or top edge are in, on a right or
  bottom edge out (scikit-image 0.18 switched to a closed rule). In a row a convex polygon
  has two crossing edges, at ``lo <= hi``, and its pixels are ``lo <= x < hi``; rows are
  filled by a difference array.
- ``skimage.draw.circle``: ``((r - r0) / 4)^2 + ((c - c0) / 4)^2 < 1`` (exact for integer
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

__all__ = ["patn_mask"]

CLOSING_SIZE = 5  # px: side of the square structuring element


def patn_mask(kp: Tensor, size: Sequence[int]) -> Tensor:
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
    normal = PATN_MASK_RADIUS * normal / length.unsqueeze(-1)
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

    _draw_disks(mask, kp, present, PATN_MASK_RADIUS)

    # closing with a square: skimage dilation, then erosion (reflect border)
    dilated = _window_reduce(mask, CLOSING_SIZE, 0, torch.maximum)
    mask = _window_reduce(dilated, CLOSING_SIZE, 1, torch.minimum)
    return mask.reshape(*lead, h, w)


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


def _polygon_rows(verts: Tensor, ok: Tensor, h: int, w: int) -> tuple[Tensor, Tensor, Tensor]:
    """The rows that each convex polygon can touch and, in each, its first and last pixel
    column: ``rows``, ``start``, ``end`` (N, L, R) long (start > end: none in that row).

    ``verts`` (N, L, V, 2) (row, col), ``ok`` (N, L) which polygons to draw. Each polygon gets
    the same number R of rows, from one above its top vertex to one below its bottom one
    (clamped to the image; R the largest such span in the batch), instead of all H rows.
    In row ``y`` the edges that cross it (half-open, module docstring) cross at ``lo <= hi``;
    the pixels ``x`` with ``lo <= x < hi`` are inside: ``start = ceil(lo)``,
    ``end = ceil(hi) - 1``.
    """
    ys = torch.where(ok[..., None], verts[..., 0], 0.0)  # (N, L, V); undrawn: row 0
    top = (torch.floor(ys.amin(-1)) - 1).clamp(0, h - 1)
    bottom = (torch.ceil(ys.amax(-1)) + 1).clamp(0, h - 1)
    span = int((bottom - top).amax()) + 1 if ys.numel() else 1
    first = top.clamp(max=h - span)  # (N, L): R = span rows from here stay in the image
    y = first[..., None] + torch.arange(span, dtype=verts.dtype, device=verts.device)

    lo = torch.full_like(y, torch.inf)
    hi = torch.full_like(y, -torch.inf)
    nv = verts.shape[-2]
    for i in range(nv):  # edge (j, i), j = i - 1: the order of scikit-image's loop
        yi, xi = verts[..., i, 0:1], verts[..., i, 1:2]  # (N, L, 1)
        yj, xj = verts[..., i - 1, 0:1], verts[..., i - 1, 1:2]
        crosses = ((yi <= y) & (y < yj)) | ((yj <= y) & (y < yi))
        den = torch.where(yj == yi, 1.0, yj - yi)  # used only where the edge crosses
        x = (xj - xi) * (y - yi) / den + xi
        lo = torch.where(crosses, torch.minimum(lo, x), lo)
        hi = torch.where(crosses, torch.maximum(hi, x), hi)
    drawn = ok[..., None] & (lo < hi)
    start = torch.where(drawn, torch.ceil(lo).clamp(min=0), float(w))
    end = torch.where(drawn, (torch.ceil(hi) - 1).clamp(max=w - 1), -1.0)
    return y.long(), start.long(), end.long()


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
