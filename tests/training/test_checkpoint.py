"""Checksummed checkpoints: a damaged last.ckpt falls back to previous.ckpt with a warning, a
run with no trustworthy checkpoint stops with one message naming the file and the way out, and
a save killed between its renames always leaves a trusted checkpoint."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from personpose.run import train_and_evaluate
from personpose.training import checkpoint
from personpose.training.checkpoint import (
    LAST,
    PREVIOUS,
    AtomicCheckpoint,
    CheckpointError,
    digest_path,
    resume_path,
    sha256,
)

from .conftest import TINY, compose_cfg

# two saves: previous.ckpt at step 2, last.ckpt at step 4
TWO_SAVES = [*TINY, "trainer.max_steps=4", "trainer.checkpoint_every_n_steps=2", "loss=l1"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_cache) -> Path:
    run_dir = tmp_path_factory.mktemp("ckpt") / "run"
    train_and_evaluate(compose_cfg(TWO_SAVES), run_dir, "run", None)
    return run_dir


@pytest.fixture
def run_dir(finished_run, tmp_path) -> Path:
    """A copy of the finished run's checkpoints (each test damages its own)."""
    shutil.copytree(finished_run / "checkpoints", tmp_path / "checkpoints")
    return tmp_path


def _step(path: Path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def flip_generator_floats(path: Path, n: int = 16) -> None:
    """Overwrite ``n`` float32 values of a generator weight inside the checkpoint's bytes, as a
    bad disk or copy would (the file still loads)."""
    state = torch.load(path, weights_only=True)["state_dict"]
    weight = next(v for k, v in state.items() if k.startswith("generator.") and v.numel() >= n)
    old = weight.flatten()[:n].contiguous().numpy().tobytes()
    raw = path.read_bytes()
    at = raw.find(old)
    assert at >= 0 and raw.find(old, at + 1) < 0
    new = (weight.flatten()[:n] + 1).contiguous().numpy().tobytes()
    path.write_bytes(raw[:at] + new + raw[at + len(old) :])


def test_each_checkpoint_is_saved_with_its_sha256(finished_run):
    folder = finished_run / "checkpoints"
    assert _step(folder / LAST) == 4 and _step(folder / PREVIOUS) == 2
    for name in (LAST, PREVIOUS):
        assert digest_path(folder / name).read_text().strip() == sha256(folder / name)
    assert resume_path(finished_run, True) == folder / LAST
    assert resume_path(finished_run, False) is None
    assert resume_path(finished_run / "elsewhere", True) is None  # a fresh run


def test_flipped_floats_fall_back_to_previous_with_a_warning(run_dir, caplog):
    last = run_dir / "checkpoints" / LAST
    flip_generator_floats(last)
    torch.load(last, weights_only=True)  # the damage is invisible to torch.load
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        assert resume_path(run_dir, True) == run_dir / "checkpoints" / PREVIOUS
    assert f"{last} does not match its recorded SHA-256" in caplog.text
    assert "resuming from" in caplog.text and PREVIOUS in caplog.text


def test_flipped_floats_without_previous_stop_with_the_way_out(run_dir):
    folder = run_dir / "checkpoints"
    flip_generator_floats(folder / LAST)
    (folder / PREVIOUS).unlink()
    with pytest.raises(CheckpointError) as err:
        resume_path(run_dir, True)
    text = str(err.value)
    assert f"{folder / LAST} does not match its recorded SHA-256" in text
    assert f"{folder / PREVIOUS} is missing" in text
    assert f"Delete {folder}" in text and "resume=false" in text


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "does not match"),
        (lambda p: p.write_bytes(b""), "is empty"),
    ],
    ids=["truncated", "empty"],
)
def test_truncated_or_empty_checkpoints_give_one_clear_message(run_dir, damage, problem):
    folder = run_dir / "checkpoints"
    for name in (LAST, PREVIOUS):
        damage(folder / name)
    with pytest.raises(CheckpointError, match="resume=false") as err:
        resume_path(run_dir, True)
    assert f"{folder / LAST} {problem}" in str(err.value)
    assert f"{folder / PREVIOUS} {problem}" in str(err.value)


def test_a_checkpoint_without_recorded_digest_is_not_trusted(run_dir):
    folder = run_dir / "checkpoints"
    for name in (LAST, PREVIOUS):
        digest_path(folder / name).unlink()
    with pytest.raises(CheckpointError, match=r"has no recorded SHA-256 \(last\.ckpt\.sha256"):
        resume_path(run_dir, True)


def test_damaged_last_checkpoint_resumes_from_previous(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run / "checkpoints", run_dir / "checkpoints")
    flip_generator_floats(run_dir / "checkpoints" / LAST)
    results = train_and_evaluate(
        compose_cfg([*TWO_SAVES, "trainer.max_steps=5"]), run_dir, "run", None
    )
    assert results["resumed_from"] == str(run_dir / "checkpoints" / PREVIOUS)
    assert results["steps"] == 5


@pytest.mark.parametrize("renames_done", range(4))
def test_a_save_killed_between_renames_leaves_a_trusted_checkpoint(
    tmp_path, monkeypatch, renames_done
):
    """Kill (here: an exception) after each of the renames of a save: the folder still holds
    a trusted checkpoint, the old last or the new one."""
    saver = AtomicCheckpoint(tmp_path)
    for content in (b"old previous", b"old last"):
        (tmp_path / ".last.ckpt.tmp").write_bytes(content)
        saver._publish(tmp_path / ".last.ckpt.tmp")
    (tmp_path / ".last.ckpt.tmp").write_bytes(b"new")
    done = []

    def replace(src, dst):
        if len(done) == renames_done:
            raise KeyboardInterrupt
        done.append(dst)
        os.replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        saver._publish(tmp_path / ".last.ckpt.tmp")
    assert (checkpoint.trusted_checkpoint(tmp_path).read_bytes()) in (b"old last", b"new")
