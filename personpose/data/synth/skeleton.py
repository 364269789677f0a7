"""Kinematic skeleton of the synthetic people: body proportions, poses, views and keypoints.

Lengths are in torso units T (1 T = neck to mid-hip, about 50 cm) until the camera turns
them into pixels. World frame: X image right, Y up, Z toward the camera. A person at yaw 0
faces the camera, so their right side (the "R" joints) lies on the image's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personpose.data.keypoints import KEYPOINT_NAMES, MISSING, NUM_JOINTS

# Names of the 18 joints in ``Figure.points`` (keypoints order): "r_shoulder" -> "rsho".
JOINT_KEYS = tuple(name.replace("_", "")[:4] for name in KEYPOINT_NAMES)
_JOINT = {k: i for i, k in enumerate(JOINT_KEYS)}


@dataclass(frozen=True)
class Body:
    """Per-identity proportions (T units) and girths (radii multiplier ``build``)."""

    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    shoulder_half: float
    hip_half: float
    head_scale: float
    build: float
    curvy: float  # 0 (straight) .. 1 (narrow waist, wide hips)

    @property
    def radii(self) -> dict[str, float]:
        """Limb radii in T units."""
        b = self.build
        return {
            "upper_arm": 0.09 * b,
            "elbow": 0.07 * b,
            "wrist": 0.054 * b,
            "hand": 0.062,
            "thigh": (0.14 + 0.02 * self.curvy) * b,
            "knee": 0.09 * b,
            "ankle": 0.062 * b,
            "neck": 0.1 * b,
            "shoe": 0.062,
        }

    @property
    def head_radii(self) -> tuple[float, float, float]:
        """Head ellipsoid half-axes (lateral, vertical, depth), T units."""
        h = self.head_scale
        return 0.155 * h, 0.225 * h, 0.19 * h

    def torso_profile(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Torso cross-section along the neck (v=0) to mid-hip (v=1) axis.

        Returns (v, half_width, half_depth) control points in T units; v spans [-0.13, 1.16].
        """
        b, c = self.build, self.curvy
        v = np.array([-0.13, -0.03, 0.06, 0.2, 0.55, 0.95, 1.16])
        w = np.array(
            [
                0.11 * b,
                self.shoulder_half * 0.72,
                self.shoulder_half * 0.97,
                (0.33 - 0.02 * c) * b,
                (0.28 - 0.05 * c) * b,
                self.hip_half + 0.10 * b + 0.03 * c,
                self.hip_half + 0.11 * b + 0.03 * c,
            ]
        )
        d = np.array([0.09, 0.13, 0.16, 0.19 + 0.02 * c, 0.16, 0.18 + 0.02 * c, 0.18]) * b
        return v, w, d


def sample_body(rng: np.random.Generator, curvy: float) -> Body:
    """Draw one identity's proportions (a few % spread around adult means)."""
    n = rng.normal
    return Body(
        upper_arm=float(n(0.57, 0.03)),
        forearm=float(n(0.49, 0.025)),
        thigh=float(n(0.75, 0.04)),
        shin=float(n(0.74, 0.04)),
        shoulder_half=float(n(0.40 - 0.03 * curvy, 0.02)),
        hip_half=float(n(0.23 + 0.03 * curvy, 0.015)),
        head_scale=float(n(1.0, 0.05)),
        build=float(np.clip(n(1.0, 0.1), 0.78, 1.3)),
        curvy=curvy,
    )


@dataclass(frozen=True)
class Pose:
    """Joint angles (radians) and view. Per-side arrays are ordered (right, left)."""

    yaw: float  # body facing: 0 front, pi back, +pi/2 facing image right
    pitch: float  # camera looking down (rad)
    lean_fwd: float
    lean_side: float
    twist: float  # shoulders vs hips about the spine
    head_yaw: float
    head_pitch: float
    hip_flex: np.ndarray
    hip_abd: np.ndarray
    knee: np.ndarray
    sho_flex: np.ndarray
    sho_abd: np.ndarray
    elbow: np.ndarray
    elbow_in: np.ndarray  # forearm bends toward the midline by this angle
    activity: str


def _view_yaw(rng: np.random.Generator, preset: str) -> float:
    u = rng.random()
    if preset == "fashion":  # studio: mostly front and three-quarter, some back and side
        centre = 0.0 if u < 0.55 else (np.pi if u < 0.75 else rng.choice([-1, 1]) * np.pi / 2)
        return float(centre + rng.normal(0, 0.35))
    if u < 0.4:
        return float(rng.normal(0, 0.4))
    if u < 0.7:
        return float(np.pi + rng.normal(0, 0.4))
    return float(rng.uniform(-np.pi, np.pi))


def sample_pose(rng: np.random.Generator, preset: str) -> Pose:
    """Draw a pose: walking (gait phase and stride), standing or free arm/leg movement."""
    d = np.deg2rad
    u = rng.random()
    activity = "walk" if u < 0.55 else ("stand" if u < 0.8 else "move")
    if preset == "fashion" and activity == "walk" and rng.random() < 0.5:
        activity = "stand"
    elbow_in = np.zeros(2)
    lean_fwd = rng.normal(d(3), d(3))
    if activity == "walk":
        phase = rng.uniform(0, 2 * np.pi)
        stride = rng.uniform(0.5, 1.25)
        s = np.sin(phase + np.array([0.0, np.pi]))  # right, left in antiphase
        hip_flex = stride * d(26) * s + rng.normal(0, d(3), 2)
        # knee bends most while the leg swings forward
        knee = d(6) + stride * d(48) * np.clip(np.sin(phase + np.array([0.0, np.pi]) + 0.9), 0, 1)
        sho_flex = -stride * d(22) * s * rng.uniform(0.4, 1.2) + rng.normal(0, d(4), 2)
        elbow = d(12) + stride * d(25) * np.clip(-s, 0, 1) + rng.uniform(0, d(15), 2)
        sho_abd = d(7) + rng.normal(0, d(3), 2)
        hip_abd = rng.normal(d(2), d(2), 2)
        lean_fwd += stride * d(3)
    elif activity == "stand":
        hip_flex = rng.normal(0, d(6), 2)
        hip_abd = rng.normal(d(4), d(4), 2)
        knee = np.abs(rng.normal(0, d(8), 2))
        sho_flex = rng.normal(0, d(10), 2)
        sho_abd = np.abs(rng.normal(d(6), d(5), 2))
        elbow = np.abs(rng.normal(d(12), d(12), 2))
    else:  # free movement of arms and legs
        hip_flex = rng.normal(0, d(22), 2)
        hip_abd = np.abs(rng.normal(d(6), d(12), 2))
        knee = np.abs(rng.normal(d(15), d(30), 2))
        sho_flex = rng.normal(d(15), d(45), 2)
        sho_abd = np.abs(rng.normal(d(20), d(30), 2))
        elbow = np.abs(rng.normal(d(30), d(45), 2))
        elbow_in = rng.normal(0, d(25), 2)
    # gestures on one or both arms: phone, carrying, hand on hip, crossed arms
    for side in range(2):
        g = rng.random()
        if g < 0.10:  # phone / hand to face
            sho_flex[side], sho_abd[side] = rng.normal(d(35), d(10)), rng.normal(d(10), d(5))
            elbow[side], elbow_in[side] = rng.normal(d(130), d(10)), rng.normal(d(35), d(10))
        elif g < 0.20:  # carrying something in front
            sho_flex[side], sho_abd[side] = rng.normal(d(10), d(8)), rng.normal(d(8), d(4))
            elbow[side], elbow_in[side] = rng.normal(d(90), d(12)), rng.normal(d(25), d(12))
        elif g < 0.25:  # hand on hip
            sho_flex[side], sho_abd[side] = rng.normal(d(-5), d(6)), rng.normal(d(40), d(8))
            elbow[side], elbow_in[side] = rng.normal(d(100), d(10)), d(-40)
    knee = np.clip(knee, 0, d(120))
    elbow = np.clip(elbow, 0, d(150))
    sho_abd = np.clip(sho_abd, d(2), d(120))
    hip_abd = np.clip(hip_abd, d(-4), d(45))
    pitch = rng.uniform(d(2), d(22)) if preset == "market" else rng.uniform(d(-3), d(8))
    return Pose(
        yaw=_view_yaw(rng, preset),
        pitch=float(pitch),
        lean_fwd=float(lean_fwd),
        lean_side=float(rng.normal(0, d(3))),
        twist=float(rng.normal(0, d(8))),
        head_yaw=float(np.clip(rng.normal(0, d(18)), -d(50), d(50))),
        head_pitch=float(rng.normal(d(4), d(6))),
        hip_flex=hip_flex,
        hip_abd=hip_abd,
        knee=knee,
        sho_flex=sho_flex,
        sho_abd=sho_abd,
        elbow=elbow,
        elbow_in=elbow_in,
        activity=activity,
    )


def _rot(axis: int, angle: float) -> np.ndarray:
    """3x3 rotation about coordinate axis 0 (X), 1 (Y) or 2 (Z) by ``angle`` (rad)."""
    c, s = np.cos(angle), np.sin(angle)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-6 else fallback


def _limb_dir(frame: np.ndarray, sign: float, flex: float, abd: float) -> np.ndarray:
    """Direction of a limb hanging down, swung forward by ``flex`` and outward by ``abd``."""
    local = np.array([sign * np.sin(abd) * np.cos(flex), -np.cos(abd) * np.cos(flex), np.sin(flex)])
    return frame @ local


@dataclass(frozen=True)
class Figure:
    """A posed body in camera space (T units): columns (X right, Y up, Z toward camera).

    ``points`` maps names to 3-vectors (the 18 joints plus rendering anchors), frames are
    3x3 matrices whose columns are (person's left, up, forward) in camera space.
    """

    body: Body
    pose: Pose
    points: dict[str, np.ndarray]
    hips: np.ndarray
    chest: np.ndarray
    head: np.ndarray


def pose_figure(body: Body, pose: Pose) -> Figure:
    """Forward kinematics: joints and anchors of ``body`` in ``pose``, in camera space."""
    hips = _rot(1, -pose.twist / 2)
    chest = _rot(2, pose.lean_side) @ _rot(0, -pose.lean_fwd) @ _rot(1, pose.twist / 2)
    head = chest @ _rot(1, pose.head_yaw) @ _rot(0, pose.head_pitch)
    root = np.zeros(3)
    p: dict[str, np.ndarray] = {"root": root, "neck": root + chest[:, 1]}
    for i, (side, sign) in enumerate((("r", -1.0), ("l", 1.0))):
        sho = p["neck"] + sign * body.shoulder_half * chest[:, 0]
        ua = _limb_dir(chest, sign, pose.sho_flex[i], pose.sho_abd[i])
        elb = sho + body.upper_arm * ua
        inward = chest @ np.array([-sign * np.sin(pose.elbow_in[i]), 0, np.cos(pose.elbow_in[i])])
        perp = _unit(inward - (inward @ ua) * ua, chest[:, 1])
        fa = np.cos(pose.elbow[i]) * ua + np.sin(pose.elbow[i]) * perp
        wri = elb + body.forearm * fa
        p[side + "sho"], p[side + "elb"], p[side + "wri"] = sho, elb, wri
        p[side + "hand"] = wri + 0.08 * fa
        hip = root + sign * body.hip_half * hips[:, 0]
        th = _limb_dir(hips, sign, pose.hip_flex[i], pose.hip_abd[i])
        kne = hip + body.thigh * th
        back = -hips[:, 2]
        bperp = _unit(back - (back @ th) * th, back)
        sh = np.cos(pose.knee[i]) * th + np.sin(pose.knee[i]) * bperp
        ank = kne + body.shin * sh
        foot_fwd = _unit(hips[:, 2] - (hips[:, 2] @ sh) * sh * 0.3, hips[:, 2])
        p[side + "hip"], p[side + "kne"], p[side + "ank"] = hip, kne, ank
        p[side + "heel"] = ank - 0.05 * foot_fwd - 0.055 * sh
        p[side + "toe"] = ank + 0.2 * foot_fwd - 0.07 * sh
    # head: centre of the skull ellipsoid, features on its surface
    hs, (left, up, fwd) = body.head_scale, head.T
    hc = p["neck"] + 0.46 * hs * up + 0.02 * fwd
    p["head"] = hc
    p["nose"] = hc + hs * (0.19 * fwd - 0.03 * up)
    for side, sign in (("r", -1.0), ("l", 1.0)):
        p[side + "eye"] = hc + hs * (0.14 * fwd + 0.03 * up + sign * 0.07 * left)
        p[side + "ear"] = hc + hs * (-0.02 * fwd - 0.02 * up + sign * 0.155 * left)
    p["mouth"] = hc + hs * (0.17 * fwd - 0.12 * up)
    p["chin"] = hc + hs * (0.10 * fwd - 0.20 * up)
    p["crown"] = hc + hs * 0.21 * up
    # view: body yaw, then the camera pitch (looking down)
    view = _rot(0, pose.pitch) @ _rot(1, pose.yaw)
    pts = {k: view @ v for k, v in p.items()}
    return Figure(body, pose, pts, view @ hips, view @ chest, view @ head)


@dataclass(frozen=True)
class Camera:
    """Orthographic camera: col = cx + scale * X, row = cy - scale * Y (px, pixel centres)."""

    scale: float  # px per T unit
    cx: float
    cy: float

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """(..., 3) camera-space points -> (..., 2) float (row, col) px."""
        xyz = np.asarray(xyz, dtype=np.float64)
        return np.stack(
            [self.cy - self.scale * xyz[..., 1], self.cx + self.scale * xyz[..., 0]], -1
        )


def place_camera(
    rng: np.random.Generator, fig: Figure, size: tuple[int, int], preset: str
) -> Camera:
    """Frame the figure like the data set's crops (Market: detector boxes of the whole person;
    fashion: full-length shots or close-ups that cut the legs)."""
    h, w = size
    p = fig.points
    # top, bottom (Y) and centre (X) of the figure incl. head, shoes and girth
    top = float(p["crown"][1] + 0.02)
    bottom = float(
        min(p[k][1] for k in ("rheel", "rtoe", "lheel", "ltoe")) - fig.body.radii["shoe"]
    )
    xs = np.array([v[0] for v in p.values()])
    cxw = 0.5 * (float(xs.min() - 0.1) + float(xs.max() + 0.1))
    if preset == "fashion" and rng.random() < 0.7:  # close-up: torso ~ 0.47 H, neck ~ 0.31 H
        scale = h * rng.normal(0.47, 0.035)
        neck_row = h * rng.normal(0.31, 0.03)
        cy = neck_row + scale * fig.points["neck"][1]
        return Camera(scale, w / 2 + rng.normal(0, 0.02 * w) - scale * cxw, cy)
    fill = rng.normal(0.925, 0.05) if preset == "market" else rng.normal(0.86, 0.03)
    scale = fill * h / (top - bottom)
    if preset == "market":  # detector boxes: the crown at the top edge, space below the feet
        margin = h / 128 * rng.normal(-0.5, 2.0)
    else:
        margin = (h - scale * (top - bottom)) * rng.uniform(0.2, 0.8)
    cy = margin + scale * top
    cx = w / 2 + rng.normal(0, 0.05 * w) - scale * cxw
    return Camera(scale, cx, cy)


def torso_half_width(fig: Figure, v: np.ndarray) -> np.ndarray:
    """Projected torso half-width (T units) at axis positions ``v`` (0 neck, 1 mid-hip)."""
    cv, cw, cd = fig.body.torso_profile()
    w, dd = np.interp(v, cv, cw), np.interp(v, cv, cd)
    ang = torso_facing(fig, v)
    return np.sqrt((w * np.cos(ang)) ** 2 + (dd * np.sin(ang)) ** 2)


def torso_facing(fig: Figure, v: np.ndarray) -> np.ndarray:
    """Facing angle (rad) of the torso surface at axis positions ``v``: the chest's at v=0 and
    the hips' at v=1, interpolated along the shorter way round."""
    top = facing(fig.chest)
    turn = (facing(fig.hips) - top + np.pi) % (2 * np.pi) - np.pi
    return top + np.clip(v, 0, 1) * turn


def facing(frame: np.ndarray) -> float:
    """Yaw of a frame's forward axis relative to the camera (0 = facing it)."""
    return float(np.arctan2(frame[0, 2], frame[2, 2]))


def visible_joints(fig: Figure, rng: np.random.Generator, preset: str) -> np.ndarray:
    """(18,) bool: which joints a pose estimator would report.

    Face points follow the head's orientation (the far eye and ear vanish in profile; eyes
    and nose vanish from behind, the ears stay), elbows and wrists behind the torso are
    hidden, and a few joints drop out at random as in OpenPose annotations.
    """
    p, vis = fig.points, np.ones(NUM_JOINTS, dtype=bool)
    fwd, left = fig.head[2, 2], fig.head[2, 0]  # toward the camera: the head's forward, left
    c30, s30 = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
    ear_thr = rng.normal(-0.3, 0.12)
    vis[_JOINT["nose"]] = fwd > rng.normal(-0.3, 0.1)
    vis[_JOINT["reye"]] = c30 * fwd - s30 * left > 0.02
    vis[_JOINT["leye"]] = c30 * fwd + s30 * left > 0.02
    c15, s15 = np.cos(np.deg2rad(15)), np.sin(np.deg2rad(15))
    vis[_JOINT["rear"]] = -c15 * left - s15 * fwd > ear_thr
    vis[_JOINT["lear"]] = c15 * left - s15 * fwd > ear_thr
    # elbows / wrists occluded by the torso
    neck, hipm = p["neck"], 0.5 * (p["rhip"] + p["lhip"])
    axis = hipm[:2] - neck[:2]
    al = float(np.hypot(*axis)) + 1e-9
    for key in ("relb", "rwri", "lelb", "lwri"):
        q = p[key]
        rel = q[:2] - neck[:2]
        v = (rel @ axis) / al**2
        lat = abs(rel[0] * axis[1] - rel[1] * axis[0]) / al
        z_torso = neck[2] + v * (hipm[2] - neck[2])
        if 0.05 < v < 1.1 and lat < 0.85 * torso_half_width(fig, np.array(v)) and q[2] < z_torso:
            vis[_JOINT[key]] = False
    # detector misses: per-joint dropout (wrists and ankles most often), whole-face misses
    drop = np.array(
        [0.06, 0.01, 0.02, 0.18, 0.3, 0.02, 0.18, 0.3, 0.02, 0.08, 0.2, 0.02, 0.08, 0.2]
        + [0.06, 0.06, 0.2, 0.2]
    )
    if preset == "fashion":
        drop = drop * 0.5
    vis &= rng.random(NUM_JOINTS) >= drop
    if rng.random() < (0.08 if preset == "market" else 0.02):
        vis[[_JOINT[k] for k in ("nose", "reye", "leye", "rear", "lear")]] = False
    return vis


def keypoints(fig: Figure, cam: Camera, vis: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(18, 2) int64 (row, col) px, -1 where hidden or outside the image."""
    xyz = np.stack([fig.points[k] for k in JOINT_KEYS])
    rc = np.rint(cam.project(xyz)).astype(np.int64)
    inside = (rc[:, 0] >= 0) & (rc[:, 0] < size[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < size[1])
    rc[~(vis & inside)] = MISSING
    return rc
