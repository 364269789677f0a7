"""``python -m personpose.report DIR [DIR...] [--out OUT] [--no-plots]`` (see the package)."""

from __future__ import annotations

import argparse
from pathlib import Path

import personpose.report as package
from personpose.io.atomic import atomic_write_text
from personpose.report.figures import has_qualitative, plot_bars, plot_curves, plot_qualitative
from personpose.report.runs import collect, group_runs
from personpose.report.table import markdown, metric_names, summarise, write_csv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m personpose.report",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("dirs", nargs="+", type=Path, help="multirun or run folders to collect")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: first DIR)")
    ap.add_argument("--no-plots", action="store_true", help="tables only, no figures")
    args = ap.parse_args(argv)
    runs, problems = collect(args.dirs)
    if not runs:
        print(f"no finished runs (results.json) below {', '.join(map(str, args.dirs))}")
        for p in problems:
            print(f"- {p['dir']}: {p['reason']}")
        return 1
    out = args.out or args.dirs[0]
    groups, warnings = group_runs(runs)
    for w in warnings:
        print(f"warning: {w}")
    metrics = metric_names(runs)
    rows = summarise(groups, metrics)
    figures = ["Figures not drawn (--no-plots)."]
    if not args.no_plots:
        bars = plot_bars(rows, metrics, out)
        plot_curves(groups, out / "curves.png")
        figures = [
            f"Figures: {', '.join(p.name for p in bars)} (bars: 95% intervals); curves.png "
            "(train/g/total and a validation metric, mean over seeds)."
        ]
        if n := plot_qualitative(groups, out / "qualitative.png"):
            figures.append(
                f"qualitative.png: {n} fixed test pairs (rows); columns source, target pose, "
                "ground truth, then each configuration's smallest seed (grey: no image)."
            )
    if not has_qualitative(groups):
        figures.append("No run folder has `qualitative/`: no qualitative grid.")
    md = markdown(rows, metrics, runs, problems, warnings, figures)
    atomic_write_text(out / "ablation.md", md)
    write_csv(rows, out / "ablation.csv")
    print(md)
    print(
        f"wrote {out / 'ablation.md'}, {out / 'ablation.csv'}"
        + ("" if args.no_plots else ", figures")
    )
    return 0
