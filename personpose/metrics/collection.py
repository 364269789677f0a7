"""``build_metrics``: the metrics of a protocol (or a list of names) as one ``MetricCollection``.

The suite (:class:`MetricSuite`) is a torchmetrics ``MetricCollection`` with
``update(preds, target, **extras)``, ``compute() -> {name: 0-d tensor}`` (the metrics that have
a value, in protocol order) and ``reset()``, plus ``skipped`` (metric -> reason it reports no
number), ``protocol`` (metric -> its exact definition) and ``info`` (where weights and
references came from). Metrics whose pretrained weights, reference set or optional package
are unavailable are left out at build time with the reason; metrics whose inputs were missing
(keypoints, part labels, image size) are skipped at ``compute()``. A number from a random
network is never reported under these names, and no value is NaN or infinite (a metric whose
value is not finite is skipped with the reason). ``excluded`` counts, per metric, the images
it left out because their score is undefined (e.g. ``mask_ssim`` of an empty mask).
:func:`results_of` gives the plain values and reasons a results file holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from personpose.data.movenet import MoveNet, MoveNetUnavailable
from personpose.metrics import gt_part, pixel, ssim_variants
from personpose.metrics.base import EXTRAS
from personpose.metrics.fid import FID, read_statistics, reference_statistics
from personpose.metrics.inception import InceptionFeatures
from personpose.metrics.inception_score import InceptionScore
from personpose.metrics.lpips_metric import VERSIONS as LPIPS_NAMES
from personpose.metrics.lpips_metric import LPIPSMetric
from personpose.metrics.part_ssim_metric import PartSSIM
from personpose.metrics.pckh import MoveNetPCK
from personpose.metrics.protocols import PROTOCOLS, definitions, resolve_names
from personpose.pretrained import WeightsUnavailable, resolve

__all__ = ["MetricSuite", "build_metrics", "results_of"]

INCEPTION_NAMES = ("fid_tv", "is_tv", "mask_is_tv")
POSE_NAMES = ("pck_movenet", "pckh_movenet")
MOVENET_FILE = "movenet_singlepose_lightning_int8_4.tflite"


class MetricSuite(MetricCollection):
    """Several metrics updated together; see the module docstring.

    ``unavailable``: metric -> why it could not be built (it is not in the collection).
    """

    def __init__(
        self,
        metrics: Mapping[str, Metric],
        names: Sequence[str],
        unavailable: Mapping[str, str],
        protocol: Mapping[str, str],
        info: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(dict(metrics), compute_groups=False)
        self.names = list(names)
        self.unavailable = dict(unavailable)
        self.protocol = dict(protocol)
        self.info = dict(info or {})
        self.not_finite: dict[str, str] = {}

    @property
    def skipped(self) -> dict[str, str]:
        """Metric -> why it has no value: not built, or skipped by the last ``compute()``."""
        out = dict(self.unavailable)
        for metric in self.values(copy_state=False):
            out.update(metric.skipped)
        out.update(self.not_finite)
        return self._in_order(out)

    @property
    def excluded(self) -> dict[str, int]:
        """Metric -> images it left out because their score is undefined (only those > 0)."""
        out = {
            name: int(getattr(metric, "excluded", 0))
            for name, metric in self.items(keep_base=True, copy_state=False)
        }
        return self._in_order({name: n for name, n in out.items() if n})

    def update(self, preds: Tensor, target: Tensor, **extras) -> None:
        """Add a batch: ``preds``/``target`` (N, 3, H, W) in [0, 1]; extras kp2, label2, source."""
        unknown = set(extras) - set(EXTRAS)
        if unknown:
            raise TypeError(
                f"MetricSuite.update: unknown extras {sorted(unknown)}; expected {EXTRAS}"
            )
        # one copy into the planar layout here, instead of strided reads in every metric
        super().update(preds.detach().contiguous(), target.detach().contiguous(), **extras)

    def compute(self) -> dict[str, Tensor]:
        """Values of the metrics that could be computed; the others are in ``skipped``."""
        values = super().compute()
        self.not_finite = {}
        skipped = self.skipped
        self.not_finite = {
            k: f"value is not finite ({float(v)})"
            for k, v in values.items()
            if k not in skipped and not bool(torch.isfinite(v))
        }
        return self._in_order({k: v for k, v in values.items() if k not in self.skipped})

    def reset(self) -> None:
        super().reset()
        self.not_finite = {}

    def _in_order(self, by_name: dict) -> dict:
        """``by_name`` sorted as ``names`` (``<name>_std`` right after ``<name>``)."""
        rank = {n: i for i, n in enumerate(self.names)}
        return dict(
            sorted(by_name.items(), key=lambda kv: (rank[kv[0].removesuffix("_std")], kv[0]))
        )


def results_of(suite: MetricSuite) -> tuple[dict[str, float], dict[str, str]]:
    """``(values, skipped)`` of ``suite.compute()`` as a results file holds them: floats and
    reasons by metric name."""
    values = suite.compute()
    return {k: float(v) for k, v in values.items()}, suite.skipped


def build_metrics(
    names: str | Sequence[str] | None = "all",
    *,
    pretrained: Mapping[str, str | None] | None = None,
    fid_reference: str | Path | None = None,
    fid_cache_dir: str | Path | None = None,
    fid_drop_last: bool | None = None,
    movenet_model: str | Path | None = None,
    pssim_missing_parts: str = "faithful",
    dtype: torch.dtype | str = torch.float64,
    compile: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MetricSuite:
    """The metrics ``names`` (a protocol ``patn``/``gfla``/``all`` or metric names).

    Args:
        pretrained: explicit weight files ``{"alexnet": path, "inception_v3": path}`` (else
            the torch cache, else a download unless ``PERSONPOSE_OFFLINE=1``).
        fid_reference: the reference images of ``fid_tv``: a folder (statistics computed and
            cached) or an ``.npz`` with ``mu``/``sigma``/``n``; None skips it.
        fid_cache_dir: where reference statistics are cached (None: not cached).
        fid_drop_last: drop the last partial batch of 64 (GFLA); None: True iff the protocol
            is ``gfla``.
        movenet_model: the MoveNet ``.tflite`` file for ``pck_movenet``/``pckh_movenet``.
        pssim_missing_parts: ``faithful`` (the reference) or ``exclude``.
        dtype: precision of the SSIM variants, a dtype or ``"float32"``/``"float64"``
            (float64 reproduces skimage to ~1e-9, float32 to ~2e-5 and is faster on CPU).
            pSSIM always runs in float32, as the loss (~2e-7 from float64).
        compile: run the Gaussian SSIM variants and pSSIM through ``torch.compile`` (faster
            once compiled; the first batch of each image size compiles for seconds).
        device: where FID reference statistics are computed.
    """
    wanted = resolve_names(names)
    dtype = _dtype(dtype)
    if fid_drop_last is None:
        fid_drop_last = isinstance(names, str) and names == "gfla"
    metrics = _weight_free_metrics(wanted, dtype, compile, pssim_missing_parts)
    unavailable, info = {}, {}
    fill = {
        "drop": "last partial batch of 64 dropped (GFLA)" if fid_drop_last else "every image used"
    }
    found = (metrics, unavailable, info)  # each part below adds to these
    _lpips_metrics(wanted, pretrained, *found)
    fid = (fid_reference, fid_cache_dir, fid_drop_last, device, progress)
    if ref := _inception_metrics(wanted, pretrained, fid, *found):
        fill["reference"] = f"{ref['folder']} ({ref['n']} images)"
    _pose_metrics(wanted, movenet_model, *found)
    if isinstance(names, str) and names in PROTOCOLS:
        info["protocol_name"] = names
    return MetricSuite(metrics, wanted, unavailable, definitions(wanted, **fill), info)


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``torch.float32``/``float64`` from a dtype or its name (ValueError otherwise)."""
    found = {"float32": torch.float32, "float64": torch.float64}.get(str(dtype).split(".")[-1])
    if found is None:
        raise ValueError(f"metric precision must be float32 or float64; got {dtype!r}")
    return found


def _weight_free_metrics(
    wanted: list[str], dtype: torch.dtype, compile: bool, missing_parts: str
) -> dict[str, Metric]:
    """The metrics that need no pretrained network."""
    makers = {c.name: partial(c, dtype, compile) for c in ssim_variants.METRICS} | {
        "pssim": partial(PartSSIM, missing_parts, compile=compile),
        "psnr": pixel.PSNR,
        "l1": pixel.L1,
        "gt_part_l1": gt_part.GtPartL1,
        "gt_fg_ssim": partial(gt_part.GtFgSSIM, dtype),
    }
    return {n: makers[n]() for n in wanted if n in makers}


def _lpips_metrics(wanted, pretrained, metrics: dict, unavailable: dict, info: dict) -> None:
    """LPIPS-Alex (v0.1 and v0.0) on resolved AlexNet weights."""
    names = [n for n in wanted if n in LPIPS_NAMES]
    w = _weights("alexnet", "AlexNet", pretrained, names, unavailable)
    if w is not None:
        metrics.update({n: LPIPSMetric(n, w.state_dict) for n in names})
        info["alexnet_weights"] = w.location


def _inception_metrics(
    wanted, pretrained, fid: tuple, metrics: dict, unavailable: dict, info: dict
) -> dict | None:
    """FID and IS on one Inception-v3; FID against the reference statistics of ``fid``
    (reference, cache_dir, drop_last, device, progress). Returns those statistics, if used."""
    names = [n for n in wanted if n in INCEPTION_NAMES]
    w = _weights("inception_v3", "Inception-v3", pretrained, names, unavailable)
    if w is None:
        return None
    extractor = InceptionFeatures(w.state_dict)
    info["inception_weights"] = w.location
    reference, cache_dir, drop_last, device, progress = fid
    ref = None
    if "fid_tv" in names and reference is None:
        unavailable["fid_tv"] = (
            "no reference set: give fid.reference_dir=DIR (GFLA: the training "
            "images) or fid.reference_stats=NPZ"
        )
    elif "fid_tv" in names:
        ref = _load_reference(
            reference, extractor.to(device), cache_dir, drop_last, device, progress
        )
        info["fid_reference"] = {"folder": ref["folder"], "n": ref["n"]}
        metrics["fid_tv"] = FID(extractor, ref, drop_last=drop_last)
    for n in ("is_tv", "mask_is_tv"):
        if n in names:
            metrics[n] = InceptionScore(extractor, masked=(n == "mask_is_tv"))
    return ref


def _pose_metrics(wanted, movenet_model, metrics: dict, unavailable: dict, info: dict) -> None:
    """PCK and PCKh of MoveNet, in one pass."""
    names = [n for n in wanted if n in POSE_NAMES]
    if names and movenet_model is None:
        reason = f"no MoveNet model given (movenet_model=PATH to {MOVENET_FILE})"
        unavailable.update(dict.fromkeys(names, reason))
    elif names:
        try:
            estimator = MoveNet(movenet_model)
        except MoveNetUnavailable as exc:
            unavailable.update(dict.fromkeys(names, str(exc)))
        else:
            metrics["movenet"] = MoveNetPCK(estimator, outputs=names)
            info["movenet_model"] = str(estimator.path)


def _weights(kind: str, label: str, pretrained: Mapping | None, names: list, unavailable: dict):
    """The resolved weights ``kind`` of the metrics ``names``; None if none is wanted, or if
    the weights are unavailable (then the reason is put in ``unavailable`` for each name)."""
    if not names:
        return None
    try:
        return resolve(kind, (pretrained or {}).get(kind))
    except WeightsUnavailable as exc:
        unavailable.update(dict.fromkeys(names, f"{label} weights unavailable: {exc}"))
        return None


def _load_reference(ref, extractor, cache_dir, drop_last, device, progress) -> dict:
    """FID reference statistics ``{"mu", "sigma", "n", "folder", ...}`` from an ``.npz`` file
    or a folder of images (computed, and cached in ``cache_dir``)."""
    path = Path(ref)
    if path.is_file() and path.suffix == ".npz":
        return read_statistics(path, folder=str(path))
    return reference_statistics(
        path,
        extractor,
        cache_dir=cache_dir,
        drop_last=drop_last,
        device=device,
        progress=progress,
    )
