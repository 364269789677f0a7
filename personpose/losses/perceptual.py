"""VGG-19 feature losses: perceptual (feature L1/MSE), style (Gram L1) and perceptual-SSIM.

One :class:`VGGFeatures` extractor serves all three terms: it builds only the VGG-19
``features`` layers up to the deepest requested one (up to ``relu1_2`` by default, 39 k
parameters instead of 143 M), loads their ImageNet weights from a torchvision state dict
(keys ``features.<i>.weight``/``.bias``) resolved by :func:`personpose.pretrained.resolve`, and
maps generator outputs ``[-1, 1] -> [0, 1] ->`` ImageNet mean/std before the first conv.
The three losses below take feature dicts, not images: the composite loss computes the
features of the fake and the target once per step and hands them to every VGG term; target
features are detached.

- perceptual: ``sum_l mean |F_l(fake) - F_l(target)|`` (or squared, ``criterion="mse"``).
- style: ``sum_l mean |Gram(F_l(fake)) - Gram(F_l(target))|``,
  ``Gram(F) = F F^T / (C H W)`` per sample (C x C).
- perceptual-SSIM (our variant, the reference leaves it open): ``sum_l (1 - SSIM_l)``
  with ``SSIM_l`` the windowed Gaussian SSIM (``win_size``/``win_sigma``, valid) computed per
  feature channel and averaged, with constants from ``data_range`` (1.0 like the reference,
  whose SSIM module ran on the VGG features with ``data_range=1``). Features are not bounded,
  so no range check is made.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.vgg import cfgs, make_layers

from personpose import pretrained
from personpose.losses.ssim import ssim

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> dict[str, int]:
    """Map ``conv<b>_<i>``, ``relu<b>_<i>``, ``pool<b>`` to indices of ``vgg19().features``."""
    names, idx, block, conv = {}, 0, 1, 1
    for v in cfgs["E"]:
        if v == "M":
            names[f"pool{block}"] = idx
            idx, block, conv = idx + 1, block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = idx
            names[f"relu{block}_{conv}"] = idx + 1
            idx, conv = idx + 2, conv + 1
    return names


VGG19_LAYERS: dict[str, int] = _layer_names()


def _build_features(last: int) -> nn.Sequential:
    """``vgg19().features[: last + 1]`` with the same indices (so state-dict keys match), built
    from the shortest prefix of torchvision's config that holds it; ReLUs not in place."""
    sizes = itertools.accumulate(1 if v == "M" else 2 for v in cfgs["E"])
    n = next(i for i, size in enumerate(sizes, 1) if size > last)
    features = make_layers(cfgs["E"][:n])[: last + 1]
    return nn.Sequential(*(nn.ReLU() if isinstance(m, nn.ReLU) else m for m in features))


class VGGFeatures(nn.Module):
    """Frozen VGG-19 feature extractor for images in ``[-1, 1]``.

    Args:
        layers: names such as ``"relu1_2"``, ``"conv2_1"``, ``"relu3_4"`` (see
            :data:`VGG19_LAYERS`); only the layers up to the deepest one are built.
        weights_path: a torchvision ``vgg19`` state dict file; ``None`` looks in the torch
            cache, then downloads (see :func:`personpose.pretrained.resolve`).
        allow_random: when no weights can be found (and no ``weights_path`` was given, which
            must exist), warn once and keep the random initialisation instead of raising;
            :attr:`pretrained_source` then says ``"random (<reason>)"``.

    Attributes:
        pretrained_source: where the weights came from (``"path: ..."``, ``"cache: ..."``,
            ``"download: ..."`` or ``"random (...)"``); record it with the run's results.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2",),
        weights_path: str | None = None,
        allow_random: bool = False,
    ) -> None:
        super().__init__()
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ValueError("VGGFeatures: give at least one layer name, e.g. ['relu1_2']")
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown:
            raise ValueError(
                f"VGGFeatures: unknown VGG-19 layer(s) {unknown}; expected names "
                f"like relu1_2 or conv3_1, one of {sorted(VGG19_LAYERS)}"
            )
        self.layers = layers
        self._names = {VGG19_LAYERS[name]: name for name in layers}  # feature index -> name
        self.features = _build_features(max(self._names))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.pretrained_source = self._load(weights_path, allow_random)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weights_path: str | None, allow_random: bool) -> str:
        try:
            resolved = pretrained.resolve("vgg19", weights_path)
        except pretrained.WeightsUnavailable as exc:
            if not allow_random or weights_path is not None:
                raise pretrained.WeightsUnavailable(
                    f"VGG-19 weights for the perceptual/style/perceptual-SSIM losses are "
                    f"unavailable: {exc}. Give the file as pretrained.vgg19; to run with a "
                    f"random VGG anyway (the run then does not measure a perceptual loss), set "
                    f"data.allow_random_weights=true and no path."
                ) from exc
            reason = str(exc).split(";")[0]
            _warn_random_once(reason)
            return f"random ({reason})"
        sd = resolved.state_dict
        own = [k for k in self.features.state_dict() if f"features.{k}" in sd]
        try:  # raises naming the missing keys and the mismatched shapes
            self.features.load_state_dict({k: sd[f"features.{k}"] for k in own})
        except RuntimeError as exc:
            raise pretrained.WeightsUnavailable(
                f"VGG-19 state dict from {resolved.location} lacks keys or has other shapes "
                f"than a torchvision vgg19 state dict (keys features.<i>.*): {exc}"
            ) from exc
        return f"{resolved.source}: {resolved.location}"

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode (frozen network)."""
        return super().train(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``images`` (N, 3, H, W) in [-1, 1] -> ``{layer: (N, C_l, H_l, W_l)}``."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"VGGFeatures: expected (N, 3, H, W) images in [-1, 1], got {tuple(images.shape)}"
            )
        h = ((images + 1) / 2 - self.mean) / self.std
        out: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):  # built up to the deepest wanted layer
            h = layer(h)
            if i in self._names:
                out[self._names[i]] = h
        return out


_warned: set[str] = set()


def _warn_random_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(
            f"VGG-19 weights unavailable ({reason}); using a RANDOM VGG-19 because "
            "allow_random=true: perceptual/style terms are not meaningful",
            RuntimeWarning,
            stacklevel=3,
        )


def gram_matrix(f: Tensor) -> Tensor:
    """Gram matrix ``F F^T / (C H W)`` of features (N, C, H, W) -> (N, C, C)."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


class _FeatureLoss(nn.Module):
    """``sum_l self.distance(F_l(fake), F_l(target))`` over ``layers`` of two VGG-19 feature
    dicts (:class:`VGGFeatures` outputs); the target features are detached."""

    def __init__(self, layers: Sequence[str] = ("relu1_2",)) -> None:
        super().__init__()
        self.layers = list(layers)

    def forward(self, fake: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:
        terms = [self.distance(fake[name], target[name].detach()) for name in self.layers]
        return torch.stack(terms).sum()


class PerceptualLoss(_FeatureLoss):
    """``sum_l mean |F_l(fake) - F_l(target)|`` (``criterion="l1"``) or squared (``"mse"``)."""

    def __init__(self, layers: Sequence[str] = ("relu1_2",), criterion: str = "l1") -> None:
        if criterion not in ("l1", "mse"):
            raise ValueError(f"perceptual: criterion must be 'l1' or 'mse', got {criterion!r}")
        super().__init__(layers)
        self.criterion = criterion

    def distance(self, fake: Tensor, target: Tensor) -> Tensor:
        return (F.l1_loss if self.criterion == "l1" else F.mse_loss)(fake, target)


class StyleLoss(_FeatureLoss):
    """``sum_l mean |Gram(F_l(fake)) - Gram(F_l(target))|`` (:func:`gram_matrix`)."""

    def distance(self, fake: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(gram_matrix(fake), gram_matrix(target))


class PerceptualSSIMLoss(_FeatureLoss):
    """``sum_l (1 - SSIM(F_l(fake), F_l(target)))``, the windowed SSIM per feature channel
    (no range check: features are unbounded)."""

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2",),
        win_size: int = 7,
        win_sigma: float = 0.8,
        data_range: float = 1.0,
    ) -> None:
        super().__init__(layers)
        self.win_size, self.win_sigma, self.data_range = win_size, win_sigma, data_range

    def distance(self, fake: Tensor, target: Tensor) -> Tensor:
        k, sigma, rng = self.win_size, self.win_sigma, self.data_range
        return 1.0 - ssim(fake, target, k, sigma, rng, check_range=False)
