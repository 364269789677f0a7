"""The 18 OpenPose (COCO-18) keypoints, the body parts built on them, and PATN's mask limbs.

Keypoints are stored as (row, col) = (y, x) integer pixel coordinates; ``MISSING`` (-1)
marks a joint that is absent. "R" is the person's right side.
"""

from __future__ import annotations

NUM_JOINTS = 18
MISSING = -1

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
JOINT = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# The 10 body parts of the part-based SSIM loss (docs/data.md#part-masks), in mask-channel order
# 1..10 (channel 0 is the background). Each part is a pair of end points; the torso's end
# points are the mean of the shoulders [2, 5] and the mean of the hips [8, 11].
PART_NAMES: tuple[str, ...] = (
    "head",
    "r_upper_arm",
    "r_forearm",
    "l_upper_arm",
    "l_forearm",
    "r_thigh",
    "r_shin",
    "l_thigh",
    "l_shin",
    "torso",
)
PART_JOINTS: tuple[tuple[int, ...], ...] = (
    (0, 1),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (8, 9),
    (9, 10),
    (11, 12),
    (12, 13),
    (2, 5, 8, 11),
)
NUM_PARTS = len(PART_NAMES)  # 10; part masks have NUM_PARTS + 1 channels (background first)
# Variance across the limb (px^2): 9^2 for limbs and head, 13^2 for the torso.
PART_PERP_SIGMA: tuple[float, ...] = (9.0,) * 9 + (13.0,)

# Bones of a drawn skeleton (for pose visualisations in sample grids): the 17 joint-to-joint
# limbs of the COCO-18 skeleton.
SKELETON_BONES: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)

# The 23 joint pairs of PATN's mask for mask-SSIM / mask-IS (0-based OpenPose indices): the
# skeleton's 17 bones, then neck-ears, the hips, hip-shoulder diagonals and the ears.
PATN_MASK_LIMBS: tuple[tuple[int, int], ...] = SKELETON_BONES + (
    (1, 16),
    (1, 17),
    (8, 11),
    (11, 5),
    (8, 2),
    (16, 17),
)
PATN_MASK_RADIUS = 4  # px: half-width of limb segments and radius of joint disks
