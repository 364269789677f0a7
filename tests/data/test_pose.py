"""Pose maps, part masks and skeleton drawings (personpose.data.pose) against the study authors'
golden output and an independent NumPy evaluation of docs/data.md (pose maps, part masks)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from personpose.data.keypoints import NUM_JOINTS, PART_JOINTS, PART_PERP_SIGMA
from personpose.data.pose import draw_pose, part_masks, pose_heatmaps

# A standing pose at 128x64 (row, col); the golden file holds its own poses.
STAND = [
    (20, 32), (32, 32), (32, 22), (47, 15), (38, 8), (32, 42), (50, 46), (66, 48), (68, 26),
    (92, 25), (116, 24), (68, 38), (91, 42), (115, 45), (17, 35), (17, 29), (19, 38), (19, 26),
]  # fmt: skip


@pytest.fixture(scope="module")
def golden(golden_dir):
    with np.load(golden_dir / "masks_128x64.npz") as z:
        data = {k: z[k] for k in z.files}
    data["scalars"] = json.loads((golden_dir / "golden_scalars.json").read_text())
    return data


def random_pose(gen: np.random.Generator, size, n_missing=0) -> np.ndarray:
    """Float (row, col) in the frame (some near and beyond its edges), some joints missing."""
    h, w = size
    kp = np.stack(
        [gen.uniform(-0.1 * h, 1.1 * h, NUM_JOINTS), gen.uniform(-0.1 * w, 1.1 * w, 18)], -1
    )
    kp[gen.choice(NUM_JOINTS, n_missing, replace=False)] = -1
    return kp


def naive_part_masks(kp: np.ndarray, size) -> np.ndarray:
    """docs/data.md#part-masks, done independently: Q = d^T Sigma^-1 d / 2 with Sigma built from the
    limb direction (not the a, b, c formulas), one part at a time, brute-force grid maximum."""
    h, w = size
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    parts = np.zeros((len(PART_JOINTS), h, w))
    for k, joints in enumerate(PART_JOINTS):
        if any((kp[j] == -1).any() for j in joints):
            continue
        pts = np.asarray([kp[j] for j in joints], dtype=np.float64)
        if len(joints) == 4:
            p0, p1 = pts[:2].mean(0), pts[2:].mean(0)
        else:
            p0, p1 = pts
        length = np.linalg.norm(p1 - p0)
        u = (p1 - p0) / length if length > 0 else np.array([1.0, 0.0])  # along the part
        v = np.array([-u[1], u[0]])  # across
        var_along, var_across = max(5.0, length**2 / 1.2), PART_PERP_SIGMA[k] ** 2
        inv_sigma = np.outer(u, u) / var_along + np.outer(v, v) / var_across
        d = np.stack([rows - (p0[0] + p1[0]) / 2, cols - (p0[1] + p1[1]) / 2], -1)
        g = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, inv_sigma, d))
        parts[k] = g / (g.max() + 1e-6)
    return np.concatenate([1 - parts.max(0, keepdims=True), parts])


def naive_heatmaps(kp: np.ndarray, size, sigma=6.0) -> np.ndarray:
    h, w = size
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((NUM_JOINTS, h, w))
    for j, (y, x) in enumerate(kp):
        if y != -1 and x != -1:
            out[j] = np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * sigma**2))
    return out


# --- golden values from the study authors' code -------------------------------------------------


def test_part_masks_match_golden_float64(golden):
    kp = torch.from_numpy(golden["keypoints_yx"]).double()
    masks = part_masks(kp, (128, 64))
    assert masks.dtype == torch.float64 and masks.shape == (2, 11, 128, 64)
    np.testing.assert_allclose(masks.numpy(), golden["masks"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32])
def test_part_masks_match_golden_float32(golden, dtype):
    kp = torch.from_numpy(golden["keypoints_yx"]).to(dtype)
    masks = part_masks(kp, (128, 64))
    assert masks.dtype == torch.float32
    np.testing.assert_allclose(masks.double().numpy(), golden["masks"], rtol=0, atol=1e-6)


def test_part_mask_scalars_match_golden(golden):
    """Channel sums, maxima (a part peaking on a pixel gives 1 / (1 + 1e-6)) and background min."""
    ref = golden["scalars"]["masks_128x64"]
    masks = part_masks(torch.from_numpy(golden["keypoints_yx"]).double(), (128, 64)).numpy()
    np.testing.assert_allclose(masks.sum((-2, -1)), ref["channel_sums"], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(masks.max((-2, -1)), ref["channel_max"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(masks[:, 0].min((-2, -1)), ref["bg_min"], rtol=1e-6)


def test_part_mask_normalisation_at_256x176_matches_golden(golden):
    """The 256x176 golden keeps only scalars (its keypoints are not stored), but every part of
    its poses peaks on a pixel: any pose with integer part centres must give the same maxima."""
    ref = golden["scalars"]["masks_256x176"]
    kp = torch.tensor(STAND) * 2  # even coordinates -> integer centres (torso: /2 of sums of 4)
    kp[:, 1] += 24
    kp = torch.stack([kp, kp])
    kp[1, [0, 7, 10, 16, 17]] = -1  # the golden's missing joints
    masks = part_masks(kp.double(), (256, 176)).numpy()
    np.testing.assert_allclose(masks.max((-2, -1))[:, 1:], np.asarray(ref["channel_max"])[:, 1:],
                               rtol=0, atol=1e-15)  # fmt: skip
    np.testing.assert_allclose(masks[:, 0].min((-2, -1)), ref["bg_min"], rtol=1e-9)


def test_heatmaps_match_golden(golden):
    ref = golden["pose_heatmaps_sigma6"].transpose(0, 3, 1, 2)  # channels last in the file
    kp = torch.from_numpy(golden["keypoints_yx"])
    maps = pose_heatmaps(kp, (128, 64))
    assert maps.dtype == torch.float32 and maps.shape == (2, 18, 128, 64)
    np.testing.assert_allclose(maps.numpy(), ref, rtol=0, atol=2e-7)
    np.testing.assert_allclose(pose_heatmaps(kp.double(), (128, 64)).numpy(), ref, atol=1e-7)


# --- the formula, independently evaluated -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [(128, 64), (64, 44)])
def test_part_masks_match_naive_formula(seed, size):
    gen = np.random.default_rng(seed)
    kp = random_pose(gen, size, n_missing=seed)
    if seed == 2:  # zero-length head: the variance floor of 5 px^2, theta = atan2(0, 0)
        kp[0] = kp[1] = (30.3, 20.7)
    expected = naive_part_masks(kp, size)
    got64 = part_masks(torch.from_numpy(kp), size).numpy()
    np.testing.assert_allclose(got64, expected, rtol=0, atol=1e-12)
    got32 = part_masks(torch.from_numpy(kp).float(), size).numpy()
    np.testing.assert_allclose(got32, expected, rtol=0, atol=1e-5)


def test_heatmaps_match_naive_formula():
    kp = random_pose(np.random.default_rng(5), (96, 80), n_missing=3)
    for sigma in (6.0, 2.5):
        expected = naive_heatmaps(kp, (96, 80), sigma)
        got = pose_heatmaps(torch.from_numpy(kp), (96, 80), sigma=sigma).numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_grid_maximum_is_exact_for_parts_leaving_the_frame():
    """The analytic per-row maximum must equal the brute-force one, also for centres outside."""
    gen = np.random.default_rng(11)
    for _ in range(5):
        kp = random_pose(gen, (40, 30)) * 2 - 20  # many parts partly or wholly off-frame
        kp = np.where(kp == -1, 0.0, kp)
        np.testing.assert_allclose(part_masks(torch.from_numpy(kp), (40, 30)).numpy(),
                                   naive_part_masks(kp, (40, 30)), rtol=0, atol=1e-12)  # fmt: skip


# --- missing joints, batching, shapes ---------------------------------------------------------


def test_missing_joints_give_zero_channels():
    kp = torch.tensor(STAND)
    kp[[0, 4, 11]] = -1  # nose, R wrist, L hip
    maps, masks = pose_heatmaps(kp, (128, 64)), part_masks(kp, (128, 64))
    assert torch.count_nonzero(maps[[0, 4, 11]]) == 0
    assert (maps.flatten(1).amax(1) > 0.5).sum() == 15
    # parts: head (0,1), R forearm (3,4), L thigh (11,12) and torso (2,5,8,11) vanish
    zero_parts = {i + 1 for i, j in enumerate(PART_JOINTS) if {0, 4, 11} & set(j)}
    assert zero_parts == {1, 3, 8, 10}
    for ch in range(1, 11):
        assert (torch.count_nonzero(masks[ch]) == 0) == (ch in zero_parts), ch
    all_missing = part_masks(torch.full((18, 2), -1), (16, 8))
    assert torch.equal(all_missing[0], torch.ones(16, 8)) and all_missing[1:].abs().sum() == 0


def test_missing_if_either_coordinate_is_minus_one_or_nan():
    kp = torch.tensor(STAND, dtype=torch.float32)
    kp[3, 0] = -1  # R elbow: row only
    kp[6, 1] = float("nan")  # L elbow: NaN col
    maps, masks = pose_heatmaps(kp, (128, 64)), part_masks(kp, (128, 64))
    assert maps[[3, 6]].abs().sum() == 0 and torch.isfinite(maps).all()
    assert masks[[2, 3, 4, 5]].abs().sum() == 0 and torch.isfinite(masks).all()


def test_batched_equals_per_sample_and_leading_dims():
    gen = np.random.default_rng(3)
    kp = torch.from_numpy(np.stack([random_pose(gen, (64, 32), n_missing=i % 4) for i in range(6)]))
    kp = kp.float().reshape(2, 3, 18, 2)
    maps, masks = pose_heatmaps(kp, (64, 32)), part_masks(kp, (64, 32))
    assert maps.shape == (2, 3, 18, 64, 32) and masks.shape == (2, 3, 11, 64, 32)
    for i in range(2):
        for j in range(3):
            assert torch.equal(maps[i, j], pose_heatmaps(kp[i, j], (64, 32)))
            torch.testing.assert_close(
                masks[i, j], part_masks(kp[i, j], (64, 32)), rtol=0, atol=1e-7
            )
    assert part_masks(kp[:0, 0], (8, 4)).shape == (0, 11, 8, 4)
    assert pose_heatmaps(kp[0, :0], (8, 4)).shape == (0, 18, 8, 4)
    assert draw_pose(kp, (64, 32)).shape == (2, 3, 3, 64, 32)


def test_numpy_input_and_float64_output():
    kp = np.asarray(STAND)
    assert part_masks(kp, (128, 64)).dtype == torch.float32
    assert pose_heatmaps(kp.astype(np.float64), (128, 64)).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_follows_the_device_of_kp():
    kp = torch.tensor(STAND)
    for fn in (pose_heatmaps, part_masks, draw_pose):
        out = fn(kp.cuda(), (128, 64))
        assert out.is_cuda
        torch.testing.assert_close(out.cpu(), fn(kp, (128, 64)), rtol=0, atol=1e-5)


# --- options and validation -------------------------------------------------------------------


def test_scale_with_height():
    """Doubling the image, the keypoints and (with the option) the sigmas samples the same masks
    on the even pixels; without the option the parts get relatively thinner."""
    kp = (torch.tensor(STAND) // 4) * 4  # multiples of 4: every part centre on a pixel
    small = part_masks(kp.double(), (128, 64))
    big = part_masks(kp.double() * 2, (256, 128), scale_with_height=True)
    torch.testing.assert_close(big[:, ::2, ::2], small, rtol=0, atol=1e-12)
    torch.testing.assert_close(part_masks(kp, (128, 64), scale_with_height=True), small.float())
    fixed = part_masks(kp.double() * 2, (256, 128))
    assert (fixed[1:].sum() / big[1:].sum()) < 0.75  # across-part sigma 9 instead of 18 px


@pytest.mark.parametrize(
    ("kp", "size", "match"),
    [
        (torch.zeros(17, 2), (8, 8), r"\(\.\.\., 18, 2\)"),
        (torch.zeros(18, 3), (8, 8), r"\(\.\.\., 18, 2\)"),
        (torch.zeros(18), (8, 8), r"\(\.\.\., 18, 2\)"),
        (torch.zeros(18, 2, dtype=torch.bool), (8, 8), "int or float"),
        (torch.zeros(18, 2), (0, 8), "positive"),
        (torch.zeros(18, 2), (8,), "positive"),
        (torch.zeros(18, 2), (8.5, 8), "positive"),
    ],
)
def test_invalid_inputs(kp, size, match):
    for fn in (pose_heatmaps, part_masks, draw_pose):
        with pytest.raises(ValueError, match=match):
            fn(kp, size)


def test_invalid_options():
    kp = torch.zeros(18, 2)
    with pytest.raises(ValueError, match="sigma"):
        pose_heatmaps(kp, (8, 8), sigma=0)
    with pytest.raises(ValueError, match="ref_height"):
        part_masks(kp, (8, 8), scale_with_height=True, ref_height=0)


def test_draw_pose():
    kp = torch.tensor(STAND)
    kp[7] = -1  # L wrist missing: its dot and the L forearm are not drawn
    img = draw_pose(kp, (128, 64))
    assert img.shape == (3, 128, 64) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    assert torch.equal(img[:, 20, 32], torch.ones(3))  # nose dot: white
    assert torch.equal(img[:, 0, 0], -torch.ones(3))  # far from everything: black
    assert torch.equal(img[:, 66, 48], -torch.ones(3))  # the missing wrist
    assert torch.equal(img[:, 58, 47], -torch.ones(3))  # mid L forearm, (50,46)-(66,48)
    assert (img[:, 41, 44] > 0).any()  # mid L upper arm, (32,42)-(50,46): a bright hue
    drawn = (img > -1).any(0).float().mean()
    assert 0.03 < drawn < 0.3, drawn
    assert not math.isnan(float(img.sum()))
