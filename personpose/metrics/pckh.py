"""Pose accuracy of generated images by the MoveNet estimator: ``pck_movenet``, ``pckh_movenet``.

MoveNet (:mod:`personpose.data.movenet`) is run on each generated image and its 18
OpenPose-order joints are compared with the target keypoints ``kp2`` (the pose the generator
was asked for); only joints present in ``kp2`` count, and no score threshold is applied
(MoveNet always answers). Both are pooled over all counted joints of all images.

- ``pck_movenet``: a joint is correct when its Euclidean error is below 0.05 x image height
  (px). On real images against their own annotations this gives the MoveNet README's figures
  (0.951 DeepFashion, 0.902 Market), the estimator's ceiling.
- ``pckh_movenet``: PCKh-style, our definition: correct when the error is at most 0.5 x the
  head size, the larger side of the bounding box of the target's present head joints (nose,
  neck, eyes, ears); images with fewer than 2 head joints are left out. (PATN's script
  compared OpenPose detections per axis; this is not that number.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from personpose.data.images import to_uint8
from personpose.data.keypoints import MISSING
from personpose.data.movenet import MoveNet
from personpose.metrics.base import SuiteMetric

PCK_ALPHA = 0.05
PCKH_ALPHA = 0.5
HEAD_JOINTS = (0, 1, 14, 15, 16, 17)


def head_size(kp: np.ndarray) -> float:
    """Larger side (px) of the box of the present head joints of ``kp`` (18, 2); NaN if < 2."""
    head = kp[list(HEAD_JOINTS)]
    head = head[(head != MISSING).all(-1)]
    if len(head) < 2:
        return float("nan")
    return float((head.max(0) - head.min(0)).max())


def pose_errors(
    estimator: MoveNet, images: np.ndarray, kp2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per joint Euclidean error (px) ``(N, 18)`` (NaN where ``kp2`` lacks the joint) and
    per image head size ``(N,)``; ``images`` uint8 (N, H, W, 3)."""
    errs = np.full(kp2.shape[:2], np.nan)
    heads = np.zeros(len(kp2))
    for i, (img, kp) in enumerate(zip(images, kp2)):
        pred, _ = estimator.predict(img)
        present = (kp != MISSING).all(-1)
        errs[i, present] = np.linalg.norm(pred[present] - kp[present], axis=-1)
        heads[i] = head_size(kp)
    return errs, heads


class MoveNetPCK(SuiteMetric):
    """``pck_movenet`` and ``pckh_movenet`` in one pass of the estimator (needs ``kp2``)."""

    higher_is_better = True

    def __init__(self, estimator: MoveNet, outputs=("pck_movenet", "pckh_movenet"), **kwargs):
        super().__init__(**kwargs)
        self.estimator = estimator
        self.outputs = tuple(outputs)
        for s in ("pck_hit", "pck_n", "pckh_hit", "pckh_n", "missing"):
            self.add_state(s, torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, kp2=None, label2=None, source=None) -> None:
        if kp2 is None:
            self.missing += preds.shape[0]
            return
        kp = torch.as_tensor(kp2).cpu().numpy()
        errs, heads = pose_errors(self.estimator, to_uint8(preds), kp)
        counted = ~np.isnan(errs)
        self.pck_hit += int((errs[counted] < PCK_ALPHA * preds.shape[-2]).sum())
        self.pck_n += int(counted.sum())
        with_head = counted & ~np.isnan(heads)[:, None]
        thr = PCKH_ALPHA * np.nan_to_num(heads)[:, None]
        self.pckh_hit += int(((errs <= thr) & with_head).sum())
        self.pckh_n += int(with_head.sum())

    def compute(self) -> dict[str, Tensor]:
        self.skipped = {}
        if int(self.missing) > 0:
            nan = self.skip(f"needs kp2, missing for {int(self.missing)} images", *self.outputs)
            return dict.fromkeys(self.outputs, nan)
        out: dict[str, Tensor] = {}
        counts = {
            "pck_movenet": (self.pck_hit, self.pck_n),
            "pckh_movenet": (self.pckh_hit, self.pckh_n),
        }
        for name in self.outputs:
            hit, n = counts[name]
            out[name] = hit.double() / n  # NaN when no joint was counted
            if int(n) == 0:
                self.skipped[name] = "no joint could be scored"
        return out
