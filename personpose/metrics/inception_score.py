"""Inception Score on torchvision's Inception-v3 (``is_tv``) and on PATN-masked images
(``mask_is_tv``).

``IS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y|x)`` the softmax of the 1000 ImageNet logits
and ``p(y)`` the mean over a split; images in their update order are cut into 10 consecutive
splits (``[i N / 10, (i + 1) N / 10)``), the score is the mean over splits (its std is
reported as ``<name>_std``). PATN used TensorFlow's 2015 Inception graph: numbers from these
torchvision weights are not comparable with PATN's, hence the ``_tv`` in the name.
``mask_is_tv`` multiplies the generated image by PATN's mask of the target keypoints first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat

from personpose.metrics.base import SuiteMetric
from personpose.metrics.inception import InceptionFeatures

SPLITS = 10


def inception_score(probs: np.ndarray, splits: int = SPLITS) -> tuple[float, float]:
    """Mean and std over ``splits`` of ``exp(mean KL(p(y|x) || p(y)))``; ``probs`` (N, C)."""
    p = np.asarray(probs, np.float64)
    n = p.shape[0]
    if n < splits:
        raise ValueError(f"Inception Score with {splits} splits needs >= {splits} images; got {n}")
    scores = []
    for k in range(splits):
        part = p[k * n // splits : (k + 1) * n // splits]
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-300) - np.log(py + 1e-300))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(SuiteMetric):
    """``is_tv`` (or, with ``masked=True``, ``mask_is_tv``, which needs ``kp2``): the mean over
    splits, and its std as ``<name>_std`` (left out when the score is skipped)."""

    higher_is_better = True

    def __init__(self, extractor: InceptionFeatures, masked: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.extractor = extractor
        self.masked = masked
        self.name = "mask_is_tv" if masked else "is_tv"
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("missing", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, kp2=None, label2=None, source=None) -> None:
        if self.masked:
            if kp2 is None:
                self.missing += preds.shape[0]
                return
            from personpose.metrics.patn_mask import patn_mask

            preds = preds * patn_mask(kp2, preds.shape[-2:]).unsqueeze(1).to(preds.dtype)
        _, logits = self.extractor(preds)
        self.probs.append(torch.softmax(logits.double(), dim=1))

    def compute(self) -> dict[str, Tensor]:
        self.skipped = {}
        if int(self.missing) > 0:
            return {self.name: self.skip(f"needs kp2, missing for {int(self.missing)} images")}
        if not self.probs:
            return {self.name: self.skip("no image could be scored")}
        probs = dim_zero_cat(self.probs).cpu().numpy()
        if len(probs) < SPLITS:
            return {self.name: self.skip(f"{len(probs)} images < {SPLITS} splits")}
        mean, std = inception_score(probs, SPLITS)
        return {
            self.name: torch.tensor(mean, dtype=torch.float64),
            f"{self.name}_std": torch.tensor(std, dtype=torch.float64),
        }
