"""PATN generator: sizes, shapes, ranges, attention gating, norms, precision, round trips."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from personpose.models import PATBlock, PATNGenerator, init_weights
from tests.models.conftest import build, generator_inputs, n_params


def test_paper_size_generator_has_41_4_M_parameters():
    g, _, _ = build("patn")
    assert n_params(g) == 41_365_763
    assert abs(n_params(g) - 41.4e6) < 0.05e6


def test_block_channel_counts_follow_patn():
    g, _, _ = build("patn")
    assert len(g.blocks) == 9
    convs0 = [m for m in g.blocks[0].pose_stream if isinstance(m, nn.Conv2d)]
    convs1 = [m for m in g.blocks[1].pose_stream if isinstance(m, nn.Conv2d)]
    # first block: 256 -> 256 -> 256; later blocks take cat(pose_out, img): 512 -> 512 -> 256
    assert [(c.in_channels, c.out_channels) for c in convs0] == [(256, 256), (256, 256)]
    assert [(c.in_channels, c.out_channels) for c in convs1] == [(512, 512), (512, 256)]
    # the pose stream ends with a conv (no norm), the image stream with a norm
    assert isinstance(g.blocks[1].pose_stream[-1], nn.Conv2d)
    assert isinstance(g.blocks[1].image_stream[-1], nn.BatchNorm2d)
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 18  # dropout on (PATN default)
    assert g.pose_encoder[1].in_channels == 36
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in g.modules()) == 2 + 9 * 4 + 1


def test_instance_norm_has_no_affine_parameters_and_uses_biases():
    g = PATNGenerator(norm="instance", init="default")
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(m.weight is None and m.running_mean is None for m in norms)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert all(m.bias is not None for m in g.modules() if isinstance(m, nn.Conv2d))
    assert n_params(g) == 41_358_019


def test_batch_norm_convs_have_no_bias_except_output():
    g = PATNGenerator(ngf=8, n_blocks=2)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [m.bias is not None for m in convs] == [False] * (len(convs) - 1) + [True]


@pytest.mark.parametrize("size", [(128, 64), (256, 176)])
def test_output_shape_and_range_tiny(tiny, size):
    g, _, _ = tiny
    P1, BP1, BP2 = generator_inputs(2, *size)
    out = g(P1, BP1, BP2)
    assert out.shape == (2, 3, *size)
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0.1


def test_output_shape_and_range_paper_size():
    g, _, _ = build("patn")
    with torch.no_grad():  # train mode: batch statistics (fresh running stats shrink outputs)
        out = g.train()(*generator_inputs(1, 128, 64))
    assert out.shape == (1, 3, 128, 64)
    assert out.min() >= -1 and out.max() <= 1 and out.std() > 0.1


def _force(value: float):
    def hook(module, inputs, output):
        return torch.full_like(output, value)

    return hook


def test_attention_gates_the_image_stream():
    torch.manual_seed(0)
    block = PATBlock(16, pose_in_channels=16).eval()
    img, pose = torch.randn(2, 16, 8, 4), torch.randn(2, 16, 8, 4)
    handle = block.pose_stream.register_forward_hook(_force(-1e4))  # att = sigmoid(-1e4) = 0
    new_img, new_pose = block(img, pose)
    torch.testing.assert_close(new_img, img, rtol=0, atol=0)
    assert new_pose.shape == (2, 32, 8, 4)
    torch.testing.assert_close(new_pose[:, 16:], new_img)
    assert (new_pose[:, :16] == -1e4).all()
    handle.remove()
    handle = block.pose_stream.register_forward_hook(_force(1e4))  # att = 1
    new_img, _ = block(img, pose)
    torch.testing.assert_close(new_img, img + block.image_stream(img))
    handle.remove()
    new_img, _ = block(img, pose)  # in between, gated element-wise by sigmoid(pose_out)
    att = torch.sigmoid(block.pose_stream(pose))
    torch.testing.assert_close(new_img, img + block.image_stream(img) * att)


def test_closed_attention_cuts_the_pose_out_of_the_generator():
    torch.manual_seed(0)
    g = PATNGenerator(ngf=8, n_blocks=2, norm="instance").eval()
    P1, BP1, BP2 = generator_inputs(1, 32, 16)
    other = torch.rand_like(BP2)
    with torch.no_grad():
        assert (g(P1, BP1, BP2) - g(P1, BP1, other)).abs().max() > 1e-3
        handles = [b.pose_stream.register_forward_hook(_force(-1e4)) for b in g.blocks]
        torch.testing.assert_close(g(P1, BP1, BP2), g(P1, BP1, other), rtol=0, atol=0)
    for h in handles:
        h.remove()


def test_init_weights_draws_every_weight():
    g = PATNGenerator(ngf=8, n_blocks=2, init="default")
    before = {k: v.clone() for k, v in g.state_dict().items()}
    init_weights(g)
    # what init_weights sets: every weight (conv biases keep the construction's default init)
    for k, v in g.state_dict().items():
        if k.endswith("weight"):
            assert not torch.equal(v, before[k]), k


def test_init_is_deterministic_given_manual_seed():
    torch.manual_seed(7)
    a = PATNGenerator(ngf=8, n_blocks=1)
    torch.manual_seed(7)
    b = PATNGenerator(ngf=8, n_blocks=1)
    for va, vb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(va, vb)


def test_init_statistics_follow_patn():
    torch.manual_seed(0)
    g = init_weights(PATNGenerator(ngf=16, n_blocks=2, init="default"))
    big = g.blocks[1].pose_stream[1].weight  # 128 x 128 x 3 x 3
    assert abs(big.mean().item()) < 1e-3 and abs(big.std().item() - 0.02) < 5e-4
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight.detach() for m in bns])
    assert abs(scales.mean().item() - 1) < 3e-3 and abs(scales.std().item() - 0.02) < 3e-3
    assert all((m.bias == 0).all() for m in bns)
    # conv biases stay at PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as in PATN
    out_conv = g.decoder[-2]
    bound = 1 / (out_conv.weight[0].numel() ** 0.5)
    assert isinstance(out_conv, nn.Conv2d) and (out_conv.bias != 0).all()
    assert out_conv.bias.abs().max() <= bound


def test_instance_norm_conv_biases_keep_pytorch_default():
    torch.manual_seed(0)
    g = PATNGenerator(ngf=16, n_blocks=2, norm="instance")
    conv = g.blocks[1].pose_stream[1]  # 128 -> 128, 3x3, with bias under instance norm
    bound = 1 / (conv.weight[0].numel() ** 0.5)
    assert conv.bias is not None and (conv.bias != 0).all()
    assert conv.bias.abs().max() <= bound
    assert abs(conv.bias.std().item() - bound / 3**0.5) < 0.25 * bound / 3**0.5


def test_unknown_init_is_named():
    with pytest.raises(ValueError, match=r"init='xavier'.*\('normal', 'default'\)"):
        PATNGenerator(ngf=8, n_blocks=1, init="xavier")


def test_state_dict_round_trip():
    torch.manual_seed(0)
    g = PATNGenerator(ngf=8, n_blocks=2)
    P1, BP1, BP2 = generator_inputs(2, 32, 16)
    g.train()(P1, BP1, BP2)  # update the batch-norm running statistics
    buf = io.BytesIO()
    torch.save(g.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1)
    h = PATNGenerator(ngf=8, n_blocks=2)
    h.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(h.eval()(P1, BP1, BP2), g.eval()(P1, BP1, BP2), rtol=0, atol=0)


def test_bf16_autocast_on_cpu_runs_forward_and_backward(tiny):
    g, d_shape, _ = tiny
    P1, BP1, BP2 = generator_inputs(2, 32, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(P1, BP1, BP2)
        logits = d_shape(torch.cat((out, BP2), 1))
    assert out.dtype == torch.bfloat16 and logits.dtype == torch.bfloat16
    (out.float().mean() + logits.float().mean()).backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_channels_last_matches_contiguous(norm):
    torch.manual_seed(0)
    g = PATNGenerator(ngf=8, n_blocks=2, norm=norm)
    P1, BP1, BP2 = generator_inputs(2, 32, 16)
    ref = g(P1, BP1, BP2)
    g_cl = g.to(memory_format=torch.channels_last)
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (P1, BP1, BP2)]
    out = g_cl(*cl)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    out.mean().backward()


def test_padding_options_change_only_the_padding():
    torch.manual_seed(0)
    zero = PATNGenerator(ngf=8, n_blocks=1, padding="zero")
    assert not any(isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d)) for m in zero.modules())
    assert n_params(zero) == n_params(PATNGenerator(ngf=8, n_blocks=1))
    assert zero(*generator_inputs(1, 16, 8)).shape == (1, 3, 16, 8)


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((1, 3, 32, 16), (1, 17, 32, 16), (1, 18, 32, 16)), "BP1"),
        (((1, 3, 32, 16), (1, 18, 32, 16), (1, 18, 32, 8)), "BP2"),
        (((1, 3, 30, 16), (1, 18, 30, 16), (1, 18, 30, 16)), "divisible by 4"),
    ],
)
def test_bad_inputs_are_named(shapes, match):
    g = PATNGenerator(ngf=8, n_blocks=1)
    with pytest.raises(ValueError, match=match):
        g(*(torch.zeros(s) for s in shapes))


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="PATNGenerator: need .* ngf >= 1.*ngf=0"):
        PATNGenerator(ngf=0, n_blocks=1)


def test_bad_norm_is_named():
    with pytest.raises(ValueError, match="norm='group'"):
        PATNGenerator(ngf=8, n_blocks=1, norm="group")
