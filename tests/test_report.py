import json

from personpose.io.atomic import atomic_write_json
from personpose.report import main


def _run(dirpath, loss, seed, value, adv=True):
    atomic_write_json(
        dirpath / "results.json",
        {
            "status": "complete",
            "choices": {"loss": loss},
            "seed": seed,
            "data_seed": 0,
            "steps": 10,
            "metrics": {"gt_part_l1": value, "mask_ssim": 1 - value},
            "baselines": {"copy_source": {"gt_part_l1": 0.5, "mask_ssim": 0.4}},
            "protocol": {"gt_part_l1": "mean over parts of L1", "mask_ssim": "PATN mask SSIM"},
            "config": {"loss": {"adversarial": {"enabled": adv}, "l1": {"enabled": True}}},
        },
    )


def test_report_groups_by_loss_with_mean_std_and_lists_failures(tmp_path, capsys):
    sweep = tmp_path / "multirun" / "grid"
    _run(sweep / "loss=l1,seed=0", "l1", 0, 0.2)
    _run(sweep / "loss=l1,seed=1", "l1", 1, 0.4)
    _run(sweep / "loss=part_ssim,seed=0", "part_ssim", 0, 0.1, adv=False)
    failed = sweep / "loss=ssim,seed=0"
    failed.mkdir(parents=True)
    (failed / "error.json").write_text(json.dumps({"error": "ValueError: boom"}))

    assert main([str(sweep), "--no-plots"]) == 0
    md = (sweep / "ablation.md").read_text()
    assert "| l1 | 2 | 0.3000 ± 0.1414 |" in md
    assert "| part_ssim-noadv | 1 | 0.1000 ± 0.0000 |" in md
    assert "copy-source" in md and "ValueError: boom" in md
    assert "`mask_ssim`: PATN mask SSIM" in md
    rows = (sweep / "ablation.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("loss,seed,data_seed")
    assert "l1" in capsys.readouterr().out


def test_report_with_plots_writes_pngs(tmp_path):
    _run(tmp_path / "a", "l1", 0, 0.2)
    assert main([str(tmp_path)]) == 0
    assert (tmp_path / "ablation_gt_part_l1.png").stat().st_size > 1000
    assert (tmp_path / "curves.png").is_file()


def test_report_without_runs_fails(tmp_path):
    assert main([str(tmp_path)]) == 1
