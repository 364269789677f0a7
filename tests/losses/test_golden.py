"""PSSIM and SSIM against the values computed by the study authors' own code (golden files).

The golden X, Y are in [-1, 1]; the authors map them to [0, 1] before the measure, and the
golden gradients are with respect to the [-1, 1] X (so they include the factor 1/2 of the
mapping). The gradients are tiny (max about 8e-5), so they are compared relative to the
largest entry: within 0.1 % of it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from personpose.losses.part_ssim import part_ssim_terms
from personpose.losses.ssim import ssim, ssim_per_sample


@pytest.fixture(scope="module")
def golden(golden_dir):
    data = np.load(golden_dir / "pair_128x64.npz")
    scalars = json.loads((golden_dir / "golden_scalars.json").read_text())["pair_128x64"]
    return {k: data[k] for k in data.files}, scalars


def _inputs(d, dtype):
    x = torch.tensor(d["X"], dtype=dtype, requires_grad=True)
    y = torch.tensor(d["Y"], dtype=dtype)
    m = torch.tensor(d["part_mask"], dtype=dtype)
    return x, y, m


def _assert_grad(g: torch.Tensor, ref: np.ndarray) -> None:
    err = np.abs(g.detach().numpy() - ref).max()
    assert err <= 1e-3 * np.abs(ref).max(), (
        f"max error {err:.3g} vs max |grad| {np.abs(ref).max():.3g}"
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pssim_matches_reference(golden, dtype):
    d, sc = golden
    x, y, m = _inputs(d, dtype)
    r = part_ssim_terms((x + 1) / 2, (y + 1) / 2, m)
    ref = sc["fpart_bssim"] if dtype == torch.float32 else sc["fpart_bssim_float64"]
    assert r.value.item() == pytest.approx(ref, abs=1e-5)
    assert r.value.item() == pytest.approx(0.9522705, abs=1e-5)
    np.testing.assert_allclose(
        r.per_sample.detach().numpy(), sc["fpart_bssim_per_sample"], atol=1e-5
    )
    np.testing.assert_allclose(r.foreground.detach().numpy(), sc["f_ssim_per_sample"], atol=1e-5)
    np.testing.assert_allclose(r.background.detach().numpy(), sc["b_ssim_per_sample"], atol=1e-5)
    np.testing.assert_allclose(r.per_part.detach().numpy(), sc["part_ssim_per_part"], atol=1e-5)
    # the second sample has 3 missing parts (all-zero masks): s = 1, counted (faithful)
    assert (~r.present).sum() == 3
    assert torch.all(r.per_part[~r.present] == 1)
    (g,) = torch.autograd.grad(r.value, x)
    _assert_grad(g, d["grad_X_fpart_bssim"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_matches_reference(golden, dtype):
    d, sc = golden
    x, y, _ = _inputs(d, dtype)
    v = ssim((x + 1) / 2, (y + 1) / 2)
    ref = sc["ssim"] if dtype == torch.float32 else sc["ssim_float64"]
    assert v.item() == pytest.approx(ref, abs=1e-5)
    assert v.item() == pytest.approx(0.9377382, abs=1e-5)
    per = ssim_per_sample((x + 1) / 2, (y + 1) / 2).detach().numpy()
    np.testing.assert_allclose(per, sc["ssim_per_sample"], atol=1e-5)
    (g,) = torch.autograd.grad(v, x)
    _assert_grad(g, d["grad_X_ssim"])


def test_gradient_abs_sums(golden):
    d, sc = golden
    x, y, m = _inputs(d, torch.float64)
    (g,) = torch.autograd.grad(part_ssim_terms((x + 1) / 2, (y + 1) / 2, m).value, x)
    assert float(g.abs().sum()) == pytest.approx(sc["grad_X_fpart_bssim_abs_sum"], rel=1e-4)
    (g,) = torch.autograd.grad(ssim((x + 1) / 2, (y + 1) / 2), x)
    assert float(g.abs().sum()) == pytest.approx(sc["grad_X_ssim_abs_sum"], rel=1e-4)
