"""Extending a finished run continues it exactly: stopping at max_steps (anywhere in an epoch)
and running again with a larger max_steps gives the weights, optimiser states and metrics of an
uninterrupted run, with the default checkpoint interval."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from personpose.run import train_and_evaluate

from .conftest import TINY, compose_cfg

# 4 steps per epoch (8 pairs, batch 2); default checkpoint interval (100): only the end-of-run
# checkpoints exist, so every resume starts from one of them
COMMON = [
    *TINY,
    "trainer.checkpoint_every_n_steps=100",
    "loss=l1",  # adversarial (discriminators, image pools, dropout) + L1
    "eval.test_metrics=[l1,ssim_patn]",
    "eval.save_outputs=false",
]


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


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_cache) -> tuple[dict, dict]:
    """An uninterrupted 6-step run: its results and last checkpoint."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    return _run(run_dir, 6), _checkpoint(run_dir)


@pytest.mark.parametrize(
    "stops",
    [
        (3, 6),  # stopped mid-epoch 0, extended across the epoch boundary
        pytest.param((4, 5, 6), marks=pytest.mark.slow, id="(4, 5, 6)"),  # end of epoch 0
    ],
    ids=str,
)
def test_extending_a_finished_run_matches_the_uninterrupted_run(tmp_path, straight, stops):
    for steps in stops:
        extended = _run(tmp_path / "extended", steps)
        assert extended["steps"] == steps
    assert extended["resumed_from"]
    results, a = straight
    b = _checkpoint(tmp_path / "extended")
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"] == 6
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "personpose"):
        _assert_same(a[key], b[key], key)
    sampler = [c["loops"]["fit_loop"]["state_dict"]["combined_loader"] for c in (a, b)]
    assert sampler[0] == sampler[1] == [{"epoch": 1, "batches": 2}]  # the pair sampler's place
    assert extended["metrics"] == results["metrics"]
