"""Building blocks shared by the PATN generator and discriminators: norms, padded convs.

PATN conventions (Zhu et al., CVPR 2019):
- norm "batch" (Market) or "instance" without affine parameters or running statistics
  (DeepFashion); "none" is ours;
- convolutions carry a bias only when the norm does not absorb it (PATN: bias iff instance
  norm; here bias iff the norm is not "batch", so "none" gets biases too);
- 3x3 and 7x7 stride-1 convolutions are reflection padded; stride-2 convolutions use zero
  padding 1.
"""

from __future__ import annotations

from torch import nn

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of :data:`NORMS`, else raise naming the choices."""
    if norm not in NORMS:
        raise ValueError(f"personpose.models: norm={norm!r}; expected one of {NORMS}")
    return norm


def check_padding(padding: str) -> str:
    """Return ``padding`` if it is one of :data:`PADDINGS`, else raise naming the choices."""
    if padding not in PADDINGS:
        raise ValueError(f"personpose.models: padding={padding!r}; expected one of {PADDINGS}")
    return padding


def resolve_bias(norm: str, use_bias: bool | None) -> bool:
    """Conv bias rule: an explicit ``use_bias`` wins; ``None`` means "no bias before batch norm"."""
    check_norm(norm)
    return norm != "batch" if use_bias is None else bool(use_bias)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """Norm over ``channels`` maps: BatchNorm2d, affine-free InstanceNorm2d or Identity."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def padded_conv(
    in_channels: int, out_channels: int, kernel_size: int, padding: str, bias: bool
) -> list[nn.Module]:
    """Stride-1 "same" convolution: ``[pad, conv]`` for reflect/replicate, ``[conv]`` for zero."""
    check_padding(padding)
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
