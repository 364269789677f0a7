"""LPIPS (Zhang et al., CVPR 2018) with the AlexNet trunk, through the ``lpips`` package.

``lpips_alex`` uses the package's v0.1 linear weights, ``lpips_alex_v00`` the original v0.0
release (which also skips v0.1's input scaling layer). The linear-layer weights ship inside
the package (``lpips/weights/v0.X/alex.pth``); the AlexNet trunk takes torchvision's ImageNet
weights, resolved by :mod:`personpose.pretrained` (never downloaded by ``lpips`` itself: the
network is built with a random trunk and the resolved state dict loaded into it).

Per image pair, images in [0, 1] mapped to [-1, 1]: for each of the 5 ReLU outputs of
AlexNet, features unit-normalised over channels, squared difference, the layer's 1x1 linear
weights, spatial mean; the sum over layers. The metric is the mean over images.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import Tensor

from personpose.metrics.base import Frozen, PerImageMetric

VERSIONS = {"lpips_alex": "0.1", "lpips_alex_v00": "0.0"}
# torchvision alexnet.features index -> the lpips package's slice holding that conv layer
_ALEX_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def alexnet_to_lpips(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename torchvision AlexNet ``features.{i}.*`` keys to lpips ``net.slice{k}.{i}.*``."""
    out = {}
    for i, k in _ALEX_SLICES.items():
        for p in ("weight", "bias"):
            key = f"features.{i}.{p}"
            if key not in state_dict:
                raise KeyError(
                    f"AlexNet state dict lacks {key!r}; expected torchvision's alexnet keys"
                )
            out[f"net.slice{k}.{i}.{p}"] = state_dict[key]
    return out


def build_lpips(version: str, alexnet_state_dict: dict[str, Tensor]) -> Frozen:
    """``lpips.LPIPS`` (AlexNet, linear weights of ``version``) with the given trunk weights."""
    import lpips

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # torchvision's 'pretrained' deprecation notice
        net = lpips.LPIPS(
            pretrained=True, net="alex", version=version, pnet_rand=True, verbose=False
        )
    missing, unexpected = net.load_state_dict(alexnet_to_lpips(alexnet_state_dict), strict=False)
    trunk_missing = [k for k in missing if k.startswith("net.")]
    if trunk_missing or unexpected:
        raise RuntimeError(f"LPIPS trunk weights did not load: missing {trunk_missing}")
    return Frozen(net)


class LPIPSMetric(PerImageMetric):
    """Mean LPIPS-Alex over images; ``name`` is ``lpips_alex`` (v0.1) or ``lpips_alex_v00``."""

    higher_is_better = False

    def __init__(self, name: str, alexnet_state_dict: dict[str, Tensor], **kwargs) -> None:
        super().__init__(**kwargs)
        if name not in VERSIONS:
            raise ValueError(f"unknown LPIPS metric {name!r}; known: {sorted(VERSIONS)}")
        self.name = name
        self.version = VERSIONS[name]
        self.net = build_lpips(self.version, alexnet_state_dict)

    def score(self, preds, target):
        d = self.net(preds.float() * 2 - 1, target.float() * 2 - 1)
        return d.flatten().to(torch.float64)
