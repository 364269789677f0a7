"""Every option of every config group composes, and typos fail at compose time."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from tests.training.conftest import CONF, compose_cfg

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra",))
OPTIONS = [
    (group, option.stem) for group in GROUPS for option in sorted((CONF / group).glob("*.yaml"))
]


def test_groups_are_the_documented_ones():
    assert {
        "data",
        "model",
        "loss",
        "weights",
        "optim",
        "trainer",
        "logger",
        "eval",
        "experiment",
    } <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    container = OmegaConf.to_container(cfg, resolve=False)
    assert container["seed"] == 0
    # everything that does not point at the user's data must resolve
    for key in ("model", "loss", "weights", "optim", "trainer", "logger", "eval"):
        OmegaConf.to_container(cfg[key], resolve=True)


def test_defaults_are_the_papers_proposal_on_synthetic_data():
    cfg = compose_cfg()
    assert cfg.loss.part_ssim.enabled and cfg.loss.perceptual.enabled
    assert cfg.loss.adversarial.enabled and not cfg.loss.l1.enabled
    assert cfg.data.name == "synthetic" and cfg.trainer.accelerator == "cpu"


def test_paper_experiments_carry_the_paper_settings():
    m = compose_cfg(["experiment=market_pssim"])
    assert (m.data.batch_size, m.model.norm, m.loss.adversarial.objective) == (32, "batch", "bce")
    assert (m.weights.adversarial, m.weights.perceptual, m.weights.part_ssim) == (5, 10, 10)
    assert m.loss.adversarial.pool_size == 50
    d = compose_cfg(["experiment=deepfashion_pssim"])
    assert (d.data.batch_size, d.model.norm, d.loss.adversarial.objective) == (
        7,
        "instance",
        "lsgan",
    )
    assert d.loss.adversarial.pool_size == 0 and tuple(d.data.image_size) == (256, 176)
    p = compose_cfg(["experiment=market_patn"])
    assert p.loss.l1.enabled and p.loss.perceptual.enabled and not p.loss.part_ssim.enabled
    assert (p.weights.l1, p.weights.perceptual) == (10, 10)


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_stepz=3",
        "loss.part_ssim.enabeld=true",
        "weights.l11=3",
        "optim.lrr=1",
        "seeed=1",
    ],
)
def test_misspelt_keys_fail_naming_the_key(override):
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg([override])
    assert override.split("=")[0].split(".")[-1] in str(err.value) + str(err.value.__cause__)


def test_wrong_type_fails():
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["trainer.max_steps=many"])


def test_real_data_without_imagenet_vgg_is_an_error_synthetic_records_random():
    from personpose.losses.composite import GeneratorLoss
    from personpose.pretrained import WeightsUnavailable

    real = compose_cfg(["experiment=market_pssim"])
    assert real.data.allow_random_weights is False
    with pytest.raises(WeightsUnavailable, match="vgg19"):
        GeneratorLoss(real.loss, real.weights, allow_random_vgg=real.data.allow_random_weights)
    synth = compose_cfg()
    loss = GeneratorLoss(
        synth.loss, synth.weights, allow_random_vgg=synth.data.allow_random_weights
    )
    assert loss.pretrained_source.startswith("random")
