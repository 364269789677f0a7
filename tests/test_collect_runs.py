"""experiments/collect_runs.py: what a committed study folder keeps of each job."""

from __future__ import annotations

from tests.conftest import load_experiment


def _job(root, name, finished=True, failed=False):
    job = root / name
    for rel in ("checkpoints/last.ckpt", "test_outputs/0.png", "samples/latest.png"):
        (job / rel).parent.mkdir(parents=True, exist_ok=True)
        (job / rel).write_bytes(b"heavy")
    (job / "logs" / "session_0").mkdir(parents=True)
    (job / "logs" / "session_0" / "metrics.csv").write_text("step\n1\n")
    (job / "qualitative").mkdir()
    (job / "qualitative" / "0_generated.png").write_bytes(b"png")
    (job / ".hydra").mkdir()
    (job / ".hydra" / "config.yaml").write_text("seed: 0\n")
    if finished:
        (job / "results.json").write_text('{"status": "complete"}\n')
    if failed:
        (job / "error.json").write_text('{"error": "boom"}\n')
    return job


def test_finished_and_failed_jobs_are_copied_without_weights_or_outputs(tmp_path):
    collect = load_experiment("collect_runs").collect
    src, dst = tmp_path / "multirun" / "s", tmp_path / "runs"
    _job(src, "arm-l1__seed-0")
    _job(src, "arm-l1__seed-1", finished=False, failed=True)
    _job(src, "arm-l1__seed-2", finished=False)  # still running
    assert collect(src, dst) == ["arm-l1__seed-0", "arm-l1__seed-1"]
    kept = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert kept == [
        "arm-l1__seed-0/.hydra/config.yaml",
        "arm-l1__seed-0/logs/session_0/metrics.csv",
        "arm-l1__seed-0/qualitative/0_generated.png",
        "arm-l1__seed-0/results.json",
        "arm-l1__seed-1/.hydra/config.yaml",
        "arm-l1__seed-1/error.json",
        "arm-l1__seed-1/logs/session_0/metrics.csv",
        "arm-l1__seed-1/qualitative/0_generated.png",
    ]
    assert collect(src, dst) == []  # nothing new
    # a re-run finishes the failed job (the sweep callback removes its stale error.json)
    (src / "arm-l1__seed-1" / "error.json").unlink()
    (src / "arm-l1__seed-1" / "results.json").write_text('{"status": "complete"}\n')
    assert collect(src, dst) == ["arm-l1__seed-1"]
    assert not (dst / "arm-l1__seed-1" / "error.json").exists()
