"""PATN's adversarial objective: the GAN formulations, the image pool and the loss object.

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

  The study uses BCE on Market and LSGAN on DeepFashion (docs/losses.md).
- :class:`ImagePool`: PATN's history buffer of generated samples (size 0 = off).
- :class:`PATNAdversarial`: the whole GAN objective of PATN (Zhu et al., CVPR 2019), the one
  object that both the generator loss and the discriminator steps use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

GAN_KINDS = ("bce", "lsgan", "hinge")


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
        logits = [logits_fake] if isinstance(logits_fake, Tensor) else logits_fake
        terms = [-t.mean() if self.kind == "hinge" else self._target(t, True) for t in logits]
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
            elif torch.rand((), generator=self.generator).item() < 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator))
                self.images[i], image = image, self.images[i].to(image.device)  # swap
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


class PATNAdversarial(nn.Module):
    """PATN's two conditional discriminators' objective, with one history pool each.

    The appearance discriminator ``D_PP`` sees ``cat(image, P1)`` (3 + 3 channels), the shape
    discriminator ``D_PB`` ``cat(image, BP2)`` (3 + 18). With ``L`` the :class:`GANObjective`
    and ``lambda = weight`` (``lambda_GAN``):

    - generator term (:meth:`forward`, unweighted: the generator loss applies ``lambda``)::

          mean(L(D_PP(cat(fake, P1)), real), L(D_PB(cat(fake, BP2)), real))

    - each discriminator (:meth:`discriminator_loss`), on fakes drawn from its own pool::

          lambda * 0.5 * (L(D(cat(P2, c)), real) + L(D(pool(cat(fake, c))), fake))

    Discriminators are stepped in :attr:`ORDER`: appearance, then shape, as PATN and the study's
    code do. The discriminators themselves are not held here (the training module owns and
    optimises them); they are passed in as ``{"appearance": D_PP, "shape": D_PB}``. The pools
    are saved with the state dict (``get_extra_state``), so a resumed run draws the same swaps.

    Shapes: images (N, 3, H, W) in [-1, 1]; ``batch["P1"]`` (N, 3, H, W), ``batch["BP2"]``
    (N, 18, H, W).
    """

    ORDER = ("appearance", "shape")
    CONDITION = {"appearance": "P1", "shape": "BP2"}  # batch key concatenated to the image
    IN_CHANNELS = {"appearance": 3 + 3, "shape": 3 + 18}

    def __init__(
        self, objective: str = "bce", pool_size: int = 0, weight: float = 1.0, seed: int = 0
    ) -> None:
        super().__init__()
        self.objective = GANObjective(objective)
        self.weight = float(weight)
        seeds = {"shape": 2 * seed, "appearance": 2 * seed + 1}  # own RNG per pool
        self.pools = {name: ImagePool(pool_size, seeds[name]) for name in self.ORDER}

    def d_input(self, name: str, image: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """``cat(image, condition)`` for discriminator ``name`` (N, 6 or 21, H, W)."""
        return torch.cat((image, batch[self.CONDITION[name]]), dim=1)

    def forward(
        self, fake: Tensor, batch: Mapping[str, Tensor], discriminators: Mapping[str, nn.Module]
    ) -> Tensor:
        """The generator's GAN term (scalar, unweighted), mean over both discriminators."""
        return self.objective.generator(
            [discriminators[n](self.d_input(n, fake, batch)) for n in self.ORDER]
        )

    def discriminator_loss(
        self,
        name: str,
        discriminator: nn.Module,
        real: Tensor,
        fake: Tensor,
        batch: Mapping[str, Tensor],
    ) -> Tensor:
        """``lambda * 0.5 * (real + fake)`` for discriminator ``name``; ``fake`` is detached
        and drawn through that discriminator's pool."""
        pooled = self.pools[name].query(self.d_input(name, fake.detach(), batch))
        real_logits = discriminator(self.d_input(name, real, batch))
        return self.weight * self.objective.discriminator(real_logits, discriminator(pooled))

    def get_extra_state(self) -> dict[str, Any]:
        return {name: pool.state_dict() for name, pool in self.pools.items()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for name, pool_state in state.items():
            self.pools[name].load_state_dict(pool_state)

    def extra_repr(self) -> str:
        return (
            f"objective={self.objective.kind!r}, pool_size={self.pools['shape'].size}, "
            f"weight={self.weight:g}"
        )
