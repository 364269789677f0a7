"""XingGAN generator: sizes, crossing-block attention, the 21-map blend, shapes (docs/models.md)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from personpose.models.discriminator import PATNDiscriminator
from personpose.models.xinggan import CrossingBlock, XingGANGenerator
from tests.models.conftest import build, generator_inputs, load_model_conf, n_params


def _set_gammas(g: nn.Module, value: float) -> None:
    with torch.no_grad():
        for block in g.blocks:
            block.gamma.fill_(value)


@pytest.mark.parametrize(
    ("norm", "g_count", "d_counts"),
    [
        ("batch", 44_853_189, (3_977_408, 3_930_368)),  # Market
        ("instance", 44_844_634, (3_975_424, 3_928_384)),  # DeepFashion, no affine
    ],
)
def test_paper_size_parameter_counts(norm, g_count, d_counts):
    cfg = load_model_conf("xinggan")
    cfg.norm = norm
    with torch.device("meta"):  # shapes only: no memory, no init cost
        g = instantiate(cfg.generator)
        d_shape = instantiate(cfg.discriminator, in_channels=21)
        d_app = instantiate(cfg.discriminator, in_channels=6)
    assert isinstance(g, XingGANGenerator) and isinstance(d_shape, PATNDiscriminator)
    assert (n_params(g), n_params(d_shape), n_params(d_app)) == (g_count, *d_counts)


def test_small_preset_parameter_counts():
    g, d_shape, d_app = build("xinggan_small")  # the sizes conf/model/xinggan_small.yaml states
    assert (n_params(g), n_params(d_shape), n_params(d_app)) == (1_363_600, 113_712, 101_952)
    assert (len(g.blocks), g.blocks[0].query.out_channels) == (4, 8)


def test_paper_size_layout():
    with torch.device("meta"):
        g = instantiate(load_model_conf("xinggan").generator)
    assert len(g.blocks) == 9 and g.pose_encoder[1].in_channels == 36
    b0, b1 = g.blocks[0], g.blocks[1]
    convs = [
        [(c.in_channels, c.out_channels) for c in s if isinstance(c, nn.Conv2d)]
        for s in (b0.pose_stream, b1.pose_stream, b1.image_stream)
    ]
    assert convs == [[(256, 256), (256, 256)], [(512, 512), (512, 256)], [(256, 256)] * 2]
    assert isinstance(b1.pose_stream[-1], nn.Conv2d)  # no norm, no activation
    assert isinstance(b1.image_stream[-1], nn.BatchNorm2d)  # no final ReLU
    assert [(m.in_channels, m.out_channels) for m in (b1.query, b1.key, b1.value)] == [
        (256, 32),
        (256, 32),
        (256, 256),
    ]
    assert b1.gamma.numel() == 1
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 18
    head = [m for m in g.map_head if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in head] == [
        (768, 256, (3, 3)),
        (256, 128, (3, 3)),
        (128, 21, (1, 1)),
    ]
    assert (g.pose_decoder[0].in_channels, g.pose_decoder[0].kernel_size) == (512, (1, 1))
    assert g.image_decoder[-2].out_channels == g.pose_decoder[-2].out_channels == 30


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_conv_biases_follow_the_norm_except_heads_and_attention(norm):
    g = XingGANGenerator(ngf=8, n_blocks=2, norm=norm, init="default")
    always = {id(g.image_decoder[-2]), id(g.pose_decoder[-2])}
    always |= {id(m) for b in g.blocks for m in (b.query, b.key, b.value)}
    for name, m in g.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            assert (m.bias is not None) == (norm == "instance" or id(m) in always), name
    if norm == "instance":
        norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
        assert norms and all(m.weight is None and m.running_mean is None for m in norms)


def test_zero_gamma_attention_contributes_nothing():
    torch.manual_seed(0)
    block = CrossingBlock(16, pose_in_channels=32).eval()
    assert (block.gamma == 0).all()  # its initial value
    img, pose = torch.randn(2, 16, 8, 4), torch.randn(2, 32, 8, 4)
    new_img, new_pose = block(img, pose)
    img_h, pose_h = block.image_stream(img), block.pose_stream(pose)  # no input residual
    torch.testing.assert_close(new_img, img_h, rtol=0, atol=0)
    torch.testing.assert_close(new_pose, torch.cat((img_h, pose_h), 1), rtol=0, atol=0)
    # the whole generator: q/k/v weights do not matter while every gamma is 0 (train mode:
    # batch statistics, so that feature changes are not shrunk by fresh running statistics)
    g = XingGANGenerator(ngf=8, n_blocks=2).train()
    P1, BP1, BP2 = generator_inputs(1, 32, 16)
    with torch.no_grad():
        ref = g(P1, BP1, BP2)
        for b in g.blocks:
            for conv in (b.query, b.key, b.value):
                conv.weight.normal_()
        torch.testing.assert_close(g(P1, BP1, BP2), ref, rtol=0, atol=0)
        _set_gammas(g, 0.5)
        assert (g(P1, BP1, BP2) - ref).abs().max() > 1e-3


def _direct_attention(block: CrossingBlock, h: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """energy = Q^T K (no scaling), A = softmax over key positions, out = V A^T."""
    n, c, height, width = h.shape

    def conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:  # (N, C', HW)
        w = conv.weight.flatten(1)
        return torch.einsum("oc,ncp->nop", w, x.flatten(2)) + conv.bias[None, :, None]

    q, k, v = conv1x1(block.query, h), conv1x1(block.key, other), conv1x1(block.value, h)
    energy = q.transpose(1, 2) @ k  # (N, HW queries, HW keys)
    attention = torch.softmax(energy, dim=-1)
    return (v @ attention.transpose(1, 2)).view(n, c, height, width)


def test_crossing_block_attention_is_the_direct_computation():
    torch.manual_seed(0)
    block = CrossingBlock(16, pose_in_channels=32).eval()
    with torch.no_grad():
        block.gamma.fill_(0.7)
        for conv in (block.query, block.key):
            conv.weight.normal_(0, 0.3)  # peaked attention: the scaling would show
    img, pose = torch.randn(2, 16, 8, 4), torch.randn(2, 32, 8, 4)
    with torch.no_grad():
        new_img, new_pose = block(img, pose)
        img_h, pose_h = block.image_stream(img), block.pose_stream(pose)
        img_ref = img_h + 0.7 * _direct_attention(block, img_h, pose_h)  # keys from the pose
        pose_ref = pose_h + 0.7 * _direct_attention(block, pose_h, img_h)  # keys from the image
    torch.testing.assert_close(new_img, img_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(new_pose, torch.cat((img_ref, pose_ref), 1), rtol=1e-5, atol=1e-5)


def test_sdpa_matches_the_explicit_softmax_at_the_deepfashion_bottleneck():
    """scaled_dot_product_attention(scale=1) = softmax(Q^T K) V to 1e-5 at 64 x 44 (2,816
    positions, 256 channels), forward and gradients."""
    torch.manual_seed(0)
    block = CrossingBlock(256, pose_in_channels=256)
    with torch.no_grad():
        for conv in (block.query, block.key):
            conv.weight.normal_(0, 0.01)  # energies with std ~1.6, peaks up to ~10
    h = torch.randn(1, 256, 64, 44, requires_grad=True)
    other = torch.randn(1, 256, 64, 44)
    fast = block.attend(h, other)
    direct = _direct_attention(block, h, other)
    torch.testing.assert_close(fast, direct, rtol=0, atol=1e-5)
    grad = torch.randn_like(fast)
    g_fast = torch.autograd.grad(fast, (h, block.query.weight), grad)
    g_direct = torch.autograd.grad(direct, (h, block.query.weight), grad)
    for a, b in zip(g_fast, g_direct):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _capture_maps(g: XingGANGenerator, store: list, replace: torch.Tensor | None = None):
    def hook(module, inputs, output):
        store.append(output)
        return replace.expand_as(output) if replace is not None else None

    return g.maps.register_forward_hook(hook)


def test_the_21_maps_sum_to_one_at_every_pixel():
    torch.manual_seed(0)
    g = XingGANGenerator(ngf=8, n_blocks=2).eval()
    maps: list = []
    handle = _capture_maps(g, maps)
    with torch.no_grad():
        out = g(*generator_inputs(2, 32, 16))
    handle.remove()
    assert maps[0].shape == (2, 21, 32, 16) and (maps[0] >= 0).all()
    torch.testing.assert_close(maps[0].sum(1), torch.ones(2, 32, 16))
    assert out.min() >= -1 and out.max() <= 1  # a convex blend of tanh images and P1


def test_under_bf16_autocast_the_blend_stays_float32_and_convex():
    """The maps and the blend are computed in float32 under autocast: maps sum to 1 (in bf16
    they would only to ~4e-3) and the output stays in [-1, 1]."""
    torch.manual_seed(0)
    g = XingGANGenerator(ngf=8, n_blocks=2).eval()
    maps: list = []
    handle = _capture_maps(g, maps)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(*generator_inputs(2, 32, 16))
    handle.remove()
    assert maps[0].dtype == out.dtype == torch.float32
    torch.testing.assert_close(maps[0].sum(1), torch.ones(2, 32, 16), rtol=0, atol=1e-6)
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6


def test_map_20_at_one_returns_the_source_image():
    torch.manual_seed(0)
    g = XingGANGenerator(ngf=8, n_blocks=2).eval()
    one_hot = torch.zeros(1, 21, 1, 1)
    one_hot[0, 20] = 1
    handle = _capture_maps(g, [], replace=one_hot)
    P1, BP1, BP2 = generator_inputs(2, 32, 16)
    with torch.no_grad():
        out = g(P1, BP1, BP2)
    handle.remove()
    torch.testing.assert_close(out, P1, rtol=0, atol=0)
    # and map 0 at one returns the image stream's first candidate
    one_hot = torch.zeros(1, 21, 1, 1)
    one_hot[0, 0] = 1
    store: list = []
    handle = g.image_decoder.register_forward_hook(lambda m, i, o: store.append(o))
    handle_maps = _capture_maps(g, [], replace=one_hot)
    with torch.no_grad():
        out = g(P1, BP1, BP2)
    handle.remove()
    handle_maps.remove()
    torch.testing.assert_close(out, store[0][:, :3], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("n", "size", "norm"), [(2, (128, 64), "batch"), (1, (256, 176), "instance")]
)
def test_small_preset_shapes(n, size, norm):
    g, _, _ = build("xinggan_small", norm=norm)
    assert isinstance(g, XingGANGenerator)
    out = g(*generator_inputs(n, *size))
    assert out.shape == (n, 3, *size) and out.min() >= -1 and out.max() <= 1
    out.mean().backward()
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "size", "norm"), [(2, (128, 64), "batch"), (1, (256, 176), "instance")]
)
def test_paper_size_shapes(n, size, norm):
    g, _, _ = build("xinggan", norm=norm)
    with torch.no_grad():
        out = g.train()(*generator_inputs(n, *size))
    assert out.shape == (n, 3, *size) and out.min() >= -1 and out.max() <= 1


def test_too_narrow_blocks_are_an_error():
    with pytest.raises(ValueError, match="channels=4; need >= 8"):
        XingGANGenerator(ngf=1, n_blocks=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_down": 0}, "XingGANGenerator: need .* n_down >= 1; got .*n_down=0"),
        ({"n_blocks": 0}, "XingGANGenerator: need n_blocks >= 1"),
        ({"n_candidates": 0}, "XingGANGenerator: need n_candidates >= 1; got 0"),
    ],
)
def test_bad_sizes_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        XingGANGenerator(**{"ngf": 8, "n_blocks": 1, **kwargs})


def test_bad_inputs_name_the_generator():
    g = XingGANGenerator(ngf=8, n_blocks=1)
    with pytest.raises(ValueError, match="XingGANGenerator.forward: BP2"):
        g(torch.zeros(1, 3, 32, 16), torch.zeros(1, 18, 32, 16), torch.zeros(1, 17, 32, 16))
