"""Loggers of a run: a CSV log always, W&B (offline by default) and TensorBoard on request."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from personpose.io.provenance import redact


def build_loggers(cfg: DictConfig, run_dir: Path, name: str, group: str | None) -> list[Logger]:
    """CSV (``run_dir/logs/metrics.csv``) + the loggers ``cfg.logger`` switches on.

    W&B gets a run id derived from the run folder, so a resumed run continues the same W&B
    run; ``group`` (the sweep name in multirun) groups the jobs of one sweep. The config it
    receives has secret-looking keys redacted; the API key comes from ``wandb login`` only.
    """
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="logs", version="")]
    lcfg = cfg.logger
    if lcfg.tensorboard.enabled:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    if lcfg.wandb.enabled and lcfg.wandb.mode != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
        loggers.append(
            WandbLogger(
                project=lcfg.wandb.project,
                entity=lcfg.wandb.entity,
                name=name,
                group=group,
                tags=list(lcfg.wandb.tags),
                save_dir=str(run_dir),
                mode=lcfg.wandb.mode,
                id=run_id,
                resume="allow",
                config=redact(OmegaConf.to_container(cfg, resolve=True)),
            )
        )
    return loggers


def finish_wandb() -> None:
    """Close the active W&B run (so each multirun job is its own run); no-op without one."""
    try:
        import wandb
    except ImportError:  # pragma: no cover
        return
    if wandb.run is not None:
        wandb.finish()
