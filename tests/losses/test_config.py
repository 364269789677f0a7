"""The conf/loss and conf/weights groups compose against the schema; typos fail at compose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from personpose.losses.config import (
    LossConfig,
    WeightsConfig,
    register_schemas,
    to_loss_config,
    to_weights_config,
)

CONF = Path(__file__).resolve().parents[2] / "conf"

EXPECTED = {
    "l1": {"l1"},
    "perceptual": {"perceptual"},
    "ssim": {"ssim"},
    "style": {"style"},
    "perceptual_ssim": {"perceptual_ssim"},
    "l1_perceptual": {"l1", "perceptual"},
    "ssim_perceptual_l1": {"ssim", "perceptual", "l1"},
    "part_ssim_perceptual_l1": {"part_ssim", "perceptual", "l1"},
    "part_ssim": {"part_ssim", "perceptual"},
    "part_ssim_style": {"part_ssim", "perceptual", "style"},
}


@pytest.fixture(autouse=True, scope="module")
def _schemas():
    register_schemas()


def _compose(overrides, conf=CONF):
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        return compose(overrides=overrides)


def _active(cfg: LossConfig) -> set[str]:
    names = ("l1", "perceptual", "style", "ssim", "part_ssim", "perceptual_ssim")
    return {n for n in names if getattr(cfg, n).enabled}


def test_every_loss_file_is_listed():
    assert {p.stem for p in (CONF / "loss").glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_files_compose(name):
    cfg = _compose([f"+loss={name}", "+weights=market"])
    loss = to_loss_config(cfg.loss)
    assert _active(loss) == EXPECTED[name]
    assert loss.adversarial.enabled  # every row of the study has the GAN term
    off = _compose([f"+loss={name}", "loss.adversarial.enabled=false"])
    assert not to_loss_config(off.loss).adversarial.enabled


@pytest.mark.parametrize(
    "name, expected",
    [
        ("market", dict(adversarial=5, l1=10, perceptual=10, ssim=10, part_ssim=10)),
        ("deepfashion", dict(adversarial=5, l1=1, perceptual=1, ssim=1, part_ssim=1)),
        ("synthetic", dict(adversarial=5, l1=10, perceptual=10, ssim=10, part_ssim=10)),
    ],
)
def test_weight_files(name, expected):
    w = to_weights_config(_compose([f"+weights={name}"]).weights)
    for k, v in expected.items():
        assert getattr(w, k) == v
    assert w.style > 0 and w.perceptual_ssim > 0
    assert isinstance(w, WeightsConfig)


def test_paper_final_loss_has_no_l1():
    loss = to_loss_config(_compose(["+loss=part_ssim"]).loss)
    assert not loss.l1.enabled and loss.part_ssim.missing_parts == "faithful"


@pytest.mark.parametrize(
    "override, key",
    [
        ("loss.part_ssim.enabeld=true", "enabeld"),
        ("loss.part_sim.enabled=true", "part_sim"),
        ("weights.stlye=1", "stlye"),
        ("loss.ssim.win_size=seven", "win_size"),
    ],
)
def test_typo_in_override_fails_naming_the_key(override, key):
    with pytest.raises(ConfigCompositionException) as err:
        _compose(["+loss=part_ssim", "+weights=market", override])
    text = str(err.value) + str(err.value.__cause__)
    assert key in text


@pytest.mark.parametrize(
    "override, key",
    [
        ("+loss.part_ssim.enabeld=true", "enabeld"),
        ("+weights.stlye=1", "stlye"),
    ],
)
def test_forced_append_is_caught_when_the_loss_is_built(override, key):
    # Hydra's "+key=value" appends even into a structured config; the schema merge in
    # to_loss_config / to_weights_config (what GeneratorLoss calls) rejects the key.
    cfg = _compose(["+loss=part_ssim", "+weights=market", override])
    with pytest.raises(Exception, match=key):
        to_loss_config(cfg.loss)
        to_weights_config(cfg.weights)


def test_typo_in_a_file_fails_naming_the_key(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF / "loss", conf / "loss")
    (conf / "loss" / "typo.yaml").write_text(
        "defaults:\n  - schema\n  - _self_\n\nperceptual:\n  enabled: true\n  layer: [relu2_2]\n"
    )
    with pytest.raises(ConfigCompositionException) as err:
        _compose(["+loss=typo"], conf)
    assert "layer" in str(err.value) + str(err.value.__cause__)


def test_value_checks_name_the_key():
    cfg = OmegaConf.structured(LossConfig)
    cfg.part_ssim.missing_parts = "drop"
    with pytest.raises(ValueError, match="loss.part_ssim.missing_parts"):
        to_loss_config(cfg)
