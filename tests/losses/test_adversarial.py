"""GAN objectives (exact values), the image pool (behaviour, exact resume) and PATN pairing."""

from __future__ import annotations

import math

import pytest
import torch

from personpose.losses.adversarial import GANObjective, ImagePool, PATNAdversarial

REAL = torch.tensor([[2.0, -1.0]])
FAKE = torch.tensor([[0.5, -3.0]])


def _bce(z: float, label: float) -> float:
    p = 1 / (1 + math.exp(-z))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def test_bce_exact():
    obj = GANObjective("bce")
    g = (_bce(0.5, 1) + _bce(-3.0, 1)) / 2
    d = 0.5 * ((_bce(2.0, 1) + _bce(-1.0, 1)) / 2 + (_bce(0.5, 0) + _bce(-3.0, 0)) / 2)
    assert obj.generator(FAKE).item() == pytest.approx(g, rel=1e-6)
    assert obj.discriminator(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)


def test_lsgan_exact():
    obj = GANObjective("lsgan")
    assert obj.generator(FAKE).item() == pytest.approx(((0.5 - 1) ** 2 + 16) / 2)
    d = 0.5 * ((1.0 + 4.0) / 2 + (0.25 + 9.0) / 2)
    assert obj.discriminator(REAL, FAKE).item() == pytest.approx(d)


def test_hinge_exact():
    obj = GANObjective("hinge")
    assert obj.generator(FAKE).item() == pytest.approx(1.25)
    # relu(1 - real) = [0, 2]; relu(1 + fake) = [1.5, 0]
    assert obj.discriminator(REAL, FAKE).item() == pytest.approx(0.5 * (1.0 + 0.75))


def test_multichannel_maps_and_several_discriminators():
    obj = GANObjective("lsgan")
    a = torch.zeros(2, 256, 4, 3)  # PATN: loss over the 256-channel map
    b = torch.ones(2, 1, 5, 5)
    assert obj.generator(a).item() == pytest.approx(1.0)
    assert obj.generator([a, b]).item() == pytest.approx(0.5)  # mean over discriminators


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        GANObjective("wgan")


def test_pool_size_zero_is_passthrough():
    pool = ImagePool(0)
    x = torch.rand(4, 3, 2, 2, requires_grad=True)
    out = pool.query(x)
    assert torch.equal(out, x.detach()) and not out.requires_grad and len(pool) == 0


def test_pool_fills_then_swaps_half():
    pool = ImagePool(4, seed=1)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as is
    assert len(pool) == 4
    swapped = 0
    for i in range(50):
        batch = torch.full((4, 1), 100.0 + i)
        out = pool.query(batch)
        swapped += int((out != batch).sum())
    assert 60 < swapped < 140  # about half of 200
    assert len(pool) == 4


def test_pool_state_dict_resumes_exactly():
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(3, 2, 2, 2, generator=g) for _ in range(12)]
    a = ImagePool(5, seed=3)
    for x in batches[:6]:
        a.query(x)
    state = a.state_dict()
    b = ImagePool(5, seed=999)
    b.load_state_dict(state)
    for x in batches[6:]:
        torch.testing.assert_close(a.query(x), b.query(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="size"):
        ImagePool(4).load_state_dict(state)


def test_pool_state_dict_survives_torch_save(tmp_path):
    a = ImagePool(2, seed=5)
    a.query(torch.rand(3, 1, 2, 2))
    torch.save(a.state_dict(), tmp_path / "pool.pt")
    b = ImagePool(2)
    b.load_state_dict(torch.load(tmp_path / "pool.pt", weights_only=True))
    x = torch.rand(4, 1, 2, 2)
    torch.testing.assert_close(a.query(x), b.query(x), rtol=0, atol=0)


def test_patn_pairing():
    seen = {}

    def d_shape(t):
        seen.setdefault("shape", []).append(t.shape[1])
        return t.mean(dim=1, keepdim=True)

    def d_app(t):
        seen.setdefault("app", []).append(t.shape[1])
        return torch.zeros(t.shape[0], 256, 2, 2)

    adv = PATNAdversarial("lsgan", pool_size=0)
    fake = torch.zeros(2, 3, 8, 8, requires_grad=True)
    pose = torch.zeros(2, 18, 8, 8)
    src = torch.zeros(2, 3, 8, 8)
    g = adv.generator_loss(d_shape, d_app, fake, pose, src)
    assert g.item() == pytest.approx(1.0)  # both D output 0: (1 + 1) / 2
    d = adv.discriminator_losses(d_shape, d_app, fake + 1, fake, pose, src)
    assert set(d) == {"shape", "appearance"}
    assert seen == {"shape": [21, 21, 21], "app": [6, 6, 6]}
    assert adv.state_dict()["pool_shape"]["size"] == 0
