"""PATN discriminators (ResNet-style, as in Zhu et al., CVPR 2019), docs/models.md#discriminators.

The same class serves both: shape D on cat(img, BP2) (3 + 18 = 21 channels) and appearance D
on cat(img, P1) (6 channels). Paper size (ndf 64, 3 blocks, batch norm): 3,977,408 and
3,930,368 parameters (3.98 M, 3.93 M).

Faithful default (``head="faithful"``): no final 1-channel conv, the GAN loss runs on the
(N, 256, H/4, W/4) map, each channel a logit. The reference applies a sigmoid then BCE
(Market); here the output is logits, for BCE-with-logits (numerically the same loss).
``head="1ch"`` adds a 3x3 conv (with bias) to 1 channel: (N, 1, H/4, W/4).
"""

from __future__ import annotations

import torch
from torch import nn

from personpose.models.init import apply_init
from personpose.models.layers import conv_stream, encoder, resolve_bias

HEADS = ("faithful", "1ch")


class ResidualBlock(nn.Module):
    """x + conv3x3-norm-ReLU-(dropout)-conv3x3-norm(x), (N, C, h, w) -> (N, C, h, w)."""

    def __init__(
        self, channels: int, *, norm: str, dropout: bool, padding: str, bias: bool
    ) -> None:
        super().__init__()
        self.body = conv_stream(
            channels, channels, channels, norm=norm, padding=padding, bias=bias, dropout=dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PATNDiscriminator(nn.Module):
    """PATN discriminator: (N, in_channels, H, W) -> logits (N, 256 or 1, H/4, W/4).

    Args:
        in_channels: 21 for the shape D (img, BP2), 6 for the appearance D (img, P1).
        ndf: base width (64); the residual blocks run at ``ndf * 2**n_down`` channels.
        n_blocks: residual blocks (3 in the paper, PATN's ``n_layers_D``).
        norm: "batch" | "instance" (no affine) | "none".
        dropout: Dropout(0.5) inside each residual block (on in PATN).
        head: "faithful" (no final conv) | "1ch" (3x3 conv to one channel).
        init: "default" (PyTorch's own init, as in the study's code, which never passes its
            discriminators to the initialiser) | "normal" (PATN's, as for the generator).
        padding, use_bias, n_down: as in :class:`~personpose.models.patn.PATNGenerator`.
    """

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,
        n_blocks: int = 3,
        norm: str = "batch",
        dropout: bool = True,
        head: str = "faithful",
        padding: str = "reflect",
        use_bias: bool | None = None,
        n_down: int = 2,
        init: str = "default",
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"PATNDiscriminator: head={head!r}; expected one of {HEADS}")
        bias = resolve_bias(norm, use_bias)
        self.in_channels = in_channels
        c = ndf * 2**n_down
        kw = dict(norm=norm, padding=padding, bias=bias)
        layers: list[nn.Module] = [encoder(in_channels, ndf, n_down, **kw)]
        layers += [ResidualBlock(c, dropout=dropout, **kw) for _ in range(n_blocks)]
        if head == "1ch":
            layers.append(nn.Conv2d(c, 1, kernel_size=3, padding=1, bias=True))
        self.model = nn.Sequential(*layers)
        self.out_channels = 1 if head == "1ch" else c
        apply_init(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, in_channels, H, W) -> logits (N, out_channels, H/4, W/4)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PATNDiscriminator.forward: input shape {tuple(x.shape)}; expected "
                f"(N, {self.in_channels}, H, W)"
            )
        return self.model(x)
