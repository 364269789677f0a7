"""PATN generator: Pose-Attentional Transfer Network (Zhu et al., CVPR 2019), docs/models.md.

Two encoders (image P1; pose cat(BP1, BP2)), ``n_blocks`` Pose-Attentional Transfer Blocks
at 1/4 resolution, one decoder. Paper size (ngf 64, 9 blocks, batch norm): 41,365,763
parameters (41.4 M).
"""

from __future__ import annotations

import torch
from torch import nn

from personpose.models.init import apply_init
from personpose.models.layers import TwoStreamBlock, TwoStreamGenerator, padded_conv, upsampler


class PATBlock(TwoStreamBlock):
    """One Pose-Attentional Transfer Block at ``channels`` (C) feature maps: the two streams of
    :class:`~personpose.models.layers.TwoStreamBlock` (same arguments), then
    ``att = sigmoid(pose_out)``; ``img' = img + image_stream(img) * att``;
    ``pose' = cat(pose_out, img')`` (N, 2C, h, w).
    """

    def forward(self, img: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img (N, C, h, w), pose (N, Cp, h, w) -> (img' (N, C, h, w), pose' (N, 2C, h, w))."""
        pose_out = self.pose_stream(pose)
        img = img + self.image_stream(img) * torch.sigmoid(pose_out)
        return img, torch.cat((pose_out, img), dim=1)


class PATNGenerator(TwoStreamGenerator):
    """PATN generator: ``forward(P1, BP1, BP2)`` -> generated image (N, 3, H, W) in [-1, 1].

    Args:
        ngf: base width (64 in the paper); the blocks run at ``ngf * 2**n_down`` channels.
        n_blocks: number of PAT blocks (9 in the paper).
        norm: "batch" | "instance" (no affine, no running stats) | "none".
        dropout: Dropout(0.5) between the two convs of each block stream (PATN's default
            ``use_dropout`` is on unless ``--no_dropout``).
        padding: padding of the stride-1 convs: "reflect" (PATN) | "replicate" | "zero".
        use_bias: conv biases; ``None`` = PATN's rule (none before batch norm). The output
            7x7 conv always has a bias.
        image_channels, pose_channels: channels of P1 (3) and of each pose map (18).
        n_down: stride-2 stages (2: H and W must be divisible by 4).
        init: "normal" (PATN: N(0, 0.02) conv weights, N(1, 0.02) BN scales, conv biases at
            PyTorch's default; :func:`~personpose.models.init.init_weights`, from the global
            RNG) | "default" (PyTorch's own init).
    """

    block = PATBlock

    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "batch",
        dropout: bool = False,
        padding: str = "reflect",
        use_bias: bool | None = None,
        image_channels: int = 3,
        pose_channels: int = 18,
        n_down: int = 2,
        init: str = "normal",
    ) -> None:
        super().__init__(
            ngf, n_blocks, norm, dropout, padding, use_bias, image_channels, pose_channels, n_down
        )
        bias = self.layer_args["bias"]
        c = self.width
        up = upsampler([c // 2**i for i in range(n_down + 1)], norm=norm, bias=bias)
        up += padded_conv(ngf, image_channels, 7, padding, bias=True)
        up.append(nn.Tanh())
        self.decoder = nn.Sequential(*up)
        apply_init(self, init)

    def forward(self, P1: torch.Tensor, BP1: torch.Tensor, BP2: torch.Tensor) -> torch.Tensor:
        """P1 (N, 3, H, W) in [-1, 1], BP1 and BP2 (N, 18, H, W) -> (N, 3, H, W) in [-1, 1]."""
        return self.decoder(self.trunk(P1, BP1, BP2)[0])
