"""Pose statistics that say how hard a data set is: body proportions and pair displacement.

One definition for the synthetic-vs-real comparison in ``experiments/synth_stats.py`` and its
thresholds in ``tests/data/test_synth.py``. Keypoints are (row, col) px, -1 = missing.
"""

from __future__ import annotations

import numpy as np

NECK, R_HIP, L_HIP = 1, 8, 11
UPPER_ARMS = ((2, 3), (5, 6))
THIGHS = ((8, 9), (11, 12))


def torso_length(kp: np.ndarray) -> np.ndarray:
    """(..., 18, 2) -> (...) |neck - mid-hip| px; NaN where one of the three is missing."""
    kp = np.asarray(kp, dtype=float)
    ok = (kp[..., [NECK, R_HIP, L_HIP], :] >= 0).all(axis=(-1, -2))
    t = np.linalg.norm(kp[..., NECK, :] - 0.5 * (kp[..., R_HIP, :] + kp[..., L_HIP, :]), axis=-1)
    return np.where(ok, t, np.nan)


def proportion_ratios(kps: np.ndarray, height: int) -> dict[str, np.ndarray]:
    """Upper-arm/torso, thigh/torso (one value per visible limb) and torso/image-height
    (``height`` px) over (N, 18, 2) keypoints; poses without a torso are left out."""
    kps = np.asarray(kps, dtype=float)
    vis = (kps >= 0).all(-1)
    t = torso_length(kps)

    def ratio(a, b):  # limb a-b over the torso, where both joints and the torso are visible
        m = vis[:, a] & vis[:, b] & ~np.isnan(t)
        return np.linalg.norm(kps[m, a] - kps[m, b], axis=-1) / t[m]

    return {
        "upper_arm/torso": np.concatenate([ratio(a, b) for a, b in UPPER_ARMS]),
        "thigh/torso": np.concatenate([ratio(a, b) for a, b in THIGHS]),
        "torso/height": t[~np.isnan(t)] / height,
    }


def pair_displacement(ka: np.ndarray, kb: np.ndarray) -> float:
    """Mean |ka_j - kb_j| px over joints visible in both poses (18, 2), divided by the target
    ``kb``'s torso length; NaN when no joint is shared or the target has no torso."""
    ka, kb = np.asarray(ka, dtype=float), np.asarray(kb, dtype=float)
    m = (ka >= 0).all(-1) & (kb >= 0).all(-1)
    t = float(torso_length(kb))
    if not m.any() or not np.isfinite(t) or t <= 0:
        return float("nan")
    return float(np.linalg.norm(ka[m] - kb[m], axis=-1).mean() / t)
