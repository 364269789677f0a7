"""torchvision's Inception-v3 (ImageNet weights) as the feature extractor of FID and IS.

Preprocessing (named with every number): images in [0, 1] resized to 299x299 with bilinear
interpolation (``align_corners=False``, no antialiasing), normalised with the ImageNet mean
and std, then torchvision's ``transform_input`` (which the ImageNet weights were trained
with; overall the network sees ``2 x - 1``). Outputs: the 2048-d average-pool features
(FID) and the 1000 class logits (IS).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from personpose.metrics.base import Frozen

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE = 299
PREPROCESS = (
    "bilinear 299x299 (align_corners=False, no antialias), ImageNet mean/std, transform_input"
)


class InceptionFeatures(Frozen):
    """``forward(x (N,3,H,W) in [0,1]) -> (pool (N, 2048), logits (N, 1000))`` float32; a
    :class:`~personpose.metrics.base.Frozen` network (eval mode, out of checkpoints).

    The last result is cached by input identity, so FID and IS on the same batch share one
    forward pass.
    """

    def __init__(self, state_dict: dict[str, Tensor]) -> None:
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
        net.load_state_dict(state_dict)
        super().__init__(net)
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.reshape(1, 3, 1, 1), persistent=False)
        self._pool: Tensor | None = None
        self.net.avgpool.register_forward_hook(self._keep_pool)
        self._cache: tuple | None = None

    def _keep_pool(self, module, inputs, output) -> None:
        self._pool = output

    def preprocess(self, x: Tensor) -> Tensor:
        x = F.interpolate(x.float(), size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def from_preprocessed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(pool, logits) of images already through :meth:`preprocess`."""
        logits = self.net(x)
        return self._pool.flatten(1), logits

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # The cache holds the input itself, so its identity cannot be reused by another tensor.
        if self._cache is not None and self._cache[0] is x and self._cache[1] == x._version:
            return self._cache[2], self._cache[3]
        pool, logits = self.from_preprocessed(self.preprocess(x))
        self._cache = (x, x._version, pool, logits)
        return pool, logits
