"""The SSIM variants of the evaluation scripts in circulation, batched in torch.

Each variant is defined by one scikit-image call (``skimage.metrics.structural_similarity``,
written in each docstring; ``channel_axis=-1`` is the old ``multichannel=True``), which these
functions reproduce to ~1e-12 on uint8-level images in float64 (~1e-5 in float32): the same
filters (scipy's Gaussian of sigma 1.5 truncated at 3.5 sigma, i.e. 11 taps, or a uniform
window), the same covariance factor, constants ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``,
the map cropped by ``(win - 1) // 2`` px on every side before its mean, and the mean over the
three channels.
Because the crop removes exactly the pixels whose window reaches past the border, the mean
needs only the "valid" filter; :func:`ssim_map` can also give the full-size map with scipy's
``reflect`` (half-sample symmetric) border, as ``full=True`` does.

Images are ``(N, 3, H, W)`` in [0, 1]; SSIM is invariant to a common rescaling of images and
data range, so [0, 1] images with ``R = (max - min)`` of the generated image give exactly the
value of the uint8 images with ``R`` in uint8 units. All functions return per-image values
``(N,)`` float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from personpose.kernels import native
from personpose.kernels import ssim as kernels
from personpose.metrics.base import PerImageMetric

__all__ = [
    "gaussian_window",
    "ssim_map",
    "ssim_patn",
    "ssim_patn_map",
    "ssim_patn_padded",
    "ssim_gfla",
    "mask_ssim",
    "pad_white",
    "SSIMPatn",
    "SSIMPatnPadded",
    "SSIMGfla",
    "MaskSSIM",
]

K1, K2 = 0.01, 0.03
PATN_SIGMA, PATN_TRUNCATE = 1.5, 3.5  # skimage gaussian_weights=True -> 11-tap window
CHUNK_ELEMENTS = 1 << 18  # image elements per internal slice (CPU cache-friendly)
FUSED_CHUNK_ELEMENTS = 1 << 19  # the same for the fused kernels (3 images of 3x256x176)
GFLA_WIN = 51  # GFLA metrics.py: uniform window of 51 px
PATN_PAD = 40  # PATN pads DeepFashion 256x176 with 40 px of white left and right
PATN_PADDED_SIZE = (256, 176)


def gaussian_window(
    sigma: float = PATN_SIGMA, truncate: float = PATN_TRUNCATE, device=None
) -> Tensor:
    """scipy's 1-D Gaussian taps: radius ``int(truncate * sigma + 0.5)``, normalised, float64."""
    r = int(truncate * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 / (sigma * sigma) * x**2)
    return w / w.sum()


def _pad_reflect(x: Tensor, r: int) -> Tensor:
    """Pad the last two dims by ``r`` px as scipy.ndimage mode='reflect' (d c b a | a b c d)."""

    def index(n: int) -> Tensor:
        i = torch.arange(-r, n + r, device=x.device)
        i = torch.where(i < 0, -i - 1, i)
        i = torch.where(i >= n, 2 * n - 1 - i, i)
        if (i < 0).any() or (i >= n).any():
            raise ValueError(f"reflect padding of {r} px needs images of at least {r} px")
        return i

    return x.index_select(-2, index(x.shape[-2])).index_select(-1, index(x.shape[-1]))


def _correlate_valid(x: Tensor, taps: Tensor) -> Tensor:
    """Separable 'valid' correlation of the last two dims of ``x`` with 1-D ``taps``.

    Shifted multiply-adds in place (on CPU faster than a grouped convolution, and exact
    float64 where ``conv2d`` has no fast float64 path).
    """
    k = taps.numel()
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    if h < 1 or w < 1:
        raise ValueError(f"window of {k} px exceeds the image ({x.shape[-2]}x{x.shape[-1]})")
    t = [float(v) for v in taps]
    rows = x[..., 0:h, :] * t[0]
    for i in range(1, k):
        rows.add_(x[..., i : i + h, :], alpha=t[i])
    out = rows[..., 0:w] * t[0]
    for i in range(1, k):
        out.add_(rows[..., i : i + w], alpha=t[i])
    return out


def _box_valid(x: Tensor, k: int) -> Tensor:
    """'Valid' mean over k x k windows (scipy's uniform_filter, cropped), via cumulative sums
    taken in float64 (exact enough for either precision), returned in ``x.dtype``."""
    if x.shape[-2] < k or x.shape[-1] < k:
        raise ValueError(f"window of {k} px exceeds the image ({x.shape[-2]}x{x.shape[-1]})")
    c = F.pad(x.to(torch.float64).cumsum(-2), (0, 0, 1, 0))
    rows = c[..., k:, :] - c[..., :-k, :]
    c = F.pad(rows.cumsum(-1), (1, 0))
    return ((c[..., k:] - c[..., :-k]) / (k * k)).to(x.dtype)


def ssim_map(
    x: Tensor,
    y: Tensor,
    data_range: Tensor | float,
    *,
    taps: Tensor | None = None,
    uniform: int | None = None,
    sample_covariance: bool = False,
    full: bool = False,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """SSIM map of images ``(N, C, H, W)``, as skimage computes it.

    Args:
        data_range: ``R``, a float or per-image ``(N,)`` tensor.
        taps: 1-D Gaussian taps (``gaussian_window()``), or
        uniform: the side (px) of a uniform window.
        sample_covariance: scale the (co)variances by ``NP / (NP - 1)``, ``NP = win^2``.
        full: the full ``H x W`` map with scipy's 'reflect' border; otherwise the map of the
            pixels whose window lies inside the image (skimage's crop), ``(H - win + 1)`` x
            ``(W - win + 1)``.
        dtype: computation precision: float64 (skimage's for uint8 images, ~1e-12 from it)
            or float32 (faster on CPU; ~1e-6 from it on [0, 1] images).
    """
    if (taps is None) == (uniform is None):
        raise ValueError("ssim_map: give exactly one of taps (Gaussian) and uniform (window px)")
    win = taps.numel() if taps is not None else int(uniform)
    x, y = x.to(dtype), y.to(dtype)
    n, c, h, w = x.shape
    stack = torch.empty((n, 5 * c, h, w), dtype=dtype, device=x.device)
    stack[:, :c], stack[:, c : 2 * c] = x, y
    torch.mul(x, x, out=stack[:, 2 * c : 3 * c])
    torch.mul(y, y, out=stack[:, 3 * c : 4 * c])
    torch.mul(x, y, out=stack[:, 4 * c :])
    if full:
        stack = _pad_reflect(stack, (win - 1) // 2)
    filtered = _correlate_valid(stack, taps) if taps is not None else _box_valid(stack, win)
    del stack
    ux, uy, uxx, uyy, uxy = filtered.split(c, dim=1)
    cov_norm = win * win / (win * win - 1) if sample_covariance else 1.0
    r = torch.as_tensor(data_range, dtype=dtype, device=x.device).reshape(-1, 1, 1, 1)
    c1, c2 = (K1 * r) ** 2, (K2 * r) ** 2
    # skimage: vx = cov_norm (uxx - ux^2), vy likewise, vxy = cov_norm (uxy - ux uy);
    # S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)). In place below.
    uxuy = ux * uy
    ux.square_()
    uy.square_()
    uxx.sub_(ux).add_(uyy.sub_(uy)).mul_(cov_norm).add_(c2)  # B2 = vx + vy + C2
    uxy.sub_(uxuy).mul_(2 * cov_norm).add_(c2)  # A2 = 2 vxy + C2
    ux.add_(uy).add_(c1).mul_(uxx)  # B1 * B2
    return uxuy.mul_(2).add_(c1).mul_(uxy).div_(ux)  # A1 * A2 / (B1 * B2)


def _per_image(s: Tensor) -> Tensor:
    return s.mean(dim=(2, 3)).mean(dim=1).to(torch.float64)


def chunked(fn, *tensors: Tensor, budget: int = CHUNK_ELEMENTS) -> Tensor:
    """``fn`` over slices of the batch of one size (or sizes one apart), each of at most
    ``budget`` image elements (or one image).

    Keeps the intermediate maps in cache-sized pieces: on CPU this is several times faster
    than one huge batch, and memory stays bounded. ``fn`` returns a tensor per image (N, ...).
    """
    n = tensors[0].shape[0]
    step = max(1, budget // max(1, tensors[0][0].numel()))
    if step >= n:
        return fn(*tensors)
    # slices of one size where a divisor of the batch gives at least half the budget: 16
    # images in budgets of 15 -> 8 + 8, not 15 + 1 (one shape for the compiled kernels, no
    # call for a lone image); else sizes that differ by at most one (13 in 4s -> 4, 3, 3, 3)
    pieces = next(p for p in range(-(-n // step), n + 1) if n % p == 0)
    if 2 * (n // pieces) < step:
        pieces = -(-n // step)
    bounds = [n * i // pieces for i in range(pieces + 1)]
    return torch.cat([fn(*(t[a:b] for t in tensors)) for a, b in zip(bounds, bounds[1:])])


def generated_range(pred: Tensor) -> Tensor:
    """Per-image data range of the generated image, ``max - min`` over all pixels, ``(N,)``."""
    p = pred.flatten(1)
    return (p.amax(1) - p.amin(1)).to(torch.float64)


def _patn_taps() -> tuple[float, ...]:
    return tuple(float(v) for v in gaussian_window())


def ssim_patn(
    pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64, mask: Tensor | None = None
) -> Tensor:
    """PATN's SSIM (also GFLA's "SSIM_256"), per image ``(N,)``.

    ``structural_similarity(target, pred, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=-1, data_range=pred.max() - pred.min())``;
    with ``mask`` (N, 1, H, W) of both images times the mask (the data range then that of the
    masked ``pred``). On CPU (float32 or float64): personpose's native kernel
    (:func:`personpose.kernels.native.ssim_mean`); otherwise, or where it is unavailable, one
    fused kernel (:func:`personpose.kernels.ssim.ssim_range_per_image`) per slice of
    :data:`FUSED_CHUNK_ELEMENTS`.
    """
    taps = _patn_taps()
    k = len(taps)
    if pred.shape[-2] < k or pred.shape[-1] < k:
        raise ValueError(f"window of {k} px exceeds the image ({pred.shape[-2]}x{pred.shape[-1]})")

    on_cpu = pred.device.type == "cpu" and target.device.type == "cpu"
    if on_cpu and dtype in (torch.float32, torch.float64) and k <= native.MAX_WINDOW:
        p, t = pred.to(dtype), target.to(dtype)  # elsewhere the slices are converted one by one
        if native.usable(p, t, dtypes=(dtype,)):  # one cache-blocked pass per plane, no slices
            return native.ssim_mean(p, t, mask, taps, K1, K2)

    def one(p, t, *m):
        m = m[0].to(dtype) if m else None
        s = kernels.ssim_range_per_image(p.to(dtype), t.to(dtype), m, taps, K1, K2)
        return s.to(torch.float64)

    extra = () if mask is None else (mask,)
    return chunked(one, pred, target, *extra, budget=FUSED_CHUNK_ELEMENTS)


def ssim_patn_map(pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """The full-size ``(N, 3, H, W)`` map of :func:`ssim_patn` (skimage ``full=True``)."""
    taps = gaussian_window(device=pred.device)

    def one(p, t):
        return ssim_map(p, t, generated_range(p), taps=taps, full=True, dtype=dtype)

    return chunked(one, pred, target)


def pad_white(x: Tensor, pad: int = PATN_PAD) -> Tensor:
    """Pad ``pad`` px of white (1.0) on the left and right: 256x176 -> 256x256 for pad 40."""
    return F.pad(x, (pad, pad), value=1.0)


def ssim_patn_padded(
    pred: Tensor, target: Tensor, pad: int = PATN_PAD, dtype: torch.dtype = torch.float64
) -> Tensor:
    """PATN's DeepFashion protocol: :func:`ssim_patn` after :func:`pad_white` on both images."""
    return ssim_patn(pad_white(pred, pad), pad_white(target, pad), dtype=dtype)


def ssim_gfla(pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """GFLA's "SSIM", per image ``(N,)``.

    ``structural_similarity(target, pred, win_size=51, data_range=1, channel_axis=-1)``
    (uniform window, skimage's default sample covariance) on images in [0, 1].
    """

    def one(p, t):
        s = ssim_map(p, t, 1.0, uniform=GFLA_WIN, sample_covariance=True, dtype=dtype)
        return _per_image(s)

    return chunked(one, pred, target)


def mask_ssim(
    pred: Tensor, target: Tensor, kp2: Tensor, dtype: torch.dtype = torch.float64
) -> Tensor:
    """PATN's mask-SSIM: :func:`ssim_patn` of both images times the PATN mask of ``kp2``.

    The images are uint8-level, the mask 0/1, so the products are exact (PATN multiplies
    the uint8 arrays).
    """
    from personpose.metrics.patn_mask import patn_mask

    mask = patn_mask(kp2, pred.shape[-2:]).unsqueeze(1)
    return ssim_patn(pred, target, dtype=dtype, mask=mask)


class _SSIMMetric(PerImageMetric):
    """An SSIM variant as a metric; ``dtype`` is the computation precision."""

    def __init__(self, dtype: torch.dtype = torch.float64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.compute_dtype = dtype


class SSIMPatn(_SSIMMetric):
    """Mean :func:`ssim_patn` over images."""

    name = "ssim_patn"
    min_size = 11

    def score(self, preds, target):
        return ssim_patn(preds, target, dtype=self.compute_dtype)


class SSIMPatnPadded(_SSIMMetric):
    """Mean :func:`ssim_patn_padded`; defined for 256x176 (DeepFashion) images only."""

    name = "ssim_patn_padded"
    min_size = 11

    def __init__(self, dtype: torch.dtype = torch.float64, **kwargs) -> None:
        super().__init__(dtype=dtype, **kwargs)
        self.add_state("wrong_size", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds, target, kp2=None, label2=None, source=None) -> None:
        if tuple(preds.shape[-2:]) != PATN_PADDED_SIZE:
            self.wrong_size += preds.shape[0]
            return
        super().update(preds, target)

    def score(self, preds, target):
        return ssim_patn_padded(preds, target, dtype=self.compute_dtype)

    def compute(self):
        if int(self.wrong_size) > 0:
            h, w = PATN_PADDED_SIZE
            return self.skip(
                f"PATN's padding is defined for {h}x{w} DeepFashion images only; "
                f"{int(self.wrong_size)} images had another size"
            )
        return super().compute()


class SSIMGfla(_SSIMMetric):
    """Mean :func:`ssim_gfla` over images."""

    name = "ssim_gfla"
    min_size = GFLA_WIN

    def score(self, preds, target):
        return ssim_gfla(preds, target, dtype=self.compute_dtype)


class MaskSSIM(_SSIMMetric):
    """Mean :func:`mask_ssim` over images (needs ``kp2``)."""

    name = "mask_ssim"
    requires = ("kp2",)
    min_size = 11

    def score(self, preds, target, kp2):
        return mask_ssim(preds, target, kp2, dtype=self.compute_dtype)
