"""The ablation table: means and paired differences with 95% intervals, as Markdown and CSV."""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path

from personpose.io.atomic import atomic_write_text
from personpose.metrics.protocols import HIGHER_IS_BETTER
from personpose.report.runs import COPY, Group, copy_groups, loss_side, seed_of

HEADLINE = ("gt_part_l1", "gt_fg_ssim", "mask_ssim", "ssim_patn", "lpips_alex", "fid_tv", "pssim")
LOWER_IS_BETTER = frozenset(name for name, higher in HIGHER_IS_BETTER.items() if not higher)
REFERENCE = "l1_perceptual"  # the PATN loss: every difference is taken from it


def metric_names(runs: list[dict]) -> list[str]:
    """Every metric of ``runs``, headline metrics first."""
    names = sorted({k for r in runs for k in r["metrics"]})
    return [m for m in HEADLINE if m in names] + [m for m in names if m not in HEADLINE]


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and 95% interval half-width ``t_{0.975, n-1} * sd / sqrt(n)`` (None if n < 2)."""
    from scipy.stats import t

    n, mean = len(values), sum(values) / len(values)
    if n < 2:
        return mean, None
    return mean, float(t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n)


def paired_diffs(group: Group, ref: Group, metric: str) -> list[float]:
    """``group - ref`` on ``metric`` for every seed both ran (same seed and data seed)."""
    base = {seed_of(r): r["metrics"] for r in ref.runs}
    return [
        r["metrics"][metric] - base[seed_of(r)][metric]
        for r in group.runs
        if metric in r["metrics"] and metric in base.get(seed_of(r), {})
    ]


def reference_of(group: Group, groups: list[Group]) -> Group | None:
    """The ``l1_perceptual`` row with the same settings outside the loss, if any."""

    def outside(g: Group) -> dict:
        return {k: v for k, v in g.settings.items() if not loss_side(k)}

    return next((g for g in groups if g.loss == REFERENCE and outside(g) == outside(group)), None)


def _config_row(group: Group, groups: list[Group], metrics: list[str]) -> dict:
    ref = reference_of(group, groups)
    ref = None if ref is group else ref
    row = {"loss": group.loss, "n_seeds": len(group.runs), "steps": group.runs[0].get("steps")}
    for m in metrics:
        values = [r["metrics"][m] for r in group.runs if m in r["metrics"]]
        diffs = paired_diffs(group, ref, m) if ref is not None else []
        row[f"{m}_mean"], row[f"{m}_ci95"] = mean_ci(values) if values else (None, None)
        row[f"{m}_diff"], row[f"{m}_diff_ci95"] = mean_ci(diffs) if diffs else (None, None)
    walls = [r["wall_time_s"] for r in group.runs if "wall_time_s" in r]
    pairs = {seed_of(r) for r in group.runs} & {seed_of(r) for r in ref.runs} if ref else set()
    return {
        **row,
        "group": group.suffix,
        "model": group.settings.get("model", ""),
        "wall_time_s": sum(walls) / len(walls) if walls else None,
        "n_pairs": len(pairs),
    }


def _copy_row(copy: Group, metrics: list[str]) -> dict:
    row: dict = {"loss": COPY, "n_seeds": None, "steps": None}
    for m in metrics:
        base = [r.get("baselines", {}).get("copy_source", {}) for r in copy.runs]
        values = [b[m] for b in base if m in b]
        row[f"{m}_mean"] = sum(values) / len(values) if values else None
        row[f"{m}_ci95"] = row[f"{m}_diff"] = row[f"{m}_diff_ci95"] = None
    return {**row, "group": copy.suffix, "model": "", "wall_time_s": None, "n_pairs": None}


def summarise(groups: list[Group], metrics: list[str]) -> list[dict]:
    """The table: one dict per configuration, then the copy-source rows, keyed by CSV column:
    ``loss, n_seeds, steps``, per metric ``<m>_mean, <m>_ci95, <m>_diff, <m>_diff_ci95``, then
    ``group`` (distinguishing settings), ``model``, ``wall_time_s`` (mean per job), ``n_pairs``."""
    rows = [_config_row(g, groups, metrics) for g in groups]
    return rows + [_copy_row(c, metrics) for c in copy_groups(groups)]


def write_csv(rows: list[dict], path: Path) -> None:
    """``ablation.csv``: the columns of :func:`summarise`, empty cells for missing values."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    atomic_write_text(path, buf.getvalue())


# ---------------------------------------------------------------------------- Markdown
def row_label(row: dict) -> str:
    """``l1`` or, where rows share a loss label, ``l1 [model=patn_tiny, steps=3]``."""
    return f"{row['loss']} [{row['group']}]" if row["group"] else row["loss"]


def _cell(value: float | None, ci: float | None, sign: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:{sign}.4f}" + (f" ± {ci:.4f}" if ci is not None else "")


def _means_table(rows: list[dict], metrics: list[str]) -> list[str]:
    best = {}  # the best mean of each metric over the trained rows
    for m in metrics:
        values = [r[f"{m}_mean"] for r in rows if r["loss"] != COPY and r[f"{m}_mean"] is not None]
        best[m] = (min if m in LOWER_IS_BETTER else max)(values, default=None)
    lines = [
        "| configuration | seeds | steps | wall/job (s) | "
        + " | ".join(f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in metrics)
        + " |",
        "|" + "---|" * (len(metrics) + 4),
    ]
    for r in rows:
        wall = "–" if r["wall_time_s"] is None else f"{r['wall_time_s']:.1f}"
        head = [row_label(r), r["n_seeds"] or "–", "–" if r["steps"] is None else r["steps"], wall]
        cells = []
        for m in metrics:
            cell = _cell(r[f"{m}_mean"], r[f"{m}_ci95"])
            is_best = r["loss"] != COPY and cell != "–" and r[f"{m}_mean"] == best[m]
            cells.append(f"**{cell}**" if is_best else cell)
        lines.append("| " + " | ".join(map(str, head + cells)) + " |")
    return lines


def _diffs_table(rows: list[dict], metrics: list[str]) -> list[str]:
    lines = [
        "| configuration | pairs | " + " | ".join(f"Δ {m}" for m in metrics) + " |",
        "|" + "---|" * (len(metrics) + 2),
    ]
    for r in rows:
        if r["loss"] != COPY:
            cells = [_cell(r[f"{m}_diff"], r[f"{m}_diff_ci95"], "+") for m in metrics]
            pairs = "ref" if r["loss"] == REFERENCE else r["n_pairs"]
            lines.append(f"| {row_label(r)} | {pairs} | " + " | ".join(cells) + " |")
    return lines


def _by_backbone(rows: list[dict], table, metrics: list[str]) -> list[str]:
    """``table(rows, metrics)``, or with more than one backbone (``model``) one table per
    backbone under its own heading: its rows, then the copy-source rows (whose model is "")."""
    models = dict.fromkeys(r["model"] for r in rows if r["loss"] != COPY)
    copies = [r for r in rows if r["loss"] == COPY]
    if len(models) < 2:
        return table(rows, metrics)
    per = [
        [f"### Backbone `{m}`", "", *table([r for r in rows if r["model"] == m] + copies, metrics)]
        for m in models
    ]
    return [line for lines in per for line in [*lines, ""]][:-1]


def notes(rows: list[dict], runs: list[dict], figures: list[str]) -> list[str]:
    """Why cells are empty, the wall time of the grid, and what the figures show."""
    trained = [r for r in rows if r["loss"] != COPY]
    out = []
    if single := [row_label(r) for r in trained if r["n_seeds"] == 1]:
        out.append(f"One seed, so no interval (an interval needs two): {', '.join(single)}.")
    if not any(r["loss"] == REFERENCE for r in trained):
        out.append(f"No `{REFERENCE}` row (the PATN loss), so every difference cell is empty.")
    else:
        out.append(f"`{REFERENCE}` is the reference: its own difference cells are empty.")
        if unpaired := [
            row_label(r) for r in trained if r["loss"] != REFERENCE and not r["n_pairs"]
        ]:
            out.append(
                f"No `{REFERENCE}` run with the same settings and seeds, so no difference: "
                f"{', '.join(unpaired)}."
            )
    out.append(f"`{COPY}`: the source image as the output (no training, no seeds).")
    walls = [r["wall_time_s"] for r in runs if "wall_time_s" in r]
    out.append(
        f"Wall time of the grid: {sum(walls):.1f} s ({sum(walls) / 3600:.2f} h) over "
        f"{len(walls)} finished jobs; the table gives the mean per job."
    )
    return [f"- {line}" for line in out + figures]


def markdown(
    rows: list[dict],
    metrics: list[str],
    runs: list[dict],
    problems: list[dict],
    warnings: list[str],
    figures: list[str],
) -> str:
    """``ablation.md``: means, paired differences, notes (``figures``: lines on the figures),
    duplicate-seed warnings, every metric's protocol and the failed jobs."""
    protocol = {k: v for r in runs for k, v in r.get("protocol", {}).items()}
    lines = [
        "# Ablation",
        "",
        "## Mean over seeds ± 95% interval (t distribution; best mean in bold)",
        "",
        *_by_backbone(rows, _means_table, metrics),
        "",
        f"## Paired difference from `{REFERENCE}` (row − {REFERENCE}, same seeds) ± 95% interval",
        "",
        *_by_backbone(rows, _diffs_table, metrics),
        "",
        "## Notes",
        "",
        *notes(rows, runs, figures),
    ]
    if warnings:
        lines += ["", "## Warnings", "", *[f"- {w}" for w in warnings]]
    lines += ["", "## Protocols", ""]
    lines += [f"- `{m}`: {protocol.get(m, 'not recorded')}" for m in metrics]
    if problems:
        lines += ["", "## Failed or unfinished jobs", ""]
        lines += [f"- {p['dir']}: {p['reason']}" for p in problems]
    return "\n".join(lines) + "\n"
