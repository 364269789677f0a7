"""Copy the finished jobs of a sweep into a folder that is committed (the study's record).

Each job folder below ``SRC`` holding a ``results.json`` (finished) or an ``error.json``
(failed) is copied to ``DST/<job folder name>`` with ``results.json``/``error.json``, the CSV
log (``logs/``), the qualitative images (``qualitative/``) and ``.hydra/``; never the
checkpoints, test outputs or sample grids. A job already in ``DST`` with the same
``results.json`` is left alone; a copy is made beside its place and renamed into it, so an
interrupted copy never looks finished. Jobs still running (neither file) are skipped.

Usage:
    python experiments/collect_runs.py multirun/synthetic_study experiments/results/synthetic/runs
"""

from __future__ import annotations

import argparse
import filecmp
import functools
import shutil
from pathlib import Path

KEPT = ("results.json", "error.json", "logs", "qualitative", ".hydra")


def _not_kept(job: str, folder: str, names: list[str]) -> set[str]:
    """``copytree``'s ``ignore``: at the job folder's top, every entry not in ``KEPT``."""
    return set(names) - set(KEPT) if folder == job else set()


def collect(src: Path, dst: Path) -> list[str]:
    """Copy every finished or failed job of ``src`` into ``dst``; returns the names copied."""
    copied = []
    for marker in sorted([*src.rglob("results.json"), *src.rglob("error.json")]):
        job = marker.parent
        stale_error = marker.name == "error.json" and (job / "results.json").exists()
        target = dst / job.name
        copy = target / marker.name
        same = copy.exists() and filecmp.cmp(marker, copy, shallow=False)  # already collected
        if job.is_relative_to(dst) or stale_error or same:
            continue
        tmp = dst / f".{job.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(job, tmp, ignore=functools.partial(_not_kept, str(job)))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        copied.append(job.name)
    return copied


def main(argv: list[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="a sweep folder (multirun/<sweep_name>)")
    p.add_argument("dst", type=Path, help="the committed folder of runs")
    args = p.parse_args(argv)
    copied = collect(args.src, args.dst)
    print(f"copied {len(copied)} job(s) to {args.dst}: {', '.join(copied) or '-'}")
    return copied


if __name__ == "__main__":
    main()
