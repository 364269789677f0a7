"""Random streams of the generator: who a person is, and how each of their images is taken.

Every draw comes from its own ``numpy.random.Generator`` seeded by (data seed, person id,
image index, stream), so any single image can be rebuilt alone, in any order or process,
and keypoints can be sampled without rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from personpose.data.synth.appearance import Appearance, sample_appearance
from personpose.data.synth.render import render
from personpose.data.synth.skeleton import (
    Body,
    Camera,
    Figure,
    keypoints,
    place_camera,
    pose_figure,
    sample_body,
    sample_pose,
    visible_joints,
)

_IDENTITY, _POSE, _RENDER = 1, 2, 3


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([0x5E17, *key])


@dataclass(frozen=True)
class Identity:
    pid: int
    body: Body
    look: Appearance


@dataclass(frozen=True)
class Shot:
    """One image of an identity, before rendering."""

    figure: Figure
    camera: Camera
    keypoints: np.ndarray  # (18, 2) int64 (row, col), -1 missing


def sample_identity(seed: int, pid: int) -> Identity:
    rng = _rng(seed, pid, _IDENTITY)
    curvy = float(rng.uniform(0.4, 1.0)) if rng.random() < 0.45 else 0.0
    return Identity(pid, sample_body(rng, curvy), sample_appearance(rng, curvy))


def sample_shot(seed: int, ident: Identity, index: int, preset: str, size: tuple[int, int]) -> Shot:
    rng = _rng(seed, ident.pid, index, _POSE)
    fig = pose_figure(ident.body, sample_pose(rng, preset))
    cam = place_camera(rng, fig, size, preset)
    return Shot(fig, cam, keypoints(fig, cam, visible_joints(fig, rng, preset), size))


def render_shot(
    seed: int,
    ident: Identity,
    index: int,
    shot: Shot,
    preset: str,
    size: tuple[int, int],
    draw_print: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 (H, W, 3), part labels uint8 (H, W)) of one shot."""
    rng = _rng(seed, ident.pid, index, _RENDER)
    return render(shot.figure, shot.camera, ident.look, size, preset, rng, draw_print=draw_print)


def sample_keypoints(
    seed: int, ids: Sequence[int], images_per_id: int, preset: str, size: tuple[int, int]
) -> np.ndarray:
    """Keypoints of the data set's images without rendering: (len(ids), images_per_id, 18, 2)
    int64 (row, col), -1 missing; identical to the annotation files of that data set."""
    out = np.empty((len(ids), images_per_id, 18, 2), dtype=np.int64)
    for i, pid in enumerate(ids):
        ident = sample_identity(seed, pid)
        for k in range(images_per_id):
            out[i, k] = sample_shot(seed, ident, k, preset, size).keypoints
    return out


def view_name(yaw: float) -> str:
    """View of a body yaw: front (facing the camera), back, or left / right (facing image
    left / right, i.e. profile)."""
    a = (np.rad2deg(yaw) + 180) % 360 - 180
    if abs(a) <= 45:
        return "front"
    if abs(a) >= 135:
        return "back"
    return "right" if a > 0 else "left"
