"""Study throughput: training iterations per hour of this machine, summed over parallel jobs.

Times the default synthetic run (patn_small, 128x64, batch 8, loss part_ssim, W&B offline) as a
sweep runs it, end to end: from the command's start to its exit, start-up, training,
validation, test scoring and writing included. Configurations, all in one script run:

- ``old_1x<cores>``: commit 72ec8c9 (``--old``: a checkout of it, run with ``PYTHONPATH``;
  extracted with ``git archive`` when missing), one job with ``cores`` threads;
- ``old_<cores>x1`` (with ``--old-parallel``): the old commit, ``cores`` jobs at once;
- ``new_1x<cores>``: this checkout, one job with ``cores`` threads;
- ``new_<cores>x1``: this checkout, a sweep of ``cores`` jobs (``seed=0,1,..``) at once through
  Hydra's joblib launcher (``hydra/launcher=joblib``), one thread each;
- with ``--variants``: further ``name=override,...`` settings of the new code, one job;
- ``--only NAME ...`` keeps those configurations (and the ``old_1x<cores>`` reference).

Threads are set through the command's environment (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``,
inherited by the launcher's worker processes), never by the package.
``iterations_per_hour = jobs x steps / wall seconds x 3600``; ``vs_old`` divides by the first
row's. The data (and the old commit's native kernels) are made before any timing. Figures
from a busy machine are indicative: run it on a quiet one (``--quiet-file`` waits while that
file exists) and give the load it records with the figures.

Usage:
    python experiments/bench_sweep.py [--quick] [--old ../old] [--steps 300] [--old-parallel]
        [--variants bf16=trainer.precision=bf16-mixed] [--only new_1x2_bf16]
        [--extra OVERRIDE ...] [--out experiments/results/bench_sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import REPO, RESULTS, machine, markdown_table, write_json  # noqa: E402

from personpose.report.table import HEADLINE  # noqa: E402

OLD_COMMIT = "72ec8c9"
# Keys renamed since the old commit: {code: name}.
PROGRESS_BAR = {"old": "trainer.progress_bar", "new": "trainer.enable_progress_bar"}
VAL_INTERVAL = {"old": "trainer.val_every_n_steps", "new": "trainer.val_check_interval"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Run in a tree: its data folder for the overrides in argv[1:] (generated if missing), and the
# old commit's native kernels built.
PREPARE = """
import sys
from hydra import compose, initialize_config_dir
import personpose.run  # schemas, resolvers
from personpose.data.datamodule import build_datamodule
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("config", sys.argv[2:])
print(build_datamodule(cfg.data).data_dir)
try:
    from personpose.kernels.native import library
except ImportError:
    pass
else:
    library()
"""


def ensure_old_checkout(path: Path, commit: str = OLD_COMMIT) -> Path:
    """A checkout of ``commit`` at ``path`` (extracted with ``git archive`` if missing)."""
    if (path / "personpose" / "run.py").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    cmd = ["git", "-C", str(REPO), "archive", commit]
    archive = subprocess.run(cmd, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def job_env(tree: Path, threads: int | None) -> dict[str, str]:
    """The environment of a command run from ``tree``, with ``threads`` per process."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(PYTHONPATH=str(tree), PYTHONUNBUFFERED="1", WANDB_MODE="offline")
    return env | ({k: str(threads) for k in THREAD_VARIABLES} if threads is not None else {})


def prepare(tree: Path, extra: list[str]) -> None:
    """Generate the data of the run (and build the old commit's native kernels)."""
    cmd = [sys.executable, "-c", PREPARE, str(tree / "conf"), *extra]
    subprocess.run(cmd, cwd=tree, env=job_env(tree, None), check=True, capture_output=True)


def command(kind: str, steps: int, val_every: int, jobs: int, out_dir: Path, extra: list[str]):
    """``personpose.run`` arguments of one configuration (a joblib sweep when ``jobs`` > 1)."""
    args = [f"trainer.max_steps={steps}", f"{VAL_INTERVAL[kind]}={val_every}"]
    args += [f"{PROGRESS_BAR[kind]}=false", *extra]
    if jobs == 1:
        return [f"hydra.run.dir={out_dir}", *args]
    seeds = ",".join(str(s) for s in range(jobs))
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    return ["-m", *launcher, f"hydra.sweep.dir={out_dir}", f"seed={seeds}", *args]


def run_config(config: tuple, steps: int, val_every: int, work: Path) -> dict:
    """Time one configuration (see :func:`configurations`) from the command's start to its
    exit."""
    name, tree, kind, jobs, threads, extra = config
    out_dir = work / name
    args = command(kind, steps, val_every, jobs, out_dir, extra)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "personpose.run", *args]
    proc = subprocess.run(cmd, cwd=work, env=job_env(tree, threads), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    results = sorted(out_dir.rglob("results.json"))
    if len(results) != jobs:
        raise RuntimeError(f"{name}: {len(results)} results.json below {out_dir}, expected {jobs}")
    docs = [json.loads(p.read_text()) for p in results]
    if any(d.get("steps") != steps for d in docs):
        raise RuntimeError(f"{name}: a job did not train {steps} steps")
    row = {
        "config": name,
        "code": OLD_COMMIT if kind == "old" else "this checkout",
        "jobs_at_once": jobs,
        "threads_per_job": threads,
        "steps_per_job": steps,
        "wall_s": round(wall, 1),
        "iterations_per_hour": round(jobs * steps / wall * 3600),
        "job_wall_s": [d.get("wall_time_s") for d in docs],
        **{m: [d["metrics"].get(m) for d in docs] for m in HEADLINE},  # the report's headline
        "load_1min_before": round(load, 2),
        "overrides": args,
    }
    print(f"  {name}: {row['iterations_per_hour']} it/h ({wall:.0f} s)", flush=True)
    return row


def configurations(args: argparse.Namespace, old: Path) -> list[tuple]:
    """(name, tree, code kind, jobs at once, threads per job, overrides) per configuration."""
    n = args.cores
    configs = [(f"old_1x{n}", old, "old", 1, n, [])]
    if args.old_parallel:
        configs.append((f"old_{n}x1", old, "old", n, 1, []))
    configs += [(f"new_1x{n}", REPO, "new", 1, n, []), (f"new_{n}x1", REPO, "new", n, 1, [])]
    for variant in args.variants:
        name, _, overrides = variant.partition("=")
        configs.append((f"new_1x{n}_{name}", REPO, "new", 1, n, overrides.split(",")))
    names = [c[0] for c in configs]
    if set(args.only or ()) - set(names):
        raise SystemExit(f"--only {' '.join(args.only)}: expected names among {names}")
    return [c for c in configs if not args.only or c[0] in args.only or c[0] == f"old_1x{n}"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="30 steps per job (fixed costs weigh more)")
    p.add_argument("--steps", type=int, default=300, help="steps per job (the default run's)")
    p.add_argument(
        "--old", type=Path, default=REPO.parent / "old", help=f"checkout of {OLD_COMMIT}"
    )
    p.add_argument("--old-parallel", action="store_true", help="also the old commit's jobs at once")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="threads = jobs at once")
    p.add_argument("--variants", nargs="*", default=[], metavar="NAME=OVERRIDE[,OVERRIDE]")
    extra = "overrides of every configuration, old and new (e.g. a tiny model)"
    p.add_argument("--extra", nargs="*", default=[], metavar="OVERRIDE", help=extra)
    only = "run only these configurations (by name; old_1x<cores>, the reference, always runs)"
    p.add_argument("--only", nargs="*", default=None, metavar="NAME", help=only)
    p.add_argument("--quiet-file", type=Path, default=None, help="wait while this file exists")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_sweep.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    steps = 30 if args.quick else args.steps
    val_every = max(1, steps // 3)  # the default run validates 3 times (300 steps, every 100)
    configs = configurations(args, args.old)  # a bad --only fails before any set-up
    old = ensure_old_checkout(args.old)
    for tree in (old, REPO):
        prepare(tree, args.extra)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for *config, extra in configs:
            while args.quiet_file is not None and args.quiet_file.exists():
                time.sleep(20)
            rows.append(run_config((*config, [*args.extra, *extra]), steps, val_every, Path(tmp)))
    base = rows[0]["iterations_per_hour"]
    for row in rows:
        row["vs_old"] = round(row["iterations_per_hour"] / base, 2)
    print(markdown_table(rows))
    doc = {"machine": machine(cores=args.cores), "quick": args.quick, "extra": args.extra}
    return write_json(args.out, {**doc, "rows": rows})


if __name__ == "__main__":
    main()
