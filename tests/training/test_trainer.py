"""The Trainer from the trainer config group: arguments passed through, changes logged."""

from __future__ import annotations

import logging

from lightning.pytorch.strategies import DDPStrategy

from personpose.run import make_trainer
from personpose.training.checkpoint import AtomicCheckpoint
from personpose.training.trainer import ChannelsLast, build_trainer

from .conftest import TINY, compose_cfg


def test_every_trainer_option_targets_the_builder():
    for option in ("cpu", "gpu", "ddp", "ddp_cpu"):
        cfg = compose_cfg([f"trainer={option}"])
        assert cfg.trainer._target_ == "personpose.training.trainer.build_trainer"
    assert compose_cfg(["trainer=ddp"]).trainer.strategy == "ddp_find_unused_parameters_true"


def test_config_values_reach_the_trainer_unchanged(tmp_path, caplog):
    cfg = compose_cfg([*TINY, "trainer.max_steps=7", "trainer.val_check_interval=5"])
    with caplog.at_level(logging.WARNING, logger="personpose"):
        trainer = make_trainer(cfg, tmp_path, "run", None)
    assert not caplog.records  # nothing changed, so nothing to report
    assert (trainer.max_steps, trainer.val_check_interval) == (7, 5)
    assert trainer.log_every_n_steps == 1 and trainer.limit_val_batches == 1
    assert trainer.num_sanity_val_steps == 0 and trainer.check_val_every_n_epoch is None
    ckpt = [c for c in trainer.callbacks if isinstance(c, AtomicCheckpoint)]
    assert len(ckpt) == 1 and ckpt[0].every_n_steps == 2
    assert ckpt[0].dirpath == tmp_path / "checkpoints"
    assert ckpt[0].config["trainer"]["max_steps"] == 7  # the resolved config goes in
    assert not any(isinstance(c, ChannelsLast) for c in trainer.callbacks)


def test_changes_the_builder_must_make_are_logged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="personpose"):
        trainer = build_trainer(
            tmp_path,
            channels_last=True,
            accelerator="cpu",
            devices=1,
            strategy="ddp",
            max_steps=4,
            val_check_interval=10,
            check_val_every_n_epoch=None,
            logger=False,
        )
    text = caplog.text
    assert "trainer.strategy=ddp changed to ddp_find_unused_parameters_true" in text
    assert "without gradient" in text  # and why
    assert "trainer.val_check_interval=10 changed to 4" in text
    assert trainer.val_check_interval == 4
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert any(isinstance(c, ChannelsLast) for c in trainer.callbacks)
