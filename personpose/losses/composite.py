"""The generator loss: named terms from the ``loss`` config, weighted by the ``weights`` config.

``total = sum over active terms t of lambda_t * raw_t``. Every raw term is in loss form
(lower is better, 0 for a perfect match):

=================  =====================================================================
term               raw value
=================  =====================================================================
``l1``             mean |fake - target| (or mean squared, ``criterion="mse"``), [-1, 1] images
``perceptual``     VGG-19 feature L1/MSE (:func:`~personpose.losses.perceptual.perceptual_distance`)
``style``          Gram-matrix L1 (:func:`~personpose.losses.perceptual.style_distance`)
``ssim``           1 - SSIM of the [0, 1]-mapped images (window 7 / 0.8 by default)
``part_ssim``      1 - PSSIM of the [0, 1]-mapped images with the target's part masks
``perceptual_ssim`` 1 - SSIM of VGG-19 features
``adversarial``    the generator's GAN term, computed by the caller (it owns the
                   discriminators) and passed in
=================  =====================================================================

Inactive terms are still computed, without gradient, and returned (``compute_inactive``),
so every ablation logs every term on the same scale; the VGG-based terms need the VGG
network, which is only built when at least one of them is active: otherwise they are absent.
The VGG features of fake and target are computed once per call for all three VGG terms.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from personpose.losses.config import (
    TERMS,
    VGG_TERMS,
    LossConfig,
    WeightsConfig,
    to_loss_config,
    to_weights_config,
)
from personpose.losses.part_ssim import part_ssim
from personpose.losses.perceptual import (
    VGGFeatures,
    perceptual_distance,
    perceptual_ssim_distance,
    style_distance,
)
from personpose.losses.pixel import pixel_loss
from personpose.losses.ssim import ssim

__all__ = ["GeneratorLoss"]


class GeneratorLoss(nn.Module):
    """Weighted sum of the configured generator loss terms.

    Args:
        loss_cfg: the ``loss`` group (:class:`LossConfig`, dict or DictConfig).
        weights_cfg: the ``weights`` group (:class:`WeightsConfig`, dict or DictConfig).
        allow_random_vgg: allow a random VGG-19 when no weights are found (also
            ``loss.vgg.allow_random``); see :attr:`pretrained_source`.
        vgg_path: VGG-19 state dict file; overrides ``loss.vgg.weights_path``.

    Attributes:
        active_terms: names of the enabled terms (``adversarial`` included when enabled).
        pretrained_source: where the VGG weights came from (``"random (...)"`` when random),
            None when no VGG is built. Record it with the run's results.
        needs_discriminators: whether the adversarial term is on.
    """

    def __init__(
        self,
        loss_cfg: LossConfig | dict | Any,
        weights_cfg: WeightsConfig | dict | Any,
        allow_random_vgg: bool = False,
        vgg_path: str | None = None,
    ) -> None:
        super().__init__()
        self.cfg = to_loss_config(loss_cfg)
        self.weights = to_weights_config(weights_cfg)
        self.active_terms = tuple(t for t in TERMS if getattr(self.cfg, t).enabled)
        if not self.active_terms:
            raise ValueError("GeneratorLoss: no loss term is enabled in the loss config")
        zero = [t for t in self.active_terms if getattr(self.weights, t) == 0]
        if zero:
            warnings.warn(f"GeneratorLoss: terms {zero} are enabled with weight 0", stacklevel=2)
        self.extractor: VGGFeatures | None = None
        self.pretrained_source: str | None = None
        if any(getattr(self.cfg, t).enabled for t in VGG_TERMS):
            wanted = [
                t for t in VGG_TERMS if getattr(self.cfg, t).enabled or self.cfg.compute_inactive
            ]
            layers = [name for t in wanted for name in getattr(self.cfg, t).layers]
            self.extractor = VGGFeatures(
                layers,
                weights_path=vgg_path if vgg_path is not None else self.cfg.vgg.weights_path,
                allow_random=allow_random_vgg or self.cfg.vgg.allow_random,
            )
            self.pretrained_source = self.extractor.pretrained_source

    @property
    def needs_discriminators(self) -> bool:
        return bool(self.cfg.adversarial.enabled)

    def _term(self, name: str, fn: Callable[[], Tensor], out: dict[str, Tensor]) -> None:
        if getattr(self.cfg, name).enabled:
            out[name] = fn()
        elif self.cfg.compute_inactive:
            with torch.no_grad():
                out[name] = fn()

    def forward(
        self,
        fake: Tensor,
        target: Tensor,
        masks: Tensor | None = None,
        source: Tensor | None = None,
        adversarial: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Compute every term.

        Args:
            fake: generator output (N, 3, H, W) in [-1, 1].
            target: ground truth (N, 3, H, W) in [-1, 1].
            masks: the target's part masks (N, 11, H, W) (``part_masks`` of ``kp2``); needed
                when ``part_ssim`` is active, else ``part_ssim`` is skipped when absent.
            source: the source image (N, 3, H, W); unused by the current terms.
            adversarial: the generator's raw GAN term (scalar), if computed this step.

        Returns:
            ``{"<term>": raw value}`` for every computed term, ``{"<term>_w": lambda * raw}``
            for active ones, and ``"total"`` (the differentiable sum of the weighted terms).
        """
        if fake.shape != target.shape or fake.dim() != 4:
            raise ValueError(
                f"GeneratorLoss: fake {tuple(fake.shape)} and target "
                f"{tuple(target.shape)} must be the same (N, C, H, W) shape"
            )
        cfg = self.cfg
        out: dict[str, Tensor] = {}
        x01, y01 = (fake + 1) / 2, (target + 1) / 2

        self._term("l1", lambda: pixel_loss(fake, target, cfg.l1.criterion), out)
        self._term(
            "ssim",
            lambda: 1.0 - ssim(x01, y01, cfg.ssim.win_size, cfg.ssim.win_sigma, data_range=1.0),
            out,
        )
        if masks is not None:
            self._term(
                "part_ssim",
                lambda: (
                    1.0
                    - part_ssim(
                        x01,
                        y01,
                        masks,
                        cfg.part_ssim.win_size,
                        cfg.part_ssim.win_sigma,
                        1.0,
                        cfg.part_ssim.missing_parts,
                    )
                ),
                out,
            )
        elif cfg.part_ssim.enabled:
            raise ValueError(
                "GeneratorLoss: loss.part_ssim is enabled but no masks were given "
                "(pass the target's part masks, (N, 11, H, W))"
            )

        if self.extractor is not None:
            vgg_active = any(getattr(cfg, t).enabled for t in VGG_TERMS)
            with torch.set_grad_enabled(torch.is_grad_enabled() and vgg_active):
                ff = self.extractor(fake)
            with torch.no_grad():
                ft = self.extractor(target)
            self._term(
                "perceptual",
                lambda: perceptual_distance(
                    ff, ft, cfg.perceptual.layers, cfg.perceptual.criterion
                ),
                out,
            )
            self._term("style", lambda: style_distance(ff, ft, cfg.style.layers), out)
            p = cfg.perceptual_ssim
            self._term(
                "perceptual_ssim",
                lambda: perceptual_ssim_distance(
                    ff, ft, p.layers, p.win_size, p.win_sigma, p.data_range
                ),
                out,
            )

        if adversarial is not None:
            out["adversarial"] = adversarial

        total = None
        for name in self.active_terms:
            if name not in out:  # adversarial not passed this step
                continue
            weighted = getattr(self.weights, name) * out[name]
            out[f"{name}_w"] = weighted
            total = weighted if total is None else total + weighted
        out["total"] = total if total is not None else fake.new_zeros(())
        return out

    def extra_repr(self) -> str:
        w = ", ".join(f"{t}={getattr(self.weights, t):g}" for t in self.active_terms)
        return f"active=[{w}], vgg={self.pretrained_source!r}"
