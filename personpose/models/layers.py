"""Building blocks shared by the generators (PATN, XingGAN) and the PATN discriminators: norms,
padded convs, encoders, upsamplers, the blocks' two conv streams, the generators' shared trunk
(input check, encoders, blocks).

PATN conventions (Zhu et al., CVPR 2019):
- norm "batch" (Market) or "instance" without affine parameters or running statistics
  (DeepFashion); "none" is ours;
- convolutions carry a bias only when the norm does not absorb it (PATN: bias iff instance
  norm; here bias iff the norm is not "batch", so "none" gets biases too);
- 3x3 and 7x7 stride-1 convolutions are reflection padded; stride-2 convolutions use zero
  padding 1.
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming ``key`` and the choices."""
    if value not in choices:
        raise ValueError(f"personpose.models: {key}={value!r}; expected one of {choices}")
    return value


def resolve_bias(norm: str, use_bias: bool | None) -> bool:
    """Conv bias rule: an explicit ``use_bias`` wins; ``None`` means "no bias before batch norm"."""
    check_choice("norm", norm, NORMS)
    return norm != "batch" if use_bias is None else bool(use_bias)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """Norm over ``channels`` maps: BatchNorm2d, affine-free InstanceNorm2d or Identity."""
    check_choice("norm", norm, NORMS)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def padded_conv(
    in_channels: int, out_channels: int, kernel_size: int, padding: str, bias: bool
) -> list[nn.Module]:
    """Stride-1 "same" convolution: ``[pad, conv]`` for reflect/replicate, ``[conv]`` for zero."""
    check_choice("padding", padding, PADDINGS)
    pad = kernel_size // 2
    if padding == "zero":
        return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=bias)]
    pad_layer = nn.ReflectionPad2d(pad) if padding == "reflect" else nn.ReplicationPad2d(pad)
    return [pad_layer, nn.Conv2d(in_channels, out_channels, kernel_size, padding=0, bias=bias)]


def conv_stream(
    in_channels: int,
    mid_channels: int,
    out_channels: int,
    *,
    norm: str,
    padding: str,
    bias: bool,
    dropout: bool,
    last_norm: bool = True,
) -> nn.Sequential:
    """conv3x3-norm-ReLU-(Dropout 0.5)-conv3x3-(norm): (N, in, H, W) -> (N, out, H, W)."""
    layers: list[nn.Module] = padded_conv(in_channels, mid_channels, 3, padding, bias)
    layers += [norm_layer(norm, mid_channels), nn.ReLU(inplace=True)]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers += padded_conv(mid_channels, out_channels, 3, padding, bias)
    if last_norm:
        layers.append(norm_layer(norm, out_channels))
    return nn.Sequential(*layers)


def encoder(
    in_channels: int, width: int, n_down: int, *, norm: str, padding: str, bias: bool
) -> nn.Sequential:
    """7x7 conv to ``width`` then ``n_down`` stride-2 3x3 convs doubling the width, each with
    norm + ReLU: (N, in, H, W) -> (N, width * 2**n_down, H / 2**n_down, W / 2**n_down)."""
    layers: list[nn.Module] = padded_conv(in_channels, width, 7, padding, bias)
    layers += [norm_layer(norm, width), nn.ReLU(inplace=True)]
    for i in range(n_down):
        c = width * 2**i
        layers += [
            nn.Conv2d(c, 2 * c, kernel_size=3, stride=2, padding=1, bias=bias),
            norm_layer(norm, 2 * c),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def upsampler(widths: list[int], *, norm: str, bias: bool) -> list[nn.Module]:
    """3x3 stride-2 transposed convs (padding 1, output padding 1) between consecutive
    ``widths``, each with norm + ReLU: (N, widths[0], h, w) -> (N, widths[-1], h * 2**k, w * 2**k)
    for ``k = len(widths) - 1``."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=bias),
            norm_layer(norm, c_out),
            nn.ReLU(inplace=True),
        ]
    return layers


class TwoStreamBlock(nn.Module):
    """The two streams of a PATN or XingGAN block at ``channels`` (C) feature maps; subclasses
    define ``forward(img, pose) -> (img', pose')``.

    image stream: conv3x3-norm-ReLU-(dropout)-conv3x3-norm, C -> C -> C.
    pose stream: conv3x3-norm-ReLU-(dropout)-conv3x3 (no norm), Cp -> Cp -> C, where Cp = C for
    the first block and 2C after it (its input is the previous block's pose output).
    """

    def __init__(
        self,
        channels: int,
        *,
        pose_in_channels: int,
        norm: str = "batch",
        dropout: bool = False,
        padding: str = "reflect",
        bias: bool = False,
    ) -> None:
        super().__init__()
        kw = dict(norm=norm, padding=padding, bias=bias, dropout=dropout)
        self.image_stream = conv_stream(channels, channels, channels, **kw)
        self.pose_stream = conv_stream(
            pose_in_channels, pose_in_channels, channels, last_norm=False, **kw
        )


class TwoStreamGenerator(nn.Module):
    """The generators' shared trunk: ``image_encoder`` (P1), ``pose_encoder`` (cat(BP1, BP2))
    and ``n_blocks`` of the class's ``block`` (a :class:`TwoStreamBlock`) at C =
    ``ngf * 2**n_down`` channels, 1 / 2**n_down resolution (``n_down >= min_down``). Arguments as
    :class:`~personpose.models.patn.PATNGenerator`; subclasses add their decoders using
    ``self.layer_args`` (norm, padding and the resolved conv bias) and ``self.width`` (C).
    """

    block: type[TwoStreamBlock]
    min_down = 0

    def __init__(
        self,
        ngf: int,
        n_blocks: int,
        norm: str,
        dropout: bool,
        padding: str,
        use_bias: bool | None,
        image_channels: int,
        pose_channels: int,
        n_down: int,
    ) -> None:
        super().__init__()
        if n_blocks < 1 or ngf < 1 or n_down < self.min_down:
            raise ValueError(
                f"{type(self).__name__}: need n_blocks >= 1, ngf >= 1, n_down >= {self.min_down}; "
                f"got n_blocks={n_blocks}, ngf={ngf}, n_down={n_down}"
            )
        self.image_channels, self.pose_channels, self.n_down = image_channels, pose_channels, n_down
        c = self.width = ngf * 2**n_down
        kw = self.layer_args = dict(norm=norm, padding=padding, bias=resolve_bias(norm, use_bias))
        self.image_encoder = encoder(image_channels, ngf, n_down, **kw)
        self.pose_encoder = encoder(2 * pose_channels, ngf, n_down, **kw)
        self.blocks = nn.ModuleList(
            self.block(c, pose_in_channels=c if i == 0 else 2 * c, dropout=dropout, **kw)
            for i in range(n_blocks)
        )

    def trunk(
        self, P1: torch.Tensor, BP1: torch.Tensor, BP2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last block's (img, pose) features at 1 / 2**n_down resolution.

        First raises naming the class and the tensor unless P1 is (N, image_channels, H, W),
        BP1 and BP2 are (N, pose_channels, H, W), and H and W are divisible by 2**n_down."""
        owner, k = type(self).__name__, 2**self.n_down
        channels = (self.image_channels, self.pose_channels, self.pose_channels)
        for name, t, c in zip(("P1", "BP1", "BP2"), (P1, BP1, BP2), channels):
            if t.dim() != 4 or t.shape[1] != c:
                raise ValueError(
                    f"{owner}.forward: {name} has shape {tuple(t.shape)}; expected (N, {c}, H, W)"
                )
            if t.shape[0] != P1.shape[0] or t.shape[2:] != P1.shape[2:]:
                raise ValueError(
                    f"{owner}.forward: {name} shape {tuple(t.shape)} does not match "
                    f"P1 {tuple(P1.shape)} in N, H, W"
                )
        if P1.shape[2] % k or P1.shape[3] % k:
            raise ValueError(
                f"{owner}.forward: H x W = {P1.shape[2]}x{P1.shape[3]} px; expected both "
                f"divisible by {k} (n_down={self.n_down})"
            )
        img = self.image_encoder(P1)
        pose = self.pose_encoder(torch.cat((BP1, BP2), dim=1))
        for block in self.blocks:
            img, pose = block(img, pose)
        return img, pose
