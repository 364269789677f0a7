"""Extending a finished run continues it exactly: stopping at max_steps (anywhere in an epoch)
and running again with a larger max_steps gives the weights, optimiser states and metrics of an
uninterrupted run, with the default checkpoint interval."""

from __future__ import annotations

from pathlib import Path

import torch

from personpose.run import train_and_evaluate

from .conftest import TINY, compose_cfg

# 4 steps per epoch (8 pairs, batch 2); default checkpoint interval (100): only the end-of-run
# checkpoints exist, so every resume starts from one of them
COMMON = [*TINY, "trainer.checkpoint_every_n_steps=100", "eval.test_metrics=[ssim_patn,pssim]"]


def _run(run_dir: Path, max_steps: int) -> dict:
    cfg = compose_cfg([*COMMON, f"trainer.max_steps={max_steps}"])
    return train_and_evaluate(cfg, run_dir, run_dir.name, None)


def _checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_extending_a_finished_run_matches_the_uninterrupted_run(tmp_path, data_cache):
    straight = _run(tmp_path / "straight", 6)
    # stopped mid-epoch (step 3), then at the end of epoch 0 (step 4), then extended to 6
    for steps in (3, 4, 6):
        extended = _run(tmp_path / "extended", steps)
        assert extended["steps"] == steps
    assert extended["resumed_from"]
    a, b = _checkpoint(tmp_path / "straight"), _checkpoint(tmp_path / "extended")
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"] == 6
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "personpose"):
        _assert_same(a[key], b[key], key)
    assert extended["metrics"] == straight["metrics"]
