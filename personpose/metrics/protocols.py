"""Metric names -> exact definitions, and which metrics belong to which protocol.

One flat naming scheme is used everywhere (results files, logs, reports); every name is tied
to the one definition below, which each results file repeats in its ``protocol`` section.
All metrics take images in [0, 1] on uint8 levels (generated images as saved to / read from
files) and are means over images unless stated otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFINITIONS: dict[str, str] = {
    "ssim_patn": (
        "PATN's SSIM, as scikit-image 0.14.2 (PATN's pinned version) computes "
        "compare_ssim(target, generated, gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False, data_range=generated.max()-generated.min(), "
        "multichannel=True): scipy gaussian_filter at its default truncate 4.0 (13 taps, "
        "reflect border), map cropped by 5 px; at the images' stored size; mean over images "
        "(a constant generated image, SSIM 0/0, left out and counted)"
    ),
    "ssim_256_gfla": (
        "GFLA metrics.py 'SSIM_256': scikit-image >= 0.15 structural_similarity(target, "
        "generated, gaussian_weights=True, sigma=1.5 (truncate 3.5: 11 taps), "
        "use_sample_covariance=False, data_range=generated.max()-generated.min(), "
        "channel_axis=-1), at the images' stored size; ssim_patn's formula with the shorter "
        "filter; mean over images (a constant generated image left out and counted)"
    ),
    "ssim_patn_padded": (
        "PATN's DeepFashion protocol: ssim_patn after padding both 256x176 images with 40 px "
        "of white (255) left and right to 256x256 (inflates SSIM); 256x176 images only"
    ),
    "ssim_gfla": (
        "GFLA metrics.py 'SSIM': skimage structural_similarity(target, generated, win_size=51 "
        "(uniform window), data_range=1, sample covariance (skimage default), channel_axis=-1) "
        "on images in [0, 1]; mean over images"
    ),
    "mask_ssim": (
        "PATN's Market mask-SSIM: ssim_patn (13 taps) of generated*mask and target*mask, mask "
        "from the target keypoints: rectangles of half-width 4 px along the 23 PATN limbs "
        "(scikit-image 0.14.2's half-open polygon rule: left and top edges in, right and "
        "bottom out), disks of radius 4 px at the joints, closed with a 5x5 square; images "
        "with an empty mask (every keypoint missing) left out and counted. On DeepFashion this "
        "is not a PATN protocol (PATN's DeepFashion script computes only ssim_patn_padded)"
    ),
    "pssim": (
        "part-based SSIM (the study's PSSIM) as a metric: (f + b) / 2, f = mean over 10 body "
        "parts x 3 channels of mask-weighted global SSIM statistics, b = windowed SSIM "
        "(window 7, sigma 0.8, valid) of background-masked images; part masks from the target "
        "keypoints (docs/data.md#part-masks), data range 1, missing parts scored as in the "
        "reference (mask all zero, s = 1)"
    ),
    "psnr": (
        "10 log10(1 / MSE) dB per image, images in [0, 1] (data range 1), skimage "
        "peak_signal_noise_ratio; mean over images (images identical to the target left out)"
    ),
    "l1": (
        "GFLA's L1: mean |generated - target| over pixels and channels, images in [0, 1]; "
        "mean over images (PATN's l1_score works on [-1, 1] and reads twice as large)"
    ),
    "gt_part_l1": (
        "mean over the body-part labels present in the ground-truth label map (label > 0) of "
        "the mean |generated - target| inside that label's region (images in [0, 1], "
        "3 channels); mean over images (synthetic data only)"
    ),
    "gt_fg_ssim": (
        "the full-size ssim_256_gfla map (scikit-image full=True, scipy 'reflect' border) "
        "averaged over channels and over the true person region (ground-truth label > 0); mean "
        "over images (synthetic data only)"
    ),
    "lpips_alex": (
        "LPIPS v0.1 (lpips package 0.1.4 linear weights), AlexNet trunk with torchvision "
        "ImageNet weights, images mapped to [-1, 1], spatial mean; mean over images"
    ),
    "lpips_alex_v00": (
        "LPIPS v0.0 (the original release's linear weights, no input scaling layer), AlexNet "
        "trunk with torchvision ImageNet weights, images mapped to [-1, 1]; mean over images"
    ),
    "fid_tv": (
        "FID on 2048-d pool features of torchvision's ImageNet Inception-v3 (bilinear resize "
        "to 299x299, ImageNet normalisation, transform_input), sample covariances, reference "
        "statistics from {reference}; trace of sqrt via eigenvalues; {drop}"
    ),
    "is_tv": (
        "Inception Score, torchvision ImageNet Inception-v3 (not PATN's TF 2015 graph), "
        "softmax over 1000 classes, 10 consecutive splits, mean over splits (std in is_tv_std)"
    ),
    "mask_is_tv": (
        "is_tv of the generated images multiplied by PATN's mask of the target keypoints "
        "(as mask_ssim; an empty mask gives a black image, which is scored)"
    ),
    "pck_movenet": (
        "MoveNet SinglePose Lightning int8 on the generated image (black square padding, "
        "192x192 bilinear), COCO-17 -> OpenPose-18; fraction of the joints present in the "
        "target keypoints with Euclidean error < 0.05 x image height; pooled over joints"
    ),
    "pckh_movenet": (
        "as pck_movenet but correct when error <= 0.5 x head size (larger side of the box of "
        "the target's present nose/neck/eye/ear joints; images with < 2 such joints left out); "
        "a PCKh-style score of our own definition, not PATN's OpenPose number"
    ),
}

# Which metrics each protocol reports. "all" is every metric.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "patn": ("ssim_patn", "ssim_patn_padded", "mask_ssim", "is_tv", "mask_is_tv", "pckh_movenet"),
    "gfla": ("ssim_gfla", "ssim_256_gfla", "psnr", "l1", "lpips_alex_v00", "fid_tv"),
    "all": tuple(DEFINITIONS),
}

# Short labels for tables.
SHORT: dict[str, str] = {
    "ssim_patn": "SSIM, Gaussian 1.5 (13 taps), pop. cov., range of generated (PATN)",
    "ssim_256_gfla": "SSIM, Gaussian 1.5 (11 taps), pop. cov., range of generated (GFLA SSIM_256)",
    "ssim_patn_padded": "ssim_patn after 40 px white padding to 256x256 (PATN DeepFashion)",
    "ssim_gfla": "SSIM, 51 px uniform window, sample cov., range 1 (GFLA)",
    "mask_ssim": "ssim_patn inside PATN's keypoint mask (PATN's Market protocol)",
    "pssim": "part-based SSIM (the study's loss) as a metric",
    "psnr": "PSNR dB, range 1",
    "l1": "mean absolute error, images in [0, 1] (GFLA; PATN's l1_score is 2x)",
    "gt_part_l1": "L1 per true body part, averaged over parts",
    "gt_fg_ssim": "SSIM map over the true person region",
    "lpips_alex": "LPIPS AlexNet v0.1",
    "lpips_alex_v00": "LPIPS AlexNet v0.0 (GFLA)",
    "fid_tv": "FID, torchvision Inception-v3 pool features",
    "is_tv": "Inception Score, torchvision weights, 10 splits",
    "mask_is_tv": "IS of masked generated images",
    "pck_movenet": "PCK@0.05 height, MoveNet on generated vs target keypoints",
    "pckh_movenet": "PCKh@0.5 head box, MoveNet on generated vs target keypoints",
}

HIGHER_IS_BETTER: dict[str, bool] = {
    name: name not in ("l1", "gt_part_l1", "lpips_alex", "lpips_alex_v00", "fid_tv")
    for name in DEFINITIONS
}


def resolve_names(names: str | Sequence[str] | None) -> list[str]:
    """A protocol name (``patn``, ``gfla``, ``all``) or a list of metric names -> names.

    Raises ValueError naming an unknown protocol or metric and listing the known ones.
    """
    if names is None or isinstance(names, str):
        names = ["all" if names is None else names]
    out: list[str] = []
    for n in map(str, names):
        if n not in PROTOCOLS and n not in DEFINITIONS:
            raise ValueError(
                f"unknown protocol or metric {n!r}; protocols: {sorted(PROTOCOLS)}, "
                f"metrics: {sorted(DEFINITIONS)}"
            )
        out.extend(m for m in PROTOCOLS.get(n, (n,)) if m not in out)
    return out


def protocols_of(name: str) -> list[str]:
    """The protocols (other than ``all``) that report metric ``name``."""
    return [p for p, members in PROTOCOLS.items() if p != "all" and name in members]


def definitions(names: Iterable[str], **fill: str) -> dict[str, str]:
    """Definition text of each name, with ``{reference}``/``{drop}`` filled from ``fill``."""
    fill = {"reference": "a reference folder", "drop": "", **fill}
    return {n: DEFINITIONS[n].format(**fill) for n in names}
