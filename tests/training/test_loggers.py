"""Loggers: an optional extra that is not installed is named in the error; the CSV sessions of
a resumed run join into one history."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from personpose.training import loggers
from tests.training.conftest import compose_cfg


def test_tensorboard_without_the_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(loggers, "find_spec", lambda name: None)
    cfg = compose_cfg(["logger=tensorboard"])
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[tensorboard\]"'):
        loggers.build_loggers(cfg, tmp_path, "job", None)


def _session(run_dir: Path, k: int, rows: list[dict]) -> None:
    path = run_dir / "logs" / f"session_{k}" / "metrics.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "loss", "val/ssim"])
        writer.writeheader()
        writer.writerows(rows)


def test_joined_csv_log_keeps_the_last_rows_of_each_step(tmp_path):
    # session 0 checkpointed at step 4 (validation there) and was killed after step 7; session
    # 1 resumed from step 4 and logged steps 4-9 again (other values: a new process)
    first = [{"step": s, "loss": f"a{s}"} for s in range(8)]
    first.insert(5, {"step": 4, "val/ssim": "0.5"})
    _session(tmp_path, 0, first)
    _session(tmp_path, 1, [{"step": s, "loss": f"b{s}"} for s in range(4, 10)])
    rows = loggers.read_csv_logs(tmp_path)
    steps = [int(r["step"]) for r in rows if r["loss"]]
    assert steps == list(range(10))  # each step once, in order
    assert [r["loss"] for r in rows if r["loss"]] == [
        *(f"a{s}" for s in range(4)),
        *(f"b{s}" for s in range(4, 10)),
    ]
    assert not any(r["val/ssim"] for r in rows)  # the replaced session's step-4 rows are gone
