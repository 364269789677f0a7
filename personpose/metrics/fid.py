"""Fréchet Inception Distance on torchvision Inception-v3 pool features (``fid_tv``).

``FID = |mu_g - mu_r|^2 + tr(S_g) + tr(S_r) - 2 tr((S_g S_r)^(1/2))`` with means and sample
covariances (``N - 1``) of the 2048-d features of the generated images and of a reference
folder (the training set by default, as GFLA). The trace of the matrix square root is taken
from the eigenvalues of ``S_r^(1/2) S_g S_r^(1/2)`` (symmetric, so real and stable; it equals
``tr sqrtm(S_g S_r)``). GFLA's protocol drops the last partial batch of 64 images, from both
sets (``drop_last=True``).

Reference statistics are computed once and cached as ``<cache_dir>/fid_ref_<key>.npz``, the
key hashing the folder's file names and bytes, the weights and the preprocessing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat
from tqdm.auto import tqdm

from personpose.data.images import image_files, read_rgb
from personpose.metrics.base import SuiteMetric
from personpose.metrics.inception import PREPROCESS, InceptionFeatures

GFLA_BATCH = 64


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64 numpy)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    w, v = np.linalg.eigh((s2 + s2.T) / 2)
    root2 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root2 @ s1 @ root2
    eig = np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig).sum())


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and sample covariance ``(D, D)`` of features ``(N, D)`` (float64)."""
    f = np.asarray(features, np.float64)
    if f.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 images; got {f.shape[0]}")
    return f.mean(0), np.cov(f, rowvar=False)


def keep_full_batches(n: int, batch: int = GFLA_BATCH) -> int:
    """How many of ``n`` images GFLA's protocol uses: whole batches of ``batch`` only."""
    return (n // batch) * batch


def folder_key(files: list[Path], extra: str) -> str:
    """sha256 over file names and bytes plus ``extra`` (weights, preprocessing, options)."""
    h = hashlib.sha256(extra.encode())
    for p in files:
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:24]


def weights_fingerprint(extractor: InceptionFeatures) -> str:
    """A short hash of the classifier weights, naming which Inception weights were used."""
    w = extractor.net.fc.weight.detach().cpu().contiguous().numpy().tobytes()
    return hashlib.sha256(w).hexdigest()[:16]


def read_statistics(path: Path, **fields) -> dict:
    """``mu``, ``sigma`` and ``n`` of a statistics ``.npz`` file, plus ``fields``."""
    with np.load(path) as z:
        return {"mu": z["mu"], "sigma": z["sigma"], "n": int(z["n"]), **fields}


def reference_statistics(
    folder: str | Path,
    extractor: InceptionFeatures,
    cache_dir: str | Path | None = None,
    drop_last: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict:
    """Mean and covariance of the pool features of every image in ``folder`` (cached).

    Returns ``{"mu", "sigma", "n", "key", "folder", "cached"}``; with ``drop_last`` only
    ``keep_full_batches(n)`` images (in name order) are used. Batches of ``GFLA_BATCH``.
    """
    files = image_files(Path(folder), "FID reference", FileNotFoundError)
    options = (
        f"{PREPROCESS}|w={weights_fingerprint(extractor)}|drop_last={drop_last}|b={GFLA_BATCH}"
    )
    key = folder_key(files, options)
    path = Path(cache_dir) / f"fid_ref_{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        return read_statistics(path, key=key, folder=str(folder), cached=True)
    n = keep_full_batches(len(files)) if drop_last else len(files)
    if n < 2:
        raise ValueError(f"FID reference folder {folder}: {len(files)} images, {n} usable")
    feats = []
    for i in tqdm(
        range(0, n, GFLA_BATCH), desc="FID reference", unit="batch", disable=not progress
    ):
        images = [torch.from_numpy(read_rgb(p)) for p in files[i : min(n, i + GFLA_BATCH)]]
        batch = [extractor.preprocess(x.permute(2, 0, 1).float()[None] / 255) for x in images]
        pool, _ = extractor.from_preprocessed(torch.cat(batch).to(device))
        feats.append(pool.double().cpu().numpy())
    mu, sigma = feature_statistics(np.concatenate(feats))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, mu=mu, sigma=sigma, n=n)
        tmp.replace(path)
    return {"mu": mu, "sigma": sigma, "n": n, "key": key, "folder": str(folder), "cached": False}


class FID(SuiteMetric):
    """``fid_tv``: FID of the generated images against fixed reference statistics."""

    name = "fid_tv"
    higher_is_better = False

    def __init__(
        self, extractor: InceptionFeatures, reference: dict, drop_last: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.extractor = extractor
        self.reference = reference
        self.drop_last = drop_last
        self.add_state("features", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor, kp2=None, label2=None, source=None) -> None:
        pool, _ = self.extractor(preds)
        self.features.append(pool.double())

    def compute(self) -> Tensor:
        self.skipped = {}
        if not self.features:
            return self.skip("no image could be scored")
        feats = dim_zero_cat(self.features).cpu().numpy()
        n = keep_full_batches(len(feats)) if self.drop_last else len(feats)
        if n < 2:
            return self.skip(
                f"{len(feats)} generated images, {n} usable (drop_last={self.drop_last})"
            )
        mu, sigma = feature_statistics(feats[:n])
        fid = frechet_distance(mu, sigma, self.reference["mu"], self.reference["sigma"])
        return torch.tensor(fid, dtype=torch.float64)
