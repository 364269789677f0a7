"""The generator loss: named terms from the ``loss`` config, weighted by the ``weights`` config.

``total = sum over active terms t of lambda_t * raw_t``. Every raw term is in loss form
(lower is better, 0 for a perfect match), computed by the module :func:`build_terms` registers
under its name:

=================== ========================================================= ==================
term                raw value                                                 module
=================== ========================================================= ==================
``l1``              mean |fake - target| (or squared), [-1, 1] images         PixelLoss
``perceptual``      VGG-19 feature L1 (or MSE)                                PerceptualLoss
``style``           Gram-matrix L1 of VGG-19 features                         StyleLoss
``ssim``            1 - SSIM of the [0, 1]-mapped images (window 7 / 0.8)     SSIMLoss
``part_ssim``       1 - PSSIM of the [0, 1]-mapped images, target part masks  PartSSIMLoss
``perceptual_ssim`` 1 - SSIM of VGG-19 features                               PerceptualSSIMLoss
``adversarial``     the generator's GAN term against both discriminators      PATNAdversarial
=================== ========================================================= ==================

Which terms a call computes:

- active terms (``loss.<term>.enabled``) with gradient; one with weight 0 without gradient;
- inactive terms, when ``loss.compute_inactive``, without gradient, so every ablation logs
  every term on the same scale: the cheap ones (pixel, SSIM, PSSIM) at every call, the VGG
  ones only in eval mode (validation), and only when the VGG network exists, which it does
  when at least one VGG term is active;
- the adversarial term when the discriminators are passed.

The VGG features of fake and target are computed once per call for all VGG terms.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from personpose.losses.adversarial import PATNAdversarial
from personpose.losses.config import (
    TERMS,
    VGG_TERMS,
    LossConfig,
    WeightsConfig,
    to_loss_config,
    to_weights_config,
)
from personpose.losses.part_ssim import PartSSIMLoss
from personpose.losses.perceptual import (
    PerceptualLoss,
    PerceptualSSIMLoss,
    StyleLoss,
    VGGFeatures,
)
from personpose.losses.pixel import PixelLoss
from personpose.losses.ssim import SSIMLoss


def build_terms(
    cfg: LossConfig, gan_weight: float = 1.0, seed: int = 0, with_vgg: bool = True
) -> dict[str, nn.Module]:
    """The registry: term name -> loss module configured from ``loss.<name>``.

    The VGG terms take feature dicts (left out without ``with_vgg``); the adversarial term
    (only when enabled) also steps the discriminators with weight ``gan_weight`` and pools
    seeded from ``seed``.
    """
    terms: dict[str, nn.Module] = {
        "l1": PixelLoss(cfg.l1.criterion),
        "ssim": SSIMLoss(cfg.ssim.win_size, cfg.ssim.win_sigma, compile=cfg.compile),
        "part_ssim": PartSSIMLoss(
            cfg.part_ssim.win_size,
            cfg.part_ssim.win_sigma,
            cfg.part_ssim.missing_parts,
            compile=cfg.compile,
        ),
    }
    if with_vgg:
        p = cfg.perceptual_ssim
        terms["perceptual"] = PerceptualLoss(cfg.perceptual.layers, cfg.perceptual.criterion)
        terms["style"] = StyleLoss(cfg.style.layers)
        terms["perceptual_ssim"] = PerceptualSSIMLoss(
            p.layers, p.win_size, p.win_sigma, p.data_range
        )
    if cfg.adversarial.enabled:
        adv = cfg.adversarial
        terms["adversarial"] = PATNAdversarial(adv.objective, adv.pool_size, gan_weight, seed)
    return terms


class GeneratorLoss(nn.Module):
    """Weighted sum of the configured generator loss terms.

    Args:
        loss_cfg: the ``loss`` group (:class:`LossConfig`, dict or DictConfig).
        weights_cfg: the ``weights`` group (:class:`WeightsConfig`, dict or DictConfig).
        vgg_path: VGG-19 state dict file (``pretrained.vgg19``); None: torch cache, download.
        allow_random_vgg: allow a random VGG-19 when no weights are found
            (``data.allow_random_weights``); see :attr:`pretrained_source`.
        seed: seed of the adversarial term's image pools (the training seed).

    Attributes:
        terms: ``nn.ModuleDict`` name -> term module (:func:`build_terms`).
        active_terms: names of the enabled terms (``adversarial`` included when enabled).
        adversarial: the :class:`PATNAdversarial` term, None when it is off.
        pretrained_source: where the VGG weights came from (``"random (...)"`` when random),
            None when no VGG is built. Record it with the run's results.
    """

    def __init__(
        self,
        loss_cfg: LossConfig | dict | Any,
        weights_cfg: WeightsConfig | dict | Any,
        vgg_path: str | None = None,
        allow_random_vgg: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = to_loss_config(loss_cfg)
        self.weights = to_weights_config(weights_cfg)
        self.active_terms = tuple(t for t in TERMS if getattr(self.cfg, t).enabled)
        if not self.active_terms:
            raise ValueError("GeneratorLoss: no loss term is enabled in the loss config")
        zero = [t for t in self.active_terms if getattr(self.weights, t) == 0]
        if len(zero) == len(self.active_terms):
            raise ValueError(f"GeneratorLoss: every enabled term {zero} has weight 0 in weights")
        if zero:
            warnings.warn(
                f"GeneratorLoss: terms {zero} are enabled with weight 0 (logged, not trained)",
                stacklevel=2,
            )
        self.vgg: VGGFeatures | None = None
        if any(t in self.active_terms for t in VGG_TERMS):
            wanted = [t for t in VGG_TERMS if self._wanted(t, False)]
            layers = [name for t in wanted for name in getattr(self.cfg, t).layers]
            self.vgg = VGGFeatures(layers, weights_path=vgg_path, allow_random=allow_random_vgg)
        self.pretrained_source = None if self.vgg is None else self.vgg.pretrained_source
        self.terms = nn.ModuleDict(
            build_terms(self.cfg, self.weights.adversarial, seed, with_vgg=self.vgg is not None)
        )

    @property
    def adversarial(self) -> PATNAdversarial | None:
        return self.terms["adversarial"] if "adversarial" in self.terms else None

    def _wanted(self, term: str, training: bool) -> bool:
        """Whether ``term`` is computed in a call (in train mode when ``training``)."""
        if term in self.active_terms:
            return True
        return self.cfg.compute_inactive and not (training and term in VGG_TERMS)

    def _trained(self, term: str) -> bool:
        return term in self.active_terms and getattr(self.weights, term) != 0

    def _run(self, term: str, *inputs: Any) -> Tensor:
        """Term ``term`` on ``inputs``, with gradient only when it is trained."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._trained(term)):
            return self.terms[term](*inputs)

    def forward(
        self,
        fake: Tensor,
        batch: Mapping[str, Tensor],
        discriminators: Mapping[str, nn.Module] | None = None,
    ) -> dict[str, Tensor]:
        """Compute the terms of this call (see the module docstring).

        Args:
            fake: generator output (N, 3, H, W) in [-1, 1].
            batch: the sample dict: ``P2`` the target (N, 3, H, W) in [-1, 1]; ``mask2`` the
                target's part masks (N, 11, H, W), needed when ``part_ssim`` is active (else
                ``part_ssim`` is skipped without them); ``P1`` and ``BP2`` for the adversarial
                term.
            discriminators: ``{"appearance": D_PP, "shape": D_PB}`` for the adversarial term.

        Returns:
            ``{"<term>": raw value}`` for every computed term, ``{"<term>_w": lambda * raw}``
            for active ones, and ``"total"`` (the differentiable sum of the weighted terms).
        """
        target = batch["P2"]
        if fake.shape != target.shape or fake.dim() != 4:
            raise ValueError(
                f"GeneratorLoss: fake {tuple(fake.shape)} and target P2 "
                f"{tuple(target.shape)} must be the same (N, C, H, W) shape"
            )
        raw = self._image_terms(fake, target, batch.get("mask2"))
        raw.update(self._vgg_terms(fake, target))
        if discriminators is not None and self.adversarial is not None:
            raw["adversarial"] = self._run("adversarial", fake, batch, discriminators)
        return self._weigh(raw, fake)

    def _image_terms(self, fake: Tensor, target: Tensor, masks: Tensor | None) -> dict:
        """Pixel, SSIM and PSSIM terms on the images."""
        raw = {t: self._run(t, fake, target) for t in ("l1", "ssim") if self._wanted(t, True)}
        if masks is not None and self._wanted("part_ssim", True):
            raw["part_ssim"] = self._run("part_ssim", fake, target, masks)
        elif masks is None and "part_ssim" in self.active_terms:
            raise ValueError(
                "GeneratorLoss: loss.part_ssim is enabled but the batch has no mask2 "
                "(the target's part masks, (N, 11, H, W))"
            )
        return raw

    def _vgg_terms(self, fake: Tensor, target: Tensor) -> dict:
        """The VGG terms, on one extraction of the fake's and the target's features."""
        terms = [t for t in VGG_TERMS if self.vgg is not None and self._wanted(t, self.training)]
        if not terms:
            return {}
        grad = any(self._trained(t) for t in terms)
        with torch.set_grad_enabled(torch.is_grad_enabled() and grad):
            features_fake = self.vgg(fake)
        with torch.no_grad():
            features_target = self.vgg(target)
        return {t: self._run(t, features_fake, features_target) for t in terms}

    def _weigh(self, raw: dict[str, Tensor], fake: Tensor) -> dict[str, Tensor]:
        """Add ``<term>_w = lambda * raw`` for the active terms and their sum ``total``."""
        total = fake.new_zeros(())
        for term in self.active_terms:
            if term in raw:
                raw[f"{term}_w"] = getattr(self.weights, term) * raw[term]
                total = total + raw[f"{term}_w"]
        raw["total"] = total
        return raw

    def extra_repr(self) -> str:
        w = ", ".join(f"{t}={getattr(self.weights, t):g}" for t in self.active_terms)
        return f"active=[{w}], vgg={self.pretrained_source!r}"
