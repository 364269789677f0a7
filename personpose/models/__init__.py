"""personpose.models: the PATN generator and discriminators, norms and initialisation."""

from personpose.models.discriminator import PATNDiscriminator, ResidualBlock
from personpose.models.init import init_weights
from personpose.models.layers import NORMS, PADDINGS, norm_layer
from personpose.models.patn import PATBlock, PATNGenerator

__all__ = [
    "NORMS",
    "PADDINGS",
    "PATBlock",
    "PATNDiscriminator",
    "PATNGenerator",
    "ResidualBlock",
    "init_weights",
    "norm_layer",
]
