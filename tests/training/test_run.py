"""End-to-end runs of the entry point on tiny synthetic data (CPU)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from personpose.config.resolvers import jobdir
from personpose.run import RunRefused, _sigterm, train_and_evaluate

from .conftest import REPO, TINY, compose_cfg, run_cli, start_run

LOSSES = sorted(p.stem for p in (REPO / "conf" / "loss").glob("*.yaml") if p.stem != "schema")


def _run(tmp_path: Path, overrides: list[str], name: str = "run") -> tuple[dict, Path]:
    cfg = compose_cfg(TINY + overrides)
    run_dir = tmp_path / name
    return train_and_evaluate(cfg, run_dir, name, None, {"loss": cfg_choice(overrides)}), run_dir


def cfg_choice(overrides: list[str]) -> str:
    return next((o.split("=", 1)[1] for o in overrides if o.startswith("loss=")), "part_ssim")


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_config_trains_and_reports(loss, tmp_path, data_cache):
    results, run_dir = _run(tmp_path, [f"loss={loss}", "trainer.max_steps=2"])
    assert results["status"] == "complete" and results["steps"] == 2
    terms = {k for k in results["metrics"]}
    assert {"ssim_patn", "mask_ssim", "pssim", "gt_part_l1"} <= terms
    assert all(v == v for v in results["metrics"].values())  # no NaN
    log = (run_dir / "logs" / "session_0" / "metrics.csv").read_text()
    assert "train/g/total" in log and "train/g/part_ssim" in log  # every cheap term logged
    loss_cfg = compose_cfg([f"loss={loss}"]).loss
    assert ("train/d/shape" in log) == ("train/d/appearance" in log) == loss_cfg.adversarial.enabled
    vgg_terms = ("perceptual", "style", "perceptual_ssim")
    if any(loss_cfg[t].enabled for t in vgg_terms):  # inactive VGG terms: at validation only
        for t in vgg_terms:
            assert f"val/g/{t}," in log and (f"train/g/{t}," in log) == loss_cfg[t].enabled


def test_results_json_contents_and_outputs(tmp_path, data_cache):
    results, run_dir = _run(tmp_path, [])
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["metrics"] == results["metrics"]
    for key in (
        "metrics",
        "baselines",
        "protocol",
        "seed",
        "data_seed",
        "steps",
        "wall_time_s",
        "config",
        "versions",
        "skipped",
        "pretrained",
        "count",
    ):
        assert key in on_disk, key
    assert set(on_disk["baselines"]["copy_source"]) == set(on_disk["metrics"])
    assert on_disk["versions"]["torch"] == torch.__version__.split("+")[0] or on_disk["versions"][
        "torch"
    ].startswith(torch.__version__.split("+")[0])
    assert on_disk["config"]["loss"]["part_ssim"]["enabled"] is True
    # metrics that need unavailable pretrained weights are skipped with a reason, never reported
    for name in ("lpips_alex", "fid_tv"):
        assert name not in on_disk["metrics"] and name in on_disk["skipped"]
    assert "random" in json.dumps(on_disk["pretrained"]).lower()  # random VGG recorded
    pngs = sorted((run_dir / "test_outputs").glob("*.png"))
    assert len(pngs) == on_disk["count"] > 0
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["config"]["loss"] == on_disk["config"]["loss"]  # state dicts + resolved config
    assert any(k.startswith("discriminators.appearance.") for k in ckpt["state_dict"])
    assert (run_dir / "samples" / "latest.png").is_file()
    # re-running the same configuration finds the finished run and does nothing
    again = train_and_evaluate(compose_cfg(TINY), run_dir, "run", None)
    assert again["wall_time_s"] == on_disk["wall_time_s"]


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"]


def test_resume_gives_the_same_weights_and_metrics(tmp_path, data_cache):
    common = ["trainer.checkpoint_every_n_steps=3", "trainer.val_check_interval=100"]
    full, full_dir = _run(tmp_path, [*common, "trainer.max_steps=7"], "full")
    # interrupted after 3 steps (a checkpoint mid-epoch: 4 steps per epoch), then resumed to 7
    _run(tmp_path, [*common, "trainer.max_steps=3"], "split")
    resumed, split_dir = _run(tmp_path, [*common, "trainer.max_steps=7"], "split")
    assert resumed["resumed_from"] and resumed["steps"] == 7
    # the log of the first session survives the resume; together they cover every step
    from personpose.training.loggers import read_csv_logs

    steps = {int(r["step"]) for r in read_csv_logs(split_dir) if r.get("train/g/total")}
    assert steps == set(range(7))
    a, b = _final_weights(full_dir), _final_weights(split_dir)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert resumed["metrics"] == full["metrics"]


def _long_run(run_dir: Path) -> list[str]:
    """A 400-step tiny run checkpointing every 2 steps: long enough to be stopped midway."""
    return [
        *TINY,
        "trainer.max_steps=400",
        "trainer.checkpoint_every_n_steps=2",
        "trainer.val_check_interval=1000",
        "loss=l1",
        f"hydra.run.dir={run_dir}",
    ]


def test_sigkill_mid_run_resumes_from_last_checkpoint(tmp_path, data_cache):
    run_dir = tmp_path / "killed"
    args = _long_run(run_dir)
    proc = start_run(args, tmp_path)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not ckpt.exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "no checkpoint was written before the kill"
    step = torch.load(ckpt, weights_only=True)["global_step"]
    assert 0 < step < 400
    done = run_cli(
        [*args[:-1], "trainer.max_steps=" + str(step + 4), f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in (done.stdout + done.stderr)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["steps"] == step + 4 and results["resumed_from"]


def test_misspelt_override_fails_naming_the_key(tmp_path):
    out = run_cli(["trainer.max_stepz=3"], cwd=tmp_path, timeout=120)
    assert out.returncode != 0
    assert "max_stepz" in out.stderr
    out = run_cli(["loss.part_ssim.enabeld=true"], cwd=tmp_path, timeout=120)
    assert out.returncode != 0 and "enabeld" in out.stderr


def test_removed_key_fails_naming_its_replacement(tmp_path):
    out = run_cli(["loss=l1", "loss.vgg.weights_path=/x/vgg19.pth"], cwd=tmp_path, timeout=120)
    assert out.returncode != 0
    assert "loss.vgg.weights_path was removed; use pretrained.vgg19" in out.stderr
    assert not (tmp_path / "outputs").exists()


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder``: (bytes, modification time in ns)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# Warnings a user can do nothing about, silenced in the entry point (personpose/run.py).
SILENCED = ("💡 Tip", "LeafSpec", "module(s) in eval mode", "CUDA_HOME", "on_after_batch_transfer")


def test_smoke_command_end_to_end(tmp_path, data_cache):
    """The README's smoke test as typed: trains, scores, says it is a smoke test and prints no
    warning a user can do nothing about; its folder passes back to evaluate as typed; a
    re-run is skipped, leaves the folder as it was and names the setting it ignores."""
    out = run_cli(["experiment=smoke", "loss.perceptual.enabled=true"], cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "outputs" / "experiment-smoke__loss.perceptual.enabled-true"
    assert [p.parent for p in (tmp_path / "outputs").glob("*/results.json")] == [run_dir]
    assert "smoke test: 4 training steps of patn_tiny" in text and "| mask_ssim |" in out.stdout
    for message in SILENCED:
        assert message not in text, message
    assert "using a RANDOM VGG-19" in text  # what tells the user something stays
    results = json.loads((run_dir / "results.json").read_text())
    assert results["smoke_test"] is True and results["steps"] == 4 and results["count"] == 20
    assert (run_dir / ".hydra" / "overrides.yaml").read_text().split() == [
        "-",
        "experiment=smoke",
        "-",
        "loss.perceptual.enabled=true",
    ]

    before = _snapshot(run_dir)
    again = run_cli(
        ["experiment=smoke", "loss.perceptual.enabled=true", "logger=tensorboard"], cwd=tmp_path
    )
    text = again.stdout + again.stderr
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to do" in text and "ignored, as the run is finished: logger." in text
    assert _snapshot(run_dir) == before  # .hydra/, logs and results as they were

    scored = subprocess.run(
        [sys.executable, "-m", "personpose.evaluate", f"run_dir=outputs/{run_dir.name}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "ssim_patn" in scored.stdout


def test_a_run_folder_never_returns_another_data_sets_results(tmp_path, data_cache):
    from tests.data.test_dataset import write_patn_folder

    a = write_patn_folder(tmp_path / "a" / "people", size=(128, 64), seed=0)
    b = write_patn_folder(tmp_path / "b" / "people", size=(128, 64), seed=1)
    assert jobdir([f"data.root={a}"]) != jobdir([f"data.root={b}"])  # sweeps over roots
    on_a = ["loss=l1", "trainer.max_steps=2", "data.synth=null", f"data.root={a}"]
    results, run_dir = _run(tmp_path, on_a)
    identity = results["data_identity"]
    assert identity["root"] == str(a.resolve()) and len(identity["csv_sha256"]) == 64
    assert json.loads((run_dir / "results.json").read_text())["data_identity"] == identity
    before = _snapshot(run_dir)
    on_b = [*on_a[:-1], f"data.root={b}"]  # the same folder (as with hydra.run.dir=...)
    for steps in ("trainer.max_steps=2", "trainer.max_steps=4"):  # neither reused nor extended
        with pytest.raises(RunRefused, match=f"holds the results of a run on {a.resolve()}"):
            _run(tmp_path, [*on_b, steps])
    assert _snapshot(run_dir) == before
    assert _run(tmp_path, on_a)[0]["wall_time_s"] == results["wall_time_s"]  # same data: reused


HOLD = """
import sys, time
from personpose.io.lock import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(300)
"""


def test_a_second_run_in_a_busy_folder_names_the_holder_and_fails(tmp_path, data_cache):
    run_dir = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        out = run_cli([*TINY, f"hydra.run.dir={run_dir}"], cwd=tmp_path, timeout=180)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode != 0
    assert f"is in use by pid {holder.pid} on {socket.gethostname()}" in out.stderr
    written = {p.name for p in run_dir.iterdir()} - {".lock", ".lock.json", "run.log"}
    assert not written, written  # no error.json, no .hydra/, no checkpoint


def test_sigterm_handler_outside_and_inside_fit():
    """Outside ``trainer.fit`` the handler stops the run at once; inside, Lightning's handler
    (which calls it) is the current one, and stops at the next step instead."""
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        with pytest.raises(SIGTERMException):
            _sigterm(signal.SIGTERM, None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        _sigterm(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, old)


def test_sigterm_mid_run_exits_non_zero_with_error_json(tmp_path, data_cache):
    """A re-run resumes from its checkpoint as after SIGKILL (the test above)."""
    run_dir = tmp_path / "stopped"
    args = _long_run(run_dir)
    proc = start_run(args, tmp_path, output=True)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not ckpt.exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    error = json.loads((run_dir / "error.json").read_text())["error"]
    assert error == "interrupted by SIGTERM; re-run the same command to resume"
    assert "interrupted by SIGTERM" in output and not (run_dir / "results.json").exists()
    assert 0 < torch.load(ckpt, weights_only=True)["global_step"] < 400


def test_failed_sweep_job_does_not_stop_the_others(tmp_path, data_cache):
    out = run_cli(
        [
            "-m",
            *TINY,
            "trainer.max_steps=1",
            "sweep_name=t",
            "data.synth.preset=market,no_such_preset",
        ],
        cwd=tmp_path,
    )
    # the other job finishes; the sweep then ends non-zero, naming the failed one
    assert out.returncode == 1, out.stderr[-3000:]
    assert "sweep multirun/t: 1 job failed" in out.stderr
    jobs = sorted((tmp_path / "multirun" / "t").iterdir())
    names = {j.name: j for j in jobs if j.is_dir()}
    ok = [j for n, j in names.items() if "preset-market" in n]
    bad = [j for n, j in names.items() if "no_such_preset" in n]
    assert ok and (ok[0] / "results.json").is_file()
    assert bad and "no_such_preset" in json.loads((bad[0] / "error.json").read_text())["error"]


def test_ddp_two_cpu_processes(tmp_path, data_cache):
    run_dir = tmp_path / "ddp"
    out = run_cli(
        [
            *TINY,
            "trainer=ddp_cpu",
            "trainer.max_steps=2",
            "loss=part_ssim",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["steps"] == 2 and results["count"] > 0
    # both processes trained: the two ranks shared each epoch's pairs
    assert "GLOBAL_RANK: 1" in out.stdout + out.stderr or "rank: 1" in out.stdout + out.stderr


def test_evaluate_run_dir_rescores_the_same_numbers(tmp_path, data_cache, capsys):
    from hydra import compose, initialize_config_dir

    from personpose.evaluate import main as evaluate

    results, run_dir = _run(tmp_path, ["trainer.max_steps=2"])
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        # one precision (float32) in both; compiled metrics agree to ~1e-6, so eager here
        overrides = [f"run_dir={run_dir}", f"out={tmp_path / 'e.json'}", "compile=false"]
        cfg = compose("evaluate", overrides=overrides)
    doc = evaluate(cfg)
    assert doc["count"] == results["count"]
    for name, value in results["metrics"].items():
        assert doc["metrics"][name] == pytest.approx(value, abs=1e-9), name
    assert doc["baselines"]["copy_source"] == pytest.approx(results["baselines"]["copy_source"])
    assert json.loads((tmp_path / "e.json").read_text())["inputs"]["global_step"] == 2
    assert "ssim_patn" in capsys.readouterr().out


def test_bf16_mixed_precision_and_channels_last_run_on_cpu(tmp_path, data_cache):
    """The GPU options' code path (autocast bf16, channels-last) on the CPU; the numbers on
    CUDA (and SyncBatchNorm) can only be checked on a GPU."""
    results, _ = _run(
        tmp_path,
        ["trainer.precision=bf16-mixed", "trainer.channels_last=true", "trainer.max_steps=2"],
    )
    assert results["steps"] == 2
    assert all(v == v for v in results["metrics"].values())


def test_maps_computed_in_the_training_step_match_the_data_set(tmp_path, data_cache):
    """data.with_maps=false: pose maps and masks come from keypoints on the device instead
    (the data module's on_after_batch_transfer)."""
    from personpose.data.datamodule import build_datamodule

    cfg = compose_cfg(TINY)
    dm = build_datamodule(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    stripped = {k: v for k, v in batch.items() if k not in ("BP1", "BP2", "mask2")}
    rebuilt = dm.on_after_batch_transfer(stripped, 0)
    for key in ("BP1", "BP2", "mask2"):
        torch.testing.assert_close(rebuilt[key], batch[key], atol=1e-6, rtol=0)
    results, _ = _run(tmp_path, ["data.with_maps=false", "trainer.max_steps=2"])
    assert results["steps"] == 2
