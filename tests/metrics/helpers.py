"""Helpers of the metric tests: real pairs (read from ../shared/data/real, never copied),
image conversion, and PATN's mask drawn with scikit-image (the definition)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.draw import disk, polygon
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


def reference_mask(kp: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """PATN's produce_ma_mask, drawn with scikit-image (the definition)."""
    mask = np.zeros(shape, dtype=bool)
    for f, t in PATN_MASK_LIMBS:
        if (kp[f] == -1).any() or (kp[t] == -1).any():
            continue
        d = kp[f] - kp[t]
        normal = np.array([-d[1], d[0]])
        with np.errstate(invalid="ignore"):
            normal = 4 * normal / np.linalg.norm(normal)
        v = np.array([kp[f] + normal, kp[f] - normal, kp[t] - normal, kp[t] + normal])
        rr, cc = polygon(v[:, 0], v[:, 1], shape=shape)
        mask[rr, cc] = True
    for joint in kp:
        if (joint == -1).any():
            continue
        rr, cc = disk((joint[0], joint[1]), 4, shape=shape)
        mask[rr, cc] = True
    square = np.ones((5, 5), dtype=bool)
    return erosion(dilation(mask, square), square)
