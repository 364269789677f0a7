"""Plain, slow reference implementations (autograd through every step) for the tests."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from personpose.losses.ssim import gaussian_taps


def ssim_map_reference(x, y, win_size=7, win_sigma=0.8, data_range=1.0):
    """Windowed SSIM map with a grouped 2-D convolution (valid)."""
    g = torch.tensor(gaussian_taps(win_size, win_sigma), dtype=x.dtype)
    w = (g[:, None] * g[None, :]).expand(x.shape[1], 1, win_size, win_size)

    def f(t):
        return F.conv2d(t, w, groups=x.shape[1])

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))


def part_ssim_reference(x, y, masks, win_size=7, win_sigma=0.8, data_range=1.0):
    """PSSIM part by part (a loop, like repeating the images per part): returns
    (value, per_part (N, K))."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    per_part = []
    for k in range(1, masks.shape[1]):
        m = masks[:, k : k + 1]
        w = m / (m.sum(dim=(2, 3), keepdim=True) + 1e-6)
        mx, my = (w * x).sum((2, 3)), (w * y).sum((2, 3))
        vx, vy = (w * x * x).sum((2, 3)) - mx**2, (w * y * y).sum((2, 3)) - my**2
        cov = (w * x * y).sum((2, 3)) - mx * my
        s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * (2 * cov + c2) / (vx + vy + c2)
        per_part.append(s.mean(1))
    per_part = torch.stack(per_part, 1)
    bg = masks[:, :1]
    b = ssim_map_reference(bg * x, bg * y, win_size, win_sigma, data_range).mean((1, 2, 3))
    return ((per_part.mean(1) + b) / 2).mean(), per_part
