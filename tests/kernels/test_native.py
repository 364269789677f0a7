"""The native C kernels of the metrics equal the torch kernels, build once, and fall back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from personpose.data.pose import part_mask_terms, part_masks
from personpose.kernels import compile_mode, native
from personpose.kernels.native import native_mode
from personpose.losses.part_ssim import part_ssim_terms
from personpose.losses.ssim import gaussian_taps
from personpose.metrics.part_ssim_metric import pssim
from personpose.metrics.ssim_variants import _patn_taps, mask_ssim, ssim_patn

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"native kernels unavailable: {native.state()}"
)


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.round(torch.rand(shape, generator=g) * 255) / 255
    x = torch.round((y + 0.15 * torch.randn(shape, generator=g)).clamp(0, 1) * 255) / 255
    return x, y


def _keypoints(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.stack(
        [
            torch.randint(4, h - 4, (n, 18), generator=g),
            torch.randint(4, w - 4, (n, 18), generator=g),
        ],
        -1,
    ).float()
    kp[0, 3] = -1  # a missing joint: its parts have all-zero masks
    return kp


# sizes: strips of 64 output columns (150 -> 3 strips, the last partial), widths that are not
# multiples of the 8 lanes, and the smallest image a window fits
SIZES = [(3, 256, 176), (2, 128, 64), (2, 40, 150), (3, 23, 13), (1, 11, 11)]


@pytest.mark.parametrize("n,h,w", SIZES)
def test_ssim_mean_equals_the_torch_kernels(n, h, w):
    x, y = _pair((n, 3, h, w))
    mask = (torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    with native_mode("never"), compile_mode("never"):
        ref = ssim_patn(x.double(), y.double(), dtype=torch.float64)
        ref_m = ssim_patn(x.double(), y.double(), dtype=torch.float64, mask=mask.double())
    out = native.ssim_mean(x, y, None, _patn_taps(), 0.01, 0.03)
    out_m = native.ssim_mean(x, y, mask, _patn_taps(), 0.01, 0.03)
    as_bool = native.ssim_mean(x, y, mask.bool(), _patn_taps(), 0.01, 0.03)  # read as bytes
    assert torch.equal(as_bool, out_m)
    assert out.dtype == torch.float64 and out.shape == (n,)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)
    assert torch.allclose(out_m, ref_m, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n,h,w", [(2, 256, 176), (2, 40, 150), (1, 11, 11)])
def test_ssim_mean_in_float64_equals_the_torch_kernels(n, h, w):
    x, y = (t.double() for t in _pair((n, 3, h, w), seed=15))
    mask = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(16)) > 0.3
    with native_mode("never"), compile_mode("never"):
        ref = ssim_patn(x, y, dtype=torch.float64)
        ref_m = ssim_patn(x, y, dtype=torch.float64, mask=mask.double())
    before = native.calls["ssim_mean"]
    assert torch.allclose(ssim_patn(x, y, dtype=torch.float64), ref, atol=1e-12, rtol=0)
    assert native.calls["ssim_mean"] == before + 1  # the metric took the native kernel
    for m in (mask, mask.double()):  # bytes, or float64
        out = native.ssim_mean(x, y, m, _patn_taps(), 0.01, 0.03)
        assert torch.allclose(out, ref_m, atol=1e-12, rtol=0)


def test_ssim_mean_with_a_fixed_data_range():
    x, y = _pair((2, 3, 30, 27))
    taps = gaussian_taps(7, 0.8)
    # PSSIM's background term with M_0 = 1 is the plain windowed SSIM at data range 1
    ones = torch.cat([torch.ones(2, 1, 30, 27), torch.zeros(2, 10, 30, 27)], 1).double()
    ref = part_ssim_terms(x.double(), y.double(), ones).background
    out = native.ssim_mean(x, y, None, taps, 0.01, 0.03, data_range=1.0)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)


def test_the_metrics_use_it_and_agree_with_the_torch_path():
    x, y = _pair((4, 3, 128, 64), seed=2)
    kp = _keypoints(4, 128, 64)
    before = dict(native.calls)
    fast = ssim_patn(x, y, dtype=torch.float32), mask_ssim(x, y, kp, dtype=torch.float32)
    fast += (pssim(x, y, kp), pssim(x, y, kp, missing_parts="exclude"))
    assert native.calls["ssim_mean"] >= before.get("ssim_mean", 0) + 2
    assert native.calls["pssim_parts"] >= before.get("pssim_parts", 0) + 2
    with native_mode("never"):
        slow = ssim_patn(x, y, dtype=torch.float32), mask_ssim(x, y, kp, dtype=torch.float32)
        slow += (pssim(x, y, kp), pssim(x, y, kp, missing_parts="exclude"))
    for f, s in zip(fast, slow):
        assert torch.allclose(f, s, atol=2e-6, rtol=0)
    assert not torch.equal(fast[2], fast[3])  # the missing joint matters


def test_pssim_parts_are_the_mask_weighted_sums():
    x, y = _pair((2, 3, 37, 29), seed=3)
    kp = _keypoints(2, 37, 29, seed=4)
    masks = part_masks(kp, (37, 29))
    terms = part_mask_terms(kp, (37, 29))
    bg, stats, sums = native.pssim_parts(x, y, terms, gaussian_taps(7, 0.8), 1e-4, 9e-4)
    parts = masks[:, 1:].double()
    planes = torch.cat([x, y, x * x + y * y, x * y], 1).double()
    expected = torch.einsum("nkhw,njhw->nkj", parts, planes)
    assert stats.shape == (2, 10, 12) and sums.shape == (2, 10)
    assert torch.allclose(stats, expected, rtol=2e-6, atol=1e-6)
    assert torch.allclose(sums, parts.sum((-2, -1)), rtol=2e-6, atol=1e-6)
    assert (sums[0] == 0).sum() >= 1 and (sums[1] > 0).all()  # the parts of the missing joint
    ref = part_ssim_terms(x.double(), y.double(), masks.double()).background
    assert torch.allclose(bg, ref, atol=1e-6, rtol=0)


def test_the_on_the_fly_masks_follow_exp2_over_its_range():
    # image n has one part with M = 2^e_n at all 11 x 11 pixels: its mask sum is 121 2^e_n,
    # for e_n from 0 (a part's peak) down past float32's normal range, and a missing part
    e = torch.cat([torch.linspace(-125.0, 0.0, 2001), torch.tensor([-127.5, -float("inf")])])
    n = e.numel()
    x = torch.full((n, 3, 11, 11), 0.5)
    zeros_h, zeros_w = torch.zeros(n, 1, 11), torch.zeros(n, 1, 11)
    terms = (zeros_h, e.view(n, 1, 1).expand(n, 1, 11), zeros_h, zeros_w)
    _, stats, sums = native.pssim_parts(x, x, terms, gaussian_taps(7, 0.8), 1e-4, 9e-4)
    exact = 121 * torch.exp2(e[:-2].double())
    assert torch.allclose(sums[:-2, 0], exact, rtol=1e-6, atol=0)
    assert torch.allclose(stats[:-2, 0, 0], 0.5 * exact, rtol=1e-6, atol=0)  # sum of M x
    assert float(sums[-2, 0]) < 1e-36 and float(sums[-1, 0]) == 0.0  # missing: exactly zero


def test_results_do_not_depend_on_the_thread_count():
    x, y = _pair((5, 3, 64, 48), seed=5)
    terms = part_mask_terms(_keypoints(5, 64, 48, seed=6), (64, 48))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = (
            native.ssim_mean(x, y, None, _patn_taps(), 0.01, 0.03),
            *native.pssim_parts(x, y, terms, gaussian_taps(7, 0.8), 1e-4, 9e-4),
        )
        torch.set_num_threads(2)
        two = (
            native.ssim_mean(x, y, None, _patn_taps(), 0.01, 0.03),
            *native.pssim_parts(x, y, terms, gaussian_taps(7, 0.8), 1e-4, 9e-4),
        )
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two):
        assert torch.equal(a, b)


def test_bad_sizes_are_refused_with_the_reason():
    x, y = _pair((1, 3, 10, 20))
    with pytest.raises(ValueError, match="exceeds the image"):
        native.ssim_mean(x, y, None, _patn_taps(), 0.01, 0.03)
    x, y = _pair((1, 3, 20, 20))
    with pytest.raises(ValueError, match="mask must be"):
        native.ssim_mean(x, y, torch.ones(1, 2, 20, 20), _patn_taps(), 0.01, 0.03)
    with pytest.raises(ValueError, match="1 to 16"):
        native.ssim_mean(x, y, None, [1 / 17] * 17, 0.01, 0.03)
    terms = part_mask_terms(_keypoints(1, 20, 19), (20, 19))
    with pytest.raises(ValueError, match="terms must be"):
        native.pssim_parts(x, y, terms, gaussian_taps(7, 0.8), 1e-4, 9e-4)


def test_not_used_for_float64_or_gradients_or_when_off():
    x = torch.rand(1, 3, 16, 16)
    assert native.usable(x)
    assert not native.usable(x.double())
    assert not native.usable(x.requires_grad_())
    with native_mode("never"):
        assert not native.usable(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="expected one of"):
        with native_mode("fast"):
            pass


_CHILD = """
import json, warnings, torch
from personpose.kernels import native
from personpose.metrics.ssim_variants import ssim_patn
g = torch.Generator().manual_seed(0)
x, y = torch.rand(2, 3, 32, 24, generator=g), torch.rand(2, 3, 32, 24, generator=g)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    v = ssim_patn(x, y, dtype=torch.float32)
    ssim_patn(x, y, dtype=torch.float32)
print(json.dumps({"state": native.state(), "value": v.tolist(),
                  "warnings": [str(w.message) for w in caught]}))
"""


def _child(tmp_path, **env):
    full = {**os.environ, "PERSONPOSE_CACHE_DIR": str(tmp_path), **env}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=full, capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A child process that built the library into a fresh cache: (cache, its report)."""
    cache = tmp_path_factory.mktemp("native-cache")
    return cache, _child(cache)


def test_built_once_per_cache_and_reused(built):
    cache, first = built
    lib = Path(first["state"]["library"])
    assert lib.parent == cache / "native" and lib.is_file()
    stamp = lib.stat().st_mtime_ns
    second = _child(cache)
    assert second["state"]["library"] == str(lib) and lib.stat().st_mtime_ns == stamp
    assert second["state"]["calls"] == {"ssim_mean": 2}
    assert not [p for p in (cache / "native").iterdir() if p.name.endswith(".tmp")]


def test_without_a_compiler_it_warns_once_and_falls_back(built, tmp_path):
    out = _child(tmp_path, CC="/nonexistent/cc")
    assert "no C compiler" in out["state"]["failed"]
    assert "library" not in out["state"] and out["state"]["calls"] == {}
    assert len(out["warnings"]) == 1 and "native SSIM kernels are unavailable" in out["warnings"][0]
    # the torch kernels gave the same values
    assert out["value"] == pytest.approx(built[1]["value"], abs=1e-6)


def _mask_keypoints(n, h, w, seed):
    """Keypoints on and off the image, integer (ties at pixel centres), half-integer and real,
    some missing, two coincident (a limb of length 0)."""
    g = torch.Generator().manual_seed(seed)
    kp = torch.stack(
        [
            torch.rand(n, 18, generator=g) * (h + 10) - 5,
            torch.rand(n, 18, generator=g) * (w + 10) - 5,
        ],
        -1,
    ).double()
    kp[:, ::3] = kp[:, ::3].round()
    kp[:, 1::4] = (kp[:, 1::4] * 2).round() / 2
    kp[torch.rand(n, 18, generator=g) < 0.15] = -1
    kp[0, 2] = kp[0, 3]
    return kp


@pytest.mark.parametrize("h,w", [(256, 176), (128, 64), (23, 9), (9, 4)])  # 4: no interior
def test_patn_mask_equals_the_torch_rasteriser_pixel_for_pixel(h, w):
    from personpose.metrics.patn_mask import patn_mask

    for seed in range(4):
        kp = _mask_keypoints(12, h, w, seed)
        if seed == 0:  # axis-parallel limbs: every crossing is a tie
            kp = kp.round()
        before = native.calls["patn_mask"]
        out = patn_mask(kp, (h, w))
        assert native.calls["patn_mask"] == before + 1
        with native_mode("never"):
            ref = patn_mask(kp, (h, w))
        assert out.dtype == torch.bool and out.shape == (12, h, w)
        assert torch.equal(out, ref), f"seed {seed}: {(out != ref).sum()} pixels differ"
        assert out.any()


@pytest.mark.parametrize("need", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("missing_parts", ["faithful", "exclude"])
def test_the_pssim_loss_on_native_kernels_matches_float64(need, missing_parts):
    from personpose.losses.part_ssim import part_ssim_terms

    n, c, h, w = 3, 3, 45, 37
    x, y = _pair((n, c, h, w), seed=7)
    masks = part_masks(_keypoints(n, h, w, seed=8), (h, w))
    before = dict(native.calls)

    def value_and_grads(dtype):
        xx = x.to(dtype, copy=True).requires_grad_(need[0])
        yy = y.to(dtype, copy=True).requires_grad_(need[1])
        terms = part_ssim_terms(xx, yy, masks.to(dtype), missing_parts=missing_parts)
        (2 * terms.value).backward()
        return terms.value.detach().double(), xx.grad, yy.grad

    fast = value_and_grads(torch.float32)
    assert native.calls["part_contract"] == before.get("part_contract", 0) + 1
    assert native.calls["part_grad"] == before.get("part_grad", 0) + 1
    ref = value_and_grads(torch.float64)  # the torch kernels (float64: never native)
    assert float(fast[0]) == pytest.approx(float(ref[0]), abs=1e-6)
    for g, r in zip(fast[1:], ref[1:]):
        assert (g is None) == (r is None)
        if r is not None:
            assert g.dtype == torch.float32
            assert (g.double() - r).abs().max() <= 1e-4 * r.abs().max()


def test_part_contract_and_grad_are_the_masked_sums():
    n, c, h, w = 2, 3, 21, 19
    x, y = _pair((n, c, h, w), seed=9)
    masks = torch.rand(n, 11, h, w, generator=torch.Generator().manual_seed(10))
    stats, sums = native.part_contract(x, y, masks)
    planes = torch.cat([x, y, x * x + y * y, x * y], 1).double()
    expected = torch.einsum("nkhw,njhw->nkj", masks[:, 1:].double(), planes)
    assert torch.allclose(stats, expected, rtol=1e-6, atol=1e-6)
    assert torch.allclose(sums, masks[:, 1:].double().sum((-2, -1)), rtol=1e-6)
    coef = torch.randn(n, 10, 4, c, generator=torch.Generator().manual_seed(11))
    gx, gy = native.part_grad(x, y, masks, coef, True, True)
    m = masks[:, 1:, None].double()  # (N, K, 1, H, W)
    cd = coef.double()[..., None, None]  # (N, K, R, C, 1, 1)
    ref_x = (
        m * (cd[:, :, 0] + x.double()[:, None] * cd[:, :, 2] + y.double()[:, None] * cd[:, :, 3])
    ).sum(1)
    ref_y = (
        m * (cd[:, :, 1] + y.double()[:, None] * cd[:, :, 2] + x.double()[:, None] * cd[:, :, 3])
    ).sum(1)
    assert torch.allclose(gx.double(), ref_x, atol=1e-5) and torch.allclose(
        gy.double(), ref_y, atol=1e-5
    )
    only_y = native.part_grad(x, y, masks, coef[:, :, 1:], False, True)
    assert only_y[0] is None and torch.allclose(only_y[1], gy, atol=1e-6)
    with pytest.raises(ValueError, match="coef must be"):
        native.part_grad(x, y, masks, coef, True, False)
    # with out: added in place to what the tensors hold (the background's terms, in the loss)
    base_x, base_y = torch.randn_like(x), torch.randn_like(y)
    acc_x, acc_y = base_x.clone(), base_y.clone()
    got = native.part_grad(x, y, masks, coef, True, True, out=(acc_x, acc_y))
    assert got[0] is acc_x and got[1] is acc_y
    assert torch.allclose(acc_x, base_x + gx, atol=1e-6)
    assert torch.allclose(acc_y, base_y + gy, atol=1e-6)
    acc_y = base_y.clone()
    assert native.part_grad(x, y, masks, coef[:, :, 1:], False, True, out=(None, acc_y))[0] is None
    assert torch.allclose(acc_y, base_y + gy, atol=1e-6)
    with pytest.raises(ValueError, match="out for x must be a contiguous float32"):
        native.part_grad(x, y, masks, coef, True, True, out=(base_x.double(), base_y))
    with pytest.raises(ValueError, match="out for y must be a contiguous float32"):
        native.part_grad(x, y, masks, coef, True, True, out=(base_x, base_y.transpose(2, 3)))


def test_the_pthread_build_gives_the_same_results(tmp_path, monkeypatch):
    # without OpenMP (e.g. Apple's clang) the tasks run on threads of their own
    target = tmp_path / "personpose_cpu-pthreads.so"
    native._build(native._compiler(), ["-O3"], target)
    import ctypes

    lib = ctypes.CDLL(str(target))
    native._declare(lib)
    x, y = _pair((5, 3, 40, 33), seed=12)
    kp = _keypoints(5, 40, 33, seed=13)
    masks = part_masks(kp, (40, 33))
    coef = torch.randn(5, 10, 3, 3, generator=torch.Generator().manual_seed(14))

    def everything():
        return (
            native.ssim_mean(x, y, masks[:, :1], _patn_taps(), 0.01, 0.03),
            *native.pssim_parts(
                x, y, part_mask_terms(kp, (40, 33)), gaussian_taps(7, 0.8), 1e-4, 9e-4
            ),
            *native.part_contract(x, y, masks),
            native.part_grad(x, y, masks, coef, True, False)[0],
            native.patn_mask(kp, 40, 33, ((0, 1), (1, 2)), 4.0, 5),
        )

    ref = everything()
    monkeypatch.setattr(native, "_lib", lib)
    out = everything()
    for a, b in zip(out, ref):  # "-O3" alone has no FMA: float32 rounding differs
        b = b.double()
        assert torch.allclose(a.double(), b, rtol=1e-6, atol=1e-6 * float(b.abs().max()))


def test_every_kernel_source_is_packaged_and_in_the_build_key():
    import fnmatch

    tomllib = pytest.importorskip("tomllib")
    files = sorted(p for p in native.CSRC.iterdir() if p.suffix in (".c", ".h"))
    assert files and set(native.SOURCES + native.HEADERS) == set(files)
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["personpose"]
    package = REPO / "personpose"
    for f in files:
        rel = f.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not packaged"
