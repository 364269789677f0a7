"""The sweep presets: every job of every grid composes, with the paper's settings, the same
seeds and the same data (paired design), and the launcher configs compose."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

REPO = Path(__file__).resolve().parents[2]
PAPER_LOSSES = sorted(p.stem for p in (REPO / "conf" / "loss").glob("*.yaml"))
STUDY_ARMS = {
    ("l1", True),
    ("l1_perceptual", True),
    ("l1_perceptual", False),
    ("ssim_perceptual_l1", True),
    ("part_ssim", True),
    ("part_ssim", False),
    ("perceptual", True),
}


def _grid(overrides: list[str], arguments: list[str] = ()):
    """(jobs, each job's composed config with its Hydra node) of ``-m overrides arguments``:
    the overrides Hydra's basic sweeper gives each job (its params, then the command line's
    sweeps)."""
    import personpose.run  # noqa: F401  (schemas, resolvers)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        base = compose("config", overrides, return_hydra_config=True)
        params = [f"{k}={v}" for k, v in (base.hydra.sweeper.params or {}).items()]
        parsed = OverridesParser.create().parse_overrides([*params, *overrides, *arguments])
        jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
        cfgs = [compose("config", job, return_hydra_config=True) for job in jobs]
        return jobs, cfgs


def _arm(cfg) -> tuple[str, bool]:
    return cfg.hydra.runtime.choices.loss, bool(cfg.loss.adversarial.enabled)


def test_synthetic_study_is_seven_arms_times_three_seeds_on_the_same_data():
    jobs, cfgs = _grid(["experiment=synthetic_study"])
    assert len(jobs) == 21 and len({tuple(sorted(j)) for j in jobs}) == 21
    seeds: dict[tuple, set[int]] = {}
    for cfg in cfgs:
        seeds.setdefault(_arm(cfg), set()).add(cfg.seed)
        assert cfg.model.name == "patn_small" and cfg.data.name == "synthetic"
        assert cfg.data.seed == 0 and cfg.data.batch_size == 8 and cfg.data.synth.ids == 300
        assert cfg.trainer.max_steps == 700 and cfg.sweep_name == "synthetic_study"
        assert cfg.trainer.precision == "bf16-mixed"
        assert cfg.hydra.sweep.dir == "multirun/synthetic_study"
    assert set(seeds) == STUDY_ARMS
    assert all(s == {0, 1, 2} for s in seeds.values())  # every configuration, every seed


def test_synthetic_study_command_line_narrows_and_overrides_the_grid():
    jobs, cfgs = _grid(
        ["experiment=synthetic_study"], ["arm=part_ssim_noadv,l1_perceptual", "seed=4"]
    )
    assert {(_arm(c), c.seed) for c in cfgs} == {
        (("part_ssim", False), 4),
        (("l1_perceptual", True), 4),
    }
    _, cfgs = _grid(["experiment=synthetic_study", "trainer.max_steps=1200", "seed=0"])
    assert len(cfgs) == 7 and {c.trainer.max_steps for c in cfgs} == {1200}


@pytest.mark.parametrize(
    ("experiment", "data", "batch", "weights", "objective", "pool"),
    [
        ("paper_market_grid", "market", 32, 10.0, "bce", 50),
        ("paper_deepfashion_grid", "deepfashion", 7, 1.0, "lsgan", 0),
    ],
)
def test_paper_grids_compose_every_job_with_the_papers_settings(
    experiment, data, batch, weights, objective, pool
):
    jobs, cfgs = _grid([f"experiment={experiment}"])
    assert len(jobs) == 2 * len(PAPER_LOSSES) == 20
    assert {_arm(c) for c in cfgs} == {(loss, adv) for loss in PAPER_LOSSES for adv in (1, 0)}
    for cfg in cfgs:
        assert cfg.data.name == data and cfg.data.batch_size == batch and cfg.data.seed == 0
        assert cfg.seed == 0 and cfg.trainer.accelerator == "gpu"
        assert cfg.sweep_name == experiment
        assert cfg.weights.perceptual == weights and cfg.weights.adversarial == 5.0
        assert (cfg.loss.adversarial.objective, cfg.loss.adversarial.pool_size) == (
            objective,
            pool,
        )
        assert cfg.model.name == "patn" and cfg.model.generator.ngf == 64
        if _arm(cfg)[0] == "part_ssim":  # the paper's final loss: L1 off
            assert not cfg.loss.l1.enabled and cfg.loss.part_ssim.enabled


def test_slurm_launcher_config_carries_partition_gpus_time_and_requeue():
    import personpose.run  # noqa: F401

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            [
                "experiment=paper_market_grid",
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1
    assert launcher.tasks_per_node == launcher.gpus_per_node  # Lightning: one task per GPU
    assert launcher.timeout_min > 0 and launcher.max_num_timeout > 0
    assert launcher.additional_parameters.requeue is True


def test_joblib_launcher_runs_one_job_per_core():
    import personpose.run  # noqa: F401

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            ["experiment=synthetic_study", "hydra/launcher=joblib"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("joblib_launcher.JoblibLauncher")
    assert launcher.n_jobs == -1 and launcher.backend is None  # loky: cores // jobs threads each
