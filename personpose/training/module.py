"""The LightningModule: PATN generator, two discriminators and a config-selected loss.

Manual optimisation (Lightning's GAN pattern): per batch one generator step, then one step
of the shape discriminator ``D_PB(cat(img, BP2))`` and one of the appearance discriminator
``D_PP(cat(img, P1))`` (none when the adversarial term is off). ``trainer.global_step`` counts
generator iterations only: the discriminator optimisers are stepped without Lightning's
step counter, so ``trainer.max_steps`` means training iterations.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from personpose.losses.adversarial import GANObjective, ImagePool
from personpose.losses.composite import GeneratorLoss
from personpose.training.schedule import PATNSchedule

_D_NAMES = ("shape", "appearance")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> [0, 1], quantised to 8-bit levels like a saved PNG."""
    return torch.round((x.detach().float().clamp(-1, 1) + 1) * 127.5) / 255.0


class PoseTransferModule(L.LightningModule):
    """Pose transfer GAN.

    Args:
        cfg: the composed run config (model, loss, weights, optim, trainer, eval, pretrained).
        steps_per_epoch: generator iterations per PATN epoch (``pairs_per_epoch // batch``).
        allow_random_vgg: allow a randomly initialised VGG for perceptual terms (recorded).
        val_metrics: a metric suite (``update(preds, target, **extras)``, ``compute()``) or None.
    """

    def __init__(
        self,
        cfg: DictConfig,
        steps_per_epoch: int,
        allow_random_vgg: bool = False,
        val_metrics: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.cfg = cfg
        self.steps_per_epoch = steps_per_epoch
        self.generator = instantiate(cfg.model.generator)
        self.loss = GeneratorLoss(
            cfg.loss, cfg.weights, allow_random_vgg=allow_random_vgg, vgg_path=cfg.pretrained.vgg19
        )
        self.adversarial = bool(cfg.loss.adversarial.enabled)
        if self.adversarial:
            adv = cfg.loss.adversarial
            self.d_shape = instantiate(cfg.model.discriminator, in_channels=3 + 18)
            self.d_appearance = instantiate(cfg.model.discriminator, in_channels=3 + 3)
            self.objective = GANObjective(adv.objective)
            self._pools = {  # own RNG per pool, derived from the training seed
                name: ImagePool(int(adv.pool_size), seed=int(cfg.seed) * 2 + i)
                for i, name in enumerate(_D_NAMES)
            }
            self.lambda_gan = float(cfg.weights.adversarial)
        self.val_metrics = val_metrics
        self.channels_last = bool(cfg.trainer.get("channels_last", False))
        self.grid_callback_batch: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    def configure_optimizers(self):
        o = self.cfg.optim
        betas = tuple(float(b) for b in o.betas)
        opts = [torch.optim.Adam(self.generator.parameters(), lr=o.lr, betas=betas)]
        if self.adversarial:
            opts += [
                torch.optim.Adam(self.d_shape.parameters(), lr=o.lr_d, betas=betas),
                torch.optim.Adam(self.d_appearance.parameters(), lr=o.lr_d, betas=betas),
            ]
        rule = PATNSchedule(self.steps_per_epoch, int(o.niter), int(o.niter_decay))
        scheds = [torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=rule) for opt in opts]
        return opts, scheds

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Compute pose maps and part masks on the device when the data set left them out
        (``data.with_maps=false``): the same functions as in the data set, batched."""
        if "BP1" in batch:
            return batch
        from personpose.data.pose import part_masks, pose_heatmaps

        data = self.cfg.data
        size = tuple(batch["P1"].shape[-2:])
        kp = torch.stack([batch["kp1"], batch["kp2"]], 1)
        bp = pose_heatmaps(kp, size, sigma=float(data.get("sigma", 6.0)))
        masks = part_masks(batch["kp2"], size, **dict(data.get("mask_options") or {}))
        return {**batch, "BP1": bp[:, 0], "BP2": bp[:, 1], "mask2": masks}

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, P1: torch.Tensor, BP1: torch.Tensor, BP2: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) source in [-1,1], (N,18,H,W) poses -> (N,3,H,W) generated in [-1,1]."""
        return self.generator(self._prep(P1), self._prep(BP1), self._prep(BP2))

    # ------------------------------------------------------------------ training
    def _clip(self, module: nn.Module) -> None:
        max_norm = float(self.cfg.optim.gradient_clip)
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)

    def _step_uncounted(self, opt) -> None:
        """Step a discriminator optimiser without advancing ``trainer.global_step``."""
        raw = getattr(opt, "optimizer", opt)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            scaler.step(raw)
            scaler.update()
        else:
            raw.step()

    def _d_inputs(self, img: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        return {
            "shape": torch.cat([img, batch["BP2"]], 1),
            "appearance": torch.cat([img, batch["P1"]], 1),
        }

    def _discriminators(self) -> dict[str, nn.Module]:
        return {"shape": self.d_shape, "appearance": self.d_appearance}

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opts = self.optimizers()
        scheds = self.lr_schedulers()
        opts = opts if isinstance(opts, list) else [opts]
        scheds = scheds if isinstance(scheds, list) else [scheds]
        opt_g = opts[0]
        P1, P2 = self._prep(batch["P1"]), self._prep(batch["P2"])
        BP1, BP2 = self._prep(batch["BP1"]), self._prep(batch["BP2"])

        # --- generator
        self.toggle_optimizer(opt_g)
        fake = self.generator(P1, BP1, BP2)
        adv = None
        if self.adversarial:
            discs = self._discriminators()
            fake_in = self._d_inputs(fake, {"BP2": BP2, "P1": P1})
            adv = 0.5 * sum(self.objective.generator(discs[n](fake_in[n])) for n in _D_NAMES)
        terms = self.loss(fake, P2, batch["mask2"], source=P1, adversarial=adv)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(terms["total"])
        self._clip(self.generator)
        opt_g.step()
        scheds[0].step()
        self.untoggle_optimizer(opt_g)
        log = {f"train/g/{k}": v.detach() for k, v in terms.items()}

        # --- discriminators (on pooled fakes, PATN order: shape, then appearance)
        if self.adversarial:
            real_in = self._d_inputs(P2, {"BP2": BP2, "P1": P1})
            fake_in = self._d_inputs(fake.detach(), {"BP2": BP2, "P1": P1})
            for i, name in enumerate(_D_NAMES, start=1):
                disc, opt = self._discriminators()[name], opts[i]
                self.toggle_optimizer(opt)
                pooled = self._pools[name].query(fake_in[name])
                loss_d = self.lambda_gan * self.objective.discriminator(
                    disc(real_in[name]), disc(pooled)
                )
                opt.zero_grad(set_to_none=True)
                self.manual_backward(loss_d)
                self._clip(disc)
                self._step_uncounted(opt)
                scheds[i].step()
                self.untoggle_optimizer(opt)
                log[f"train/d/{name}"] = loss_d.detach()
        log["train/lr"] = torch.tensor(scheds[0].get_last_lr()[0])
        self.log_dict(log, prog_bar=False, on_step=True, on_epoch=False, batch_size=P1.shape[0])
        self.log("loss", terms["total"].detach(), prog_bar=True, on_step=True, on_epoch=False)

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def generate(self, batch: dict) -> torch.Tensor:
        return self(batch["P1"], batch["BP1"], batch["BP2"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        fake = self.generate(batch)
        if batch_idx == 0:
            self.grid_callback_batch = {"batch": batch, "fake": fake.detach()}
        if self.val_metrics is not None:
            self.val_metrics.update(to_unit(fake), to_unit(batch["P2"]), **extras_of(batch))

    def on_validation_epoch_end(self) -> None:
        if self.val_metrics is None:
            return
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict({f"val/{k}": float(v) for k, v in values.items()}, sync_dist=False)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        np_state = np.random.get_state()  # noqa: NPY002 - the global state is what we restore
        checkpoint["personpose"] = {
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "rng_numpy": {
                "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                "pos": int(np_state[2]),
                "has_gauss": int(np_state[3]),
                "cached_gaussian": float(np_state[4]),
            },
            "rng_python": list(random.getstate()[1]),
            "rng_python_gauss": random.getstate()[2],
            "pools": {n: p.state_dict() for n, p in self._pools.items()}
            if self.adversarial
            else {},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("personpose")
        if not state:
            return
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        n = state["rng_numpy"]
        np.random.set_state(  # noqa: NPY002
            (
                "MT19937",
                n["keys"].numpy().astype(np.uint32),
                n["pos"],
                n["has_gauss"],
                n["cached_gaussian"],
            )
        )
        random.setstate((3, tuple(state["rng_python"]), state.get("rng_python_gauss")))
        if self.adversarial:
            for name, pool_state in state["pools"].items():
                self._pools[name].load_state_dict(pool_state)


def extras_of(batch: dict) -> dict[str, Any]:
    """Keyword extras the metrics may use: target keypoints, part labels, the source image."""
    extras: dict[str, Any] = {"kp2": batch["kp2"], "source": to_unit(batch["P1"])}
    if "label2" in batch:
        extras["label2"] = batch["label2"]
    return extras
