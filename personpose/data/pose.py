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

PAR_VAR_FLOOR = 5.0  # px^2: lower bound of the variance along a part (DIGEST section 3)
PAR_VAR_DIVISOR = 1.2  # variance along a part = |p1 - p0|^2 / 1.2
NORM_EPS = 1e-6  # each part is divided by (its maximum over the image + 1e-6)


def _check_size(size: Sequence[int], fn: str) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: size must be (H, W), two positive ints; got {size!r}") from None
    if h <= 0 or w <= 0 or (h, w) != tuple(size):
        raise ValueError(f"{fn}: size must be (H, W), two positive ints; got {size!r}")
    return h, w


def _prepare(kp, size, fn: str) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Validate; return float keypoints with missing joints zeroed, the missing flags, H, W."""
    if not isinstance(kp, torch.Tensor):
        kp = torch.as_tensor(kp)
    if kp.dim() < 2 or tuple(kp.shape[-2:]) != (NUM_JOINTS, 2):
        raise ValueError(
            f"{fn}: kp must have shape (..., {NUM_JOINTS}, 2) of (row, col); got {tuple(kp.shape)}"
        )
    if kp.dtype == torch.bool or kp.is_complex():
        raise ValueError(f"{fn}: kp must be an int or float tensor; got {kp.dtype}")
    h, w = _check_size(size, fn)
    dtype = torch.float64 if kp.dtype == torch.float64 else torch.float32
    kp = kp.to(dtype)
    missing = ((kp == MISSING) | kp.isnan()).any(-1)  # (..., 18)
    kp = kp.masked_fill(missing.unsqueeze(-1), 0.0)
    return kp, missing, h, w


def pose_heatmaps(kp: torch.Tensor, size: Sequence[int], sigma: float = 6.0) -> torch.Tensor:
    """Gaussian joint maps ``BP`` (DIGEST section 2).

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
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"pose_heatmaps: sigma must be a positive number of px; got {sigma!r}")
    inv = -1.0 / (2.0 * float(sigma) ** 2)
    rows = torch.arange(h, device=kp.device, dtype=kp.dtype)
    cols = torch.arange(w, device=kp.device, dtype=kp.dtype)
    g_row = torch.exp((rows - kp[..., 0:1]).square_().mul_(inv))  # (..., 18, H)
    g_row.masked_fill_(missing.unsqueeze(-1), 0.0)
    g_col = torch.exp((cols - kp[..., 1:2]).square_().mul_(inv))  # (..., 18, W)
    return g_row.unsqueeze(-1) * g_col.unsqueeze(-2)


@functools.lru_cache(maxsize=16)
def _part_tables(device: torch.device, dtype: torch.dtype):
    """Index tables for the 10 parts: end-point joint pairs (a, b) whose means are p0 and p1."""
    p0a, p0b, p1a, p1b, members = [], [], [], [], []
    for joints in PART_JOINTS:
        if len(joints) == 2:  # limb or head: p0 = joint 0, p1 = joint 1
            j0, j1 = joints
            p0a.append(j0), p0b.append(j0), p1a.append(j1), p1b.append(j1)
            members.append((j0, j1, j0, j1))
        else:  # torso: p0 = mean of the shoulders, p1 = mean of the hips
            s0, s1, h0, h1 = joints
            p0a.append(s0), p0b.append(s1), p1a.append(h0), p1b.append(h1)
            members.append((s0, s1, h0, h1))

    def idx(values):
        return torch.tensor(values, dtype=torch.long, device=device)

    perp = torch.tensor(PART_PERP_SIGMA, dtype=dtype, device=device)
    return idx(p0a), idx(p0b), idx(p1a), idx(p1b), idx(members), perp


def part_masks(
    kp: torch.Tensor,
    size: Sequence[int],
    scale_with_height: bool = False,
    ref_height: int = 128,
) -> torch.Tensor:
    """Soft body-part masks of the part-based SSIM loss (DIGEST section 3), background first.

    Part k (1..10) with end points p0, p1 (torso: mean of the shoulders, mean of the hips) is an
    oriented Gaussian ``G_k = exp(-(a dr^2 + 2 b dr dc + c dc^2))`` about the midpoint, with
    variance ``max(5, |p1 - p0|^2 / 1.2)`` px^2 along the part and ``9^2`` (limbs, head) or
    ``13^2`` (torso) across, ``theta = atan2(p1.col - p0.col, p0.row - p1.row)``. Then
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
    kp, missing, h, w = _prepare(kp, size, "part_masks")
    if ref_height <= 0:
        raise ValueError(f"part_masks: ref_height must be a positive px height; got {ref_height}")
    lead = kp.shape[:-2]
    kp = kp.reshape(-1, NUM_JOINTS, 2)
    missing = missing.reshape(-1, NUM_JOINTS)
    n, dev, dt = kp.shape[0], kp.device, kp.dtype
    p0a, p0b, p1a, p1b, members, perp = _part_tables(dev, dt)

    p0 = (kp[:, p0a] + kp[:, p0b]) / 2  # (N, 10, 2); a limb's (x + x) / 2 == x exactly
    p1 = (kp[:, p1a] + kp[:, p1b]) / 2
    part_missing = missing[:, members].any(-1)  # (N, 10)
    centre = (p0 + p1) / 2
    d_row, d_col = (p1 - p0).unbind(-1)

    scale = h / ref_height if scale_with_height else 1.0
    v_par = torch.clamp_min((d_row.square() + d_col.square()) / PAR_VAR_DIVISOR,
                            PAR_VAR_FLOOR * scale**2)
    v_perp = (perp * scale).square()
    theta = torch.atan2(d_col, -d_row)
    cos2, sin2, sin_2t = torch.cos(theta).square(), torch.sin(theta).square(), torch.sin(2 * theta)
    a = cos2 / (2 * v_par) + sin2 / (2 * v_perp)
    b = -sin_2t / (4 * v_par) + sin_2t / (4 * v_perp)
    c = sin2 / (2 * v_par) + cos2 / (2 * v_perp)
    a, b, c = (t.unsqueeze(-1) for t in (a, b, c))  # (N, 10, 1)

    dr = torch.arange(h, device=dev, dtype=dt) - centre[..., 0:1]  # (N, 10, H)
    dc = torch.arange(w, device=dev, dtype=dt) - centre[..., 1:2]  # (N, 10, W)

    # Exact grid maximum of G without evaluating it everywhere: in each row the quadratic form
    # is a convex parabola in the column, so its integer minimiser is the floor or ceil of the
    # real one, clamped to [0, W - 1].
    col_star = torch.floor(centre[..., 1:2] - b * dr / c)
    cand = torch.stack((col_star, col_star + 1), -1).clamp_(0, w - 1) - centre[..., 1:2, None]
    q = a[..., None] * dr[..., None] ** 2 + 2 * b[..., None] * dr[..., None] * cand
    q_min = (q + c[..., None] * cand**2).amin(dim=(-2, -1))  # (N, 10)
    log_norm = torch.log(torch.exp(-q_min) + NORM_EPS).unsqueeze(-1)

    # M_k = exp(row_term + col_term + row_fac * col_fac), written straight into the output.
    row_term = (-(a * dr.square()) - log_norm).masked_fill_(part_missing.unsqueeze(-1), -math.inf)
    row_fac = -2 * b * dr
    col_term = -c * dc.square()
    out = torch.empty(n, NUM_PARTS + 1, h, w, device=dev, dtype=dt)
    parts = out[:, 1:]
    torch.add(row_term.unsqueeze(-1), col_term.unsqueeze(-2), out=parts)
    parts.addcmul_(row_fac.unsqueeze(-1), dc.unsqueeze(-2)).exp_()
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
    start = torch.cat((bones[:, 0], joints))  # segments: bones, then zero-length joint "dots"
    end = torch.cat((bones[:, 1], joints))
    radius = torch.tensor([half] * len(bones) + [2 * half] * NUM_JOINTS, device=kp.device)
    hue = torch.arange(len(bones), dtype=torch.float32, device=kp.device) / len(bones)
    rgb = torch.stack([(hue + s).mul(2 * math.pi).cos().mul(0.5).add(0.5) for s in (0, 1 / 3, 2 / 3)], -1)
    colours = torch.cat((rgb, torch.ones(NUM_JOINTS, 3, device=kp.device)))  # (S, 3) in [0, 1]

    p, q = kp[..., start, :], kp[..., end, :]  # (..., S, 2)
    seg = q - p
    yy = torch.arange(h, device=kp.device, dtype=kp.dtype).view(h, 1)
    xx = torch.arange(w, device=kp.device, dtype=kp.dtype).view(1, w)
    rel_r = yy - p[..., 0, None, None]  # (..., S, H, 1)
    rel_c = xx - p[..., 1, None, None]  # (..., S, 1, W)
    len2 = seg.square().sum(-1).clamp_min(1e-12)[..., None, None]
    t = ((rel_r * seg[..., 0, None, None] + rel_c * seg[..., 1, None, None]) / len2).clamp(0, 1)
    dist = torch.hypot(rel_r - t * seg[..., 0, None, None], rel_c - t * seg[..., 1, None, None])
    absent = missing[..., start] | missing[..., end]
    cover = (radius[:, None, None] + 0.5 - dist).clamp(0, 1).to(torch.float32)
    cover = cover.masked_fill(absent[..., None, None], 0.0)  # (..., S, H, W)
    # Joint dots (drawn last) win over bones; among bones the most covering one wins.
    order = torch.arange(cover.shape[-3], device=kp.device, dtype=torch.float32) * 1e-3
    best = (cover + order[:, None, None] * (cover > 0)).argmax(-3)  # (..., H, W)
    alpha = cover.gather(-3, best.unsqueeze(-3))  # (..., 1, H, W)
    colour = colours[best].movedim(-1, -3)  # (..., 3, H, W)
    return (colour * alpha) * 2 - 1
