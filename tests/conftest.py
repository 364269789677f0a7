"""Shared fixtures: paths to ../shared material, offline mode, small thread count."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("PERSONPOSE_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PERSONPOSE_SHARED", REPO.parent / "shared"))


def _shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing; CI always provides ../shared beside the checkout")
        pytest.skip(
            f"{path} not available (set PERSONPOSE_SHARED or place shared/ beside the repo)"
        )
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real``: real DeepFashion/Market samples (research use, never copied)."""
    return _shared_path("data", "real")


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """``../shared/paper/golden``: values computed by the study authors' code."""
    return _shared_path("paper", "golden")


@pytest.fixture(scope="session")
def movenet_model() -> Path:
    """``../shared/models/movenet/*.tflite``: the small offline pose estimator."""
    return _shared_path("models", "movenet", "movenet_singlepose_lightning_int8_4.tflite")


@pytest.fixture(autouse=True, scope="session")
def _threads():
    import torch

    torch.set_num_threads(2)
    yield


def bench_sweep_with_old_commit():
    """``experiments/bench_sweep.py`` as a module; the test is skipped when this clone does
    not hold its ``OLD_COMMIT`` (72ec8c9, which ``ensure_old_checkout`` extracts)."""
    bench = load_experiment("bench_sweep")
    has_old = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{bench.OLD_COMMIT}^{{commit}}"],
        capture_output=True,
    )
    if has_old.returncode != 0:
        pytest.skip(f"commit {bench.OLD_COMMIT} is not in this clone")
    return bench


def load_experiment(name: str):
    """``experiments/<name>.py`` imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_csv(path: Path, fieldnames: list[str], rows: list[dict]) -> None:
    """``rows`` as a CSV file with a header, parent folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
