"""PATN's weight initialisation (the pix2pix "normal" init; docs/models.md#initialisation)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)


@torch.no_grad()
def init_weights(
    module: nn.Module, std: float = 0.02, generator: torch.Generator | None = None
) -> nn.Module:
    """Initialise ``module`` in place and return it.

    Conv, transposed-conv and linear weights ~ N(0, std); batch-norm scales ~ N(1, std)
    (SyncBatchNorm included); all their biases 0. Affine-free norms have nothing to set.
    Deterministic given ``generator`` (a CPU ``torch.Generator``; parameters on other devices
    are drawn on CPU and copied) or, without one, given ``torch.manual_seed``.
    """
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            _normal(m.weight, 0.0, std, generator)
        elif isinstance(m, _BatchNorm) and m.weight is not None:
            _normal(m.weight, 1.0, std, generator)
        else:
            continue
        if m.bias is not None:
            m.bias.zero_()
    return module


def _normal(t: torch.Tensor, mean: float, std: float, generator: torch.Generator | None) -> None:
    if generator is None or generator.device == t.device:
        nn.init.normal_(t, mean, std, generator=generator)
    else:
        draw = torch.empty(t.shape, dtype=t.dtype, device=generator.device)
        t.copy_(nn.init.normal_(draw, mean, std, generator=generator))
