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


def _recording_discriminators(seen: list, logits: dict[str, float]):
    """Discriminators that record (name, input channels) and return constant logits."""

    def make(name):
        def d(x):
            seen.append((name, x.shape[1]))
            return torch.full((x.shape[0], 256, 2, 2), logits[name]) + 0 * x.mean()

        return d

    return {name: make(name) for name in logits}


def _batch():
    return {
        "P1": torch.zeros(2, 3, 8, 8),
        "P2": torch.ones(2, 3, 8, 8),
        "BP2": torch.zeros(2, 18, 8, 8),
    }


def test_patn_adversarial_generator_term_and_pairing():
    seen = []
    discs = _recording_discriminators(seen, {"appearance": 0.0, "shape": 0.5})
    adv = PATNAdversarial("lsgan", pool_size=0, weight=5.0)
    fake = torch.zeros(2, 3, 8, 8, requires_grad=True)
    g = adv(fake, _batch(), discs)
    assert g.item() == pytest.approx((1.0 + 0.25) / 2)  # mean of the two Ds, unweighted
    assert seen == [("appearance", 6), ("shape", 21)]  # cat(img, P1), cat(img, BP2)
    assert adv.IN_CHANNELS == {"appearance": 6, "shape": 21}


def test_patn_adversarial_discriminator_loss_is_half_lambda_real_plus_fake():
    seen = []
    discs = _recording_discriminators(seen, {"appearance": 2.0, "shape": 0.5})
    adv = PATNAdversarial("lsgan", pool_size=0, weight=5.0)
    fake = torch.zeros(2, 3, 8, 8, requires_grad=True)
    loss = adv.discriminator_loss("appearance", discs["appearance"], _batch()["P2"], fake, _batch())
    # real and fake logits both 2: 5 * 0.5 * ((2 - 1)^2 + 2^2)
    assert loss.item() == pytest.approx(5 * 0.5 * (1.0 + 4.0))
    assert seen == [("appearance", 6), ("appearance", 6)]
    bce = PATNAdversarial("bce", weight=2.0)
    d = discs["shape"]
    expected = 2.0 * 0.5 * (_bce(0.5, 1) + _bce(0.5, 0))
    assert bce.discriminator_loss("shape", d, fake, fake, _batch()).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_patn_adversarial_pools_are_in_the_state_dict():
    adv = PATNAdversarial("bce", pool_size=2, seed=3)
    discs = _recording_discriminators([], {"appearance": 0.0, "shape": 0.0})
    for i in range(3):
        fake = torch.full((2, 3, 8, 8), float(i))
        for name in adv.ORDER:
            adv.discriminator_loss(name, discs[name], fake, fake, _batch())
    state = adv.state_dict()
    again = PATNAdversarial("bce", pool_size=2, seed=99)
    again.load_state_dict(state)
    x = torch.rand(2, 21, 8, 8)
    torch.testing.assert_close(again.pools["shape"].query(x), adv.pools["shape"].query(x))
    assert len(again.pools["appearance"]) == 2
