"""VGG-19 feature losses: perceptual (feature L1/MSE), style (Gram L1) and perceptual-SSIM.

One :class:`VGGFeatures` extractor serves all three terms: it builds only the VGG-19
``features`` layers up to the deepest requested one (up to ``relu1_2`` by default, 39 k
parameters instead of 143 M), loads their ImageNet weights from a torchvision state dict
(keys ``features.<i>.weight``/``.bias``) resolved by :func:`personpose.pretrained.resolve`, and
maps generator outputs ``[-1, 1] -> [0, 1] ->`` ImageNet mean/std before the first conv.
The three losses below take feature dicts, not images: the composite loss computes the
features of the fake and the target once per step and hands them to every VGG term; target
features are detached.

- perceptual: ``sum_l w_l * mean |F_l(fake) - F_l(target)|`` (or squared, ``criterion="mse"``).
- style: ``sum_l w_l * mean |Gram(F_l(fake)) - Gram(F_l(target))|``,
  ``Gram(F) = F F^T / (C H W)`` per sample (C x C).
- perceptual-SSIM (our variant, the reference leaves it open): ``sum_l w_l * (1 - SSIM_l)``
  with ``SSIM_l`` the windowed Gaussian SSIM (``win_size``/``win_sigma``, valid) computed per
  feature channel and averaged, with constants from ``data_range`` (1.0 like the reference,
  whose SSIM module ran on the VGG features with ``data_range=1``). Features are not bounded,
  so no range check is made.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from personpose import pretrained
from personpose.losses.ssim import ssim

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_LAYERS",
    "PerceptualLoss",
    "PerceptualSSIMLoss",
    "StyleLoss",
    "VGGFeatures",
    "gram_matrix",
    "perceptual_distance",
    "perceptual_ssim_distance",
    "style_distance",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision vgg19().features: 16 convs (3x3, padding 1), ReLUs, 5 max-pools.
_VGG19_CFG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)


def _layer_names() -> dict[str, int]:
    """Map ``conv<b>_<i>``, ``relu<b>_<i>``, ``pool<b>`` to indices of ``vgg19().features``."""
    names, idx, block, conv = {}, 0, 1, 1
    for v in _VGG19_CFG:
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
    """``vgg19().features[: last + 1]`` with the same indices (so state-dict keys match)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG19_CFG:
        if len(layers) > last:
            break
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_ch, v, kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=False))
            in_ch = v
    return nn.Sequential(*layers[: last + 1])


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
        self._index = {name: VGG19_LAYERS[name] for name in layers}
        self.features = _build_features(max(self._index.values()))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.pretrained_source = self._load(weights_path, allow_random)
        for p in self.parameters():
            p.requires_grad_(False)
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
        own = self.features.state_dict()
        wanted = {k: sd.get(f"features.{k}") for k in own}
        missing = [f"features.{k}" for k, v in wanted.items() if v is None]
        if missing:
            raise pretrained.WeightsUnavailable(
                f"VGG-19 state dict from {resolved.location} lacks {missing[:4]}"
                f"{' ...' if len(missing) > 4 else ''}; expected a torchvision vgg19 state dict"
            )
        for k, v in wanted.items():
            if v.shape != own[k].shape:
                raise pretrained.WeightsUnavailable(
                    f"VGG-19 state dict from {resolved.location}: features.{k} has shape "
                    f"{tuple(v.shape)}, expected {tuple(own[k].shape)} (torchvision vgg19)"
                )
        self.features.load_state_dict(wanted)
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
        wanted = {i: name for name, i in self._index.items()}
        last = max(wanted)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
            if i == last:
                break
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


def _layer_weights(layers: Sequence[str], layer_weights: Sequence[float] | None) -> list[float]:
    if layer_weights is None:
        return [1.0] * len(layers)
    if len(layer_weights) != len(layers):
        raise ValueError(
            f"layer_weights has {len(layer_weights)} entries for {len(layers)} "
            f"layers {list(layers)}"
        )
    return [float(w) for w in layer_weights]


def perceptual_distance(
    fake: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    layers: Sequence[str],
    criterion: str = "l1",
    layer_weights: Sequence[float] | None = None,
) -> Tensor:
    """``sum_l w_l * mean(|F_l(fake) - F_l(target)|)`` (``"l1"``) or squared (``"mse"``);
    feature dicts as returned by :class:`VGGFeatures`; target features are detached."""
    if criterion not in ("l1", "mse"):
        raise ValueError(f"perceptual: criterion must be 'l1' or 'mse', got {criterion!r}")
    dist = F.l1_loss if criterion == "l1" else F.mse_loss
    terms = [
        w * dist(fake[name], target[name].detach())
        for name, w in zip(layers, _layer_weights(layers, layer_weights))
    ]
    return torch.stack(terms).sum()


def gram_matrix(f: Tensor) -> Tensor:
    """Gram matrix ``F F^T / (C H W)`` of features (N, C, H, W) -> (N, C, C)."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def style_distance(
    fake: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    layers: Sequence[str],
    layer_weights: Sequence[float] | None = None,
) -> Tensor:
    """``sum_l w_l * mean(|Gram(F_l(fake)) - Gram(F_l(target))|)`` (target detached)."""
    terms = [
        w * F.l1_loss(gram_matrix(fake[name]), gram_matrix(target[name].detach()))
        for name, w in zip(layers, _layer_weights(layers, layer_weights))
    ]
    return torch.stack(terms).sum()


def perceptual_ssim_distance(
    fake: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    layers: Sequence[str],
    win_size: int = 7,
    win_sigma: float = 0.8,
    data_range: float = 1.0,
    layer_weights: Sequence[float] | None = None,
) -> Tensor:
    """``sum_l w_l * (1 - SSIM(F_l(fake), F_l(target)))``, per-channel windowed SSIM of the
    feature maps (target detached; no range check, features are unbounded)."""
    terms = []
    for name, w in zip(layers, _layer_weights(layers, layer_weights)):
        s = ssim(
            fake[name], target[name].detach(), win_size, win_sigma, data_range, check_range=False
        )
        terms.append(w * (1.0 - s))
    return torch.stack(terms).sum()


class PerceptualLoss(nn.Module):
    """:func:`perceptual_distance` on VGG-19 feature dicts (``VGGFeatures`` outputs)."""

    def __init__(self, layers: Sequence[str] = ("relu1_2",), criterion: str = "l1") -> None:
        super().__init__()
        self.layers, self.criterion = list(layers), criterion

    def forward(self, fake: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:
        return perceptual_distance(fake, target, self.layers, self.criterion)


class StyleLoss(nn.Module):
    """:func:`style_distance` (Gram-matrix L1) on VGG-19 feature dicts."""

    def __init__(self, layers: Sequence[str] = ("relu1_2",)) -> None:
        super().__init__()
        self.layers = list(layers)

    def forward(self, fake: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:
        return style_distance(fake, target, self.layers)


class PerceptualSSIMLoss(nn.Module):
    """:func:`perceptual_ssim_distance` (``1 - SSIM`` of features) on VGG-19 feature dicts."""

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2",),
        win_size: int = 7,
        win_sigma: float = 0.8,
        data_range: float = 1.0,
    ) -> None:
        super().__init__()
        self.layers = list(layers)
        self.win_size, self.win_sigma, self.data_range = win_size, win_sigma, data_range

    def forward(self, fake: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:
        return perceptual_ssim_distance(
            fake, target, self.layers, self.win_size, self.win_sigma, self.data_range
        )
