"""experiments/bench_sweep.py: the commands it times, and a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import bench_sweep_with_old_commit, load_experiment

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "bench_sweep.py"
# Overrides valid for the old commit and this checkout: the tiny model on a tiny set.
TINY = [
    "model=patn_tiny",
    "data.synth.ids=12",
    "data.batch_size=2",
    "data.pairs_per_epoch=8",
    "trainer.limit_val_batches=1",
    "eval.val_metrics=[l1]",
    "eval.test_metrics=[l1]",
    "eval.save_outputs=false",
    "eval.grid_samples=2",
    "logger=csv",
]


def test_parallel_jobs_are_a_joblib_sweep_with_one_thread_each(tmp_path):
    bench = load_experiment("bench_sweep")
    args = bench.parse_args(["--cores", "2", "--old-parallel", "--variants", "cl=a=1,b=2"])
    configs = bench.configurations(args, tmp_path)
    assert [(c[0], c[2], c[3], c[4]) for c in configs] == [
        ("old_1x2", "old", 1, 2),
        ("old_2x1", "old", 2, 1),
        ("new_1x2", "new", 1, 2),
        ("new_2x1", "new", 2, 1),
        ("new_1x2_cl", "new", 1, 2),
    ]
    assert configs[-1][5] == ["a=1", "b=2"]
    sweep = bench.command("new", 30, 10, 2, tmp_path / "s", ["x=1"])
    assert sweep[:2] == ["-m", "hydra/launcher=joblib"] and "hydra.launcher.n_jobs=2" in sweep
    assert "seed=0,1" in sweep and sweep[-1] == "x=1"
    one = bench.command("old", 30, 10, 1, tmp_path / "o", [])
    assert one[0] == f"hydra.run.dir={tmp_path / 'o'}" and "trainer.val_every_n_steps=10" in one
    only = bench.parse_args(["--cores", "2", "--variants", "bf16=x=1", "--only", "new_1x2_bf16"])
    assert [c[0] for c in bench.configurations(only, tmp_path)] == ["old_1x2", "new_1x2_bf16"]
    with pytest.raises(SystemExit, match="--only new_9x9: expected names among"):
        bench.configurations(bench.parse_args(["--only", "new_9x9"]), tmp_path)
    env = bench.job_env(tmp_path, 1)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["PYTHONPATH"] == str(tmp_path)


@pytest.mark.slow  # five training processes (old, new, a sweep of two)
def test_tiny_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONPOSE_DATA", str(tmp_path / "data"))
    bench = bench_sweep_with_old_commit()
    out = tmp_path / "bench_sweep.json"
    argv = ["--steps", "2", "--cores", "2", "--old", str(tmp_path / "old"), "--out", str(out)]
    results = bench.main([*argv, "--extra", *TINY])
    rows = json.loads(out.read_text())["rows"]
    assert rows == results["rows"]
    assert [(r["config"], r["jobs_at_once"], r["threads_per_job"]) for r in rows] == [
        ("old_1x2", 1, 2),
        ("new_1x2", 1, 2),
        ("new_2x1", 2, 1),
    ]
    assert all(r["iterations_per_hour"] > 0 and r["steps_per_job"] == 2 for r in rows)
    assert rows[0]["vs_old"] == 1.0 and len(rows[2]["job_wall_s"]) == 2
