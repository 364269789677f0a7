"""Adversarial objectives, PATN's pair of discriminators, and the image history pool.

- :class:`GANObjective` (``"bce"``, ``"lsgan"``, ``"hinge"``) on raw discriminator outputs of
  any shape (PatchGAN maps, or PATN's 256-channel maps without a final 1-channel conv: the
  loss is the mean over every element):

  ============  ==============================  ================================================
  kind          generator(fake)                 discriminator(real, fake)
  ============  ==============================  ================================================
  ``bce``       BCE(sigmoid(fake), 1)           0.5 (BCE(sigmoid(real), 1) + BCE(sigmoid(fake), 0))
  ``lsgan``     mean (fake - 1)^2               0.5 (mean (real - 1)^2 + mean fake^2)
  ``hinge``     -mean fake                      0.5 (mean relu(1 - real) + mean relu(1 + fake))
  ============  ==============================  ================================================

  The reference uses BCE on Market and LSGAN on DeepFashion (docs/losses.md#adversarial).
- :class:`PATNAdversarial`: the shape discriminator sees ``cat(image, BP2)`` (3 + 18 ch),
  the appearance discriminator ``cat(image, P1)`` (6 ch); the generator term is the mean of
  the two, each discriminator minimises its own ``0.5 (real + fake)`` loss on fakes drawn
  from its own history pool. ``lambda_GAN`` is applied by the caller.
- :class:`ImagePool`: PATN's history buffer of generated samples (size 0 = off).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["GAN_KINDS", "GANObjective", "ImagePool", "PATNAdversarial"]

GAN_KINDS = ("bce", "lsgan", "hinge")


def _as_list(logits: Tensor | Sequence[Tensor]) -> list[Tensor]:
    if isinstance(logits, Tensor):
        return [logits]
    out = list(logits)
    if not out or not all(isinstance(t, Tensor) for t in out):
        raise ValueError("GANObjective: expected a tensor or a non-empty sequence of tensors")
    return out


class GANObjective:
    """Generator and discriminator losses of one GAN formulation (see module table).

    ``generator`` accepts one tensor of logits or a sequence (one per discriminator) and
    averages over them; every loss is the mean over all elements of each output.
    """

    def __init__(self, kind: str = "bce") -> None:
        if kind not in GAN_KINDS:
            raise ValueError(f"GANObjective: kind must be one of {GAN_KINDS}, got {kind!r}")
        self.kind = kind

    def _target(self, logits: Tensor, real: bool) -> Tensor:
        if self.kind == "bce":
            target = torch.ones_like(logits) if real else torch.zeros_like(logits)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.kind == "lsgan":
            return ((logits - 1.0) ** 2).mean() if real else (logits**2).mean()
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()

    def generator(self, logits_fake: Tensor | Sequence[Tensor]) -> Tensor:
        """Generator loss on D(fake), averaged over the discriminators given."""
        terms = []
        for t in _as_list(logits_fake):
            terms.append(-t.mean() if self.kind == "hinge" else self._target(t, real=True))
        return torch.stack(terms).mean()

    def discriminator(self, logits_real: Tensor, logits_fake: Tensor) -> Tensor:
        """``0.5 (L(D(real), real) + L(D(fake), fake))`` for one discriminator."""
        return 0.5 * (self._target(logits_real, True) + self._target(logits_fake, False))

    def __repr__(self) -> str:
        return f"GANObjective(kind={self.kind!r})"


class ImagePool:
    """History of generated samples (Shrivastava et al. 2017; PATN's ``ImagePool``).

    ``query(images)`` (N, ...) returns a batch of the same shape: while the pool holds fewer
    than ``size`` samples each image is stored and returned; afterwards each image is, with
    probability 0.5, swapped for a random stored one (which it replaces), else returned
    as is. ``size == 0`` returns the input unchanged. Images are stored detached. The pool has
    its own ``torch.Generator`` (CPU); :meth:`state_dict` holds the stored images and the
    generator state, so a resumed run draws the same swaps.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"ImagePool: size must be an int >= 0, got {size!r}")
        self.size = size
        self.images: list[Tensor] = []
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """``images`` (N, ...) -> (N, ...) detached, partly from the history."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.clone()
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator))
                old = self.images[i].to(image.device)
                self.images[i] = image
                out.append(old)
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """``{"size", "images" (num, ...) CPU tensor or None, "rng_state"}``."""
        stored = torch.stack([t.cpu() for t in self.images]) if self.images else None
        return {"size": self.size, "images": stored, "rng_state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["size"] != self.size:
            raise ValueError(
                f"ImagePool.load_state_dict: saved size {state['size']} != "
                f"configured size {self.size}"
            )
        images = state["images"]
        self.images = [] if images is None else [t.clone() for t in images]
        self.generator.set_state(state["rng_state"])


class PATNAdversarial:
    """PATN's two discriminators: shape ``D_PB(cat(img, BP2))`` and appearance
    ``D_PP(cat(img, P1))``, with one history pool each (``pool_size``, 0 = off).

    Shapes: images (N, 3, H, W) in [-1, 1], ``pose2`` (N, 18, H, W), ``source`` (N, 3, H, W).
    """

    def __init__(self, kind: str = "bce", pool_size: int = 0, seed: int = 0) -> None:
        self.objective = GANObjective(kind)
        self.pool_shape = ImagePool(pool_size, seed)
        self.pool_appearance = ImagePool(pool_size, seed + 1)

    @staticmethod
    def shape_input(image: Tensor, pose2: Tensor) -> Tensor:
        return torch.cat((image, pose2), dim=1)

    @staticmethod
    def appearance_input(image: Tensor, source: Tensor) -> Tensor:
        return torch.cat((image, source), dim=1)

    def generator_loss(
        self,
        d_shape: Callable[[Tensor], Tensor],
        d_appearance: Callable[[Tensor], Tensor],
        fake: Tensor,
        pose2: Tensor,
        source: Tensor,
    ) -> Tensor:
        """Mean of the generator losses against both discriminators (unweighted)."""
        return self.objective.generator(
            [
                d_shape(self.shape_input(fake, pose2)),
                d_appearance(self.appearance_input(fake, source)),
            ]
        )

    def discriminator_losses(
        self,
        d_shape: Callable[[Tensor], Tensor],
        d_appearance: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        pose2: Tensor,
        source: Tensor,
    ) -> dict[str, Tensor]:
        """``{"shape": ..., "appearance": ...}``, each ``0.5 (real + fake)`` (unweighted);
        the fakes are detached and drawn through the pools."""
        fake_pb = self.pool_shape.query(self.shape_input(fake.detach(), pose2))
        fake_pp = self.pool_appearance.query(self.appearance_input(fake.detach(), source))
        return {
            "shape": self.objective.discriminator(
                d_shape(self.shape_input(real, pose2)), d_shape(fake_pb)
            ),
            "appearance": self.objective.discriminator(
                d_appearance(self.appearance_input(real, source)), d_appearance(fake_pp)
            ),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "pool_shape": self.pool_shape.state_dict(),
            "pool_appearance": self.pool_appearance.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pool_shape.load_state_dict(state["pool_shape"])
        self.pool_appearance.load_state_dict(state["pool_appearance"])
