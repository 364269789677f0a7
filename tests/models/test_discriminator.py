"""PATN discriminators: sizes, heads, norms, shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from personpose.models import PATNDiscriminator
from tests.models.conftest import build, load_model_conf, n_params


def test_paper_size_discriminator_parameter_counts():
    _, d_shape, d_app = build("patn")
    assert n_params(d_shape) == 3_977_408
    assert n_params(d_app) == 3_930_368
    assert abs(n_params(d_shape) - 3.98e6) < 0.01e6
    assert abs(n_params(d_app) - 3.93e6) < 0.01e6
    assert sum(isinstance(m, nn.Dropout) for m in d_shape.modules()) == 3


@pytest.mark.parametrize(("in_ch", "size"), [(21, (128, 64)), (6, (256, 176))])
def test_faithful_head_outputs_the_256_channel_map(in_ch, size):
    d = PATNDiscriminator(in_ch).eval()
    with torch.no_grad():
        out = d(torch.randn(1, in_ch, *size))
    assert out.shape == (1, 256, size[0] // 4, size[1] // 4)


def test_1ch_head():
    faithful = PATNDiscriminator(6, ndf=8, n_blocks=1)
    d = PATNDiscriminator(6, ndf=8, n_blocks=1, head="1ch")
    assert d(torch.randn(2, 6, 32, 16)).shape == (2, 1, 8, 4)
    assert d.out_channels == 1 and faithful.out_channels == 32
    assert n_params(d) - n_params(faithful) == 32 * 9 + 1


def test_instance_norm_discriminator_has_no_affine_parameters():
    d = PATNDiscriminator(21, norm="instance")
    norms = [m for m in d.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 3 * 2 and all(m.weight is None for m in norms)
    assert n_params(d) == 3_975_424


def test_residual_blocks_are_residual():
    torch.manual_seed(0)
    d = PATNDiscriminator(6, ndf=8, n_blocks=1).eval()
    block = d.model[1]
    x = torch.randn(1, 32, 8, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + block.body(x))
        nn.init.zeros_(block.body[-2].weight)  # last conv -> 0, then eval BN -> its shift
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)
        block.body[-1].bias.fill_(0.5)
        torch.testing.assert_close(block(x), x + 0.5)


def test_bad_input_and_head_are_named():
    d = PATNDiscriminator(21, ndf=8, n_blocks=1)
    with pytest.raises(ValueError, match=r"\(N, 21, H, W\)"):
        d(torch.zeros(1, 6, 16, 8))
    with pytest.raises(ValueError, match="head='linear'"):
        PATNDiscriminator(21, head="linear")


def _big_conv(d: PATNDiscriminator) -> nn.Conv2d:
    return d.model[1].body[1]  # a residual block's first 3x3 conv at 4 * ndf channels


def test_default_init_is_pytorchs_as_in_the_study():
    """The study's code never initialises its discriminators: PyTorch's kaiming-uniform
    (a = sqrt(5)) weights, std 1 / sqrt(3 fan_in), not PATN's N(0, 0.02)."""
    torch.manual_seed(0)
    conv = _big_conv(PATNDiscriminator(21, ndf=8, n_blocks=1))  # 32 -> 32, 3x3
    fan_in = conv.weight[0].numel()
    std = conv.weight.std().item()  # 0.034 for fan_in 288
    assert abs(std - 1 / (3 * fan_in) ** 0.5) < 1e-3 and abs(std - 0.02) > 1e-2
    assert conv.weight.abs().max() <= 1 / fan_in**0.5


def test_normal_init_is_patns():
    torch.manual_seed(0)
    d = PATNDiscriminator(21, ndf=32, n_blocks=1, norm="instance", init="normal")
    conv = _big_conv(d)
    assert abs(conv.weight.std().item() - 0.02) < 5e-4
    bound = 1 / conv.weight[0].numel() ** 0.5  # biases (instance norm) keep PyTorch's default
    assert (conv.bias != 0).all() and conv.bias.abs().max() <= bound


def test_model_configs_default_to_the_studys_init():
    for name in ("patn", "patn_small", "patn_tiny"):
        cfg = load_model_conf(name)
        assert cfg.generator.init == "normal" and cfg.discriminator.init == "default", name
