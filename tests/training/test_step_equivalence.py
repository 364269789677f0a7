"""This version's training step against 72ec8c9's (before the plain-torch rewrite and the
injected module): one generator and discriminator step of the default run (``patn_small``,
``loss=part_ssim``, batch 8) from the same weights and batch.

72ec8c9, extracted from this clone's history, builds its module at seed 0, draws the first
training batch and saves both; this checkout loads them, with the discriminators' dropout and
the image pool off so that no random draw differs. Both compute every generator loss term, the
gradient of the generator's total and each discriminator's loss and gradient, which must agree
to float32 rounding (the SSIM kernels differ in summation order). ``pytest -s`` prints them.
This file is also the old side's script: ``python test_step_equivalence.py --side DIR``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

OVERRIDES = ["model.discriminator.dropout=false", "loss.adversarial.pool_size=0"]


def side(kind: str, work: Path) -> dict:
    """In a process whose ``personpose`` is the ``kind`` ("old" | "new") version: the loss
    terms and the gradients of the step (the old side first saves the batch and the weights)."""
    import lightning as L
    from hydra import compose, initialize_config_dir

    import personpose.run as run

    with initialize_config_dir(str(Path(run.__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose("config", OVERRIDES)
    L.seed_everything(0)
    if kind == "old":
        from personpose.training.module import PoseTransferModule

        dm = run.build_datamodule(cfg)
        dm.prepare_data()
        dm.setup("fit")
        m = PoseTransferModule(cfg, dm.steps_per_epoch_for(1), allow_random_vgg=True)
        nets = {"generator": m.generator, "vgg": m.loss.extractor}
        nets |= {"appearance": m.d_appearance, "shape": m.d_shape}
        batch = m.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
        batch = {k: v for k, v in batch.items() if torch.is_tensor(v)}
        torch.save((batch, {k: n.state_dict() for k, n in nets.items()}), work / "start.pt")
    else:
        m = run.build_module(cfg, 100, allow_random_vgg=True)
        nets = {"generator": m.generator, "vgg": m.loss.vgg, **m.discriminators}
    batch, state = torch.load(work / "start.pt")
    for name, net in nets.items():
        net.load_state_dict(state[name], strict=name != "vgg")  # new: fewer VGG layers
    discs = {n: nets[n] for n in ("appearance", "shape")}
    fake = m.generator(batch["P1"], batch["BP1"], batch["BP2"])
    if kind == "old":
        d_in = lambda img, n: m._d_inputs(img, batch)[n]  # noqa: E731
        adv = sum(m.objective.generator(d(d_in(fake, n))) for n, d in discs.items()) / 2
        terms = m.loss(fake, batch["P2"], batch["mask2"], adversarial=adv)
    else:
        terms = m.loss(fake, batch, discs)
    terms["total"].backward()
    for name, d in discs.items():
        d.zero_grad()
        if kind == "old":
            fake_d = d(d_in(fake, name).detach())
            loss_d = m.lambda_gan * m.objective.discriminator(d(d_in(batch["P2"], name)), fake_d)
        else:
            loss_d = m.loss.adversarial.discriminator_loss(name, d, batch["P2"], fake, batch)
        loss_d.backward()
        terms[f"d_{name}"] = loss_d
    grads = {n: [p.grad for p in nets[n].parameters() if p.grad is not None] for n in discs}
    grads["generator"] = [p.grad for p in m.generator.parameters()]
    return {"terms": {k: v.item() for k, v in terms.items()}, "grads": grads}


def _relative(old: list, new: list) -> float:
    """``|new - old| / |old|`` over a list of tensors taken as one vector."""
    diff = torch.stack([(b - a).norm() for a, b in zip(old, new, strict=True)]).norm()
    return float(diff / torch.stack([a.norm() for a in old]).norm())


@pytest.mark.slow  # the old commit's module and data in a second process (~30 s)
def test_one_training_step_equals_72ec8c9s(tmp_path):
    from tests.conftest import bench_sweep_with_old_commit  # the old side runs this file

    bench = bench_sweep_with_old_commit()
    old_tree = bench.ensure_old_checkout(tmp_path / "old")
    cmd = [sys.executable, __file__, "--side", str(tmp_path)]
    subprocess.run(cmd, cwd=old_tree, env=bench.job_env(old_tree, None), check=True)
    old, new = torch.load(tmp_path / "old.pt"), side("new", tmp_path)
    terms = {k: abs(new["terms"][k] - v) for k, v in old["terms"].items() if k in new["terms"]}
    grads = {n: _relative(g, new["grads"][n]) for n, g in old["grads"].items()}
    print(f"\nloss terms, largest |new - old|: {max(terms.values()):.2e} ({old['terms']})")
    print(f"gradients, |new - old| / |old| per network: {grads}")
    assert set(new["terms"]) >= {"l1", "part_ssim", "perceptual", "adversarial", "total"}
    assert max(terms.values()) < 1e-5 and max(grads.values()) < 1e-4


if __name__ == "__main__":  # the old side, run in 72ec8c9's checkout
    torch.save(side("old", Path(sys.argv[2])), Path(sys.argv[2]) / "old.pt")
