"""The arms sweeper and the sweep presets: every job of every grid composes, with the paper's
settings, the same seeds and the same data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_plugins.personpose_sweeper.arms_sweeper import ArmsSweeper

REPO = Path(__file__).resolve().parents[2]
PAPER_LOSSES = sorted(p.stem for p in (REPO / "conf" / "loss").glob("*.yaml"))


def _jobs(sweeper, arguments: list[str]) -> list[list[str]]:
    """The jobs ``sweeper`` launches for its params plus ``arguments`` (as ``sweep`` does)."""
    params = [f"{k}={v}" for k, v in (sweeper.params or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *arguments])
    return [job for batch in sweeper.split_arguments(overrides, None) for job in batch]


def test_arms_times_the_product_command_line_wins_and_duplicates_run_once():
    sweeper = ArmsSweeper(
        params={"seed": "0,1"},
        arms=[["loss=l1"], ["loss=part_ssim", "loss.adversarial.enabled=false"]],
    )
    assert _jobs(sweeper, []) == [
        ["loss=l1", "seed=0"],
        ["loss=l1", "seed=1"],
        ["loss=part_ssim", "loss.adversarial.enabled=false", "seed=0"],
        ["loss=part_ssim", "loss.adversarial.enabled=false", "seed=1"],
    ]
    # a key on the command line replaces the arms' value; arms that become equal run once
    assert _jobs(sweeper, ["loss=ssim", "seed=5"]) == [
        ["seed=5", "loss=ssim"],
        ["loss.adversarial.enabled=false", "seed=5", "loss=ssim"],
    ]
    batches = sweeper.split_arguments(OverridesParser.create().parse_overrides(["seed=0,1"]), 3)
    assert [len(b) for b in batches] == [3, 1]
    assert _jobs(ArmsSweeper(params={"seed": "0,1"}), []) == [["seed=0"], ["seed=1"]]


def test_an_arm_that_is_not_a_list_of_overrides_is_refused():
    with pytest.raises(ValueError, match=r"hydra.sweeper.arms\[1\].*key=value"):
        ArmsSweeper(arms=[["loss=l1"], ["l1"]])


def _grid(experiment: str):
    """(the experiment's jobs, each job's composed config)."""
    import personpose.run  # noqa: F401  (schemas, resolvers)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        base = compose("config", [f"experiment={experiment}"], return_hydra_config=True)
        sweeper = base.hydra.sweeper  # the basic sweeper is an ArmsSweeper without arms
        jobs = _jobs(ArmsSweeper(params=sweeper.params, arms=sweeper.get("arms") or []), [])
        return jobs, [compose("config", [f"experiment={experiment}", *job]) for job in jobs]


def _choice(job: list[str], key: str) -> str | None:
    return next((o.split("=", 1)[1] for o in job if o.split("=", 1)[0] == key), None)


def test_synthetic_study_grid_is_paired():
    jobs, cfgs = _grid("synthetic_study")
    arms = {(_choice(j, "loss"), c.loss.adversarial.enabled) for j, c in zip(jobs, cfgs)}
    assert arms == {
        ("l1", True),
        ("l1_perceptual", True),
        ("l1_perceptual", False),
        ("ssim_perceptual_l1", True),
        ("part_ssim", True),
        ("part_ssim", False),
        ("perceptual", True),
    }
    assert len(jobs) == 21
    seeds: dict[tuple, set[int]] = {}
    for job, cfg in zip(jobs, cfgs):
        seeds.setdefault((_choice(job, "loss"), cfg.loss.adversarial.enabled), set()).add(cfg.seed)
        assert cfg.model.name == "patn_small"
        assert cfg.data.seed == 0 and cfg.data.name == "synthetic" and cfg.data.batch_size == 8
        assert cfg.trainer.max_steps == 300 and cfg.sweep_name == "synthetic_study"
    assert all(s == {0, 1, 2} for s in seeds.values())  # every configuration, every seed


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
    jobs, cfgs = _grid(experiment)
    assert len(jobs) == 2 * len(PAPER_LOSSES) == 20
    combos = {(_choice(j, "loss"), c.loss.adversarial.enabled) for j, c in zip(jobs, cfgs)}
    assert combos == {(loss, adv) for loss in PAPER_LOSSES for adv in (True, False)}
    for job, cfg in zip(jobs, cfgs):
        assert cfg.data.name == data and cfg.data.batch_size == batch and cfg.data.seed == 0
        assert cfg.seed == 0 and cfg.trainer.accelerator == "gpu"
        assert cfg.weights.perceptual == weights and cfg.weights.adversarial == 5.0
        assert (cfg.loss.adversarial.objective, cfg.loss.adversarial.pool_size) == (
            objective,
            pool,
        )
        assert cfg.model.name == "patn" and cfg.model.generator.ngf == 64
        if _choice(job, "loss") == "part_ssim":  # the paper's final loss: L1 off
            assert not cfg.loss.l1.enabled and cfg.loss.part_ssim.enabled
