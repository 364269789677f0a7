"""Structured schemas for the Hydra config tree: a misspelt key or a wrong type fails at compose.

Groups built with ``_target_`` (data, model) are checked when instantiated (the error names the
unexpected argument); loss and weights have their own schemas in :mod:`personpose.losses.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class OptimConfig:
    lr: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    niter: int = 500  # epochs at constant learning rate
    niter_decay: int = 200  # epochs of linear decay to zero
    gradient_clip: float = 0.0  # max gradient norm (0 = off)


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    channels_last: bool = False
    sync_batchnorm: bool = False
    max_steps: int = 300  # generator iterations
    val_every_n_steps: int = 100
    limit_val_batches: Any = 4
    checkpoint_every_n_steps: int = 100
    log_every_n_steps: int = 10
    progress_bar: bool = True
    fast_dev_run: bool = False


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


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    from personpose.losses.config import register_schemas  # loss / weights schemas

    register_schemas(cs)
