"""The shared shape of every evaluation metric: a mean of per-image scores, DDP-safe.

Metrics take generated and ground-truth images ``(N, 3, H, W)`` float in [0, 1] (already on
uint8 levels when they are compared with image files) plus optional keyword extras:
``kp2`` (N, 18, 2) target keypoints (row, col) px with -1 for missing, ``label2`` (N, H, W)
int64 ground-truth part labels (0 background, 1..K parts, -1 unknown), ``source`` (N, 3, H, W)
in [0, 1]. A metric that needs an extra the caller did not give counts those images as
missing and reports itself skipped, with the reason, instead of a number.

Every metric follows the torchmetrics contract: ``compute()`` returns a 0-d float64 tensor
(a dict of them for metrics with several outputs); an output it cannot report is NaN and the
reason is in the metric's ``skipped`` attribute (output name -> reason), which
:class:`personpose.metrics.collection.MetricSuite` gathers. Pretrained networks the metrics
measure with are :class:`Frozen`: kept out of checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric

EXTRAS = ("kp2", "label2", "source")


def check_images(preds: Tensor, target: Tensor, where: str) -> None:
    """Raise ValueError unless both are float (N, 3, H, W) of one shape (values in [0, 1])."""
    if preds.shape != target.shape or preds.dim() != 4 or preds.shape[1] != 3:
        raise ValueError(
            f"{where}: expected preds and target of one shape (N, 3, H, W); got "
            f"{tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if not (preds.is_floating_point() and target.is_floating_point()):
        raise ValueError(
            f"{where}: expected float images in [0, 1]; got {preds.dtype} and {target.dtype}"
        )


class Frozen(nn.Module):
    """A pretrained network ``net`` used for measuring only: always in eval mode, without
    gradients, and out of checkpoints. It stays a submodule, so ``.to()``/``.double()`` of a
    LightningModule holding the metric reach it, but ``state_dict()`` leaves its tensors out and
    ``load_state_dict`` keeps them as they are."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.register_state_dict_post_hook(_leave_out_net)
        self.register_load_state_dict_pre_hook(_keep_net)

    def train(self, mode: bool = True) -> Frozen:
        return super().train(False)

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.net(*args, **kwargs)


def _leave_out_net(module: Frozen, state_dict: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
        del state_dict[key]


def _keep_net(module: Frozen, state_dict: dict, prefix: str, *args) -> None:
    for key, value in module.net.state_dict(prefix=prefix + "net.").items():
        state_dict.setdefault(key, value)


class SuiteMetric(Metric):
    """A metric of the suite: ``compute()`` returns tensors, NaN where an output cannot be
    reported, and ``skipped`` (output name -> reason) says why; ``name`` is the output name."""

    is_differentiable = False
    full_state_update = False
    name = "metric"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skipped: dict[str, str] = {}

    def skip(self, reason: str, *outputs: str) -> Tensor:
        """Record why ``outputs`` (default: ``name``) have no value; returns NaN."""
        self.skipped = {o: reason for o in outputs or (self.name,)}
        return torch.tensor(float("nan"), dtype=torch.float64)

    def reset(self) -> None:
        super().reset()
        self.skipped = {}


class PerImageMetric(SuiteMetric):
    """Mean over images of a per-image score ``score(preds, target, **needed extras) -> (N,)``.

    Subclasses set ``name``, ``requires`` (the extras the score needs) and implement
    :meth:`score`; it may return ``(values, valid)`` to leave some images out (e.g. an image
    with no foreground label), which are then not counted. Images of a size the metric does
    not take (:meth:`fits`, by default a side below ``min_size``) are counted in ``unfit``
    and the metric is skipped with :meth:`unfit_reason`.
    """

    higher_is_better: bool | None = True
    requires: Sequence[str] = ()
    min_size = 1  # px: images with a smaller side are counted as unfit, not scored

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        for state in ("count", "missing", "excluded", "unfit"):
            self.add_state(state, torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def fits(self, h: int, w: int) -> bool:
        """Whether images of ``h x w`` px can be scored."""
        return min(h, w) >= self.min_size

    def unfit_reason(self, n: int) -> str:
        """Why the metric is skipped after ``n`` images that did not fit."""
        return f"needs images of at least {self.min_size} px a side; {n} images were smaller"

    def score(self, preds: Tensor, target: Tensor, **extras) -> Tensor | tuple[Tensor, Tensor]:
        raise NotImplementedError

    def update(
        self,
        preds: Tensor,
        target: Tensor,
        kp2: Tensor | None = None,
        label2: Tensor | None = None,
        source: Tensor | None = None,
    ) -> None:
        check_images(preds, target, self.name)
        given = {"kp2": kp2, "label2": label2, "source": source}
        if any(given[r] is None for r in self.requires):
            self.missing += preds.shape[0]
            return
        if not self.fits(*preds.shape[-2:]):
            self.unfit += preds.shape[0]
            return
        extras = {r: torch.as_tensor(given[r], device=preds.device) for r in self.requires}
        out = self.score(preds, target, **extras)
        values, valid = out if isinstance(out, tuple) else (out, torch.ones_like(out, dtype=bool))
        self.total += values[valid].to(torch.float64).sum()
        self.count += valid.sum()
        self.excluded += (~valid).sum()

    def compute(self) -> Tensor:
        """Mean score over the scored images (float64); NaN, with ``skipped``, if none."""
        self.skipped = {}
        if int(self.unfit) > 0:
            return self.skip(self.unfit_reason(int(self.unfit)))
        if int(self.missing) > 0:
            n = int(self.missing) + int(self.count) + int(self.excluded)
            needs = " and ".join(self.requires)
            return self.skip(f"needs {needs}, missing for {int(self.missing)} of {n} images")
        if int(self.count) == 0:
            return self.skip("no image could be scored")
        return self.total / self.count
