"""The SSIM variants of the evaluation scripts in circulation, batched in torch.

Each variant is defined by one scikit-image call (``structural_similarity``, formerly
``compare_ssim``, written in each docstring; ``channel_axis=-1`` is the old
``multichannel=True``) in the scikit-image version its authors ran, reproduced with the loss's
own filter and formula (:mod:`personpose.losses.ssim`): the covariance factor, constants
``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``, the map cropped by ``(win - 1) // 2`` px on every
side before its mean, and the mean over the three channels. The Gaussian window (sigma 1.5)
depends on the version:

- PATN pins scikit-image 0.14.2, which filters with scipy's ``gaussian_filter`` at its default
  ``truncate=4.0`` (radius ``int(4 * 1.5 + 0.5) = 6``: 13 taps, ``reflect`` border) but crops
  the map by 5 px, its nominal 11-px window: the filter reaches 1 px into the border, so the
  images get 1 px of scipy's ``reflect`` border (the edge pixel repeated) before the "valid"
  13-tap filter (``ssim_patn``, ``ssim_patn_padded``, ``mask_ssim``).
- scikit-image >= 0.15 truncates at 3.5 sigma: 11 taps, whose "valid" filter is exactly the
  cropped map; GFLA's "SSIM_256" (``ssim_256_gfla``).

Reproduced to ~1e-12 on uint8-level images in float64 (~1e-6 in float32).
:func:`ssim_256_gfla_map` gives the full-size map with scipy's ``reflect`` border, as
``full=True`` does. SSIM with ``R = 0`` (a constant generated image, e.g. masked by an empty
mask) is 0/0: those images get NaN, and the metrics leave them out and count them.

Images are ``(N, 3, H, W)`` in [0, 1]; SSIM is invariant to a common rescaling of images and
data range, so [0, 1] images with ``R = (max - min)`` of the generated image give exactly the
value of the uint8 images with ``R`` in uint8 units. All functions return per-image values
``(N,)`` float64. ``compile=True`` runs the Gaussian variants through ``torch.compile``
(about 3x faster on CPU once compiled; the first call of each shape compiles for seconds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from personpose.losses.ssim import (
    K1,
    K2,
    check_images,
    moment_planes,
    ssim_formula,
    ssim_map,
    ssim_per_sample,
)
from personpose.metrics.base import PerImageMetric
from personpose.metrics.patn_mask import patn_mask

SIGMA = 1.5  # px: the Gaussian window of every Gaussian variant
WIN = 11  # px: the nominal window (the crop is (WIN - 1) // 2 = 5 px); also 0.15+'s taps
PATN_TAPS = 13  # scikit-image 0.14.2: scipy's truncate 4.0, 2 int(4 sigma + 0.5) + 1 taps
GFLA_256_TAPS = 11  # scikit-image >= 0.15: truncate 3.5, 2 int(3.5 sigma + 0.5) + 1 taps
CHUNK_ELEMENTS = 1 << 18  # image elements per internal slice (CPU cache-friendly)
GFLA_WIN = 51  # GFLA metrics.py: uniform window of 51 px
PATN_PAD = 40  # PATN pads DeepFashion 256x176 with 40 px of white left and right
PATN_PADDED_SIZE = (256, 176)


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


def _box_valid(x: Tensor, k: int) -> Tensor:
    """'Valid' mean over k x k windows (scipy's uniform_filter, cropped), via cumulative sums
    taken in float64 (exact enough for either precision), returned in ``x.dtype``."""
    c = F.pad(x.to(torch.float64).cumsum(-2), (0, 0, 1, 0))
    rows = c[..., k:, :] - c[..., :-k, :]
    c = F.pad(rows.cumsum(-1), (1, 0))
    return ((c[..., k:] - c[..., :-k]) / (k * k)).to(x.dtype)


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
    # images in budgets of 15 -> 8 + 8, not 15 + 1; else sizes that differ by at most one
    # (13 in 4s -> 4, 3, 3, 3)
    pieces = next(p for p in range(-(-n // step), n + 1) if n % p == 0)
    if 2 * (n // pieces) < step:
        pieces = -(-n // step)
    bounds = [n * i // pieces for i in range(pieces + 1)]
    return torch.cat([fn(*(t[a:b] for t in tensors)) for a, b in zip(bounds, bounds[1:])])


def generated_range(pred: Tensor) -> Tensor:
    """Per-image data range of the generated image, ``max - min`` over all pixels, ``(N,)``."""
    return pred.flatten(1).amax(1) - pred.flatten(1).amin(1)


def _gaussian_ssim(
    pred: Tensor, target: Tensor, taps: int, dtype: torch.dtype, mask: Tensor | None, compile: bool
) -> Tensor:
    """Per-image Gaussian SSIM ``(N,)`` with ``taps`` taps, cropped by ``(WIN - 1) // 2``
    px, ``R`` of the (masked) generated image; NaN where ``R = 0`` (module docstring)."""
    check_images(pred, target, WIN, None, "ssim")
    border = (taps - WIN) // 2  # px of scipy 'reflect' border the filter reaches past the crop

    def one(p, t, *m):
        p, t = p.to(dtype), t.to(dtype)
        if m:
            p, t = p * m[0].to(dtype), t * m[0].to(dtype)
        r = generated_range(p)
        if border:  # 1 px of scipy's reflect border is the edge pixel repeated
            p, t = (F.pad(x, (border,) * 4, mode="replicate") for x in (p, t))
        s = ssim_per_sample(p, t, taps, SIGMA, r, check_range=False, compile=compile)
        return torch.where(r > 0, s.to(torch.float64), torch.nan)

    return chunked(one, pred, target, *(() if mask is None else (mask,)))


def ssim_patn(
    pred: Tensor,
    target: Tensor,
    dtype: torch.dtype = torch.float64,
    mask: Tensor | None = None,
    compile: bool = False,
) -> Tensor:
    """PATN's SSIM, per image ``(N,)``: scikit-image 0.14.2's

    ``compare_ssim(target, pred, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, multichannel=True, data_range=pred.max() - pred.min())``
    (13 taps, 5 px crop); with ``mask`` (N, 1, H, W) of both images times the mask (the data
    range then that of the masked ``pred``). ``dtype``: computation precision.
    """
    return _gaussian_ssim(pred, target, PATN_TAPS, dtype, mask, compile)


def ssim_256_gfla(
    pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64, compile: bool = False
) -> Tensor:
    """GFLA's "SSIM_256", per image ``(N,)``: scikit-image >= 0.15's

    ``structural_similarity(target, pred, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=-1, data_range=pred.max() - pred.min())``
    (11 taps): :func:`ssim_patn`'s formula with today's shorter filter.
    """
    return _gaussian_ssim(pred, target, GFLA_256_TAPS, dtype, None, compile)


def ssim_256_gfla_map(pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """The full-size ``(N, 3, H, W)`` map of :func:`ssim_256_gfla` (``full=True``): the valid
    map of the images padded by scipy's reflect border; NaN where ``R = 0``."""
    r = GFLA_256_TAPS // 2

    def one(p, t):
        p, t = p.to(dtype), t.to(dtype)
        pad_p, pad_t = _pad_reflect(p, r), _pad_reflect(t, r)
        rng = generated_range(p)
        s = ssim_map(pad_p, pad_t, GFLA_256_TAPS, SIGMA, rng, check_range=False)
        return torch.where(rng.view(-1, 1, 1, 1) > 0, s, torch.nan)

    return chunked(one, pred, target)


def ssim_patn_padded(
    pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64, compile: bool = False
) -> Tensor:
    """PATN's DeepFashion protocol: :func:`ssim_patn` after padding both images with
    ``PATN_PAD`` px of white (1.0) left and right (256x176 -> 256x256)."""
    pred, target = (F.pad(x, (PATN_PAD, PATN_PAD), value=1.0) for x in (pred, target))
    return ssim_patn(pred, target, dtype, compile=compile)


def ssim_gfla(pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """GFLA's "SSIM", per image ``(N,)``.

    ``structural_similarity(target, pred, win_size=51, data_range=1, channel_axis=-1)``
    (uniform window, skimage's default sample covariance) on images in [0, 1].
    """
    n = GFLA_WIN * GFLA_WIN
    c2 = K2**2 * (n - 1) / n  # sample covariance: C2 over the factor n / (n - 1)

    def one(p, t):
        p, t = p.to(dtype), t.to(dtype)
        check_images(p, t, GFLA_WIN, None, "ssim_gfla")
        mu_x, mu_y, e_sq, e_xy = _box_valid(moment_planes(p, t), GFLA_WIN).split(p.shape[1], 1)
        s = ssim_formula(mu_x, mu_y, e_sq, e_xy, K1**2, c2)
        return s.mean((1, 2, 3), dtype=torch.float64)

    return chunked(one, pred, target)


def mask_ssim(
    pred: Tensor,
    target: Tensor,
    kp2: Tensor,
    dtype: torch.dtype = torch.float64,
    compile: bool = False,
) -> Tensor:
    """PATN's mask-SSIM: :func:`ssim_patn` of both images times the PATN mask of ``kp2``.

    The images are uint8-level, the mask 0/1, so the products are exact (PATN multiplies
    the uint8 arrays).
    """
    mask = patn_mask(kp2, pred.shape[-2:]).unsqueeze(1)
    return ssim_patn(pred, target, dtype, mask, compile)


class _SSIMMetric(PerImageMetric):
    """An SSIM variant ``ssim`` as a metric; ``dtype`` is the computation precision, ``compile``
    runs it through ``torch.compile`` (Gaussian variants). Images whose SSIM is undefined (NaN:
    the generated image, masked for ``mask_ssim``, is constant) are left out and counted in
    ``excluded``."""

    min_size = WIN

    def __init__(self, dtype: torch.dtype = torch.float64, compile: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.compute_dtype, self.use_compile = dtype, compile

    def score(self, preds, target, **extras) -> tuple[Tensor, Tensor]:
        values = self.ssim(
            preds, target, **extras, dtype=self.compute_dtype, compile=self.use_compile
        )
        return values, ~values.isnan()


class SSIMPatn(_SSIMMetric):
    """Mean :func:`ssim_patn` over images."""

    name = "ssim_patn"
    ssim = staticmethod(ssim_patn)


class SSIM256Gfla(_SSIMMetric):
    """Mean :func:`ssim_256_gfla` over images."""

    name = "ssim_256_gfla"
    ssim = staticmethod(ssim_256_gfla)


class SSIMPatnPadded(_SSIMMetric):
    """Mean :func:`ssim_patn_padded`; defined for 256x176 (DeepFashion) images only."""

    name = "ssim_patn_padded"
    ssim = staticmethod(ssim_patn_padded)

    def fits(self, h: int, w: int) -> bool:
        return (h, w) == PATN_PADDED_SIZE

    def unfit_reason(self, n: int) -> str:
        h, w = PATN_PADDED_SIZE
        return (
            f"PATN's padding is defined for {h}x{w} DeepFashion images only; "
            f"{n} images had another size"
        )


class SSIMGfla(_SSIMMetric):
    """Mean :func:`ssim_gfla` over images (data range 1: always defined)."""

    name = "ssim_gfla"
    min_size = GFLA_WIN

    @staticmethod
    def ssim(preds, target, dtype, compile):
        return ssim_gfla(preds, target, dtype)


class MaskSSIM(_SSIMMetric):
    """Mean :func:`mask_ssim` over images (needs ``kp2``). An image whose mask is empty (every
    target keypoint missing) has no pixel to compare (its masked generated image is constant):
    left out and counted in ``excluded``, as any image with ``R = 0``."""

    name = "mask_ssim"
    requires = ("kp2",)
    ssim = staticmethod(mask_ssim)


# every SSIM variant as a metric (build_metrics makes them with dtype and compile)
METRICS = (SSIMPatn, SSIM256Gfla, SSIMPatnPadded, SSIMGfla, MaskSSIM)
