"""personpose.losses: the generator loss terms of the study and their composition.

Functions take images in ``[0, data_range]``; the ``nn.Module`` losses take generator
outputs in ``[-1, 1]`` and map them. See ``composite.GeneratorLoss`` for the config-driven sum.
"""

from personpose.losses.adversarial import GANObjective, ImagePool, PATNAdversarial
from personpose.losses.composite import GeneratorLoss
from personpose.losses.config import LossConfig, WeightsConfig, register_schemas
from personpose.losses.part_ssim import PartSSIMLoss, PartSSIMResult, part_ssim, part_ssim_terms
from personpose.losses.perceptual import (
    PerceptualLoss,
    PerceptualSSIMLoss,
    StyleLoss,
    VGGFeatures,
    gram_matrix,
)
from personpose.losses.pixel import PixelLoss, pixel_loss
from personpose.losses.ssim import SSIMLoss, ssim, ssim_map, ssim_per_sample

__all__ = [
    "GANObjective",
    "GeneratorLoss",
    "ImagePool",
    "LossConfig",
    "PATNAdversarial",
    "PartSSIMLoss",
    "PartSSIMResult",
    "PerceptualLoss",
    "PerceptualSSIMLoss",
    "PixelLoss",
    "SSIMLoss",
    "StyleLoss",
    "VGGFeatures",
    "WeightsConfig",
    "gram_matrix",
    "part_ssim",
    "part_ssim_terms",
    "pixel_loss",
    "register_schemas",
    "ssim",
    "ssim_map",
    "ssim_per_sample",
]
