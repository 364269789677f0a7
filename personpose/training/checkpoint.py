"""Checksummed atomic checkpoints (``checkpoints/last.ckpt`` and ``previous.ckpt``) and the
choice of one to resume from.

Each checkpoint has its SHA-256 (64 hex digits) in ``<name>.sha256`` beside it. A checkpoint is
trusted when its digest is one of those recorded there: the renames of a save (below) never
leave a moment without a trusted file, even under SIGKILL or a power cut.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

LAST, PREVIOUS = "last.ckpt", "previous.ckpt"


class CheckpointError(RuntimeError):
    """No checkpoint of a run can be trusted; the message names the files and the way out."""


def digest_path(path: Path) -> Path:
    """``path`` + ``.sha256``: where the checkpoint's SHA-256 is recorded."""
    return path.with_name(path.name + ".sha256")


def sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class AtomicCheckpoint(Callback):
    """Save ``dirpath/last.ckpt`` every ``every_n_steps`` generator steps, at ``max_steps`` and
    at the end, keeping the one before as ``previous.ckpt``, each with its SHA-256.

    The checkpoint is written beside its target; then ``last`` becomes ``previous`` and the new
    file and its digest take ``last``'s names, by renames. The checkpoint at ``max_steps`` is
    taken after the step, as every periodic one, and not after Lightning has closed the epoch:
    a longer run started from it continues the epoch exactly as an uninterrupted run would.
    The checkpoint holds Lightning's state dicts and, under ``"config"``, the run's resolved
    ``config`` (plain data) when given.
    """

    def __init__(
        self, dirpath: str | os.PathLike, every_n_steps: int = 100, config: dict | None = None
    ) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.config = config
        self._last_saved_step = -1

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.config is not None:
            checkpoint["config"] = self.config

    def on_fit_start(self, trainer, pl_module) -> None:
        """A fit that does not resume (``resume=false``) removes the checkpoints of the earlier
        run in the folder (its first save would replace them), so that none of them is ever
        taken for one of this run's."""
        if trainer.ckpt_path is None and trainer.is_global_zero:
            for name in (LAST, PREVIOUS):
                for path in (self.dirpath / name, digest_path(self.dirpath / name)):
                    path.unlink(missing_ok=True)

    def save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._last_saved_step or trainer.sanity_checking:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        tmp = self.dirpath / f".{LAST}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            self._publish(tmp)
        trainer.strategy.barrier("personpose_checkpoint")
        self._last_saved_step = trainer.global_step

    def _publish(self, tmp: Path) -> None:
        """Rename ``tmp`` to ``last.ckpt`` with its digest; the old pair becomes ``previous``."""
        last, previous = self.dirpath / LAST, self.dirpath / PREVIOUS
        digest_tmp = self.dirpath / f".{LAST}.sha256.tmp"
        digest_tmp.write_text(sha256(tmp) + "\n")
        for src, dst in ((last, previous), (digest_path(last), digest_path(previous))):
            if src.is_file():
                os.replace(src, dst)
        os.replace(digest_tmp, digest_path(last))
        os.replace(tmp, last)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and (step % self.every_n_steps == 0 or step == trainer.max_steps):
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)  # a stop other than max_steps (max_epochs, early stopping)


def trusted_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint in ``folder`` whose SHA-256 was recorded: ``last.ckpt``, else
    ``previous.ckpt`` with a warning naming what is wrong with ``last.ckpt``. None when the
    folder holds neither; :class:`CheckpointError` when neither can be trusted."""
    candidates = [folder / LAST, folder / PREVIOUS]
    if not any(p.is_file() for p in candidates):
        return None
    digests = [digest_path(p) for p in candidates]
    recorded = {d.read_text().strip() for d in digests if d.is_file()}
    problems = []
    for path in candidates:
        problem = _problem(path, recorded)
        if problem is None:
            if problems:
                log.warning("%s; resuming from %s instead", "; ".join(problems), path)
            return path
        problems.append(f"{path} {problem}")
    raise CheckpointError(
        f"no checkpoint to resume from can be trusted: {'; '.join(problems)}. Delete "
        f"{folder} to start the run again, or pass resume=false"
    )


def _problem(path: Path, recorded: set[str]) -> str | None:
    """Why ``path`` cannot be trusted, or None."""
    if not path.is_file():
        return "is missing"
    if path.stat().st_size == 0:
        return "is empty"
    if not recorded:
        return f"has no recorded SHA-256 ({digest_path(path).name}; written by an older version?)"
    if sha256(path) not in recorded:
        return "does not match its recorded SHA-256 (damaged or truncated)"
    return None


def resume_path(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume ``run_dir`` from (:func:`trusted_checkpoint` of its
    ``checkpoints/``) when resuming is on; None for a fresh start."""
    return trusted_checkpoint(Path(run_dir) / "checkpoints") if resume else None
