"""PSSIM: closed forms, missing parts, edge cases (finite values and gradients), reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personpose.losses.part_ssim import PartSSIMLoss, part_ssim, part_ssim_terms
from personpose.losses.ssim import ssim_per_sample
from tests.losses._reference import part_ssim_reference

C1, C2 = 0.01**2, 0.03**2


def _images(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype)
    y = (x + 0.2 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    return x, y


def _masks(n, h, w, seed=0, missing=(), dtype=torch.float64):
    """Soft random part masks (N, 11, H, W), background = 1 - max(parts)."""
    g = torch.Generator().manual_seed(seed)
    parts = torch.rand(n, 10, h, w, generator=g, dtype=dtype) ** 4
    for i, k in missing:
        parts[i, k] = 0
    return torch.cat([1 - parts.amax(1, keepdim=True), parts], dim=1)


def test_closed_form_linear_map_on_constant_mask():
    # y = a x + b, part 1 has a constant mask: global statistics, SSIM in closed form
    a, b = 0.8, 0.1
    g = torch.Generator().manual_seed(1)
    x = 0.2 + 0.4 * torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64)
    y = a * x + b
    masks = torch.zeros(1, 11, 16, 16, dtype=torch.float64)
    masks[:, 1] = 0.5
    masks[:, 0] = 0.5
    r = part_ssim_terms(x, y, masks)
    mu = x.mean((2, 3))[0]
    var = (x * x).mean((2, 3))[0] - mu**2
    s = (
        (2 * mu * (a * mu + b) + C1)
        / (mu**2 + (a * mu + b) ** 2 + C1)
        * (2 * a * var + C2)
        / ((1 + a * a) * var + C2)
    )
    assert r.per_part[0, 0].item() == pytest.approx(s.mean().item(), abs=1e-7)
    # the 9 missing parts count as 1 (faithful)
    torch.testing.assert_close(r.per_part[0, 1:], torch.ones(9, dtype=torch.float64))
    assert r.foreground.item() == pytest.approx((s.mean().item() + 9) / 10, abs=1e-7)
    b_expected = ssim_per_sample(0.5 * x, 0.5 * y).item()
    assert r.background.item() == pytest.approx(b_expected, abs=1e-12)
    assert r.value.item() == pytest.approx((r.foreground.item() + b_expected) / 2, abs=1e-12)


def test_exclude_mode_drops_missing_parts():
    x, y = _images((2, 3, 24, 16), seed=2)
    masks = _masks(2, 24, 16, seed=2, missing=[(1, 0), (1, 4), (1, 6)])
    f = part_ssim_terms(x, y, masks, missing_parts="faithful")
    e = part_ssim_terms(x, y, masks, missing_parts="exclude")
    torch.testing.assert_close(e.per_part, f.per_part)
    assert e.present.sum().item() == 17
    present = f.per_part[1][f.present[1]]
    assert e.foreground[1].item() == pytest.approx(present.mean().item(), abs=1e-12)
    assert e.foreground[0].item() == pytest.approx(f.foreground[0].item(), abs=1e-12)
    assert e.value.item() == pytest.approx(((e.foreground + e.background) / 2).mean().item())
    assert e.value.item() < f.value.item()  # the missing parts' 1s no longer inflate it


def test_all_missing_keypoints():
    x, y = _images((2, 3, 16, 16), seed=3)
    x.requires_grad_(True)
    masks = torch.zeros(2, 11, 16, 16, dtype=torch.float64)
    masks[:, 0] = 1.0  # background = 1 - max(no parts) = 1
    f = part_ssim_terms(x, y, masks)
    torch.testing.assert_close(f.per_part, torch.ones(2, 10, dtype=torch.float64))
    b = ssim_per_sample(x, y)
    torch.testing.assert_close(f.per_sample, (1 + b) / 2)
    e = part_ssim_terms(x, y, masks, missing_parts="exclude")
    torch.testing.assert_close(e.per_sample, b)
    for r in (f, e):
        (g,) = torch.autograd.grad(r.value, x)
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("missing_parts", ["faithful", "exclude"])
@pytest.mark.parametrize("case", ["constant_images", "empty_masks", "zero_images", "all_zero"])
def test_finite_value_and_gradient(case, missing_parts):
    x, y = _images((2, 3, 16, 12), seed=4, dtype=torch.float32)
    masks = _masks(2, 16, 12, seed=4, dtype=torch.float32)
    if case in ("constant_images", "all_zero"):
        x, y = torch.full_like(x, 0.3), torch.full_like(y, 0.3 if case == "all_zero" else 0.9)
    if case in ("empty_masks", "all_zero"):
        masks = torch.zeros_like(masks)
    if case == "zero_images":
        x, y = torch.zeros_like(x), torch.zeros_like(y)
    x.requires_grad_(True)
    y.requires_grad_(True)
    v = part_ssim(x, y, masks, missing_parts=missing_parts)
    gx, gy = torch.autograd.grad(v, (x, y))
    assert torch.isfinite(v)
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all()


@pytest.mark.parametrize("missing_parts", ["faithful", "exclude"])
def test_identical_inputs_give_one_and_symmetry(missing_parts):
    x, y = _images((2, 3, 20, 14), seed=5, dtype=torch.float32)
    masks = _masks(2, 20, 14, seed=5, missing=[(0, 3)], dtype=torch.float32)
    assert part_ssim(x, x, masks, missing_parts=missing_parts).item() == pytest.approx(
        1.0, abs=1e-6
    )
    assert part_ssim(x, y, masks, missing_parts=missing_parts).item() == pytest.approx(
        part_ssim(y, x, masks, missing_parts=missing_parts).item(), abs=1e-6
    )


def test_matches_per_part_reference_value_and_gradient():
    x, y = _images((2, 3, 28, 20), seed=6)
    masks = _masks(2, 28, 20, seed=6, missing=[(0, 2)])
    x.requires_grad_(True)
    r = part_ssim_terms(x, y, masks)
    ref, ref_parts = part_ssim_reference(x, y, masks)
    torch.testing.assert_close(r.per_part, ref_parts, atol=1e-12, rtol=0)
    assert r.value.item() == pytest.approx(ref.item(), abs=1e-12)
    (g,) = torch.autograd.grad(r.value, x)
    (gr,) = torch.autograd.grad(ref, x)
    torch.testing.assert_close(g, gr, atol=1e-12, rtol=1e-8)


def test_gradcheck_every_term():
    x, y = _images((2, 2, 6, 5), seed=7)
    x.requires_grad_(True)
    y.requires_grad_(True)
    masks = _masks(2, 6, 5, seed=7, missing=[(1, 1)])[:, :4]

    def fn(a, b):
        r = part_ssim_terms(a, b, masks, win_size=3, win_sigma=0.7, check_range=False)
        return r.per_part, r.background

    assert torch.autograd.gradcheck(fn, (x, y), fast_mode=True)


def test_gradcheck_whole_pssim():
    x, y = _images((1, 2, 7, 6), seed=8)
    x.requires_grad_(True)
    masks = _masks(1, 7, 6, seed=8)
    assert torch.autograd.gradcheck(
        lambda a: part_ssim(a, y, masks, win_size=3, win_sigma=0.7), (x,), fast_mode=True
    )


def test_golden_masks_exclude_mode(golden_dir):
    d = np.load(golden_dir / "pair_128x64.npz")
    x, y = ((torch.tensor(d[k]) + 1) / 2 for k in ("X", "Y"))
    m = torch.tensor(d["part_mask"])
    e = part_ssim_terms(x, y, m, missing_parts="exclude")
    per_part = d["part_ssim_per_part"]
    present = per_part[1] != 1.0
    assert e.foreground[1].item() == pytest.approx(per_part[1][present].mean(), abs=1e-5)


def test_loss_module_and_validation():
    x, y = _images((2, 3, 16, 16), seed=9, dtype=torch.float32)
    masks = _masks(2, 16, 16, seed=9, dtype=torch.float32)
    loss = PartSSIMLoss()(2 * x - 1, 2 * y - 1, masks)
    assert loss.item() == pytest.approx(1 - part_ssim(x, y, masks).item(), abs=1e-6)
    with pytest.raises(ValueError, match="do not match images"):
        part_ssim(x, y, masks[:, :, :8])
    with pytest.raises(ValueError, match="missing_parts"):
        part_ssim(x, y, masks, missing_parts="drop")
    with pytest.raises(ValueError, match=r"\[0, data_range"):
        part_ssim(2 * x - 1, y, masks)
    with pytest.raises(ValueError, match="missing_parts"):
        PartSSIMLoss(missing_parts="nope")


def test_channels_last_inputs():
    x, y = _images((2, 3, 20, 18), seed=13, dtype=torch.float32)
    masks = _masks(2, 20, 18, seed=13, dtype=torch.float32)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    xn = x.clone().requires_grad_(True)
    a = part_ssim(xc, y.contiguous(memory_format=torch.channels_last), masks)
    b = part_ssim(xn, y, masks)
    (a + b).backward()
    assert a.item() == pytest.approx(b.item(), abs=1e-6)
    torch.testing.assert_close(xc.grad, xn.grad)
