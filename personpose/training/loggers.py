"""Loggers of a run: a CSV log always, W&B (offline by default) and TensorBoard on request."""

from __future__ import annotations

import hashlib
from importlib.util import find_spec
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from personpose.io.provenance import redact


def build_loggers(cfg: DictConfig, run_dir: Path, name: str, group: str | None) -> list[Logger]:
    """CSV + the loggers ``cfg.logger`` switches on.

    Each invocation (a fresh start or a resume) writes its own ``run_dir/logs/session_<k>/
    metrics.csv``, so resuming never overwrites the history; :func:`read_csv_logs` joins them.

    W&B gets a run id derived from the run folder, so a resumed run continues the same W&B
    run; ``group`` (the sweep name in multirun) groups the jobs of one sweep. The config it
    receives has secret-looking keys redacted; the API key comes from ``wandb login`` only.
    """
    session = sum(p.is_dir() for p in (run_dir / "logs").glob("session_*"))
    loggers: list[Logger] = [
        CSVLogger(save_dir=str(run_dir), name="logs", version=f"session_{session}")
    ]
    lcfg = cfg.logger
    if lcfg.tensorboard.enabled:
        if not any(find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ModuleNotFoundError(
                'logger=tensorboard needs the tensorboard package: pip install -e ".[tensorboard]"'
            )
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


def read_csv_logs(run_dir: Path) -> list[dict[str, str]]:
    """Rows of a run's CSV log sessions joined, one history with the last rows of each step.

    A session resumed from a checkpoint logs again the steps between that checkpoint and the
    end of the session before it (a kill): from its first logged step on, its rows replace
    the earlier sessions'. Sorted by ``step`` (stable within a step).
    """
    import csv

    rows: list[dict[str, str]] = []
    sessions = sorted(
        (Path(run_dir) / "logs").glob("session_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[1]),
    )
    for path in sessions:
        with path.open() as f:
            session = list(csv.DictReader(f))
        if session:
            first = min(_step(r) for r in session)
            rows = [r for r in rows if _step(r) < first] + session
    return sorted(rows, key=_step)


def _step(row: dict[str, str]) -> int:
    return int(float(row["step"]))


def finish_wandb() -> None:
    """Close the active W&B run (so each multirun job is its own run); no-op without one."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
