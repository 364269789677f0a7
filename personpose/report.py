"""Ablation report from many runs: ``python -m personpose.report DIR [--out OUT]``.

Collects every ``results.json`` below ``DIR`` (a multirun folder, or several), groups runs by
their loss configuration (``loss`` group choice plus whether the adversarial term is on),
and writes, next to a Markdown table on stdout:

- ``OUT/ablation.csv``: one row per run (loss, seed, every metric, copy-source metrics);
- ``OUT/ablation.md``: mean +- std over seeds per loss, with the number of seeds, the
  protocol of every metric, and failed or unfinished jobs listed;
- ``OUT/ablation_<metric>.png``: bar charts; ``OUT/curves.png``: training curves.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

from personpose.io.atomic import atomic_write, atomic_write_text
from personpose.training.loggers import read_csv_logs

HEADLINE = ("gt_part_l1", "gt_fg_ssim", "mask_ssim", "ssim_patn", "lpips_alex", "fid_tv", "pssim")
LOWER_IS_BETTER = {"l1", "gt_part_l1", "lpips_alex", "lpips_alex_v00", "fid_tv"}


def loss_label(results: dict) -> str:
    """``<loss>`` or ``<loss>-noadv`` from the run's resolved config."""
    cfg = results.get("config", {})
    loss = cfg.get("loss", {})
    enabled = sorted(k for k, v in loss.items() if isinstance(v, dict) and v.get("enabled"))
    name = results.get("choices", {}).get("loss") or "+".join(
        t for t in enabled if t != "adversarial"
    )
    adv = loss.get("adversarial", {}).get("enabled", False)
    return name if adv else f"{name}-noadv"


def collect(roots: list[Path]) -> tuple[list[dict], list[dict]]:
    """(finished runs, failed/unfinished jobs) below ``roots``."""
    runs, problems = [], []
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
        for job in sorted(
            {p.parent for p in root.rglob("*") if p.name in ("results.json", "error.json")}
            | {p.parent.parent for p in root.rglob(".hydra/config.yaml")}
        ):
            res, err = job / "results.json", job / "error.json"
            if res.is_file():
                r = json.loads(res.read_text())
                if r.get("status") == "complete":
                    r["_dir"] = str(job)
                    runs.append(r)
                    continue
            reason = json.loads(err.read_text())["error"] if err.is_file() else "no results.json"
            problems.append({"dir": str(job), "reason": reason})
    return runs, problems


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s


def summarise(runs: list[dict]) -> tuple[list[str], dict[str, dict[str, tuple[float, float, int]]]]:
    """Metric names (headline first) and ``{loss: {metric: (mean, std, n)}}`` incl. copy-source."""
    metrics = sorted({k for r in runs for k in r["metrics"]})
    metrics = [m for m in HEADLINE if m in metrics] + [m for m in metrics if m not in HEADLINE]
    by_loss: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        for m in metrics:
            if m in r["metrics"]:
                by_loss[loss_label(r)][m].append(r["metrics"][m])
            if m in r.get("baselines", {}).get("copy_source", {}):
                by_loss["copy-source"][m].append(r["baselines"]["copy_source"][m])
    table = {
        loss: {m: (*_mean_std(v), len(v)) for m, v in vals.items()}
        for loss, vals in by_loss.items()
    }
    return metrics, table


def markdown(metrics: list[str], table: dict, runs: list[dict], problems: list[dict]) -> str:
    arrows = {m: ("↓" if m in LOWER_IS_BETTER else "↑") for m in metrics}
    head = "| loss | seeds | " + " | ".join(f"{m} {arrows[m]}" for m in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    order = sorted(k for k in table if k != "copy-source") + ["copy-source"]
    for loss in order:
        if loss not in table:
            continue
        row = table[loss]
        n = max((row[m][2] for m in row), default=0)
        cells = [f"{row[m][0]:.4f} ± {row[m][1]:.4f}" if m in row else "–" for m in metrics]
        lines.append(f"| {loss} | {n} | " + " | ".join(cells) + " |")
    protocol = {}
    for r in runs:
        protocol.update(r.get("protocol", {}))
    if protocol:
        lines += ["", "Protocols:"] + [f"- `{m}`: {protocol[m]}" for m in metrics if m in protocol]
    if problems:
        lines += ["", "Failed or unfinished jobs:"] + [
            f"- {p['dir']}: {p['reason']}" for p in problems
        ]
    return "\n".join(lines) + "\n"


def write_csv(runs: list[dict], metrics: list[str], path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "loss",
            "seed",
            "data_seed",
            "steps",
            "dir",
            *metrics,
            *[f"copy_source/{m}" for m in metrics],
        ]
    )
    for r in runs:
        base = r.get("baselines", {}).get("copy_source", {})
        w.writerow(
            [
                loss_label(r),
                r.get("seed"),
                r.get("data_seed"),
                r.get("steps"),
                r["_dir"],
                *[r["metrics"].get(m, "") for m in metrics],
                *[base.get(m, "") for m in metrics],
            ]
        )
    atomic_write_text(path, buf.getvalue())


def plot(metrics: list[str], table: dict, runs: list[dict], out: Path) -> list[Path]:
    """Bar charts of headline metrics and training-loss curves; returns the written files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    losses = sorted(k for k in table if k != "copy-source") + ["copy-source"]
    for m in [m for m in metrics if m in HEADLINE]:
        fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(losses)), 3))
        xs = [loss for loss in losses if m in table.get(loss, {})]
        ax.bar(
            xs,
            [table[x][m][0] for x in xs],
            yerr=[table[x][m][1] for x in xs],
            capsize=3,
            color=["#999" if x == "copy-source" else "#3b75af" for x in xs],
        )
        ax.set_title(f"{m} ({'lower' if m in LOWER_IS_BETTER else 'higher'} is better)")
        ax.tick_params(axis="x", rotation=45)
        fig.tight_layout()
        path = out / f"ablation_{m}.png"
        atomic_write(path, lambda p, fig=fig: fig.savefig(p, format="png", dpi=120))
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in runs:
        steps, vals = [], []
        for row in read_csv_logs(Path(r["_dir"])):
            if row.get("train/g/total"):
                steps.append(int(row["step"]))
                vals.append(float(row["train/g/total"]))
        if steps:
            ax.plot(steps, vals, label=f"{loss_label(r)} s{r.get('seed')}", lw=1)
    ax.set_xlabel("generator step")
    ax.set_ylabel("train/g/total")
    if ax.lines:
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = out / "curves.png"
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m personpose.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("dirs", nargs="+", type=Path, help="multirun or run folders to collect")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: first DIR)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    runs, problems = collect(args.dirs)
    if not runs:
        print(f"no finished runs (results.json) below {', '.join(map(str, args.dirs))}")
        for p in problems:
            print(f"- {p['dir']}: {p['reason']}")
        return 1
    out = args.out or args.dirs[0]
    metrics, table = summarise(runs)
    md = markdown(metrics, table, runs, problems)
    atomic_write_text(out / "ablation.md", md)
    write_csv(runs, metrics, out / "ablation.csv")
    if not args.no_plots:
        plot(metrics, table, runs, out)
    print(md)
    print(
        f"wrote {out / 'ablation.md'}, {out / 'ablation.csv'}"
        + ("" if args.no_plots else ", plots")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
