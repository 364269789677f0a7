"""PATN's learning-rate schedule, counted in epochs of ``pairs_per_epoch`` pairs."""

from __future__ import annotations


class PATNSchedule:
    """Multiplicative lr factor for step ``s``: 1 for ``niter`` epochs, then linear decay to 0.

    PATN's rule with epochs counted from 1: ``1 - max(0, epoch + 1 - niter) / (niter_decay + 1)``
    where ``epoch = step // steps_per_epoch``. A picklable callable, so LambdaLR's state dict
    stays plain data.
    """

    def __init__(self, steps_per_epoch: int, niter: int, niter_decay: int) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        if niter < 0 or niter_decay < 0:
            raise ValueError(f"niter and niter_decay must be >= 0, got {niter}, {niter_decay}")
        self.steps_per_epoch = steps_per_epoch
        self.niter = niter
        self.niter_decay = niter_decay

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        return max(0.0, 1.0 - max(0, epoch + 1 - self.niter) / float(self.niter_decay + 1))
