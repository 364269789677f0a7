"""Structured schemas for the Hydra config tree: a misspelt key or a wrong type fails at compose.

Groups built with ``_target_`` (data, model, the optimisers) are checked when instantiated (the
error names the unexpected argument); loss and weights have their own schemas in
:mod:`personpose.losses.config`. Keys removed from the tree are listed in :data:`REMOVED_KEYS`
with their replacements: :func:`check_overrides` names the replacement of one given on the
command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class OptimConfig:
    """``optim`` group. ``generator`` and ``discriminator``: partial optimisers (``_target_``,
    ``_partial_: true``) that the training module calls with a network's parameters (one per
    discriminator); ``lr_rule``: a partial learning-rate factor ``step -> float`` that run.py
    completes with ``steps_per_epoch``. These three are checked when instantiated (the error
    names the unexpected argument)."""

    generator: Any = MISSING
    discriminator: Any = MISSING
    lr_rule: Any = MISSING
    gradient_clip: float = 0.0  # max gradient norm of G and of each D (0 = off)


@dataclass
class TrainerConfig:
    """``trainer`` group: the arguments of :func:`personpose.training.trainer.build_trainer`,
    which are ``lightning.Trainer``'s own plus ``checkpoint_every_n_steps`` and
    ``channels_last``."""

    _target_: str = "personpose.training.trainer.build_trainer"
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    sync_batchnorm: bool = False
    max_steps: int = 300  # generator iterations
    max_epochs: int = -1
    val_check_interval: int = 100  # generator iterations between validations
    check_val_every_n_epoch: int | None = None
    limit_val_batches: Any = 4
    num_sanity_val_steps: int = 0
    log_every_n_steps: int = 10
    enable_progress_bar: bool = True
    enable_checkpointing: bool = False
    fast_dev_run: Any = False
    checkpoint_every_n_steps: int = 100
    channels_last: bool = False


@dataclass
class WandbConfig:
    enabled: bool = True
    mode: str = "offline"  # offline | online | disabled
    project: str = "personpose"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class TensorBoardConfig:
    enabled: bool = False


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)


@dataclass
class EvalConfig:
    protocol: str = "all"  # patn | gfla | all
    val_metrics: list[str] = field(default_factory=list)
    test_metrics: list[str] | None = None
    save_outputs: bool = True
    save_strips: bool = False
    grid_samples: int = 8
    movenet_model: str | None = None
    precision: str = "float32"  # SSIM metrics: float32 | float64, as personpose.evaluate
    compile: bool = False  # torch.compile the SSIM metrics


@dataclass
class PretrainedConfig:
    vgg19: str | None = None
    alexnet: str | None = None
    inception_v3: str | None = None


@dataclass
class RunConfig:
    data: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    weights: Any = MISSING
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pretrained: PretrainedConfig = field(default_factory=PretrainedConfig)
    seed: int = 0
    resume: bool = True
    sweep_name: str = "sweep"
    smoke_test: bool = False  # the log and results.json say its numbers mean nothing


# Keys removed from the config tree -> the key that replaces them (None: nothing does).
REMOVED_KEYS: dict[str, str | None] = {
    "loss.adversarial.d_head": "model.discriminator.head",
    "loss.vgg": "pretrained.vgg19 and data.allow_random_weights",
    "loss.vgg.weights_path": "pretrained.vgg19",
    "loss.vgg.allow_random": "data.allow_random_weights",
    "optim.lr": "optim.generator.lr",
    "optim.lr_d": "optim.discriminator.lr",
    "optim.betas": "optim.generator.betas and optim.discriminator.betas",
    "optim.niter": "optim.lr_rule.niter",
    "optim.niter_decay": "optim.lr_rule.niter_decay",
    "trainer.val_every_n_steps": "trainer.val_check_interval",
    "trainer.progress_bar": "trainer.enable_progress_bar",
}


def check_overrides(overrides: list[str]) -> None:
    """Raise ``ValueError`` for a command-line override of a removed key, naming the key
    that replaces it (``loss.vgg.weights_path=x`` -> use ``pretrained.vgg19``). Called before
    composition; the schemas reject the same keys in config files, naming the key."""
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in REMOVED_KEYS:
            new = REMOVED_KEYS[key]
            use = f"use {new}" if new else "it has no replacement"
            raise ValueError(f"override {override!r}: {key} was removed; {use}")


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (idempotent)."""
    from personpose.losses.config import register_schemas

    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    register_schemas()
