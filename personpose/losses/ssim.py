"""Windowed Gaussian SSIM (Wang et al., IEEE TIP 2004) in plain PyTorch, differentiated by autograd.

For images ``x, y`` in ``[0, L]``, per colour channel, with a normalised Gaussian window ``G``
(``win_size`` taps, ``win_sigma`` px) applied separably and "valid" (no padding: the map is
``(H - k + 1) x (W - k + 1)``)::

    mu_x = G * x,   s_xx = G * x^2 - mu_x^2,   s_xy = G * (x y) - mu_x mu_y   (same for y)
    S = (2 mu_x mu_y + C1) (2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (s_xx + s_yy + C2))
    C1 = (K1 L)^2,  C2 = (K2 L)^2,  K1 = 0.01,  K2 = 0.03,  SSIM = mean(S)

(population covariance). With the study's window (7 taps, sigma 0.8) this equals
scikit-image's ``structural_similarity(gaussian_weights=True, sigma=0.8,
use_sample_covariance=False)`` and ``pytorch_msssim.ssim(win_size=7, win_sigma=0.8)``.
``s_xx`` and ``s_yy`` enter only as their sum, so four planes per channel are filtered
(``x, y, x^2 + y^2, x y``), not five. ``compile=True`` runs the same function through
``torch.compile`` (faster on large inputs after a compile of a few seconds; equal to 1e-6).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

K1, K2 = 0.01, 0.03


def gaussian_taps(win_size: int, win_sigma: float) -> tuple[float, ...]:
    """Normalised 1-D Gaussian window: ``exp(-t^2 / (2 sigma^2))`` at ``t = -k//2 .. k//2``
    (scipy's truncation at 3.5 sigma gives ``win_size = 2 int(3.5 sigma + 0.5) + 1``)."""
    if not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"ssim: win_size must be a positive odd int, got {win_size!r}")
    if not win_sigma > 0:
        raise ValueError(f"ssim: win_sigma must be > 0, got {win_sigma!r}")
    r = win_size // 2
    g = [math.exp(-(t * t) / (2.0 * win_sigma**2)) for t in range(-r, r + 1)]
    total = math.fsum(g)
    return tuple(v / total for v in g)


def filter_valid(planes: Tensor, taps: tuple[float, ...]) -> Tensor:
    """Separable "valid" correlation of every plane of ``planes`` (N, P, H, W) with the 1-D
    ``taps``, along W then H: (N, P, H - k + 1, W - k + 1)."""
    p, k = planes.shape[1], len(taps)
    g = torch.tensor(taps, dtype=planes.dtype, device=planes.device)
    if planes.dtype == torch.float32 and planes.device.type == "cpu":  # oneDNN: ~2x faster
        planes = planes.contiguous(memory_format=torch.channels_last)
    out = F.conv2d(planes, g.view(1, 1, 1, k).expand(p, 1, 1, k), groups=p)
    return F.conv2d(out, g.view(1, 1, k, 1).expand(p, 1, k, 1), groups=p).contiguous()


def moment_planes(x: Tensor, y: Tensor) -> Tensor:
    """``x, y, x^2 + y^2, x y`` stacked along the channels: (N, 4C, H, W) from (N, C, H, W)."""
    return torch.cat([x, y, x * x + y * y, x * y], 1)


def ssim_formula(
    mu_x: Tensor, mu_y: Tensor, e_sq: Tensor, e_xy: Tensor, c1: float | Tensor, c2: float | Tensor
) -> Tensor:
    """SSIM from the (windowed or mask-weighted) means ``mu_x, mu_y``, ``E[x^2] + E[y^2]`` and
    ``E[x y]`` (equal shapes), population covariance; ``c1, c2`` floats or broadcastable
    tensors. (The sample covariance, (co)variances times ``n / (n - 1)``, is the same formula
    with ``c2`` divided by ``n / (n - 1)``.) Exactly 1 where x = y."""
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    num = (2 * mu_xy + c1) * (2 * (e_xy - mu_xy) + c2)
    return num / ((mu_sq + c1) * (e_sq - mu_sq + c2))


def check_images(
    x: Tensor,
    y: Tensor,
    win_size: int,
    data_range: float | None,
    fn: str = "ssim",
) -> None:
    """Validate an image pair: 4-D ``(N, C, H, W)``, same shape, floating, larger than the window,
    and (when ``data_range``, > 0, is given) values in ``[0, data_range]``. Raises ValueError."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{fn}: {name} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{fn}: {name} must be a floating tensor, got {t.dtype}")
    if x.shape != y.shape:
        raise ValueError(
            f"{fn}: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"{fn}: x and y are on different devices ({x.device}, {y.device})")
    h, w = x.shape[-2:]
    if h < win_size or w < win_size:
        raise ValueError(
            f"{fn}: images of {h}x{w} px are smaller than the {win_size}x{win_size} "
            "window (valid filtering needs H, W >= win_size)"
        )
    if data_range is not None:
        tol = 1e-3 * data_range
        for name, t in (("x", x), ("y", y)):
            lo, hi = (float(v) for v in torch.aminmax(t.detach()))
            if not (lo >= -tol and hi <= data_range + tol):
                raise ValueError(
                    f"{fn}: {name} must lie in [0, data_range={data_range}], found "
                    f"[{lo:.4g}, {hi:.4g}] (map [-1, 1] images with (t + 1) / 2)"
                )


def run_full_precision(fn: Callable, compile: bool, x: Tensor, *args):
    """``fn(x, *args)`` with autocast off (the variances ``E[x^2] - mu^2`` cancel in half
    precision), through ``torch.compile`` when ``compile``."""
    with torch.autocast(x.device.type, enabled=False):
        return (_compiled(fn) if compile else fn)(x, *args)


@functools.cache
def _compiled(fn: Callable) -> Callable:
    return torch.compile(fn)


def windowed_ssim(x: Tensor, y: Tensor, taps: tuple[float, ...], c1, c2, dims) -> Tensor:
    """The SSIM map of ``x, y`` (N, C, H, W), averaged over ``dims`` (None: the map)."""
    mu_x, mu_y, e_sq, e_xy = filter_valid(moment_planes(x, y), taps).split(x.shape[1], 1)
    s = ssim_formula(mu_x, mu_y, e_sq, e_xy, c1, c2)
    return s if dims is None else s.mean(dims)


def prepare_pair(x, y, win_size, win_sigma, data_range, check_range, fn="ssim"):
    """Validated images in their common floating dtype (float32 for half precision), the taps
    and ``C1, C2`` (``data_range`` a float, or a tensor (N,) of per-image ranges)."""
    per_image = isinstance(data_range, Tensor)
    if not (per_image or data_range > 0):
        raise ValueError(f"{fn}: data_range must be > 0, got {data_range!r}")
    check_images(x, y, win_size, data_range if check_range and not per_image else None, fn)
    taps = gaussian_taps(win_size, win_sigma)
    dtype = torch.promote_types(x.dtype, y.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    if per_image:
        data_range = data_range.to(dtype).reshape(-1, 1, 1, 1)
    # contiguous: float64's depthwise convolution is fast only on contiguous planes
    x, y = (t.to(dtype, memory_format=torch.contiguous_format) for t in (x, y))
    return x, y, taps, (K1 * data_range) ** 2, (K2 * data_range) ** 2


def ssim_map(
    x: Tensor,
    y: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float | Tensor = 1.0,
    check_range: bool = True,
    compile: bool = False,
) -> Tensor:
    """SSIM map ``(N, C, H - win_size + 1, W - win_size + 1)`` of images ``(N, C, H, W)`` in
    ``[0, data_range]`` (module docstring). ``data_range`` may be a tensor (N,) of per-image
    ranges (then no value check); ``check_range=False`` skips the value check (e.g. on feature
    maps). Half precision inputs are computed in float32."""
    x, y, taps, c1, c2 = prepare_pair(x, y, win_size, win_sigma, data_range, check_range)
    return run_full_precision(windowed_ssim, compile, x, y, taps, c1, c2, None)


def ssim_per_sample(
    x: Tensor,
    y: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float | Tensor = 1.0,
    check_range: bool = True,
    compile: bool = False,
) -> Tensor:
    """Mean SSIM of each sample, ``(N,)``; same arguments as :func:`ssim_map`."""
    x, y, taps, c1, c2 = prepare_pair(x, y, win_size, win_sigma, data_range, check_range)
    return run_full_precision(windowed_ssim, compile, x, y, taps, c1, c2, (1, 2, 3))


def ssim(
    x: Tensor,
    y: Tensor,
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    check_range: bool = True,
    compile: bool = False,
) -> Tensor:
    """Mean windowed Gaussian SSIM of images ``(N, C, H, W)`` in ``[0, data_range]``.

    Args:
        x, y: images, same shape, floating, ``H, W >= win_size``.
        win_size, win_sigma: Gaussian window (taps, px); the study uses 7 and 0.8.
        data_range: ``L`` in ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        check_range: check that values lie in ``[0, data_range]`` (one min/max pass).
        compile: run through ``torch.compile`` (module docstring).

    Returns:
        The scalar mean SSIM (1 for identical images); :func:`ssim_map` gives the map.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(ssim(x, x))
        1.0
    """
    x, y, taps, c1, c2 = prepare_pair(x, y, win_size, win_sigma, data_range, check_range)
    return run_full_precision(windowed_ssim, compile, x, y, taps, c1, c2, (0, 1, 2, 3))


class SSIMLoss(nn.Module):
    """``1 - ssim((fake + 1) / 2, (target + 1) / 2)`` for generator outputs in ``[-1, 1]``;
    ``compile`` runs SSIM through ``torch.compile``."""

    def __init__(self, win_size: int = 7, win_sigma: float = 0.8, compile: bool = False) -> None:
        super().__init__()
        gaussian_taps(win_size, win_sigma)  # validate early
        self.win_size, self.win_sigma, self.use_compile = win_size, win_sigma, compile

    def forward(self, fake: Tensor, target: Tensor) -> Tensor:
        """``fake, target``: (N, C, H, W) in [-1, 1]. Returns a scalar loss in [0, 2]."""
        x, y = (fake + 1) / 2, (target + 1) / 2
        return 1.0 - ssim(x, y, self.win_size, self.win_sigma, compile=self.use_compile)

    def extra_repr(self) -> str:
        return f"win_size={self.win_size}, win_sigma={self.win_sigma}, compile={self.use_compile}"
