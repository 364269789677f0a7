"""The Lightning Trainer of a run, built from the ``trainer`` config group (``conf/trainer/``).

:func:`build_trainer` is the group's ``_target_``: every key of the group except
``checkpoint_every_n_steps`` and ``channels_last`` is a ``lightning.Trainer`` argument and is
passed through. A step count below 1 is refused, naming its key; where a value cannot work as
given it is changed, and the change is logged with its reason (:func:`adjusted_arguments`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from personpose.training.checkpoint import AtomicCheckpoint

log = logging.getLogger(__name__)

IMAGE_KEYS = ("P1", "P2", "BP1", "BP2")  # batch tensors the networks read


class ChannelsLast(Callback):
    """Channels-last memory layout for the module's weights and the batch's images (faster
    convolutions on GPUs with mixed precision, and with oneDNN on CPUs)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)

    @staticmethod
    def _convert(batch: dict) -> None:
        for key in IMAGE_KEYS:
            if key in batch:
                batch[key] = batch[key].contiguous(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._convert(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dl_idx=0) -> None:
        self._convert(batch)


def adjusted_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the values that cannot work as given changed; each change is logged.

    - ``strategy: ddp`` -> ``ddp_find_unused_parameters_true``: each GAN step leaves the other
      networks' parameters without gradient, which plain DDP rejects.
    - ``val_check_interval`` above ``max_steps`` -> ``max_steps``: validate (and write the
      sample grid) once at the end instead of never.
    """
    out = dict(kwargs)
    changes = []
    if out.get("strategy") == "ddp":
        out["strategy"] = "ddp_find_unused_parameters_true"
        changes.append(("strategy", "each GAN step leaves the other networks without gradient"))
    interval, max_steps = out.get("val_check_interval"), out.get("max_steps", -1)
    if isinstance(interval, int) and 0 < max_steps < interval:
        out["val_check_interval"] = max_steps
        changes.append(("val_check_interval", "validate once at the end instead of never"))
    for key, why in changes:
        log.warning("trainer.%s=%s changed to %s: %s", key, kwargs[key], out[key], why)
    return out


def build_trainer(
    run_dir: str | Path,
    checkpoint_every_n_steps: int = 100,
    channels_last: bool = False,
    config: dict | None = None,
    callbacks: Sequence[Callback] = (),
    **trainer_kwargs: Any,
) -> L.Trainer:
    """``lightning.Trainer(**trainer_kwargs)`` writing into ``run_dir``.

    Args:
        run_dir: the run folder (``default_root_dir``); checkpoints go to
            ``run_dir/checkpoints/last.ckpt``.
        checkpoint_every_n_steps: generator steps between atomic checkpoints (and at the end).
        channels_last: channels-last layout of weights and images (:class:`ChannelsLast`).
        config: the run's resolved config, saved in every checkpoint (``"config"``).
        callbacks: further callbacks, after the checkpoint one.
        trainer_kwargs: ``lightning.Trainer`` arguments, passed through
            (:func:`adjusted_arguments` lists the exceptions).
    """
    steps = {"checkpoint_every_n_steps": checkpoint_every_n_steps}
    for key in ("val_check_interval", "max_steps", "log_every_n_steps"):
        steps[key] = trainer_kwargs.get(key, 1)
    for key, value in steps.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"trainer.{key} must be an integer >= 1 (generator steps), got {value!r}"
            )
    own: list[Callback] = [
        AtomicCheckpoint(Path(run_dir) / "checkpoints", checkpoint_every_n_steps, config)
    ]
    if channels_last:
        own.append(ChannelsLast())
    return L.Trainer(
        **adjusted_arguments(trainer_kwargs),
        callbacks=[*own, *callbacks],
        default_root_dir=str(run_dir),
    )
