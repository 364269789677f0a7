"""PoseTransferModule: injected parts, PATN's update order, a second backbone from config alone."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from personpose.losses.composite import GeneratorLoss
from personpose.run import build_module
from personpose.training.module import PoseTransferModule

from .conftest import TINY, compose_cfg

H, W = 32, 16


def _batches(n: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        {
            "P1": torch.rand(2, 3, H, W, generator=g) * 2 - 1,
            "P2": torch.rand(2, 3, H, W, generator=g) * 2 - 1,
            "BP1": torch.rand(2, 18, H, W, generator=g),
            "BP2": torch.rand(2, 18, H, W, generator=g),
        }
        for _ in range(n)
    ]


def _fit(module: L.LightningModule, steps: int) -> None:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=DataLoader(_batches(steps), batch_size=None))


def _record_step_order(module: PoseTransferModule) -> list[str]:
    """Names of the networks whose optimiser steps, in order (hooks on every optimiser)."""
    owner = {id(p): "generator" for p in module.generator.parameters()}
    for name, disc in module.discriminators.items():
        owner.update({id(p): name for p in disc.parameters()})
    order: list[str] = []
    configure = module.configure_optimizers

    def configure_and_record():
        opts, scheds = configure()
        for opt in opts:
            net = owner[id(opt.param_groups[0]["params"][0])]
            opt.register_step_pre_hook(lambda *_, net=net: order.append(net))
        return opts, scheds

    module.configure_optimizers = configure_and_record
    return order


def test_generator_then_appearance_then_shape_discriminator():
    """PATN and the study's code: G, then D_PP (appearance), then D_PB (shape)."""
    module = build_module(compose_cfg([*TINY, "loss=l1"]), steps_per_epoch=4)
    order = _record_step_order(module)
    _fit(module, steps=2)
    assert order == ["generator", "appearance", "shape"] * 2


def test_no_discriminator_without_the_adversarial_term():
    cfg = compose_cfg([*TINY, "loss=l1", "loss.adversarial.enabled=false"])
    module = build_module(cfg, steps_per_epoch=4)
    assert module.discriminators is None and len(module.configure_optimizers()[0]) == 1
    _fit(module, steps=1)
    with pytest.raises(ValueError, match="discriminators exactly when"):
        PoseTransferModule(
            module.generator, module.loss, torch.optim.Adam, {"appearance": nn.Identity()}
        )


def test_injected_parts_come_from_the_config():
    cfg = compose_cfg([*TINY, "loss=l1", "optim.generator.lr=1e-3", "optim.lr_rule.niter=1"])
    module = build_module(cfg, steps_per_epoch=4)
    assert isinstance(module.loss, GeneratorLoss) and module.loss.adversarial.weight == 5.0
    opts, scheds = module.configure_optimizers()
    assert [type(o) for o in opts] == [torch.optim.Adam] * 3
    assert opts[0].param_groups[0]["initial_lr"] == pytest.approx(1e-3)
    assert opts[1].param_groups[0]["initial_lr"] == pytest.approx(2e-4)
    # PATN rule with niter=1: already decaying in the first epoch, factor 1 - 1 / 201
    assert opts[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 200 / 201)
    assert tuple(opts[2].param_groups[0]["betas"]) == (0.5, 0.999)
    assert module.lr_rule.steps_per_epoch == 4 and module.lr_rule.niter == 1
    assert len(scheds) == 3


class TinyGenerator(nn.Module):
    """A second backbone for the test: one conv on cat(P1, BP1, BP2)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(39, width, 3, padding=1), nn.Conv2d(width, 3, 1))

    def forward(self, P1, BP1, BP2):
        return torch.tanh(self.net(torch.cat((P1, BP1, BP2), 1)))


def test_second_backbone_is_one_config_node():
    cfg = compose_cfg([*TINY, "loss=l1"])
    model = OmegaConf.to_container(cfg.model)
    model["generator"] = {"_target_": f"{__name__}.TinyGenerator", "width": 5}
    cfg.model = OmegaConf.create(model)
    module = build_module(cfg, steps_per_epoch=4)
    assert isinstance(module.generator, TinyGenerator)
    _fit(module, steps=1)
