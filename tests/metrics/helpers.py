"""Helpers of the metric tests: real pairs (read from ../shared/data/real, never copied),
image conversion, and the references that PATN's scoring ran on (scikit-image 0.14.2):
its point-in-polygon rule and its Gaussian SSIM, ported independently in numpy/scipy."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.draw import disk
from skimage.morphology import dilation, erosion

from personpose.data.annotations import read_annotations, read_pairs
from personpose.data.keypoints import PATN_MASK_LIMBS

SETS = {
    "deepfashion": (
        "deepfashion/test",
        "deepfashion/fasion-resize-annotation-test.csv",
        "deepfashion/fasion-resize-pairs-test.csv",
    ),
    "market": ("market/test", "market/market-annotation-test.csv", "market/market-pairs-test.csv"),
}


def load_pairs(root, name: str, n: int):
    """``n`` test pairs of a real set: (source, target) uint8 (N, H, W, 3), kp2 (N, 18, 2)."""
    images, ann_csv, pairs_csv = SETS[name]
    ann = read_annotations(root / ann_csv)
    pairs = read_pairs(root / pairs_csv)[:n]

    def load(img):
        with Image.open(root / images / img) as im:
            return np.asarray(im.convert("RGB")).copy()

    src = np.stack([load(a) for a, _ in pairs])
    tgt = np.stack([load(b) for _, b in pairs])
    kp2 = np.stack([ann[b] for _, b in pairs])
    return src, tgt, kp2


def to01(images: np.ndarray, dtype=None):
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1] (float64 by default: exact levels)."""
    import torch

    t = torch.from_numpy(images).permute(0, 3, 1, 2)
    return t.to(dtype or torch.float64) / 255


def inside_polygon_0142(xp, yp, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scikit-image 0.14.2's point-in-polygon test (``skimage/_shared/geometry.pyx``), at
    every point ``(x, y)``: a crossing-number test in float64. Walking the edges ``(j, i)``,
    ``j`` the vertex before ``i`` (the last one for ``i = 0``), the point flips between outside
    and inside at every edge with ``y_i <= y < y_j`` or ``y_j <= y < y_i`` whose crossing
    ``(x_j - x_i) (y - y_i) / (y_j - y_i) + x_i`` lies right of ``x``: a half-open rule."""
    inside = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y)), dtype=bool)
    for i in range(len(xp)):
        j = i - 1
        straddles = ((yp[i] <= y) & (y < yp[j])) | ((yp[j] <= y) & (y < yp[i]))
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = (xp[j] - xp[i]) * (y - yp[i]) / (yp[j] - yp[i]) + xp[i]
        inside ^= straddles & (x < crossing)
    return inside


def polygon_0142(r, c, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``skimage.draw.polygon(r, c, shape)`` of scikit-image 0.14.2: the test above at the
    pixels of the polygon's bounding box (clipped to the image); no pixel for NaN vertices."""
    r, c = np.asarray(r, np.float64), np.asarray(c, np.float64)
    if not (np.isfinite(r).all() and np.isfinite(c).all()):
        return np.zeros(0, int), np.zeros(0, int)
    rows = np.arange(int(max(0, r.min())), min(shape[0] - 1, math.ceil(r.max())) + 1)
    cols = np.arange(int(max(0, c.min())), min(shape[1] - 1, math.ceil(c.max())) + 1)
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    inside = inside_polygon_0142(c, r, xx.astype(np.float64), yy.astype(np.float64))
    return yy[inside], xx[inside]


def reference_mask(kp: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """PATN's produce_ma_mask as PATN ran it: limb polygons by scikit-image 0.14.2's rule
    (:func:`polygon_0142`), disks and the 5x5 closing by scikit-image (unchanged rules)."""
    mask = np.zeros(shape, dtype=bool)
    for f, t in PATN_MASK_LIMBS:
        if (kp[f] == -1).any() or (kp[t] == -1).any():
            continue
        d = kp[f] - kp[t]
        normal = np.array([-d[1], d[0]])
        with np.errstate(invalid="ignore"):
            normal = 4 * normal / np.linalg.norm(normal)
        v = np.array([kp[f] + normal, kp[f] - normal, kp[t] - normal, kp[t] + normal])
        rr, cc = polygon_0142(v[:, 0], v[:, 1], shape)
        mask[rr, cc] = True
    for joint in kp:
        if (joint == -1).any():
            continue
        rr, cc = disk((joint[0], joint[1]), 4, shape=shape)
        mask[rr, cc] = True
    square = np.ones((5, 5), dtype=bool)
    return erosion(dilation(mask, square), square)


def ssim_0142(target: np.ndarray, generated: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PATN's SSIM call as scikit-image 0.14.2 ran it (uint8 (H, W, 3) images): per channel,
    scipy's ``gaussian_filter(sigma=1.5)`` at ``truncate=4.0`` (13 taps, reflect border),
    population covariance, ``R`` = range of the generated image, the map cropped by 5 px
    (its nominal 11-px window); the mean over channels. ``mask`` (H, W) multiplies both."""
    if mask is not None:
        target, generated = target * mask[..., None], generated * mask[..., None]
    r = float(generated.max()) - float(generated.min())
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    out = []
    for ch in range(3):
        x, y = target[..., ch].astype(np.float64), generated[..., ch].astype(np.float64)

        def g(a):
            return gaussian_filter(a, sigma=1.5, truncate=4.0)

        ux, uy = g(x), g(y)
        vx, vy, vxy = g(x * x) - ux * ux, g(y * y) - uy * uy, g(x * y) - ux * uy
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        out.append(s[5:-5, 5:-5].mean())
    return float(np.mean(out))
