"""Figures of the ablation: bars with 95% intervals, training curves, the qualitative grid."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

from personpose.io.atomic import atomic_write
from personpose.report.runs import COPY, Group
from personpose.report.table import HEADLINE, LOWER_IS_BETTER, row_label
from personpose.training.loggers import read_csv_logs

QUALITATIVE_PAD = 2  # px of white around every cell of qualitative.png
QUALITATIVE_INPUTS = (("source", "source"), ("pose", "target pose"), ("target", "ground truth"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    _pyplot().close(fig)
    return path


def plot_bars(rows: list[dict], metrics: list[str], out: Path) -> list[Path]:
    """``ablation_<metric>.png`` per headline metric: mean per row with its 95% interval."""
    plt = _pyplot()
    written = []
    for m in [m for m in metrics if m in HEADLINE]:
        shown = [r for r in rows if r[f"{m}_mean"] is not None]
        fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(shown)), 3.2))
        ax.bar(
            [row_label(r) for r in shown],
            [r[f"{m}_mean"] for r in shown],
            yerr=[math.nan if r[f"{m}_ci95"] is None else r[f"{m}_ci95"] for r in shown],
            capsize=3,
            color=["#999" if r["loss"] == COPY else "#3b75af" for r in shown],
        )
        better = "lower" if m in LOWER_IS_BETTER else "higher"
        ax.set_title(f"{m} ({better} is better; bars: 95% interval over seeds)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
        fig.tight_layout()
        written.append(_save(fig, out / f"ablation_{m}.png"))
    return written


def _mean_curve(logs: list[list[dict]], column: str) -> tuple[list[int], list[float]]:
    """Steps and the mean over runs of ``column`` at each step some run logged it."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for rows in logs:
        for row in rows:
            if row.get(column):
                by_step[int(float(row["step"]))].append(float(row[column]))
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def _val_column(logs: list[list[dict]]) -> str | None:
    """The validation metric to draw: the first headline metric logged, else any ``val/``."""
    logged = {k for rows in logs for row in rows for k, v in row.items() if v}
    names = [f"val/{m}" for m in HEADLINE] + sorted(logged)
    return next((c for c in names if c in logged and c.startswith("val/")), None)


def plot_curves(groups: list[Group], path: Path) -> Path:
    """``curves.png``: mean over seeds of ``train/g/total`` and, if logged, a validation metric,
    per configuration; markers show every logged point, so a short run is still visible."""
    plt = _pyplot()
    logs = {g.label: [read_csv_logs(Path(r["_dir"])) for r in g.runs] for g in groups}
    val = _val_column([rows for runs in logs.values() for rows in runs])
    columns = ["train/g/total"] + ([val] if val else [])
    fig, axes = plt.subplots(1, len(columns), figsize=(6 * len(columns), 3.5), squeeze=False)
    for ax, column in zip(axes[0], columns):
        for label, runs in logs.items():
            steps, values = _mean_curve(runs, column)
            if steps:
                ax.plot(steps, values, marker="o", ms=3, lw=1, label=label)
        ax.set_xlabel("generator step")
        ax.set_ylabel(f"{column} (mean over seeds)")
        if ax.lines:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)


def _qualitative_dirs(groups: list[Group]) -> list[Path | None]:
    """Per configuration, the ``qualitative/`` folder of its smallest seed (None if absent)."""
    dirs = [Path(g.runs[0]["_dir"]) / "qualitative" for g in groups]
    return [d if (d / "0_generated.png").is_file() else None for d in dirs]


def has_qualitative(groups: list[Group]) -> bool:
    return any(_qualitative_dirs(groups))


def _text(text: str):
    """``text`` in black on white, turned to read bottom-up (a column title)."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text)
    img = Image.new("RGB", (right - left + 2, bottom - top + 2), "white")
    ImageDraw.Draw(img).text((1 - left, 1 - top), text, fill="black")
    return img.rotate(90, expand=True)


def qualitative_grid(columns: list[tuple[str, list[Path | None]]]):
    """A PIL image: one column per ``(title, images by row)``, cells at the size of the first
    image, ``QUALITATIVE_PAD`` px apart, titles (turned) in a header; a missing image is grey.

    Cell (row i, column j) starts at x = PAD + j * (W + PAD), y = header + PAD + i * (H + PAD).
    """
    from PIL import Image

    first = next(p for _, paths in columns for p in paths if p is not None)
    with Image.open(first) as im:
        w, h = im.size
    pad, titles = QUALITATIVE_PAD, [_text(t) for t, _ in columns]
    header = max(t.height for t in titles) + pad
    n_rows = max(len(paths) for _, paths in columns)
    size = (pad + len(columns) * (w + pad), header + pad + n_rows * (h + pad))
    grid = Image.new("RGB", size, "white")
    for j, ((_, paths), title) in enumerate(zip(columns, titles)):
        x = pad + j * (w + pad)
        grid.paste(title, (x + max(0, (w - title.width) // 2), header - title.height))
        for i, path in enumerate(paths):
            cell = Image.new("RGB", (w, h), (200, 200, 200))
            if path is not None:
                with Image.open(path) as im:
                    cell = im.convert("RGB").resize((w, h))  # a copy when the size is (w, h)
            grid.paste(cell, (x, header + pad + i * (h + pad)))
    return grid


def plot_qualitative(groups: list[Group], path: Path) -> int:
    """``qualitative.png`` (:func:`qualitative_grid`): rows are the fixed test pairs ``k``;
    columns source, target pose, ground truth (from the first run that has them), then each
    configuration's ``<k>_generated.png``. Returns the number of pairs (0: nothing written)."""
    dirs = _qualitative_dirs(groups)
    inputs = next((d for d in dirs if d is not None), None)
    if inputs is None:
        return 0
    n = next(k for k in itertools.count() if not (inputs / f"{k}_generated.png").is_file())

    def files(folder: Path | None, kind: str) -> list[Path | None]:
        paths = [None if folder is None else folder / f"{k}_{kind}.png" for k in range(n)]
        return [p if p is not None and p.is_file() else None for p in paths]

    columns = [(title, files(inputs, kind)) for kind, title in QUALITATIVE_INPUTS]
    columns += [(g.label, files(d, "generated")) for g, d in zip(groups, dirs)]
    grid = qualitative_grid(columns)
    atomic_write(path, lambda p: grid.save(p, format="PNG"))
    return n
