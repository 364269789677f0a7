"""PATN's learning-rate schedule, counted in epochs of ``pairs_per_epoch`` pairs."""

from __future__ import annotations


class PATNSchedule:
    """Multiplicative lr factor at generator step ``s`` (PATN / pix2pix rule, faithful).

    ``factor = 1 - max(0, e + 1 + epoch_count - niter) / (niter_decay + 1)`` with the 0-based
    epoch ``e = s // steps_per_epoch`` and PATN's ``epoch_count = 1``: full rate for the first
    ``niter - 1`` epochs, then a linear decay that reaches 0 in epoch ``niter + niter_decay``
    (the reference's off-by-one, kept so schedules match). A picklable callable, so
    ``LambdaLR``'s state dict stays plain data.
    """

    def __init__(self, steps_per_epoch: int, niter: int, niter_decay: int):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        if niter < 0 or niter_decay < 0:
            raise ValueError(f"niter and niter_decay must be >= 0, got {niter}, {niter_decay}")
        self.steps_per_epoch = steps_per_epoch
        self.niter = niter
        self.niter_decay = niter_decay

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        decayed = max(0, epoch + 2 - self.niter)  # epoch + 1 + epoch_count - niter
        return max(0.0, 1.0 - decayed / float(self.niter_decay + 1))
