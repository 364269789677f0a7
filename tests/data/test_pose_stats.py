import math

import numpy as np
import pytest

from personpose.data.pose_stats import pair_displacement, proportion_ratios, torso_length


def _pose() -> np.ndarray:
    kp = np.full((18, 2), -1.0)
    kp[1] = (10, 20)  # neck
    kp[8], kp[11] = (40, 16), (40, 24)  # hips: mid-hip (40, 20), torso 30 px
    kp[2], kp[3] = (12, 14), (27, 14)  # right upper arm 15 px
    kp[9] = (61, 16)  # right thigh 21 px
    return kp


def test_torso_length_and_missing_joints():
    kp = _pose()
    assert torso_length(kp) == pytest.approx(30.0)
    kp[8] = -1
    assert math.isnan(torso_length(kp))
    assert torso_length(np.stack([_pose(), kp])).shape == (2,)


def test_proportion_ratios_exact():
    r = proportion_ratios(_pose()[None], height=128)
    assert r["upper_arm/torso"].tolist() == pytest.approx([0.5])
    assert r["thigh/torso"].tolist() == pytest.approx([0.7])
    assert r["torso/height"].tolist() == pytest.approx([30 / 128])


def test_pair_displacement_over_target_torso_and_undefined_cases():
    a, b = _pose(), _pose()
    a[[1, 2, 3, 8, 9, 11]] += (3.0, 4.0)  # every shared joint moves 5 px
    assert pair_displacement(a, b) == pytest.approx(5 / 30)
    no_torso = b.copy()
    no_torso[1] = -1
    assert math.isnan(pair_displacement(a, no_torso))
    assert math.isnan(pair_displacement(np.full((18, 2), -1.0), b))
