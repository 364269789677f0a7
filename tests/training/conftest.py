"""Helpers for training tests: compose the real config tree, shrunk for a CPU test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"

# A run of a few steps of the tiny PATN on a tiny synthetic set.
TINY = [
    "model=patn_tiny",
    "data.synth.ids=12",
    "data.batch_size=2",
    "data.pairs_per_epoch=8",
    "trainer.max_steps=3",
    "trainer.val_check_interval=3",
    "trainer.limit_val_batches=1",
    "trainer.checkpoint_every_n_steps=2",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "logger=csv",
    "eval.grid_samples=2",
]


def compose_cfg(overrides: list[str] | None = None):
    """The composed run config (no Hydra runtime section), as the entry point sees it."""
    import personpose.run  # noqa: F401  (registers schemas and resolvers)

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides or []))


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """One synthetic-data cache for the whole session (``PERSONPOSE_DATA``)."""
    path = tmp_path_factory.mktemp("personpose_data")
    os.environ["PERSONPOSE_DATA"] = str(path)
    return path


def run_cli(args: list[str], cwd: Path, env_extra: dict | None = None, timeout: int = 300):
    """``python -m personpose.run ARGS`` in ``cwd``; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", WANDB_MODE="offline", **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "personpose.run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_run(args: list[str], cwd: Path, env_extra: dict | None = None, output: bool = False):
    """``python -m personpose.run ARGS`` started in ``cwd``; returns the Popen. With ``output``
    its stdout and stderr are piped together as text, otherwise discarded."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "personpose.run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        text=True,
    )
