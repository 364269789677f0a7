"""Sweeps end to end on the tiny model: failures, re-runs, launchers, W&B grouping, and the
paper's grids on the real samples."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from personpose.config.callbacks import remove_stale_error, summary
from personpose.report.cli import main as report

from .conftest import TINY, compose_cfg, run_cli, start_run

# Two steps, a checkpoint after each (a kill after the first leaves an interrupted job), one
# cheap metric.
SWEEP = [
    *TINY,
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.checkpoint_every_n_steps=1",
    "eval.val_metrics=[l1]",
    "eval.test_metrics=[l1]",
    "eval.save_outputs=false",
    "sweep_name=s",
]


def _jobs(sweep_dir: Path) -> dict[str, Path]:
    """``loss=`` choice -> job folder, from each job's ``.hydra/overrides.yaml``."""
    out = {}
    for path in sweep_dir.glob("*/.hydra/overrides.yaml"):
        overrides = yaml.safe_load(path.read_text())
        loss = next(o.split("=", 1)[1] for o in overrides if o.startswith("loss="))
        out[loss] = path.parent.parent
    return out


def _write_vgg(path: Path) -> None:
    """A (random) torchvision-format VGG-19 state dict with the layers up to relu1_2."""
    g = torch.Generator().manual_seed(0)
    shapes = {"0": (64, 3, 3, 3), "2": (64, 64, 3, 3)}
    sd = {}
    for i, shape in shapes.items():
        sd[f"features.{i}.weight"] = torch.randn(shape, generator=g) * 0.1
        sd[f"features.{i}.bias"] = torch.zeros(shape[0])
    torch.save(sd, path)


def test_failed_job_interrupted_job_and_reruns(tmp_path, data_cache):
    """Run 1 is killed in its third job (after the second failed); run 2 skips the finished
    job, resumes the killed one, fails the failing one again and exits 1 with one line; once
    the cause is fixed, run 3 runs only that job and removes its stale error.json."""
    vgg = tmp_path / "vgg19.pth"  # missing: loss=l1_perceptual fails to build its VGG
    args = ["-m", *SWEEP, "loss=l1,l1_perceptual,ssim", f"pretrained.vgg19={vgg}"]
    sweep_dir = tmp_path / "multirun" / "s"
    proc = start_run(args, tmp_path, {"WANDB_MODE": "offline"})
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        ssim = _jobs(sweep_dir).get("ssim")
        if ssim is not None and (ssim / "checkpoints" / "last.ckpt").exists():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    jobs = _jobs(sweep_dir)
    assert (jobs["l1"] / "results.json").is_file()
    assert "vgg19" in json.loads((jobs["l1_perceptual"] / "error.json").read_text())["error"]
    assert not (jobs["ssim"] / "results.json").exists(), "the kill came after the job ended"

    again = run_cli(args, cwd=tmp_path)
    log = again.stdout + again.stderr
    assert again.returncode == 1, log[-3000:]
    last = again.stderr.strip().splitlines()[-1]
    assert "1 job failed" in last and jobs["l1_perceptual"].name in last and "vgg19" in last
    assert "nothing to do" in log  # l1: finished, skipped
    assert "resuming from" in log  # ssim: interrupted, resumed
    resumed = json.loads((jobs["ssim"] / "results.json").read_text())
    assert resumed["steps"] == 2 and resumed["resumed_from"]
    # the report lists the failure next to the finished runs
    assert report([str(sweep_dir), "--no-plots", "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "ablation.md").read_text()
    assert jobs["l1_perceptual"].name in md and "vgg19" in md

    _write_vgg(vgg)
    fixed = run_cli(args, cwd=tmp_path)
    assert fixed.returncode == 0, (fixed.stdout + fixed.stderr)[-3000:]
    assert (jobs["l1_perceptual"] / "results.json").is_file()
    assert not (jobs["l1_perceptual"] / "error.json").exists()  # stale: removed
    # every run wrote the same fixed test pairs for the report's qualitative grid
    targets = set()
    for job in jobs.values():
        files = sorted(p.name for p in (job / "qualitative").glob("*.png"))
        n = len(files) // 4
        assert n >= 1 and files == sorted(
            f"{k}_{kind}.png"
            for k in range(n)
            for kind in ("source", "pose", "target", "generated")
        )
        targets.add((job / "qualitative" / "0_target.png").read_bytes())
    assert len(targets) == 1


def test_stale_error_is_only_an_older_one(tmp_path):
    run = tmp_path / "job"
    run.mkdir()
    (run / "results.json").write_text("{}")
    (run / "error.json").write_text('{"error": "later failure"}')
    os.utime(run / "results.json", ns=(1_000, 1_000))
    assert not remove_stale_error(run) and (run / "error.json").exists()  # newer: kept
    os.utime(run / "results.json", ns=(10**19, 10**19))
    assert remove_stale_error(run) and not (run / "error.json").exists()
    line = summary([(run, "ValueError: x\nmore")], tmp_path)
    assert "\n" not in line and line.endswith(
        "1 job failed (error.json in each folder): job (ValueError: x)"
    )
    line = summary([(tmp_path / f"j{i}", "E: " + "y" * 200) for i in range(5)], tmp_path)
    assert "5 jobs failed" in line and "j2 (E: " + "y" * 117 + "...)" in line
    assert "j3" not in line and line.endswith("; and 2 more")


def test_synthetic_study_jobs_that_fail_end_the_sweep_non_zero_in_one_line(tmp_path):
    """The study's command narrowed to 2 arms and one seed, with a data error: both jobs fail,
    each leaves error.json, and the sweep exits 1 naming them on its last line."""
    out = run_cli(
        [
            "-m",
            "experiment=synthetic_study",
            "arm=l1,part_ssim_noadv",
            "seed=0",
            "data.synth.preset=nope",
        ],
        cwd=tmp_path,
    )
    assert out.returncode == 1, (out.stdout + out.stderr)[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("sweep multirun/synthetic_study: 2 jobs failed") and "nope" in last
    sweep = tmp_path / "multirun" / "synthetic_study"
    jobs = sorted(p.parent.name for p in sweep.glob("*/error.json"))
    assert len(jobs) == 2 and [j.split("__")[0] for j in jobs] == ["arm-l1", "arm-part_ssim_noadv"]


def test_backbone_is_a_sweep_axis_and_the_report_splits_by_it(tmp_path, data_cache):
    """``model=patn_tiny,xinggan_small`` in one sweep: a job per generator, each recording its
    own, and a report with a table per backbone."""
    out = run_cli(["-m", *SWEEP, "loss=l1", "model=patn_tiny,xinggan_small"], cwd=tmp_path)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    sweep = tmp_path / "multirun" / "s"
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert sorted(r["choices"]["model"] for r in results) == ["patn_tiny", "xinggan_small"]
    targets = {r["config"]["model"]["generator"]["_target_"].rsplit(".", 1)[1] for r in results}
    assert targets == {"PATNGenerator", "XingGANGenerator"}
    assert report([str(sweep), "--no-plots"]) == 0
    md = (sweep / "ablation.md").read_text()
    assert md.count("### Backbone `patn_tiny`") == md.count("### Backbone `xinggan_small`") == 2


@pytest.mark.slow  # three processes: the sweep and its two jobs
def test_submitit_local_launcher_runs_a_sweep(tmp_path, data_cache):
    out = run_cli(
        ["-m", *SWEEP, "hydra/launcher=submitit_local", "seed=0,1", "loss=l1"],
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    results = sorted((tmp_path / "multirun" / "s").glob("*/results.json"))
    assert sorted(json.loads(p.read_text())["seed"] for p in results) == [0, 1]
    assert (tmp_path / "multirun" / "s" / ".submitit").is_dir()


def test_wandb_run_per_job_grouped_by_sweep(tmp_path):
    from personpose.training.loggers import build_loggers

    cfg = compose_cfg(["logger=wandb", "loss=l1", "sweep_name=study"])
    wandb = next(
        lg
        for lg in build_loggers(cfg, tmp_path, "loss-l1__seed-0", "study")
        if type(lg).__name__ == "WandbLogger"
    )
    init = wandb._wandb_init
    assert init["group"] == "study" and init["name"] == "loss-l1__seed-0"
    assert init["config"]["loss"]["l1"]["enabled"] is True and init["mode"] == "offline"


def _deepfashion_root(real: Path, root: Path) -> Path:
    """DeepFashion samples (test images only) split by identity into train (3 of 4 ids) and
    test (1 of 4) under ``root``, images linked, not copied."""
    src = real / "deepfashion"
    header, *rows = (src / "fasion-resize-annotation-test.csv").read_text().splitlines()
    pairs = (src / "fasion-resize-pairs-test.csv").read_text().splitlines()[1:]
    ids = sorted({r.split(":")[0].rsplit("_", 1)[0] for r in rows})
    split_of = {pid: "test" if i % 4 == 0 else "train" for i, pid in enumerate(ids)}
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        names = [r for r in rows if split_of[r.split(":")[0].rsplit("_", 1)[0]] == split]
        (root / f"fasion-resize-annotation-{split}.csv").write_text(
            "\n".join([header, *names]) + "\n"
        )
        chosen = [p for p in pairs if split_of[p.split(",")[0].rsplit("_", 1)[0]] == split]
        (root / f"fasion-resize-pairs-{split}.csv").write_text(
            "\n".join(["from,to", *chosen]) + "\n"
        )
        for r in names:
            name = r.split(":")[0]
            (root / split / name).symlink_to(src / "test" / name)
    return root


def _market_root(real: Path, root: Path) -> Path:
    """The Market samples (train and test) linked under ``root``."""
    root.mkdir()
    for p in (real / "market").iterdir():
        (root / p.name).symlink_to(p)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("grid", ["paper_market_grid", "paper_deepfashion_grid"])
def test_paper_grid_job_runs_two_cpu_steps_on_the_real_samples(grid, tmp_path, real_data):
    make = _market_root if "market" in grid else _deepfashion_root
    root = make(real_data, tmp_path / "data")
    out = run_cli(
        [
            "-m",
            f"experiment={grid}",
            "loss=part_ssim",  # one job of the grid: the paper's final loss, adversarial on
            "loss.adversarial.enabled=true",
            "model=patn_tiny",
            "data.batch_size=2",
            "trainer=cpu",
            "trainer.max_steps=2",
            "trainer.enable_progress_bar=false",
            f"data.root={root}",
            "data.num_workers=0",
            "data.persistent_workers=false",
            "data.pin_memory=false",
            "data.allow_random_weights=true",  # no ImageNet VGG offline
            "logger=csv",
        ],
        cwd=tmp_path,
        timeout=900,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    (results,) = (tmp_path / "multirun" / grid).glob("*/results.json")
    doc = json.loads(results.read_text())
    assert doc["steps"] == 2 and doc["count"] > 0
    cfg = doc["config"]
    assert cfg["data"]["batch_size"] == 2 and cfg["loss"]["part_ssim"]["enabled"]
    assert (results.parent / "qualitative" / "0_generated.png").is_file()
