import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from personpose.io.atomic import atomic_write_json
from personpose.report import main
from personpose.report.figures import QUALITATIVE_PAD
from tests.conftest import write_csv

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "ablation.ipynb"


def _run(
    dirpath,
    loss,
    seed,
    value,
    adv=True,
    model="patn_small",
    steps=10,
    data_seed=0,
    logged=(),
    arm=None,
):
    """A fake finished run: results.json as run.py writes it, and ``logged`` CSV log rows;
    ``arm``: the study arm (conf/arm/) the run was chosen by."""
    choices = {"data": "synthetic", "model": model, "loss": loss, "logger": "csv"}
    atomic_write_json(
        dirpath / "results.json",
        {
            "status": "complete",
            "choices": {**choices, "arm": arm} if arm else choices,
            "seed": seed,
            "data_seed": data_seed,
            "steps": steps,
            "max_steps": steps,
            "wall_time_s": 60.0,
            "metrics": {"gt_part_l1": value, "mask_ssim": 1 - value},
            "baselines": {"copy_source": {"gt_part_l1": 0.5, "mask_ssim": 0.4}},
            "protocol": {"gt_part_l1": "mean over parts of L1", "mask_ssim": "PATN mask SSIM"},
            "pretrained": {"vgg19": "not used"},
            "config": {
                "data": {"root": str(dirpath / "data"), "seed": data_seed},  # root: ignored
                "model": {"name": model},
                "loss": {"adversarial": {"enabled": adv}, "l1": {"enabled": True}},
                "trainer": {"max_steps": steps, "progress_bar": seed % 2 == 0},  # bar: ignored
                "logger": {"wandb": {"enabled": True}},
                "seed": seed,
                "sweep_name": f"sweep{seed}",
            },
        },
    )
    if logged:
        log = dirpath / "logs" / "session_0" / "metrics.csv"
        write_csv(log, ["step", "train/g/total", "val/gt_part_l1"], logged)


def _csv(folder):
    with (folder / "ablation.csv").open() as f:
        return {(r["loss"], r["group"]): r for r in csv.DictReader(f)}


def _ci(values):
    values = np.asarray(values)
    return stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))


def test_intervals_and_paired_differences_match_a_hand_computation(tmp_path, capsys):
    patn, l1 = [0.30, 0.34, 0.29], [0.25, 0.31, 0.20]
    for seed in range(3):
        _run(tmp_path / f"loss=l1_perceptual,seed={seed}", "l1_perceptual", seed, patn[seed])
        _run(tmp_path / f"loss=l1,seed={seed}", "l1", seed, l1[seed])

    assert main([str(tmp_path), "--no-plots"]) == 0
    rows = _csv(tmp_path)
    row, ref = rows[("l1", "")], rows[("l1_perceptual", "")]
    assert row["n_seeds"] == "3" and row["steps"] == "10"
    assert float(row["gt_part_l1_mean"]) == pytest.approx(np.mean(l1))
    assert float(row["gt_part_l1_ci95"]) == pytest.approx(_ci(l1))
    diffs = np.subtract(l1, patn)
    assert float(row["gt_part_l1_diff"]) == pytest.approx(diffs.mean())
    assert float(row["gt_part_l1_diff_ci95"]) == pytest.approx(_ci(diffs))
    assert float(row["mask_ssim_diff"]) == pytest.approx(-diffs.mean())
    assert float(ref["gt_part_l1_ci95"]) == pytest.approx(_ci(patn))
    assert ref["gt_part_l1_diff"] == "" and ref["gt_part_l1_diff_ci95"] == ""
    assert float(row["wall_time_s"]) == 60.0 and row["model"] == "patn_small"
    assert rows[("copy-source", "")]["gt_part_l1_mean"] == "0.5"

    md = (tmp_path / "ablation.md").read_text()
    mean, ci = np.mean(l1), _ci(l1)
    assert f"| l1 | 3 | 10 | 60.0 | **{mean:.4f} ± {ci:.4f}** |" in md  # best: lower
    assert f"| l1 | 3 | {diffs.mean():+.4f} ± {_ci(diffs):.4f} |" in md
    assert "360.0 s (0.10 h) over 6 finished jobs" in md
    assert "`mask_ssim`: PATN mask SSIM" in md
    assert "| l1" in capsys.readouterr().out


def test_csv_header_is_the_specified_one(tmp_path):
    _run(tmp_path / "a", "l1", 0, 0.2)
    assert main([str(tmp_path), "--no-plots"]) == 0
    header = (tmp_path / "ablation.csv").read_text().splitlines()[0].split(",")
    per_metric = [
        f"{m}_{s}"
        for m in ("gt_part_l1", "mask_ssim")
        for s in ("mean", "ci95", "diff", "diff_ci95")
    ]
    assert header[:11] == ["loss", "n_seeds", "steps", *per_metric]
    assert header[11:] == ["group", "model", "wall_time_s", "n_pairs"]


def test_one_seed_and_no_reference_leave_cells_empty_and_say_why(tmp_path):
    _run(tmp_path / "a", "l1", 0, 0.2)
    _run(tmp_path / "b", "part_ssim", 0, 0.1, adv=False)

    assert main([str(tmp_path), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    rows = _csv(tmp_path / "out")
    assert set(rows) == {("l1", ""), ("part_ssim-noadv", ""), ("copy-source", "")}
    for row in rows.values():
        assert row["gt_part_l1_ci95"] == row["gt_part_l1_diff"] == row["gt_part_l1_diff_ci95"] == ""
    assert rows[("l1", "")]["gt_part_l1_mean"] == "0.2"
    md = (tmp_path / "out" / "ablation.md").read_text()
    assert "| l1 | 1 | 10 | 60.0 | 0.2000 | 0.8000 |" in md
    assert "One seed, so no interval (an interval needs two): l1, part_ssim-noadv." in md
    assert "No `l1_perceptual` row (the PATN loss), so every difference cell is empty." in md


def test_one_seed_pair_gives_a_difference_without_interval(tmp_path):
    _run(tmp_path / "a", "l1", 0, 0.2)
    _run(tmp_path / "b", "l1_perceptual", 0, 0.3)
    _run(tmp_path / "c", "l1_perceptual", 0, 0.3, model="patn_tiny")  # no l1 of that model
    assert main([str(tmp_path), "--no-plots"]) == 0
    row = _csv(tmp_path)[("l1", "")]
    assert float(row["gt_part_l1_diff"]) == pytest.approx(-0.1)
    assert row["gt_part_l1_diff_ci95"] == "" and row["n_pairs"] == "1"


def test_runs_differing_in_model_or_steps_are_separate_rows(tmp_path):
    for seed in (0, 1):
        _run(tmp_path / f"small2_{seed}", "l1", seed, 0.2, model="patn_small", steps=2)
        _run(tmp_path / f"tiny2_{seed}", "l1", seed, 0.4, model="patn_tiny", steps=2)
        _run(tmp_path / f"tiny3_{seed}", "l1", seed, 0.6, model="patn_tiny", steps=3)
    _run(tmp_path / "ref", "l1_perceptual", 0, 0.5, model="patn_tiny", steps=3)

    assert main([str(tmp_path), "--no-plots"]) == 0
    rows = _csv(tmp_path)
    small = rows[("l1", "model=patn_small, steps=2")]
    tiny2 = rows[("l1", "model=patn_tiny, steps=2")]
    tiny3 = rows[("l1", "model=patn_tiny, steps=3")]
    assert (small["steps"], tiny2["steps"], tiny3["steps"]) == ("2", "2", "3")
    assert [float(r["gt_part_l1_mean"]) for r in (small, tiny2, tiny3)] == [0.2, 0.4, 0.6]
    assert all(r["n_seeds"] == "2" for r in (small, tiny2, tiny3))
    # the reference row has a unique label; only the same model and steps is paired
    assert float(tiny3["gt_part_l1_diff"]) == pytest.approx(0.1) and tiny2["gt_part_l1_diff"] == ""
    md = (tmp_path / "ablation.md").read_text()
    assert "| l1 [model=patn_tiny, steps=3] | 2 | 3 |" in md
    assert "so no difference: l1 [model=patn_small, steps=2], l1 [model=patn_tiny, steps=2]." in md


def test_two_backbones_get_a_table_each_and_their_own_reference(tmp_path):
    """A ``model=patn_small,xinggan_small`` sweep of the pilot pair: each backbone's rows under
    its heading (means and differences), the best mean bold per backbone, and part_ssim
    compared with the l1_perceptual of its own backbone."""
    values = {  # (model, loss) -> gt_part_l1 of seeds 0, 1, 2
        ("xinggan_small", "l1_perceptual"): (0.30, 0.32, 0.31),
        ("xinggan_small", "part_ssim"): (0.20, 0.24, 0.21),
        ("patn_small", "l1_perceptual"): (0.40, 0.41, 0.45),
        ("patn_small", "part_ssim"): (0.42, 0.42, 0.46),
    }
    for (model, loss), seeds in values.items():
        for seed, v in enumerate(seeds):
            _run(tmp_path / f"{model}_{loss}_{seed}", loss, seed, v, model=model)

    assert main([str(tmp_path), "--no-plots"]) == 0
    rows = _csv(tmp_path)
    for model in ("patn_small", "xinggan_small"):
        row = rows[("part_ssim", f"model={model}")]
        diffs = np.subtract(values[(model, "part_ssim")], values[(model, "l1_perceptual")])
        assert float(row["gt_part_l1_diff"]) == pytest.approx(diffs.mean())
        assert float(row["gt_part_l1_diff_ci95"]) == pytest.approx(_ci(diffs))
        assert row["model"] == model and row["n_pairs"] == "3"
    md = (tmp_path / "ablation.md").read_text()
    means, rest = md.split("## Paired difference")
    for section in (means, rest.split("## Notes")[0]):
        patn, xing = (
            section.index("### Backbone `patn_small`"),
            section.index("### Backbone `xinggan_small`"),
        )
        assert patn < section.index("| part_ssim [model=patn_small]") < xing
        assert xing < section.index("| part_ssim [model=xinggan_small]")
    # copy-source closes each backbone's means table; each backbone has its own bold best
    assert means.count("| copy-source |") == 2 and means.count("**") == 2 * 2 * 2
    assert "| l1_perceptual [model=patn_small] | 3 | 10 | 60.0 | **0.4200" in means


def test_one_backbone_has_no_backbone_headings(tmp_path):
    for seed in (0, 1):
        _run(tmp_path / f"a{seed}", "l1_perceptual", seed, 0.3, model="xinggan_small")
        _run(tmp_path / f"b{seed}", "part_ssim", seed, 0.2, model="xinggan_small")
    assert main([str(tmp_path), "--no-plots"]) == 0
    md = (tmp_path / "ablation.md").read_text()
    assert "Backbone" not in md and "| part_ssim | 2 |" in md


def test_duplicate_seed_is_a_warning_naming_both_folders(tmp_path, capsys):
    _run(tmp_path / "outputs" / "a", "l1", 0, 0.2)
    _run(tmp_path / "outputs" / "b", "l1", 0, 0.4)

    assert main([str(tmp_path), "--no-plots"]) == 0
    row = _csv(tmp_path)[("l1", "")]
    assert row["n_seeds"] == "1" and row["gt_part_l1_mean"] == "0.2"
    warning = (
        f"duplicate seed 0 (data seed 0) in `l1`: counted {tmp_path / 'outputs' / 'a'}, "
        f"ignored {tmp_path / 'outputs' / 'b'}"
    )
    assert warning in (tmp_path / "ablation.md").read_text()
    assert f"warning: {warning}" in capsys.readouterr().out


def test_data_seed_is_a_setting_not_a_seed(tmp_path):
    _run(tmp_path / "a", "l1", 0, 0.2, data_seed=0)
    _run(tmp_path / "b", "l1", 0, 0.4, data_seed=1)
    assert main([str(tmp_path), "--no-plots"]) == 0
    assert set(_csv(tmp_path)) >= {("l1", "data.seed=0"), ("l1", "data.seed=1")}


def test_study_arms_group_by_their_loss_and_pair_with_a_run_without_arm(tmp_path):
    """The `arm` choice only selects loss settings: a study job and a plain run of the same
    loss are one configuration, and an arm is paired with the reference row."""
    _run(tmp_path / "arm_ref0", "l1_perceptual", 0, 0.3, arm="l1_perceptual")
    _run(tmp_path / "plain_ref1", "l1_perceptual", 1, 0.4)
    for seed, value in ((0, 0.2), (1, 0.2)):
        _run(tmp_path / f"noadv{seed}", "part_ssim", seed, value, adv=False, arm="part_ssim_noadv")
    assert main([str(tmp_path), "--no-plots"]) == 0
    rows = _csv(tmp_path)
    assert set(rows) == {("l1_perceptual", ""), ("part_ssim-noadv", ""), ("copy-source", "")}
    assert rows[("l1_perceptual", "")]["n_seeds"] == "2"
    noadv = rows[("part_ssim-noadv", "")]
    assert noadv["n_pairs"] == "2" and float(noadv["gt_part_l1_diff"]) == pytest.approx(-0.15)


def test_failed_jobs_are_listed(tmp_path):
    sweep = tmp_path / "multirun" / "grid"
    _run(sweep / "loss=l1,seed=0", "l1", 0, 0.2)
    failed = sweep / "loss=ssim,seed=0"
    failed.mkdir(parents=True)
    (failed / "error.json").write_text(json.dumps({"error": "ValueError: boom"}))
    unfinished = sweep / "loss=ssim,seed=1" / ".hydra"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("seed: 1\n")

    assert main([str(sweep), "--no-plots"]) == 0
    md = (sweep / "ablation.md").read_text()
    assert f"- {failed}: ValueError: boom" in md
    assert f"- {unfinished.parent}: no results.json" in md


def _solid(path, color, size=(6, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _qualitative(run_dir, generated, pairs=2):
    """Fake ``qualitative/`` PNGs: inputs coloured by pair, outputs by ``generated`` + pair."""
    for k in range(pairs):
        _solid(run_dir / "qualitative" / f"{k}_source.png", (10 + k, 0, 0))
        _solid(run_dir / "qualitative" / f"{k}_pose.png", (0, 10 + k, 0))
        _solid(run_dir / "qualitative" / f"{k}_target.png", (0, 0, 10 + k))
        _solid(run_dir / "qualitative" / f"{k}_generated.png", (generated, generated, k))


def test_figures_and_qualitative_grid(tmp_path):
    logged = [{"step": 5, "train/g/total": 3.0, "val/gt_part_l1": ""}]
    logged += [{"step": 9, "train/g/total": "", "val/gt_part_l1": 0.3}]
    for seed in (0, 1):
        for loss, colour in (("l1", 100), ("l1_perceptual", 150)):
            run = tmp_path / f"loss={loss},seed={seed}"
            _run(run, loss, seed, 0.2 + seed / 10, logged=logged)
            _qualitative(run, colour + seed)  # seed 1 differs: the grid shows seed 0

    assert main([str(tmp_path)]) == 0
    for name in ("ablation_gt_part_l1.png", "ablation_mask_ssim.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 1000
    grid = np.asarray(Image.open(tmp_path / "qualitative.png").convert("RGB"))
    pad, (h, w) = QUALITATIVE_PAD, (8, 6)
    header = grid.shape[0] - pad - 2 * (h + pad)
    assert grid.shape[1] == pad + 5 * (w + pad) and header > 0

    def cell(row, column):
        y, x = header + pad + row * (h + pad), pad + column * (w + pad)
        return grid[y : y + h, x : x + w]

    # columns: source, target pose, ground truth, l1, l1_perceptual (sorted labels)
    assert (cell(1, 0) == (11, 0, 0)).all() and (cell(1, 1) == (0, 11, 0)).all()
    assert (cell(0, 2) == (0, 0, 10)).all() and (cell(1, 2) == (0, 0, 11)).all()
    assert (cell(1, 3) == (100, 100, 1)).all() and (cell(1, 4) == (150, 150, 1)).all()
    assert (grid[header - 1 : header + pad, :] == 255).all()  # white between header and cells
    md = (tmp_path / "ablation.md").read_text()
    assert "qualitative.png: 2 fixed test pairs (rows)" in md


def test_without_qualitative_folders_the_grid_is_skipped_and_said(tmp_path):
    _run(tmp_path / "a", "l1", 0, 0.2)
    assert main([str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").is_file() and not (tmp_path / "qualitative.png").exists()
    assert (
        "No run folder has `qualitative/`: no qualitative grid."
        in (tmp_path / "ablation.md").read_text()
    )


def test_report_without_runs_fails(tmp_path):
    assert main([str(tmp_path)]) == 1


def test_notebook_is_stripped_and_runs_on_a_tiny_sweep(tmp_path, monkeypatch):
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    for seed in (0, 1):
        _run(tmp_path / f"ref{seed}", "l1_perceptual", seed, 0.3 + seed / 20)
        _run(tmp_path / f"l1{seed}", "l1", seed, 0.2 + seed / 10)
    assert main([str(tmp_path), "--no-plots"]) == 0

    monkeypatch.setenv("PERSONPOSE_ABLATION", str(tmp_path))
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(
        nb, {"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "l1_perceptual" in text
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # bars, paired differences
