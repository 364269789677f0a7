"""Helpers for the model tests: config loading and parameter counting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

MODEL_CONF = Path(__file__).resolve().parents[2] / "conf" / "model"


def load_model_conf(name: str) -> DictConfig:
    """``conf/model/<name>.yaml`` as a DictConfig (interpolations resolve within it)."""
    return OmegaConf.load(MODEL_CONF / f"{name}.yaml")


def build(name: str, **overrides) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(generator, shape D with 21 input channels, appearance D with 6) from a model config."""
    cfg = load_model_conf(name)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    g = instantiate(cfg.generator)
    return (
        g,
        instantiate(cfg.discriminator, in_channels=21),
        instantiate(cfg.discriminator, in_channels=6),
    )


def generator_inputs(n: int, h: int, w: int, seed: int = 0):
    """Random (P1 in [-1, 1] (N, 3, H, W), BP1, BP2 in [0, 1] (N, 18, H, W)) for a generator."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(n, 3, h, w, generator=g) * 2 - 1,
        torch.rand(n, 18, h, w, generator=g),
        torch.rand(n, 18, h, w, generator=g),
    )


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def tiny():
    return build("patn_tiny")
