"""The LightningModule: generator, discriminators, loss and optimisers, all injected.

Manual optimisation (Lightning's GAN pattern): per batch one generator step, then one step of
the appearance discriminator ``D_PP(cat(img, P1))`` and one of the shape discriminator
``D_PB(cat(img, BP2))``, in that order as in PATN and the study's code (no discriminator when
the adversarial term is off). The GAN objective is the loss's
:class:`~personpose.losses.adversarial.PATNAdversarial` term: it gives the generator's GAN
term and each discriminator's loss. ``trainer.global_step`` counts generator iterations only:
the discriminator optimisers are stepped without Lightning's step counter, so
``trainer.max_steps`` means training iterations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from personpose.losses.adversarial import PATNAdversarial
from personpose.losses.composite import GeneratorLoss

ORDER = PATNAdversarial.ORDER  # the discriminators' names, in the order they are stepped
Optimizer = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> [0, 1], quantised to 8-bit levels like a saved PNG."""
    return torch.round((x.detach().float().clamp(-1, 1) + 1) * 127.5) / 255.0


def _as_list(x: Any) -> list:
    return [] if x is None else x if isinstance(x, list) else [x]


class PoseTransferModule(L.LightningModule):
    """Pose transfer GAN from its parts (``personpose.run.build_module`` builds them from the
    config: networks and optimisers by Hydra ``_target_``).

    Args:
        generator: ``(P1, BP1, BP2) -> image``: (N, 3, H, W) source in [-1, 1] and (N, 18, H,
            W) pose maps -> (N, 3, H, W) in [-1, 1].
        loss: the generator loss; its ``adversarial`` term, when on, also gives each
            discriminator's loss.
        optimizer: partial optimiser of the generator, ``parameters -> Optimizer``.
        discriminators: ``{"appearance": D_PP, "shape": D_PB}``; exactly when the loss has
            an adversarial term, else None.
        d_optimizer: partial optimiser, called once per discriminator.
        lr_rule: learning-rate factor ``step -> float`` of every optimiser (``LambdaLR``);
            None: constant rates.
        gradient_clip: max gradient norm of the generator and of each discriminator (0: off).
        val_metrics: a metric suite (``update(preds, target, **extras)``, ``compute()``) or None.
    """

    def __init__(
        self,
        generator: nn.Module,
        loss: GeneratorLoss,
        optimizer: Optimizer,
        discriminators: Mapping[str, nn.Module] | None = None,
        d_optimizer: Optimizer | None = None,
        lr_rule: Callable[[int], float] | None = None,
        gradient_clip: float = 0.0,
        val_metrics: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if (discriminators is None) != (loss.adversarial is None):
            raise ValueError(
                "PoseTransferModule: pass discriminators exactly when the loss has an "
                f"adversarial term (loss.adversarial.enabled={loss.adversarial is not None}, "
                f"discriminators={'None' if discriminators is None else sorted(discriminators)})"
            )
        self.generator = generator
        self.discriminators = None if discriminators is None else nn.ModuleDict(discriminators)
        self.loss = loss
        self.g_optimizer, self.d_optimizer, self.lr_rule = optimizer, d_optimizer, lr_rule
        self.gradient_clip = float(gradient_clip)
        self.val_metrics = val_metrics
        self.grid_callback_batch: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    def configure_optimizers(self):
        """The generator's optimiser, then one per discriminator in ``PATNAdversarial.ORDER``,
        each with a ``LambdaLR`` of ``lr_rule``."""
        opts = [self.g_optimizer(self.generator.parameters())]
        if self.discriminators is not None:
            opts += [self.d_optimizer(self.discriminators[n].parameters()) for n in ORDER]
        if self.lr_rule is None:
            return opts
        return opts, [torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=self.lr_rule) for o in opts]

    def forward(self, P1: Tensor, BP1: Tensor, BP2: Tensor) -> Tensor:
        """(N,3,H,W) source in [-1,1], (N,18,H,W) poses -> (N,3,H,W) generated in [-1,1]."""
        return self.generator(P1, BP1, BP2)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict, batch_idx: int) -> None:
        """One generator update, then one update of each discriminator on the real target and
        the (pooled, detached) fake."""
        opts = _as_list(self.optimizers())
        scheds = _as_list(self.lr_schedulers()) or [None] * len(opts)
        self.toggle_optimizer(opts[0])
        fake = self(batch["P1"], batch["BP1"], batch["BP2"])
        terms = self.loss(fake, batch, self.discriminators)
        self._update(opts[0], scheds[0], terms["total"], self.generator)
        fake = fake.detach()
        log = {f"train/g/{k}": v.detach() for k, v in terms.items()}
        for name, opt, sched in zip(ORDER, opts[1:], scheds[1:]):  # none without discriminators
            disc = self.discriminators[name]
            self.toggle_optimizer(opt)
            loss_d = self.loss.adversarial.discriminator_loss(name, disc, batch["P2"], fake, batch)
            self._update(opt, sched, loss_d, disc)
            log[f"train/d/{name}"] = loss_d.detach()
        log["train/lr"] = torch.tensor(float(opts[0].param_groups[0]["lr"]))
        n = batch["P1"].shape[0]
        self.log_dict(log, prog_bar=False, on_step=True, on_epoch=False, batch_size=n)
        self.log("loss", terms["total"].detach(), prog_bar=True, on_step=True, on_epoch=False)

    def _update(self, opt, sched, loss: Tensor, net: nn.Module) -> None:
        """Backward ``loss``, clip ``net``'s gradients, step ``opt`` and ``sched``, untoggle.
        A discriminator's optimiser is stepped without advancing ``trainer.global_step``."""
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.gradient_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.gradient_clip)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if net is self.generator:
            opt.step()
        elif scaler is not None:
            scaler.step(opt.optimizer)
            scaler.update()
        else:
            opt.optimizer.step()
        if sched is not None:
            sched.step()
        self.untoggle_optimizer(opt)

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Metrics, and every loss term (the inactive VGG terms are only computed here)."""
        fake = self(batch["P1"], batch["BP1"], batch["BP2"])
        if batch_idx == 0:
            self.grid_callback_batch = {"batch": batch, "fake": fake.detach()}
        terms = self.loss(fake, batch, self.discriminators)
        n = fake.shape[0]
        self.log_dict({f"val/g/{k}": v for k, v in terms.items()}, batch_size=n, sync_dist=True)
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
        """Save the global RNG states (the image pools are in the state dict)."""
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


def extras_of(batch: dict) -> dict[str, Any]:
    """Keyword extras the metrics may use: target keypoints, part labels, the source image."""
    extras: dict[str, Any] = {"kp2": batch["kp2"], "source": to_unit(batch["P1"])}
    if "label2" in batch:
        extras["label2"] = batch["label2"]
    return extras
