"""Where pretrained weights come from: explicit path -> local torch cache -> download.

Every pretrained network of the project (VGG-19 for the perceptual/style losses, AlexNet
for LPIPS, Inception-v3 for FID/IS) is resolved here, so that "which weights did this
number use" has one answer. When no source works, :class:`WeightsUnavailable` is raised
with a message that says how to supply the file; callers decide whether that is an error
(a loss on real data), a skipped metric (recorded with the reason), or, where the config
explicitly allows it, a random initialisation that is recorded.

Set ``PERSONPOSE_OFFLINE=1`` to never attempt a download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch


class WeightsSpec(NamedTuple):
    """One of torchvision's published weight files: its file name and what it holds."""

    filename: str
    description: str

    @property
    def url(self) -> str:
        return f"https://download.pytorch.org/models/{self.filename}"


# torchvision's published ImageNet weights (download.pytorch.org), keyed by our names.
REGISTRY: dict[str, WeightsSpec] = {
    "vgg19": WeightsSpec("vgg19-dcbb9e9d.pth", "torchvision VGG-19 ImageNet (IMAGENET1K_V1)"),
    "alexnet": WeightsSpec(
        "alexnet-owt-7be5be79.pth",
        "torchvision AlexNet ImageNet (IMAGENET1K_V1), the LPIPS backbone",
    ),
    "inception_v3": WeightsSpec(
        "inception_v3_google-0cc3c7bd.pth", "torchvision Inception-v3 ImageNet (IMAGENET1K_V1)"
    ),
}


class WeightsUnavailable(RuntimeError):
    """No source (path, cache, download) could provide the requested weights."""


class ResolvedWeights(NamedTuple):
    """A loaded state dict and where it came from (``path``, ``cache`` or ``download``)."""

    state_dict: dict[str, torch.Tensor]
    source: str
    location: str


def cache_dir() -> Path:
    """The folder torch uses for downloaded checkpoints (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, wrong format
        raise WeightsUnavailable(f"could not read weights file {path}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsUnavailable(f"weights file {path} does not hold a state dict")
    return obj


def resolve(name: str, path: str | os.PathLike | None = None) -> ResolvedWeights:
    """Load the state dict of pretrained network ``name`` (a key of :data:`REGISTRY`).

    Order: ``path`` if given (it must exist), then the torch hub cache, then a download
    (unless ``PERSONPOSE_OFFLINE`` is 1, true or yes). Files are read with
    ``torch.load(weights_only=True)``.

    Raises:
        KeyError: unknown ``name``.
        WeightsUnavailable: no source worked; the message says how to supply the file.
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown pretrained network {name!r}; known: {sorted(REGISTRY)}")
    spec = REGISTRY[name]
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"pretrained.{name}: file {p} does not exist")
        return ResolvedWeights(_load(p), "path", str(p))
    cached = cache_dir() / spec.filename
    how_to_supply = (  # by hand
        f"download {spec.url} ({spec.description}) on a machine with internet access and "
        f"either put it at {cached} or pass its path in the config "
        f"(pretrained.{name}=/path/to/{spec.filename})"
    )
    if cached.is_file():
        return ResolvedWeights(_load(cached), "cache", str(cached))
    if os.environ.get("PERSONPOSE_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise WeightsUnavailable(
            f"{spec.description} not found in the cache and PERSONPOSE_OFFLINE=1; " + how_to_supply
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(cached), progress=True)
    except Exception as exc:  # no network, HTTP error
        cached.unlink(missing_ok=True)
        raise WeightsUnavailable(
            f"{spec.description} could not be downloaded ({type(exc).__name__}: {exc}); "
            + how_to_supply
        ) from exc
    return ResolvedWeights(_load(cached), "download", spec.url)
