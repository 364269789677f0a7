"""Every option of every config group composes, and typos fail at compose time."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from personpose.config.schema import REMOVED_KEYS, check_overrides
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
    assert (m.optim.lr_rule.niter, m.optim.lr_rule.niter_decay) == (500, 200)
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
    with pytest.raises(WeightsUnavailable, match="pretrained.vgg19"):
        GeneratorLoss(
            real.loss,
            real.weights,
            vgg_path=real.pretrained.vgg19,
            allow_random_vgg=real.data.allow_random_weights,
        )
    synth = compose_cfg()
    loss = GeneratorLoss(
        synth.loss, synth.weights, allow_random_vgg=synth.data.allow_random_weights
    )
    assert loss.pretrained_source.startswith("random")


@pytest.mark.parametrize("key", sorted(REMOVED_KEYS))
def test_removed_keys_fail_naming_their_replacement(key):
    with pytest.raises(ConfigCompositionException) as err:  # the schemas reject them
        compose_cfg([f"{key}=1"])
    assert key.split(".")[-1] in str(err.value) + str(err.value.__cause__)
    with pytest.raises(ValueError, match=f"{key} was removed; use ") as err:  # run.py's check
        check_overrides(["loss=l1", f"+{key}=1"])
    assert REMOVED_KEYS[key] in str(err.value)


def test_current_keys_pass_the_removed_key_check():
    check_overrides(["loss=l1", "optim.generator.lr=1e-3", "trainer.val_check_interval=5"])
    check_overrides(["pretrained.vgg19=/x.pth", "data.allow_random_weights=true"])


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_model_file_has_norm_and_a_generator_that_instantiates_alone(name):
    model = OmegaConf.load(CONF / "model" / f"{name}.yaml")
    assert model.norm in ("batch", "instance")
    generator = instantiate(model.generator)  # the node alone: `norm` resolves within the file
    layers = {type(m).__name__ for m in generator.modules()}
    assert {"batch": "BatchNorm2d", "instance": "InstanceNorm2d"}[model.norm] in layers
    for channels in (6, 21):
        assert isinstance(instantiate(model.discriminator, in_channels=channels), torch.nn.Module)


def test_optimisers_are_partial_and_the_lr_rule_takes_steps_per_epoch():
    optim = compose_cfg().optim
    net = torch.nn.Linear(2, 2)
    for node in (optim.generator, optim.discriminator):
        assert isinstance(instantiate(node)(net.parameters()), torch.optim.Adam)
    rule = instantiate(optim.lr_rule)(steps_per_epoch=10)
    assert rule(0) == 1.0 and (rule.niter, rule.niter_decay) == (500, 200)
