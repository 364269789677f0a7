"""The fused SSIM kernels: compiled and eager agree, and both equal the textbook formulas."""

from __future__ import annotations

import pytest
import torch

from personpose.kernels import compile_mode
from personpose.kernels import ssim as kernels
from personpose.kernels.native import native_mode
from personpose.losses.part_ssim import part_ssim_terms
from personpose.losses.ssim import gaussian_taps, ssim, ssim_map
from personpose.metrics.ssim_variants import mask_ssim, ssim_patn
from tests.losses._reference import part_ssim_reference, ssim_map_reference


def _pair(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g, dtype=dtype)
    x = (y + 0.2 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    return x, y


def test_filter_valid_is_a_separable_valid_correlation():
    p = torch.rand(2, 3, 9, 8, dtype=torch.float64)
    taps = (0.2, 0.5, 0.3)
    w2d = torch.tensor(taps, dtype=torch.float64)
    k = torch.outer(w2d, w2d).expand(3, 1, 3, 3)
    expected = torch.nn.functional.conv2d(p, k, groups=3)
    assert torch.allclose(kernels.filter_valid(p, taps), expected, atol=1e-14)


def test_four_planes_give_the_five_plane_ssim():
    x, y = _pair((2, 3, 20, 17), dtype=torch.float64)
    assert torch.allclose(ssim_map(x, y), ssim_map_reference(x, y), atol=1e-12)
    masks = torch.rand(2, 11, 20, 17, dtype=torch.float64)
    value, _ = part_ssim_reference(x, y, masks)
    assert float(part_ssim_terms(x, y, masks).value) == pytest.approx(float(value), abs=1e-12)


def _grads(fn, x, y, *args):
    a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
    value = fn(a, b, *args)
    value.backward()
    return value.detach(), a.grad, b.grad


@pytest.mark.parametrize("shape", [(2, 3, 48, 40)])
def test_compiled_ssim_and_pssim_equal_eager(shape):
    """One moderately sized case per kernel: the compiled loops give the eager values (float32
    rounding apart) for the loss values, maps and both gradients."""
    from personpose.data.pose import part_masks

    x, y = _pair(shape)
    kp = torch.tensor([[[12.0 + 2 * j, 10.0 + (j % 5) * 5] for j in range(18)]] * shape[0])
    masks = part_masks(kp, shape[-2:])
    cases = {
        "ssim": lambda a, b: ssim(a, b),
        "ssim_map": lambda a, b: (ssim_map(a, b) * torch.linspace(0, 1, 42)[:, None]).mean(),
        "pssim": lambda a, b: part_ssim_terms(a, b, masks).value,
    }
    for name, fn in cases.items():
        with compile_mode("never"):
            ref = _grads(fn, x, y)
        with compile_mode("always"):
            out = _grads(fn, x, y)
        for r, o in zip(ref, out):
            scale = float(r.abs().max())
            assert torch.allclose(o, r, atol=2e-6 * max(scale, 1e-3)), name
    assert kernels.ssim_forward.failed is None and kernels.part_backward.failed is None


def test_compiled_metrics_equal_eager_in_float64():
    x, y = _pair((3, 3, 40, 32), seed=1, dtype=torch.float64)
    x, y = torch.round(x * 255) / 255, torch.round(y * 255) / 255
    kp = torch.tensor([[[5.0 + 2 * j, 6.0 + (j % 4) * 5] for j in range(18)]] * 3)
    with native_mode("never"):  # the torch kernels (the native ones: tests/kernels/test_native.py)
        with compile_mode("never"):
            ref = ssim_patn(x, y), mask_ssim(x, y, kp)
        with compile_mode("always"):
            out = ssim_patn(x, y), mask_ssim(x, y, kp)
    for r, o in zip(ref, out):
        assert torch.allclose(o, r, atol=1e-12)
    assert kernels.ssim_range_per_image.calls["compiled"] >= 2


def test_identical_images_score_one_compiled():
    x = torch.rand(2, 3, 64, 48)
    with compile_mode("always"):
        assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
        assert float(part_ssim_terms(x, x, torch.rand(2, 11, 64, 48)).value) == pytest.approx(
            1.0, abs=1e-6
        )


def test_taps_match_the_losses_window():
    assert len(gaussian_taps(7, 0.8)) == 7
