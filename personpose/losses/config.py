"""Structured-config schema of the config groups ``loss`` and ``weights``.

``loss`` says which terms are on and how each is computed; ``weights`` holds one lambda per
term (per data set). Registered in Hydra's ConfigStore as ``loss/schema`` and
``weights/schema`` (:func:`register_schemas`); every ``conf/loss/*.yaml`` and
``conf/weights/*.yaml`` starts with ``defaults: [schema, _self_]``, so the file is merged onto
the dataclass and a misspelt key (in a file or in an override such as
``loss.part_ssim.enabeld=true``) fails when the config is composed, naming the key.

Value checks that OmegaConf cannot express (choices of strings, positive window sizes) are
made by :func:`validate_loss_config`, which :class:`~personpose.losses.composite.GeneratorLoss`
calls when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

# Term names: config keys of both groups and log names ("train/g/<term>").
TERMS = ("l1", "perceptual", "style", "ssim", "part_ssim", "perceptual_ssim", "adversarial")
VGG_TERMS = ("perceptual", "style", "perceptual_ssim")


@dataclass
class _Term:
    enabled: bool = False


@dataclass
class _VGGTerm(_Term):
    layers: list[str] = field(default_factory=lambda: ["relu1_2"])


@dataclass
class L1Term(_Term):
    """Pixel loss on [-1, 1] images: ``criterion`` "l1" (mean |d|) or "mse" (mean d^2)."""

    criterion: str = "l1"


@dataclass
class PerceptualTerm(_VGGTerm):
    """VGG-19 feature distance, summed over ``layers`` (e.g. relu1_2, relu2_2, relu3_4)."""

    criterion: str = "l1"


@dataclass
class StyleTerm(_VGGTerm):
    """L1 between Gram matrices F F^T / (C H W) of VGG-19 features, summed over ``layers``."""


@dataclass
class SSIMTerm(_Term):
    """``1 - SSIM`` of [0, 1]-mapped images, Gaussian window (taps, px)."""

    win_size: int = 7
    win_sigma: float = 0.8


@dataclass
class PartSSIMTerm(SSIMTerm):
    """``1 - PSSIM`` (docs/losses.md#pssim); ``missing_parts``: "faithful" or "exclude"."""

    missing_parts: str = "faithful"


@dataclass
class PerceptualSSIMTerm(_VGGTerm):
    """``1 - SSIM`` between VGG-19 feature maps (per channel, window, constants from
    ``data_range``), summed over ``layers``."""

    win_size: int = 7
    win_sigma: float = 0.8
    data_range: float = 1.0


@dataclass
class AdversarialTerm(_Term):
    """PATN's two discriminators. ``objective``: "bce" (Market), "lsgan" (DeepFashion) or
    "hinge"; ``pool_size``: image history pool (50 Market, 0 DeepFashion). When ``enabled``
    is false no discriminator is built or stepped. (The discriminators' head is a model
    setting: ``model.discriminator.head``.)"""

    enabled: bool = True
    objective: str = "bce"
    pool_size: int = 50


@dataclass
class LossConfig:
    """Schema of the ``loss`` group: one block per term. ``compute_inactive``: also compute
    (without gradient) and log the inactive terms: pixel and SSIM terms at every step, the
    VGG terms at validation only (when a VGG term is active; the VGG weights come from
    ``pretrained.vgg19``). ``compile``: run the SSIM and PSSIM terms through ``torch.compile``
    (equal to the eager result to 1e-6; pays off on large images, not on the CPU presets)."""

    l1: L1Term = field(default_factory=L1Term)
    perceptual: PerceptualTerm = field(default_factory=PerceptualTerm)
    style: StyleTerm = field(default_factory=StyleTerm)
    ssim: SSIMTerm = field(default_factory=SSIMTerm)
    part_ssim: PartSSIMTerm = field(default_factory=PartSSIMTerm)
    perceptual_ssim: PerceptualSSIMTerm = field(default_factory=PerceptualSSIMTerm)
    adversarial: AdversarialTerm = field(default_factory=AdversarialTerm)
    compute_inactive: bool = True
    compile: bool = False


@dataclass
class WeightsConfig:
    """Schema of the ``weights`` group: one lambda per term (multiplies the raw term)."""

    l1: float = 0.0
    perceptual: float = 0.0
    style: float = 0.0
    ssim: float = 0.0
    part_ssim: float = 0.0
    perceptual_ssim: float = 0.0
    adversarial: float = 0.0


def register_schemas() -> None:
    """Store ``loss/schema`` and ``weights/schema`` in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="loss", name="schema", node=LossConfig)
    cs.store(group="weights", name="schema", node=WeightsConfig)


def _to(schema: type, cfg: Any, what: str) -> Any:
    if isinstance(cfg, schema):
        return cfg
    if not isinstance(cfg, dict | DictConfig):
        raise TypeError(
            f"{what}: expected a dict, DictConfig or {schema.__name__}, got {type(cfg).__name__}"
        )
    if isinstance(cfg, DictConfig):
        # plain values first: a node already typed by the schema would carry keys that a
        # forced append ("+loss.x.y=...") slipped past struct mode through the merge
        cfg = OmegaConf.to_container(cfg, resolve=True)
    merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)  # unknown keys raise here
    return OmegaConf.to_object(merged)


def to_loss_config(cfg: Any) -> LossConfig:
    """A :class:`LossConfig` from a dict/DictConfig (unknown keys raise), checked with
    :func:`validate_loss_config`."""
    out = _to(LossConfig, cfg, "loss config")
    validate_loss_config(out)
    return out


def to_weights_config(cfg: Any) -> WeightsConfig:
    """A :class:`WeightsConfig` from a dict/DictConfig (unknown keys raise)."""
    return _to(WeightsConfig, cfg, "weights config")


def _check(ok: bool, key: str, expected: str, got: Any) -> None:
    if not ok:
        raise ValueError(f"loss.{key}: expected {expected}, got {got!r}")


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, key, f"one of {list(choices)}", value)


def validate_loss_config(cfg: LossConfig) -> None:
    """Check the values OmegaConf cannot (string choices, windows, layer names)."""
    from personpose.losses.perceptual import VGG19_LAYERS

    _choice("l1.criterion", cfg.l1.criterion, ("l1", "mse"))
    _choice("perceptual.criterion", cfg.perceptual.criterion, ("l1", "mse"))
    _choice("part_ssim.missing_parts", cfg.part_ssim.missing_parts, ("faithful", "exclude"))
    _choice("adversarial.objective", cfg.adversarial.objective, ("bce", "lsgan", "hinge"))
    pool = cfg.adversarial.pool_size
    _check(pool >= 0, "adversarial.pool_size", ">= 0", pool)
    for name in ("ssim", "part_ssim", "perceptual_ssim"):
        k, sigma = getattr(cfg, name).win_size, getattr(cfg, name).win_sigma
        _check(k >= 1 and k % 2 == 1, f"{name}.win_size", "a positive odd int", k)
        _check(sigma > 0, f"{name}.win_sigma", "> 0", sigma)
    data_range = cfg.perceptual_ssim.data_range
    _check(data_range > 0, "perceptual_ssim.data_range", "> 0", data_range)
    for name in VGG_TERMS:
        layers = getattr(cfg, name).layers
        _check(bool(layers), f"{name}.layers", "at least one VGG-19 layer", layers)
        bad = [x for x in layers if x not in VGG19_LAYERS]
        _check(not bad, f"{name}.layers", "VGG-19 layer names like relu1_2, relu2_2, relu3_4", bad)
