"""personpose: loss functions for pose-guided person image generation, reproduced and extended."""

__version__ = "0.1.0"
