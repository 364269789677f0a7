"""SSIM: agreement with scikit-image and pytorch-msssim, closed forms, gradients, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from personpose.losses.part_ssim import PartSSIMLoss
from personpose.losses.ssim import SSIMLoss, gaussian_taps, ssim, ssim_map, ssim_per_sample
from tests.losses._reference import ssim_map_reference as _autograd_ssim_map


def _pair(shape, seed=0, noise=0.2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype)
    y = (x + noise * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    return x, y


def _skimage(x: torch.Tensor, y: torch.Tensor, sigma=0.8, win_size=7) -> np.ndarray:
    # skimage: Gaussian filter truncated at 3.5 sigma -> radius int(3.5 * 0.8 + 0.5) = 3, i.e.
    # the same 7 taps; win_size=7 crops the same (k - 1) / 2 border ("valid").
    return np.array(
        [
            structural_similarity(
                a.numpy(),
                b.numpy(),
                gaussian_weights=True,
                sigma=sigma,
                win_size=win_size,
                use_sample_covariance=False,
                data_range=1.0,
                channel_axis=0,
            )
            for a, b in zip(x.double(), y.double())
        ]
    )


def test_taps_match_skimage_truncation():
    taps = gaussian_taps(7, 0.8)
    assert len(taps) == 2 * int(3.5 * 0.8 + 0.5) + 1
    assert sum(taps) == pytest.approx(1.0, abs=1e-15)
    assert taps[3] == max(taps) and taps[0] == pytest.approx(taps[6])


@pytest.mark.parametrize("shape", [(2, 3, 40, 33), (1, 1, 7, 7), (3, 2, 17, 64)])
def test_matches_skimage_random(shape):
    x, y = _pair(shape, seed=shape[-1])
    ours = ssim_per_sample(x, y).numpy()
    np.testing.assert_allclose(ours, _skimage(x, y), atol=1e-4, rtol=0)
    # float32 too
    ours32 = ssim_per_sample(x.float(), y.float()).numpy()
    np.testing.assert_allclose(ours32, _skimage(x, y), atol=1e-4, rtol=0)


def test_matches_skimage_other_window():
    x, y = _pair((2, 3, 48, 40), seed=3)
    ours = ssim_per_sample(x, y, win_size=11, win_sigma=1.5).numpy()
    np.testing.assert_allclose(ours, _skimage(x, y, sigma=1.5, win_size=11), atol=1e-4, rtol=0)


def _load(path) -> torch.Tensor:
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)


def test_matches_skimage_real_images(real_data):
    files = sorted((real_data / "market" / "test").glob("*.jpg"))[:6]
    if len(files) < 2:
        pytest.skip("fewer than 2 Market test images available")
    imgs = torch.stack([_load(f) for f in files])
    x, y = imgs[0::2], imgs[1::2]
    ours = ssim_per_sample(x, y).numpy()
    np.testing.assert_allclose(ours, _skimage(x, y), atol=1e-4, rtol=0)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)


def test_matches_pytorch_msssim():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    x, y = _pair((4, 3, 64, 48), seed=1, dtype=torch.float32)
    ref = pytorch_msssim.ssim(x, y, data_range=1.0, win_size=7, win_sigma=0.8, size_average=True)
    assert float(ssim(x, y)) == pytest.approx(float(ref), abs=1e-5)
    ref_n = pytorch_msssim.ssim(x, y, data_range=1.0, win_size=7, win_sigma=0.8, size_average=False)
    torch.testing.assert_close(ssim_per_sample(x, y), ref_n, atol=1e-5, rtol=0)


def test_constant_images_closed_form():
    # constant images: variances and covariance vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.3, 0.7, 0.01**2
    x = torch.full((2, 3, 9, 8), a, dtype=torch.float64)
    y = torch.full((2, 3, 9, 8), b, dtype=torch.float64)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(ssim(x, y)) == pytest.approx(expected, abs=1e-12)
    s = ssim_map(x, y)
    assert s.shape == (2, 3, 3, 2)
    torch.testing.assert_close(s, torch.full_like(s, expected))


def test_data_range_scales_constants():
    x, y = _pair((1, 3, 16, 16), seed=5)
    assert float(ssim(255 * x, 255 * y, data_range=255.0)) == pytest.approx(
        float(ssim(x, y)), abs=1e-10
    )


def test_identical_and_symmetric():
    x, y = _pair((2, 3, 20, 30), seed=2, dtype=torch.float32)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert float(ssim(x, y)) == pytest.approx(float(ssim(y, x)), abs=1e-7)


def test_map_matches_autograd_reference_and_means():
    x, y = _pair((2, 3, 21, 18), seed=4)
    value, s = ssim(x, y), ssim_map(x, y)
    torch.testing.assert_close(s, _autograd_ssim_map(x, y), atol=1e-12, rtol=0)
    assert float(value) == pytest.approx(float(s.mean()), abs=1e-14)
    torch.testing.assert_close(ssim_per_sample(x, y), s.mean(dim=(1, 2, 3)))


@pytest.mark.parametrize("fn", [ssim_map, ssim_per_sample, ssim])
def test_gradcheck(fn):
    x, y = _pair((2, 2, 7, 6), seed=6)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, 5, 1.1, check_range=False), (x, y))


def test_gradient_matches_autograd_reference():
    x, y = _pair((2, 3, 30, 25), seed=7)
    x.requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    w = torch.rand(2, 3, 24, 19, generator=g, dtype=torch.float64)  # weights the map
    (gx,) = torch.autograd.grad((ssim_map(x, y) * w).sum(), x)
    (gr,) = torch.autograd.grad((_autograd_ssim_map(x, y) * w).sum(), x)
    torch.testing.assert_close(gx, gr, atol=1e-12, rtol=1e-9)
    (gx,) = torch.autograd.grad(ssim(x, y), x)
    (gr,) = torch.autograd.grad(_autograd_ssim_map(x, y).mean(), x)
    torch.testing.assert_close(gx, gr, atol=1e-13, rtol=1e-9)


def test_gradients_finite_on_constant_images():
    x = torch.full((1, 3, 10, 10), 0.5, requires_grad=True)
    y = torch.zeros(1, 3, 10, 10)
    v = ssim(x, y)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(x.grad).all()


def test_no_grad_value_equals_grad_value():
    x, y = _pair((2, 3, 16, 16), seed=8, dtype=torch.float32)
    with torch.no_grad():
        a = ssim(x, y)
    b = ssim(x.clone().requires_grad_(True), y)
    assert float(a) == pytest.approx(float(b.detach()), abs=1e-7)


def test_half_precision_computed_in_float32():
    x, y = _pair((1, 3, 16, 16), seed=9, dtype=torch.float32)
    v = ssim(x.to(torch.bfloat16), y.to(torch.bfloat16))
    assert v.dtype == torch.float32
    assert float(v) == pytest.approx(float(ssim(x, y)), abs=2e-2)


def test_ssim_loss_module_maps_from_minus_one_one():
    x, y = _pair((2, 3, 16, 16), seed=10, dtype=torch.float32)
    loss = SSIMLoss()(2 * x - 1, 2 * y - 1)
    assert float(loss) == pytest.approx(1 - float(ssim(x, y)), abs=1e-6)


@pytest.mark.parametrize(
    "x, y, kwargs, match",
    [
        (torch.rand(3, 16, 16), torch.rand(3, 16, 16), {}, "4-D"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 15), {}, "same shape"),
        (
            torch.zeros(1, 3, 16, 16, dtype=torch.int64),
            torch.zeros(1, 3, 16, 16, dtype=torch.int64),
            {},
            "floating",
        ),
        (torch.rand(1, 3, 6, 16), torch.rand(1, 3, 6, 16), {}, "smaller than the 7x7 window"),
        (torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16), {}, r"\[0, data_range"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), {"win_size": 6}, "odd"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), {"data_range": 0.0}, "> 0"),
    ],
)
def test_validation_messages(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ssim(x, y, **kwargs)


def test_range_check_can_be_skipped():
    x = torch.rand(1, 3, 16, 16) * 4 - 2
    assert torch.isfinite(ssim(x, x, check_range=False))


def test_autocast_keeps_full_precision():
    x, y = _pair((2, 3, 24, 20), seed=11, dtype=torch.float32)
    x.requires_grad_(True)
    (g_ref,) = torch.autograd.grad(ssim(x, y), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = ssim(x, y)
        (g,) = torch.autograd.grad(v, x)
    assert v.dtype == torch.float32
    assert v.item() == pytest.approx(ssim(x, y).item(), abs=1e-7)
    torch.testing.assert_close(g, g_ref)


def test_channels_last_inputs():
    x, y = _pair((2, 3, 20, 18), seed=12, dtype=torch.float32)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    xn = x.clone().requires_grad_(True)
    ssim(xc, y.contiguous(memory_format=torch.channels_last)).backward()
    ssim(xn, y).backward()
    torch.testing.assert_close(xc.grad, xn.grad)


def test_compiled_equals_eager():
    """``compile=True`` (torch.compile) gives the eager values and gradients to 1e-6."""
    x, y = _pair((2, 3, 24, 20), seed=13, dtype=torch.float32)
    g = torch.Generator().manual_seed(13)
    masks = torch.rand(2, 11, 24, 20, generator=g)
    for make, extra in ((SSIMLoss, ()), (PartSSIMLoss, (masks,))):
        out = []
        for flag in (False, True):
            fake = (2 * x - 1).requires_grad_(True)
            value = make(compile=flag)(fake, 2 * y - 1, *extra)
            out.append((value.detach(), *torch.autograd.grad(value, fake)))
        torch.testing.assert_close(out[1], out[0], atol=1e-6, rtol=0)
