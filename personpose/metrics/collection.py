"""``build_metrics``: the metrics of a protocol (or a list of names) as one suite.

The suite is an ``nn.Module`` (so it follows ``.to(device)`` inside a LightningModule, while
its pretrained networks and states stay out of the module's ``state_dict``) with
``update(preds, target, **extras)``, ``compute() -> dict[str, float]``, ``reset()``, and the
attributes ``skipped`` (metric -> reason it reports no number) and ``protocol`` (metric ->
its exact definition). Metrics whose pretrained weights, reference set or optional package
are unavailable are skipped at build time with the reason; metrics whose inputs were missing
(keypoints, part labels, image size) are skipped at ``compute()``. A number from a random
network is never reported under these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from personpose.metrics.base import EXTRAS
from personpose.metrics.protocols import PROTOCOLS, definitions, resolve_names

__all__ = ["MetricSuite", "build_metrics"]


class MetricSuite(nn.Module):
    """Several metrics updated together; see the module docstring."""

    def __init__(
        self,
        metrics: Mapping[str, nn.Module],
        names: Sequence[str],
        skipped: Mapping[str, str],
        protocol: Mapping[str, str],
        info: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__()
        # Kept outside the module tree: the pretrained networks of LPIPS/FID/IS and the metric
        # states never enter a LightningModule's checkpoint; ``_apply`` still moves them.
        self._metrics: dict[str, nn.Module] = dict(metrics)
        self.names = list(names)
        self._static_skipped = dict(skipped)
        self.skipped: dict[str, str] = dict(skipped)
        self.protocol = dict(protocol)
        self.info = dict(info or {})

    @property
    def metrics(self) -> dict[str, nn.Module]:
        """The metric objects by name (``movenet`` holds both PCK outputs)."""
        return self._metrics

    def _apply(self, fn, recurse: bool = True):
        for metric in self._metrics.values():
            metric._apply(fn)
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        return f"metrics={list(self._metrics)}, skipped={list(self._static_skipped)}"

    def update(self, preds: Tensor, target: Tensor, **extras) -> None:
        """Add a batch: ``preds``/``target`` (N, 3, H, W) in [0, 1]; extras kp2, label2, source."""
        unknown = set(extras) - set(EXTRAS)
        if unknown:
            raise TypeError(
                f"MetricSuite.update: unknown extras {sorted(unknown)}; expected {EXTRAS}"
            )
        extras = {k: v for k, v in extras.items() if v is not None}
        with torch.no_grad():
            # one copy into the planar layout here, instead of strided reads in every metric
            preds, target = preds.detach().contiguous(), target.detach().contiguous()
            for metric in self.metrics.values():
                metric.update(preds, target, **extras)

    def compute(self) -> dict[str, float]:
        """Values of the metrics that could be computed; the others go to ``skipped``."""
        values: dict[str, float] = {}
        self.skipped = dict(self._static_skipped)
        for metric in self.metrics.values():
            for key, v in metric.compute().items():
                if isinstance(v, str):
                    self.skipped[key] = v
                else:
                    values[key] = float(v)
        order = {n: i for i, n in enumerate(self.names)}
        return dict(
            sorted(
                values.items(), key=lambda kv: (order.get(kv[0].removesuffix("_std"), 99), kv[0])
            )
        )

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
        self.skipped = dict(self._static_skipped)


def _load_reference(ref, extractor, cache_dir, drop_last, device, progress) -> dict:
    from personpose.metrics.fid import reference_statistics

    if isinstance(ref, Mapping):
        return {
            "mu": np.asarray(ref["mu"]),
            "sigma": np.asarray(ref["sigma"]),
            "n": int(ref.get("n", 0)),
            "folder": str(ref.get("folder", "given statistics")),
        }
    path = Path(ref)
    if path.is_file() and path.suffix == ".npz":
        with np.load(path) as z:
            return {"mu": z["mu"], "sigma": z["sigma"], "n": int(z["n"]), "folder": str(path)}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        def bar(it):
            return tqdm(it, desc="FID reference", unit="batch")

    return reference_statistics(
        path, extractor, cache_dir=cache_dir, drop_last=drop_last, device=device, progress=bar
    )


def build_metrics(
    names: str | Sequence[str] | None = "all",
    *,
    pretrained: Mapping[str, str | None] | None = None,
    fid_reference: str | Path | Mapping | None = None,
    fid_cache_dir: str | Path | None = None,
    fid_drop_last: bool | None = None,
    movenet_model: str | Path | None = None,
    pssim_missing_parts: str = "faithful",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MetricSuite:
    """The metrics ``names`` (a protocol ``patn``/``gfla``/``all`` or metric names).

    Args:
        pretrained: explicit weight files ``{"alexnet": path, "inception_v3": path}`` (else
            the torch cache, else a download unless ``PERSONPOSE_OFFLINE=1``).
        fid_reference: the reference images of ``fid_tv``: a folder (statistics computed and
            cached), an ``.npz`` with ``mu``/``sigma``/``n``, or a dict of those; None skips it.
        fid_cache_dir: where reference statistics are cached (None: not cached).
        fid_drop_last: drop the last partial batch of 64 (GFLA); None: True iff the protocol
            is ``gfla``.
        movenet_model: the MoveNet ``.tflite`` file for ``pck_movenet``/``pckh_movenet``.
        pssim_missing_parts: ``faithful`` (the reference) or ``exclude``.
        dtype: precision of the SSIM variants (float64 reproduces skimage to ~1e-9,
            float32 to ~2e-5 and is faster on CPU). pSSIM always runs in float32, as the
            loss (the loss's float64 path is slow on CPU; ~2e-7 from float64).
        device: where FID reference statistics are computed.
    """
    from personpose.metrics import gt_part, part_ssim_metric, pixel, ssim_variants
    from personpose.weights import WeightsUnavailable, resolve

    wanted = resolve_names(names)
    pretrained = dict(pretrained or {})
    if fid_drop_last is None:
        fid_drop_last = isinstance(names, str) and names == "gfla"
    metrics: dict[str, nn.Module] = {}
    skipped: dict[str, str] = {}
    info: dict[str, object] = {}

    simple = {
        "ssim_patn": lambda: ssim_variants.SSIMPatn(dtype=dtype),
        "ssim_patn_padded": lambda: ssim_variants.SSIMPatnPadded(dtype=dtype),
        "ssim_gfla": lambda: ssim_variants.SSIMGfla(dtype=dtype),
        "mask_ssim": lambda: ssim_variants.MaskSSIM(dtype=dtype),
        "pssim": lambda: part_ssim_metric.PartSSIM(pssim_missing_parts),
        "psnr": pixel.PSNR,
        "l1": pixel.L1,
        "gt_part_l1": gt_part.GtPartL1,
        "gt_fg_ssim": lambda: gt_part.GtFgSSIM(dtype=dtype),
    }
    for name in wanted:
        if name in simple:
            metrics[name] = simple[name]()
    if "pssim" in metrics:
        try:
            import personpose.losses.part_ssim  # noqa: F401
        except ImportError as exc:
            del metrics["pssim"]
            skipped["pssim"] = f"personpose.losses.part_ssim is not available ({exc})"

    lpips_names = [n for n in wanted if n in ("lpips_alex", "lpips_alex_v00")]
    if lpips_names:
        try:
            w = resolve("alexnet", pretrained.get("alexnet"))
        except WeightsUnavailable as exc:
            skipped.update({n: f"AlexNet weights unavailable: {exc}" for n in lpips_names})
        else:
            from personpose.metrics.lpips_metric import LPIPSMetric

            info["alexnet_weights"] = w.location
            for n in lpips_names:
                metrics[n] = LPIPSMetric(n, w.state_dict)

    inception_names = [n for n in wanted if n in ("fid_tv", "is_tv", "mask_is_tv")]
    fill = {
        "drop": "last partial batch of 64 dropped (GFLA)" if fid_drop_last else "every image used"
    }
    if inception_names:
        try:
            w = resolve("inception_v3", pretrained.get("inception_v3"))
        except WeightsUnavailable as exc:
            skipped.update({n: f"Inception-v3 weights unavailable: {exc}" for n in inception_names})
        else:
            from personpose.metrics.fid import FID
            from personpose.metrics.inception import InceptionFeatures
            from personpose.metrics.inception_score import InceptionScore

            info["inception_weights"] = w.location
            extractor = InceptionFeatures(w.state_dict)
            if "fid_tv" in inception_names:
                if fid_reference is None:
                    skipped["fid_tv"] = (
                        "no reference set: give fid.reference_dir=DIR (GFLA: the training "
                        "images) or fid.reference_stats=NPZ"
                    )
                else:
                    ref = _load_reference(
                        fid_reference,
                        extractor.to(device),
                        fid_cache_dir,
                        fid_drop_last,
                        device,
                        progress,
                    )
                    info["fid_reference"] = {k: ref[k] for k in ("folder", "n") if k in ref}
                    fill["reference"] = f"{ref.get('folder')} ({ref.get('n')} images)"
                    metrics["fid_tv"] = FID(extractor, ref, drop_last=fid_drop_last)
            for n in ("is_tv", "mask_is_tv"):
                if n in inception_names:
                    metrics[n] = InceptionScore(extractor, masked=(n == "mask_is_tv"))

    pose_names = [n for n in wanted if n in ("pck_movenet", "pckh_movenet")]
    if pose_names:
        if movenet_model is None:
            skipped.update(
                {
                    n: "no MoveNet model given (movenet_model=PATH to "
                    "movenet_singlepose_lightning_int8_4.tflite)"
                    for n in pose_names
                }
            )
        else:
            from personpose.metrics.movenet import MoveNet, MoveNetUnavailable
            from personpose.metrics.pckh import MoveNetPCK

            try:
                estimator = MoveNet(movenet_model)
            except MoveNetUnavailable as exc:
                skipped.update({n: str(exc) for n in pose_names})
            else:
                info["movenet_model"] = str(estimator.path)
                metrics["movenet"] = MoveNetPCK(estimator, outputs=pose_names)

    if isinstance(names, str) and names in PROTOCOLS:
        info["protocol_name"] = names
    return MetricSuite(metrics, wanted, skipped, definitions(wanted, **fill), info)
