"""PATN's mask equals an independent drawing with scikit-image 0.14.2's polygon rule (ported in
tests/metrics/helpers.py) and scikit-image's disk and morphology, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personpose.data.annotations import read_annotations
from personpose.metrics.patn_mask import patn_mask
from tests.metrics.helpers import polygon_0142, reference_mask


@pytest.mark.parametrize(
    "csv,size",
    [
        ("deepfashion/fasion-resize-annotation-test.csv", (256, 176)),
        ("market/market-annotation-test.csv", (128, 64)),
        ("market/market-annotation-train.csv", (128, 64)),
    ],
)
def test_equals_skimage_0142_on_real_keypoints(real_data, csv, size):
    kp = read_annotations(real_data / csv).keypoints
    ours = patn_mask(torch.from_numpy(kp), size).numpy()
    ref = np.stack([reference_mask(k, size) for k in kp])
    assert ours.shape == ref.shape
    bad = np.flatnonzero((ours != ref).any((1, 2)))
    assert bad.size == 0, f"{bad.size} masks differ, first at row {bad[:5]}"
    assert 0.05 < ours.mean() < 0.6


def test_equals_skimage_0142_on_tie_prone_random_poses():
    """Small images, integer joints: axis-aligned and 3-4-5 limbs put pixels on edges."""
    rng = np.random.default_rng(0)
    kp = rng.integers(-2, 30, size=(300, 18, 2))
    kp[..., 1] = kp[..., 1] % 24
    kp[rng.random((300, 18)) < 0.15] = -1
    kp[:20, 2] = kp[:20, 1]  # coincident joints: a limb with a 0/0 normal draws nothing
    kp[20:40, 3] = kp[20:40, 2] + np.array([3, 4])
    kp[40:60, 3] = kp[40:60, 2] + np.array([0, 7])
    kp[60:80, 3] = kp[60:80, 2] + np.array([6, 0])
    kp[80:100, 3] = kp[80:100, 2] + np.array([5, 12])
    ours = patn_mask(torch.from_numpy(kp), (32, 24)).numpy()
    for i in range(len(kp)):
        ref = reference_mask(kp[i], (32, 24))
        assert (ours[i] == ref).all(), f"pose {i} differs at {np.argwhere(ours[i] != ref)[:5]}"


def test_reference_polygon_rule_is_half_open():
    """The port keeps the left and top edges and drops the right and bottom ones."""
    rr, cc = polygon_0142([10, 10, 20, 20], [6, 14, 14, 6], (32, 24))
    assert (rr.min(), rr.max(), cc.min(), cc.max()) == (10, 19, 6, 13)
    assert rr.size == 10 * 8
    # a limb from (10, 10) to (20, 10) is that rectangle; its pixels are in the mask
    kp = torch.full((18, 2), -1.0)
    kp[1], kp[2] = torch.tensor([10.0, 10.0]), torch.tensor([20.0, 10.0])
    mask = patn_mask(kp, (32, 24)).numpy()
    assert mask[rr, cc].all() and mask.sum() == reference_mask(kp.numpy(), (32, 24)).sum()


def test_shapes_and_empty_pose():
    kp = torch.full((2, 3, 18, 2), -1)
    out = patn_mask(kp, (16, 12))
    assert out.shape == (2, 3, 16, 12) and out.dtype == torch.bool and not out.any()
    with pytest.raises(ValueError, match="18, 2"):
        patn_mask(torch.zeros(17, 2), (16, 12))
