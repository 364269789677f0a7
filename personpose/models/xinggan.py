"""XingGAN generator (Tang et al., "XingGAN for Person Image Generation", ECCV 2020),
docs/models.md#xinggan.

PATN's two encoders (image P1; pose cat(BP1, BP2)), ``n_blocks`` crossing blocks in which the
image and pose streams attend to each other, then 10 RGB candidates decoded from each stream
and 21 soft attention maps that blend the 20 candidates and P1. Paper size (ngf 64, 9 blocks):
44,853,189 parameters with batch norm, 44,844,634 with instance norm.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from personpose.models.init import apply_init
from personpose.models.layers import (
    TwoStreamBlock,
    TwoStreamGenerator,
    norm_layer,
    padded_conv,
    upsampler,
)


class CrossingBlock(TwoStreamBlock):
    """One crossing block at ``channels`` (C) feature maps; no residual from the block input.

    The two streams of :class:`~personpose.models.layers.TwoStreamBlock` (same arguments),
    then attention (one set of 1x1 convs with bias, shared by both directions): a stream's output
    is ``h + gamma * attend(h, other)``, queries and values from ``h``, keys from the other
    stream's ``h``; ``gamma`` (one scalar) starts at 0. Returns ``(img', cat(img', pose'))``.
    """

    def __init__(self, channels: int, **kwargs: Any) -> None:
        if channels < 8:
            raise ValueError(f"CrossingBlock: channels={channels}; need >= 8 (query/key: C/8)")
        super().__init__(channels, **kwargs)
        self.query = nn.Conv2d(channels, channels // 8, 1)
        self.key = nn.Conv2d(channels, channels // 8, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def attend(self, h: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``V A^T`` with ``A = softmax_keys(Q^T K)`` (no 1/sqrt(d) scaling): Q, V from ``h``,
        K from ``other``, both (N, C, h, w); returns (N, C, h, w)."""
        n, c, height, width = h.shape
        q = self.query(h).flatten(2).transpose(1, 2)  # (N, HW, C/8): one row per query
        k = self.key(other).flatten(2).transpose(1, 2)  # (N, HW, C/8)
        v = self.value(h).flatten(2).transpose(1, 2)  # (N, HW, C)
        # A fused kernel (flash attention on CPU) never stores the (HW x HW) matrix but needs
        # one width for q, k and v: zero channels added to q and k leave Q^T K unchanged.
        # The same as softmax(q @ k^T) @ v to 1e-5 (tests); docs/models.md#xinggan.
        pad = (0, v.shape[-1] - q.shape[-1])
        out = F.scaled_dot_product_attention(F.pad(q, pad), F.pad(k, pad), v, scale=1.0)
        return out.transpose(1, 2).reshape(n, c, height, width)

    def forward(self, img: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img (N, C, h, w), pose (N, Cp, h, w) -> (img' (N, C, h, w), pose' (N, 2C, h, w))."""
        img_h, pose_h = self.image_stream(img), self.pose_stream(pose)
        img = img_h + self.gamma * self.attend(img_h, pose_h)
        pose = pose_h + self.gamma * self.attend(pose_h, img_h)
        return img, torch.cat((img, pose), dim=1)


class XingGANGenerator(TwoStreamGenerator):
    """XingGAN generator: ``forward(P1, BP1, BP2)`` -> generated image (N, 3, H, W) in [-1, 1].

    ``output = sum_i maps[i] * image_candidate[i] + sum_i maps[10 + i] * pose_candidate[i]
    + maps[20] * P1`` (i < 10; no final tanh): the maps (softmax over 21 channels) come from
    cat(image features, pose features) after the last block, the candidates (tanh) from each
    stream's decoder; the pose decoder starts with a 1x1 transposed conv 2C -> C.

    Args: as :class:`personpose.models.patn.PATNGenerator` (``ngf``, ``n_blocks``, ``norm``,
    ``dropout``, ``padding``, ``use_bias``: conv biases, ``None`` = none before batch norm;
    the 7x7 candidate convs and the attention's 1x1 convs always have one), ``init``
    ("normal": PATN's N(0, 0.02) conv weights, q/k/v included, and N(1, 0.02) BN scales;
    "default": PyTorch's), plus ``n_candidates`` per stream (10 in the paper).
    """

    block = CrossingBlock
    min_down = 1

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
        n_candidates: int = 10,
        init: str = "normal",
    ) -> None:
        if n_candidates < 1:
            raise ValueError(f"XingGANGenerator: need n_candidates >= 1; got {n_candidates}")
        super().__init__(
            ngf, n_blocks, norm, dropout, padding, use_bias, image_channels, pose_channels, n_down
        )
        self.n_candidates, bias, c = n_candidates, self.layer_args["bias"], self.width
        widths = [c // 2**i for i in range(n_down + 1)]  # 256, 128, 64

        def candidates() -> list[nn.Module]:  # upsampler, 7x7 conv to the K RGB candidates
            up = upsampler(widths, norm=norm, bias=bias)
            return up + padded_conv(ngf, n_candidates * image_channels, 7, padding, True)

        self.image_decoder = nn.Sequential(*candidates(), nn.Tanh())
        self.pose_decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 1, bias=bias),
            norm_layer(norm, c),
            nn.ReLU(inplace=True),
            *candidates(),
            nn.Tanh(),
        )
        self.map_head = nn.Sequential(
            *upsampler([3 * c, *widths[:-1]], norm=norm, bias=bias),  # 768, 256, 128
            nn.ConvTranspose2d(widths[-2], 2 * n_candidates + 1, 1, bias=bias),
        )
        self.maps = nn.Softmax(dim=1)  # of the head's logits, in float32 (forward)
        apply_init(self, init)

    def forward(self, P1: torch.Tensor, BP1: torch.Tensor, BP2: torch.Tensor) -> torch.Tensor:
        """P1 (N, 3, H, W) in [-1, 1], BP1 and BP2 (N, 18, H, W) -> (N, 3, H, W) in [-1, 1]."""
        img, pose = self.trunk(P1, BP1, BP2)
        logits = self.map_head(torch.cat((img, pose), dim=1))  # (N, 2K + 1, H, W)
        shape = (P1.shape[0], self.n_candidates, self.image_channels, *P1.shape[2:])
        candidates = torch.cat(
            (self.image_decoder(img).reshape(shape), self.pose_decoder(pose).reshape(shape)), dim=1
        )  # (N, 2K, 3, H, W)
        # The convex blend in float32 (softmax, products and sum are not autocast ops): in bf16
        # the maps sum to 1 only to ~4e-3 and the output leaves [-1, 1]. No-op in float32.
        maps = self.maps(logits.float())  # sums to 1
        return (maps[:, :-1, None] * candidates.float()).sum(1) + maps[:, -1:] * P1.float()
