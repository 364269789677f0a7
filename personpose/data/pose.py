"""Pose maps, soft body-part masks and skeleton drawings computed from keypoints (torch, batched).

Keypoints are a tensor ``(..., 18, 2)`` of (row, col) = (y, x) pixel coordinates (int or float);
a joint is missing when either coordinate is -1 (or NaN). Every function takes any number of
leading batch dimensions, runs on the device of ``kp`` and has no Python loop over joints, parts
or samples, so it is equally usable in a ``Dataset`` and on the GPU inside a training step.
Outputs are float32, or float64 when ``kp`` is float64 (used by the exactness tests).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from personpose.data.keypoints import (
    MISSING,
    NUM_JOINTS,
    NUM_PARTS,
    PART_JOINTS,
    PART_PERP_SIGMA,
    SKELETON_BONES,
)

__all__ = ["pose_heatmaps", "part_masks", "draw_pose"]

PAR_VAR_FLOOR = 5.0  # px^2: lower bound of the variance along a part (docs/data.md#part-masks)
PAR_VAR_DIVISOR = 1.2  # variance along a part = |p1 - p0|^2 / 1.2
NORM_EPS = 1e-6  # each part is divided by (its maximum over the image + 1e-6)
LOG2E = 1.4426950408889634  # exponents are kept in base 2: exp2 is ~2.5x faster than exp on CPU


def _prepare(kp, size, fn: str) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Validate; return float keypoints with missing joints zeroed, the missing flags, H, W."""
    kp = torch.as_tensor(kp)
    if kp.dim() < 2 or tuple(kp.shape[-2:]) != (NUM_JOINTS, 2):
        raise ValueError(
            f"{fn}: kp must have shape (..., {NUM_JOINTS}, 2) of (row, col); got {tuple(kp.shape)}"
        )
    if kp.dtype == torch.bool or kp.is_complex():
        raise ValueError(f"{fn}: kp must be an int or float tensor; got {kp.dtype}")
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        h = w = 0
    if h <= 0 or w <= 0 or (h, w) != tuple(size):
        raise ValueError(f"{fn}: size must be (H, W), two positive ints; got {size!r}")
    missing = ((kp == MISSING) | kp.isnan()).any(-1)  # (..., 18)
    # missing joints (-1 or NaN) -> 0: nothing non-finite reaches the maps, which mask them out
    kp = kp.to(torch.float64 if kp.dtype == torch.float64 else torch.float32)
    kp = kp.masked_fill(missing.unsqueeze(-1), 0.0)
    return kp, missing, h, w


@functools.lru_cache(maxsize=32)
def _grid(h: int, w: int, device: torch.device, dtype: torch.dtype):
    """Pixel row and column indices (H,), (W,) (cached; do not modify in place)."""
    return torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype)


def pose_heatmaps(kp: torch.Tensor, size: Sequence[int], sigma: float = 6.0) -> torch.Tensor:
    """Gaussian joint maps ``BP`` (docs/data.md#pose-maps).

    Args:
        kp: ``(..., 18, 2)`` keypoints (row, col) in px, -1 for missing.
        size: ``(H, W)`` of the maps.
        sigma: Gaussian standard deviation in px (6 in the reference at both resolutions).

    Returns:
        ``(..., 18, H, W)`` in [0, 1]; channel j is
        ``exp(-((r - y_j)^2 + (c - x_j)^2) / (2 sigma^2))``, all zeros when joint j is missing.
        Computed as the outer product of a row and a column Gaussian (no full-size temporaries).
    """
    kp, missing, h, w = _prepare(kp, size, "pose_heatmaps")
    try:
        sig = float(sigma)
    except (TypeError, ValueError):
        sig = math.nan
    if not (math.isfinite(sig) and sig > 0):
        raise ValueError(f"pose_heatmaps: sigma must be a positive number of px; got {sigma!r}")
    inv = -1.0 / (2.0 * sig**2)
    rows, cols = _grid(h, w, kp.device, kp.dtype)
    g_row = torch.exp((rows - kp[..., 0:1]).square_().mul_(inv))  # (..., 18, H)
    g_row.masked_fill_(missing.unsqueeze(-1), 0.0)
    g_col = torch.exp((cols - kp[..., 1:2]).square_().mul_(inv))  # (..., 18, W)
    return g_row.unsqueeze(-1) * g_col.unsqueeze(-2)


@functools.lru_cache(maxsize=32)
def _part_tables(device: torch.device, dtype: torch.dtype, scale: float):
    """Per-part constants: joint indices (10, 4) = (p0 a, p0 b, p1 a, p1 b), where an end point
    is the mean of joints a and b (a == b for limbs), log2(e) / (2 v_perp) (10,), v_par floor."""
    ends = [(j[0], j[0], j[1], j[1]) if len(j) == 2 else tuple(j) for j in PART_JOINTS]
    ends = torch.tensor(ends, dtype=torch.long, device=device).flatten()  # (40,)
    half_inv_perp = [0.5 * LOG2E / (s * scale) ** 2 for s in PART_PERP_SIGMA]
    return ends, torch.tensor(half_inv_perp, dtype=dtype, device=device), PAR_VAR_FLOOR * scale**2


def part_masks(
    kp: torch.Tensor,
    size: Sequence[int],
    scale_with_height: bool = False,
    ref_height: int = 128,
) -> torch.Tensor:
    """Soft body-part masks of the part-based SSIM loss (docs/data.md#part-masks), background first.

    Part k (1..10) with end points p0, p1 (torso: mean of the shoulders, mean of the hips) is an
    oriented Gaussian ``G_k = exp(-(a dr^2 + 2 b dr dc + c dc^2))`` about the midpoint, with
    variance ``v_par = max(5, |p1 - p0|^2 / 1.2)`` px^2 along the part and ``v_perp = 9^2``
    (limbs, head) or ``13^2`` (torso) across; with ``theta = atan2(p1.col - p0.col, p0.row -
    p1.row)``: ``a = cos^2/(2 v_par) + sin^2/(2 v_perp)``, ``b = sin(2 theta) (1/(4 v_perp) -
    1/(4 v_par))``, ``c = sin^2/(2 v_par) + cos^2/(2 v_perp)``. Then
    ``M_k = G_k / (max over the H x W pixel grid of G_k + 1e-6)`` (so a part whose centre is
    on a pixel peaks at 1 / (1 + 1e-6)); ``M_k = 0`` everywhere when an end joint (any of
    2, 5, 8, 11 for the torso) is missing; ``M_0 = 1 - max_k M_k``.

    Args:
        kp: ``(..., 18, 2)`` target keypoints (row, col) in px, -1 for missing.
        size: ``(H, W)``.
        scale_with_height: the reference uses the same pixel sigmas at every resolution (a
            known weakness: parts are relatively thinner at 256x176 than at 128x64). If True,
            the across-part sigmas (9, 13 px) and the square root of the floor (5 px^2) are
            multiplied by ``H / ref_height``; the along-part variance follows the limb anyway.
        ref_height: image height (px) at which the sigmas hold unscaled (128, Market).

    Returns:
        ``(..., 11, H, W)`` in [0, 1]: channel 0 background, channels 1..10 the parts in
        ``PART_NAMES`` order.
    """
    lead = torch.as_tensor(kp).shape[:-2]
    kp, missing, h, w = _prepare(kp, size, "part_masks")
    if ref_height <= 0:
        raise ValueError(f"part_masks: ref_height must be a positive px height; got {ref_height}")
    kp = kp.reshape(-1, NUM_JOINTS, 2)
    n, dev, dt = kp.shape[0], kp.device, kp.dtype
    ends, half_inv_perp, floor = _part_tables(dev, dt, h / ref_height if scale_with_height else 1.0)
    rows, cols = _grid(h, w, dev, dt)

    missing = missing.reshape(-1, NUM_JOINTS)
    part_missing = torch.index_select(missing, 1, ends).view(n, NUM_PARTS, 4).any(-1)  # (N, 10)
    e = torch.index_select(kp, 1, ends).view(n, NUM_PARTS, 2, 2, 2)  # part, end, a|b, (row, col)
    p = e.sum(-2) * 0.5  # (N, 10, 2, 2): end points p0, p1; exact for limbs (a == b)
    centre = p.sum(-2) * 0.5  # (N, 10, 2)
    d = p[:, :, 1] - p[:, :, 0]
    # a, b, c below carry a factor log2(e): the quadratic form is in base-2 exponent units
    half_inv_par = (0.5 * LOG2E) / (d.square().sum(-1) / PAR_VAR_DIVISOR).clamp_min_(floor)
    theta = torch.atan2(d[..., 1], -d[..., 0])
    cos2, sin2 = theta.cos().square_(), theta.sin().square_()
    a = (cos2 * half_inv_par + sin2 * half_inv_perp).unsqueeze(-1)  # (N, 10, 1)
    b = (torch.sin(2 * theta) * 0.5 * (half_inv_perp - half_inv_par)).unsqueeze(-1)
    c = (sin2 * half_inv_par + cos2 * half_inv_perp).unsqueeze(-1)

    dr = rows - centre[..., 0:1]  # (N, 10, H)
    dc = cols - centre[..., 1:2]  # (N, 10, W)
    q_row = a * dr.square()  # a dr^2
    q_cross = 2 * b * dr  # the factor of dc in the cross term

    # Exact grid maximum of G without evaluating it everywhere: in each row the quadratic form
    # is a convex parabola in the column, so its integer minimiser is the floor or ceil of the
    # real one, clamped to [0, W - 1].
    col = torch.floor(centre[..., 1:2] - q_cross / (2 * c))
    cand = torch.stack((col, col + 1), -1).clamp_(0, w - 1).sub_(centre[..., 1:2, None])
    q = (q_row.unsqueeze(-1) + q_cross.unsqueeze(-1) * cand).addcmul_(
        c.unsqueeze(-1), cand.square()
    )
    log_norm = torch.log2(torch.exp2(-q.amin(dim=(-2, -1))) + NORM_EPS)  # (N, 10)

    # M_k = exp2(-(a dr^2 + log_norm) - c dc^2 - 2 b dr dc), written straight into the output
    row_term = torch.neg(q_row).sub_(log_norm.unsqueeze(-1))
    row_term.masked_fill_(part_missing.unsqueeze(-1), -math.inf)
    col_term = torch.neg(c * dc.square())
    out = torch.empty(n, NUM_PARTS + 1, h, w, device=dev, dtype=dt)
    parts = out[:, 1:]
    torch.add(row_term.unsqueeze(-1), col_term.unsqueeze(-2), out=parts)
    parts.addcmul_(q_cross.unsqueeze(-1), dc.unsqueeze(-2), value=-1).exp2_()
    background = out[:, 0]
    torch.amax(parts, dim=1, out=background)
    background.neg_().add_(1.0)
    return out.reshape(*lead, NUM_PARTS + 1, h, w)


def draw_pose(kp: torch.Tensor, size: Sequence[int], width: float | None = None) -> torch.Tensor:
    """RGB stick figure of ``SKELETON_BONES`` plus joint dots, for sample grids.

    Args:
        kp: ``(..., 18, 2)`` keypoints (row, col) in px, -1 for missing.
        size: ``(H, W)``.
        width: bone half-width in px (default ``max(1, H / 128)``); joints get twice that.

    Returns:
        ``(..., 3, H, W)`` float in [-1, 1]: black background, one hue per bone, white joints.
    """
    kp, missing, h, w = _prepare(kp, size, "draw_pose")
    half = max(1.0, h / 128) if width is None else float(width)
    bones = torch.tensor(SKELETON_BONES, dtype=torch.long, device=kp.device)
    joints = torch.arange(NUM_JOINTS, device=kp.device)
    # segments (S, 2): the bones, then zero-length joint "dots"
    start, end = torch.cat((bones, torch.stack((joints, joints), 1))).T
    radius = torch.tensor([half] * len(bones) + [2 * half] * NUM_JOINTS, device=kp.device)
    hue = torch.arange(len(bones), dtype=torch.float32, device=kp.device) / len(bones)
    phase = torch.tensor([0.0, 1 / 3, 2 / 3], device=kp.device)
    rgb = ((hue[:, None] + phase) * (2 * math.pi)).cos() * 0.5 + 0.5  # (bones, 3): a hue wheel
    colours = torch.cat((rgb, torch.ones(NUM_JOINTS, 3, device=kp.device)))  # (S, 3) in [0, 1]

    p, q = kp[..., start, :], kp[..., end, :]  # (..., S, 2)
    seg = q - p
    rows, cols = _grid(h, w, kp.device, kp.dtype)
    rel_r = rows[:, None] - p[..., 0, None, None]  # (..., S, H, 1)
    rel_c = cols - p[..., 1, None, None]  # (..., S, 1, W)
    len2 = seg.square().sum(-1).clamp_min(1e-12)[..., None, None]
    t = ((rel_r * seg[..., 0, None, None] + rel_c * seg[..., 1, None, None]) / len2).clamp(0, 1)
    dist = torch.hypot(rel_r - t * seg[..., 0, None, None], rel_c - t * seg[..., 1, None, None])
    absent = missing[..., start] | missing[..., end]
    cover = (radius[:, None, None] + 0.5 - dist).clamp(0, 1).to(torch.float32)
    cover = cover.masked_fill(absent[..., None, None], 0.0)  # (..., S, H, W)
    # Each pixel takes the segment covering it most; ties go to the later one (joints on top).
    order = torch.arange(cover.shape[-3], device=kp.device, dtype=torch.float32) * 1e-3
    best = (cover + order[:, None, None] * (cover > 0)).argmax(-3)  # (..., H, W)
    alpha = cover.gather(-3, best.unsqueeze(-3))  # (..., 1, H, W)
    colour = colours[best].movedim(-1, -3)  # (..., 3, H, W)
    return (colour * alpha) * 2 - 1
