"""Atomic periodic checkpoints (``checkpoints/last.ckpt``) and finding one to resume from."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

LAST = "last.ckpt"


class AtomicCheckpoint(Callback):
    """Save ``dirpath/last.ckpt`` every ``every_n_steps`` generator steps and at the end.

    The file is written beside the target and renamed onto it, so a run killed mid-write
    (even with SIGKILL) always leaves the previous complete checkpoint in place. The
    checkpoint holds Lightning's state dicts and, under ``"config"``, the run's resolved
    ``config`` (plain data) when given.
    """

    def __init__(
        self, dirpath: str | os.PathLike, every_n_steps: int = 100, config: dict | None = None
    ) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"trainer.checkpoint_every_n_steps must be >= 1, got {every_n_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.config = config
        self._last_saved_step = -1

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.config is not None:
            checkpoint["config"] = self.config

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST

    def save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._last_saved_step or trainer.sanity_checking:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        tmp = self.dirpath / f".{LAST}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, self.last_path)
        trainer.strategy.barrier("personpose_checkpoint")
        self._last_saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > 0 and trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)


def resume_path(run_dir: Path, resume: bool) -> Path | None:
    """``run_dir/checkpoints/last.ckpt`` when resuming is on and the file exists."""
    path = Path(run_dir) / "checkpoints" / LAST
    return path if resume and path.is_file() else None
