"""conf/model/*.yaml: every preset instantiates; `norm` reaches G and both Ds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from personpose.models import PATNDiscriminator, PATNGenerator
from tests.models.conftest import MODEL_CONF, build, n_params


def test_every_model_config_is_tested():
    # the XingGAN presets are tested in test_xinggan.py
    assert sorted(p.stem for p in MODEL_CONF.glob("*.yaml")) == [
        "patn",
        "patn_small",
        "patn_tiny",
        "xinggan",
        "xinggan_small",
    ]


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("patn", (41_365_763, 3_977_408, 3_930_368)),
        ("patn_small", (3_295_363, 113_712, 101_952)),
        ("patn_tiny", (71_075, 32_664, 26_784)),
    ],
)
def test_presets_build_with_documented_sizes(name, counts):
    g, d_shape, d_app = build(name)
    assert isinstance(g, PATNGenerator) and isinstance(d_shape, PATNDiscriminator)
    assert (n_params(g), n_params(d_shape), n_params(d_app)) == counts


@pytest.mark.parametrize("name", ["patn_small", "patn_tiny", "xinggan_small"])
def test_model_norm_override_reaches_every_network(name):
    nets = build(name, norm="instance")
    for net in nets:
        assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


def test_head_override():
    _, d_shape, _ = build("patn_tiny", **{"discriminator.head": "1ch"})
    assert d_shape(torch.zeros(1, 21, 16, 8)).shape == (1, 1, 4, 2)
