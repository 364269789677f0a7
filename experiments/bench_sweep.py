"""Study throughput: training iterations per hour of this machine, summed over parallel jobs.

Times the default synthetic run (patn_small, 128x64, batch 8, loss part_ssim, W&B offline) as a
sweep runs it, end to end: from the command's start to its exit, start-up, training,
validation, test scoring and writing included. Configurations, all in one script run:

- ``old``: commit 72ec8c9 (``--old``: a checkout of it, run with ``PYTHONPATH``; made with
  ``git archive`` when missing), one job at a time with every core's thread;
- ``new_1x<cores>``: this checkout, one job at a time with every core's thread;
- ``new_<cores>x1``: this checkout, a sweep of ``cores`` jobs at once through Hydra's joblib
  launcher, one thread each (``OMP_NUM_THREADS=1``, inherited by the launcher's workers);
- with ``--variants``: further ``name=override,...`` settings of the new code, one job at a time.

``iterations_per_hour = jobs x steps / wall seconds x 3600``. The synthetic data (and, for the
old commit, its native kernels) are made before any timing. Figures from a busy machine are
indicative: run it on a quiet one (``--quiet-file`` waits while that file exists).

Usage:
    python experiments/bench_sweep.py [--quick] [--old /tmp/old] [--steps 300]
        [--variants channels_last=trainer.channels_last=true]
        [--out experiments/results/bench_sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "experiments" / "results" / "bench_sweep.json"
OLD_COMMIT = "72ec8c9"
# Keys that were renamed since the old commit: (old name, new name).
PROGRESS_BAR = {"old": "trainer.progress_bar", "new": "trainer.enable_progress_bar"}
VAL_INTERVAL = {"old": "trainer.val_every_n_steps", "new": "trainer.val_check_interval"}


def ensure_old_checkout(path: Path, commit: str = OLD_COMMIT) -> Path:
    """A checkout of ``commit`` at ``path`` (extracted with ``git archive`` if missing)."""
    if (path / "personpose" / "run.py").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def _env(tree: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONUNBUFFERED="1")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def prepare(tree: Path, old: bool) -> None:
    """Generate the synthetic data of the default run (and build the old native kernels)."""
    code = (
        "from personpose.data.synth import ensure_dataset; import os; "
        "root = os.path.expanduser(os.environ.get('PERSONPOSE_DATA', '~/.cache/personpose'));"
        "ensure_dataset(os.path.join(root, 'synth'), 'market', 300, 0)"
    )
    if old:
        code += "; from personpose.kernels.native import library; library()"
    subprocess.run([sys.executable, "-c", code], cwd=tree, env=_env(tree, None), check=True)


def run_config(
    name: str,
    tree: Path,
    kind: str,
    steps: int,
    val_every: int,
    jobs: int,
    threads: int,
    extra: list[str],
    work: Path,
) -> dict:
    """Time one configuration: ``jobs`` > 1 runs a ``seed=0,..`` sweep through joblib."""
    out_dir = work / name
    args = [
        f"trainer.max_steps={steps}",
        f"{VAL_INTERVAL[kind]}={val_every}",
        f"{PROGRESS_BAR[kind]}=false",
        *extra,
    ]
    if jobs > 1:
        seeds = ",".join(str(s) for s in range(jobs))
        args = [
            "-m",
            "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={jobs}",
            f"seed={seeds}",
            f"hydra.sweep.dir={out_dir}",
            *args,
        ]
    else:
        args = [f"hydra.run.dir={out_dir}", *args]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "personpose.run", *args],
        cwd=work,
        env=_env(tree, threads),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    results = sorted(out_dir.rglob("results.json"))
    if len(results) != jobs:
        raise RuntimeError(f"{name}: {len(results)} results.json below {out_dir}, expected {jobs}")
    docs = [json.loads(p.read_text()) for p in results]
    row = {
        "config": name,
        "code": OLD_COMMIT if kind == "old" else "this checkout",
        "jobs_at_once": jobs,
        "threads_per_job": threads,
        "steps_per_job": steps,
        "wall_s": round(wall, 1),
        "iterations_per_hour": round(jobs * steps / wall * 3600),
        "job_wall_s": [d.get("wall_time_s") for d in docs],
        "mask_ssim": [round(d["metrics"]["mask_ssim"], 4) for d in docs],
        "load_1min_before": round(load, 2),
        "overrides": args,
    }
    print(f"  {name}: {row['iterations_per_hour']} it/h ({wall:.0f} s)", flush=True)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="30-step jobs (fixed costs weigh more)")
    p.add_argument(
        "--steps", type=int, default=300, help="steps per job (default: the default run's)"
    )
    p.add_argument("--old", type=Path, default=Path("/tmp/old"), help=f"checkout of {OLD_COMMIT}")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--variants", nargs="*", default=[], metavar="NAME=OVERRIDE[,OVERRIDE]")
    p.add_argument("--quiet-file", type=Path, default=None, help="wait while this file exists")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    steps = 30 if args.quick else args.steps
    val_every = max(1, steps // 3)  # the default run validates 3 times (300 steps, every 100)
    old = ensure_old_checkout(args.old)
    for tree, is_old in ((old, True), (REPO, False)):
        prepare(tree, is_old)
    n = args.cores
    configs = [
        ("old", old, "old", 1, n, []),
        (f"new_1x{n}", REPO, "new", 1, n, []),
        (f"new_{n}x1", REPO, "new", n, 1, []),
    ]
    for variant in args.variants:
        name, _, overrides = variant.partition("=")
        configs.append((f"new_1x{n}_{name}", REPO, "new", 1, n, overrides.split(",")))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for name, tree, kind, jobs, threads, extra in configs:
            while args.quiet_file is not None and args.quiet_file.exists():
                time.sleep(20)
            rows.append(
                run_config(name, tree, kind, steps, val_every, jobs, threads, extra, Path(tmp))
            )
    base = rows[0]["iterations_per_hour"]
    for row in rows:
        row["vs_old"] = round(row["iterations_per_hour"] / base, 2)
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": n,
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "rows": rows,
    }
    keys = [
        "config",
        "jobs_at_once",
        "threads_per_job",
        "steps_per_job",
        "wall_s",
        "iterations_per_hour",
        "vs_old",
        "load_1min_before",
    ]
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
