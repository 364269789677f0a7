"""Hydra callback of the runs and sweeps (``hydra.callbacks`` in ``conf/config.yaml``).

A sweep job that fails writes ``error.json`` into its folder and returns, so the other jobs
go on (``personpose.run``). :class:`SweepFailures` makes the end of such a sweep visible: once
every job has run, the command exits with status 1 and one line naming the failed jobs. A job
that succeeds later removes the ``error.json`` a former failure left (stale: older than its
``results.json``), so the folder and the report show the run's current state.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("personpose.sweep")

RESULTS, ERROR = "results.json", "error.json"
MARKER = ".sweep_started"  # in the sweep folder: error.json files newer than it are this sweep's


def remove_stale_error(run_dir: Path) -> bool:
    """Delete ``run_dir/error.json`` when ``run_dir/results.json`` is newer; True if deleted."""
    error, results = run_dir / ERROR, run_dir / RESULTS
    if error.is_file() and results.is_file():
        if results.stat().st_mtime_ns >= error.stat().st_mtime_ns:
            error.unlink()
            return True
    return False


def failures_since(sweep_dir: Path, marker: Path) -> list[tuple[Path, str]]:
    """``(job folder, error)`` of every ``error.json`` below ``sweep_dir`` written after
    ``marker`` was touched (file times of one file system, so the cluster's clocks agree)."""
    since = marker.stat().st_mtime_ns if marker.is_file() else 0
    out = []
    for path in sorted(sweep_dir.rglob(ERROR)):
        if path.stat().st_mtime_ns >= since:
            try:
                error = str(json.loads(path.read_text())["error"])
            except (OSError, ValueError, KeyError, TypeError):
                error = "unreadable error.json"
            out.append((path.parent, error))
    return out


def summary(failures: list[tuple[Path, str]], sweep_dir: Path, shown: int = 3) -> str:
    """One line: how many jobs failed, the first ``shown`` job folders with the first line of
    their error (cut at 120 characters), and how many more."""
    parts = []
    for job, error in failures[:shown]:
        first = error.splitlines()[0] if error else ""
        parts.append(f"{job.name} ({first[:120]}{'...' if len(first) > 120 else ''})")
    if len(failures) > shown:
        parts.append(f"and {len(failures) - shown} more")
    n = len(failures)
    return (
        f"sweep {sweep_dir}: {n} job{'s' if n > 1 else ''} failed (error.json in each folder): "
        + "; ".join(parts)
    )


class SweepFailures(Callback):
    """Exit 1 with a one-line summary after a sweep in which a job failed; remove stale
    ``error.json`` files of jobs that succeed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / MARKER).write_text("this sweep's failures are the error.json files newer\n")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.runtime.output_dir)
        if remove_stale_error(run_dir):
            log.info("removed the stale %s of a former failure", run_dir / ERROR)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failures = failures_since(sweep_dir, sweep_dir / MARKER)
        if failures:
            raise SystemExit(summary(failures, sweep_dir))
