"""Every SSIM variant equals its scikit-image definition, in the version its authors ran, on
real image pairs: PATN's (scikit-image 0.14.2: scipy's 13-tap Gaussian, ported in
tests/metrics/helpers.py) and GFLA's (today's scikit-image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from personpose.metrics.ssim_variants import (
    SSIMPatnPadded,
    mask_ssim,
    ssim_256_gfla,
    ssim_256_gfla_map,
    ssim_gfla,
    ssim_patn,
    ssim_patn_padded,
)
from tests.metrics.helpers import load_pairs, reference_mask, ssim_0142, to01


def skimage_256(target: np.ndarray, generated: np.ndarray, full: bool = False):
    """GFLA's SSIM_256 with today's scikit-image (11 taps; uint8 images)."""
    return structural_similarity(
        target,
        generated,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
        data_range=generated.max() - generated.min(),
        full=full,
    )


def skimage_gfla(target: np.ndarray, generated: np.ndarray) -> float:
    """GFLA metrics.py: images read as float32 / 255, window 51, data range 1."""
    t, g = target.astype(np.float32) / 255, generated.astype(np.float32) / 255
    return structural_similarity(t, g, win_size=51, data_range=1, channel_axis=-1)


def pad40(img: np.ndarray) -> np.ndarray:
    """PATN's addBounding: 40 px of white left and right."""
    return np.pad(img, ((0, 0), (40, 40), (0, 0)), constant_values=255)


@pytest.fixture(params=["fashion", "market"])
def pairs(request, fashion_pairs, market_pairs):
    return fashion_pairs if request.param == "fashion" else market_pairs


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_ssim_patn_equals_skimage_0142(pairs, dtype, tol):
    src, tgt, _ = pairs
    ours = ssim_patn(to01(src), to01(tgt), dtype=dtype).numpy()
    ref = np.array([ssim_0142(t, g) for g, t in zip(src, tgt)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol)
    # the 13-tap filter of scikit-image 0.14.2 is not today's 11-tap one
    assert np.abs(ours - ssim_256_gfla(to01(src), to01(tgt)).numpy()).max() > 1e-6


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_ssim_256_gfla_equals_skimage(pairs, dtype, tol):
    src, tgt, _ = pairs
    ours = ssim_256_gfla(to01(src), to01(tgt), dtype=dtype).numpy()
    ref = np.array([skimage_256(t, g) for g, t in zip(src, tgt)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol)


def test_ssim_patn_float32_images_within_1e6(pairs):
    """The metric contract: float32 images in [0, 1] (uint8 levels) -> within 1e-6."""
    src, tgt, _ = pairs
    ours = ssim_patn(to01(src, torch.float32), to01(tgt, torch.float32)).numpy()
    ref = np.array([ssim_0142(t, g) for g, t in zip(src, tgt)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_ssim_patn_padded_equals_skimage_0142(fashion_pairs):
    src, tgt, _ = fashion_pairs
    ours = ssim_patn_padded(to01(src), to01(tgt)).numpy()
    ref = np.array([ssim_0142(pad40(t), pad40(g)) for g, t in zip(src, tgt)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    # the padding inflates SSIM, as documented
    assert (ours > ssim_patn(to01(src), to01(tgt)).numpy()).all()


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_ssim_gfla_equals_skimage(pairs, dtype, tol):
    src, tgt, _ = pairs
    ours = ssim_gfla(to01(src), to01(tgt), dtype=dtype).numpy()
    ref = np.array([skimage_gfla(t, g) for g, t in zip(src, tgt)])
    # skimage runs in float32 here (GFLA's images), so the reference itself is ~1e-6 off
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol)
    ref64 = np.array(
        [
            structural_similarity(t / 255.0, g / 255.0, win_size=51, data_range=1, channel_axis=-1)
            for g, t in zip(src, tgt)
        ]
    )
    if dtype == torch.float64:
        np.testing.assert_allclose(ours, ref64, rtol=0, atol=1e-10)


def test_full_map_equals_skimage_full(market_pairs):
    src, tgt, _ = market_pairs
    ours = ssim_256_gfla_map(to01(src[:2]), to01(tgt[:2])).permute(0, 2, 3, 1).numpy()
    for i in range(2):
        _, s = skimage_256(tgt[i], src[i], full=True)
        np.testing.assert_allclose(ours[i], s, rtol=0, atol=1e-10)


def test_mask_ssim_equals_skimage_0142_on_masked_uint8(pairs):
    src, tgt, kp2 = pairs
    ours = mask_ssim(to01(src), to01(tgt), torch.from_numpy(kp2)).numpy()
    # PATN: uint8 image * bool mask, mask by scikit-image 0.14.2's polygon rule
    ref = [ssim_0142(t, g, reference_mask(kp, g.shape[:2])) for g, t, kp in zip(src, tgt, kp2)]
    np.testing.assert_allclose(ours, np.array(ref), rtol=0, atol=1e-10)


def test_copy_source_market_mask_ssim_under_patn_protocol(real_data):
    """The 100 real Market test pairs, the source image as the generated one: 0.7163 with
    PATN's protocol (13 taps, half-open polygons); today's scikit-image gives 0.7143."""
    src, tgt, kp2 = load_pairs(real_data, "market", 100)
    assert len(src) == 100
    values = mask_ssim(to01(src), to01(tgt), torch.from_numpy(kp2)).numpy()
    assert round(float(values.mean()), 4) == 0.7163


def test_constant_generated_image_is_undefined_not_a_number():
    """R = 0 (a constant generated image, or an empty mask): NaN per image, never a value."""
    x = torch.rand(2, 3, 16, 16)
    pred = x.clone()
    pred[1] = 0.5
    for values in (ssim_patn(pred, x), ssim_256_gfla(pred, x)):
        assert torch.isfinite(values[0]) and values[1].isnan()
    empty = torch.full((2, 18, 2), -1)
    assert mask_ssim(x, x, empty).isnan().all()


def test_identical_images_score_one(market_pairs):
    x = to01(market_pairs[0])
    np.testing.assert_allclose(ssim_patn(x, x).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(ssim_256_gfla(x, x).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(ssim_gfla(x, x).numpy(), 1.0, atol=1e-12)


def test_padded_metric_is_skipped_for_other_sizes(market_pairs, fashion_pairs):
    metric = SSIMPatnPadded()
    metric.update(to01(market_pairs[0]).float(), to01(market_pairs[1]).float())
    assert metric.compute().isnan() and "256x176" in metric.skipped["ssim_patn_padded"]
    metric = SSIMPatnPadded()
    src, tgt, _ = fashion_pairs
    metric.update(to01(src).float(), to01(tgt).float())
    value = float(metric.compute())
    ref = np.mean([ssim_0142(pad40(t), pad40(g)) for g, t in zip(src, tgt)])
    assert value == pytest.approx(ref, abs=1e-6)


def test_window_larger_than_image_is_an_error():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim_patn(x, x)


@pytest.mark.parametrize(
    ("n", "per_slice", "sizes"),
    [
        (16, 15, [8, 8]),
        (16, 3, [2] * 8),
        (13, 4, [3, 3, 3, 4]),
        (13, 1, [1] * 13),
        (6, 6, [6]),
        (5, 100, [5]),
    ],
)
def test_chunked_slices_are_equal_and_within_budget(n, per_slice, sizes):
    from personpose.metrics.ssim_variants import chunked

    x = torch.arange(n * 4, dtype=torch.float32).reshape(n, 1, 2, 2)
    seen = []

    def fn(t):
        seen.append(t.shape[0])
        return t.flatten(1).sum(1)

    out = chunked(fn, x, budget=per_slice * 4)
    assert seen == sizes
    torch.testing.assert_close(out, x.flatten(1).sum(1))
