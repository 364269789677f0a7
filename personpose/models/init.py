"""Weight initialisation: PATN's "normal" scheme or PyTorch's default (docs/models.md)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

INITS = ("normal", "default")  # PATN's weights_init_normal | PyTorch's own per-layer init
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)


def apply_init(module: nn.Module, init: str) -> nn.Module:
    """``init="normal"``: :func:`init_weights` from the global RNG; ``"default"``: leave the
    layers as PyTorch built them (what the study's code does for its discriminators)."""
    if init not in INITS:
        raise ValueError(f"{type(module).__name__}: init={init!r}; expected one of {INITS}")
    return init_weights(module) if init == "normal" else module


@torch.no_grad()
def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise ``module`` in place as PATN's ``weights_init_normal`` does, and return it.

    Conv, transposed-conv and linear weights ~ N(0, std), their biases left at PyTorch's
    default U(-1/sqrt(fan_in), 1/sqrt(fan_in)); batch-norm scales ~ N(1, std) and shifts 0
    (SyncBatchNorm included). Affine-free norms have nothing to set. Drawn from the global RNG
    (deterministic given ``torch.manual_seed``).
    """
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, _BatchNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            m.bias.zero_()
    return module
