"""Train and evaluate one configuration: ``python -m personpose.run [key=value ...]``.

With no overrides: generates the embedded synthetic data set if needed, trains the small
PATN with the paper's proposed loss (adversarial + perceptual + part-based SSIM) on the CPU,
scores the last model and the copy-source baseline on the test pairs and writes
``results.json``. Re-running the same command resumes (or skips a finished run); ``-m``
runs sweeps, where a failing job records ``error.json`` and the others go on.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from personpose.config.removed import check_environment
from personpose.config.schema import register_configs
from personpose.io.atomic import atomic_write_json
from personpose.io.provenance import redact, scrub_file, versions

log = logging.getLogger("personpose.run")

RESULTS = "results.json"
ERROR = "error.json"


MAX_DIRNAME = 150  # file systems allow 255 bytes per name


def _jobdir(override_dirname: str) -> str:
    """Run-folder name from the overrides (``default`` when there are none).

    Deterministic, so re-running a command finds its folder; names longer than
    ``MAX_DIRNAME`` are cut and made unique with a hash of the whole string.
    """
    name = override_dirname.replace("/", "%") or "default"
    if len(name) > MAX_DIRNAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = f"{name[: MAX_DIRNAME - 13]}~{digest}"
    return name


if not OmegaConf.has_resolver("pp_jobdir"):
    OmegaConf.register_new_resolver("pp_jobdir", _jobdir)
register_configs()


def finished_results(run_dir: Path, max_steps: int) -> dict | None:
    """The results of a completed run with the same step budget in ``run_dir``, if any."""
    import json

    path = run_dir / RESULTS
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if results.get("status") == "complete" and results.get("max_steps") == max_steps:
        return results
    return None


def build_datamodule(cfg: DictConfig):
    """Instantiate the data module of ``cfg.data`` (meta keys are not constructor args)."""
    from personpose.data.datamodule import build_datamodule as build

    return build(cfg.data)


def _world_size(cfg: DictConfig) -> int:
    """Processes that share each epoch's pairs (devices x nodes; 1 without DDP)."""
    t = cfg.trainer
    if "ddp" not in str(t.strategy):
        return 1
    devices = t.devices
    if isinstance(devices, int) and devices > 0:
        n = devices
    elif isinstance(devices, list | tuple) or OmegaConf.is_list(devices):
        n = len(devices)
    else:  # -1 / "auto": all visible GPUs
        import torch

        n = max(1, torch.cuda.device_count())
    return n * int(t.num_nodes)


def train_and_evaluate(
    cfg: DictConfig, run_dir: Path, job_name: str, group: str | None, choices: dict | None = None
) -> dict:
    """Fit (resuming from ``run_dir/checkpoints/last.ckpt``), then test; returns the results."""
    from personpose.metrics import build_metrics
    from personpose.training.checkpoint import AtomicCheckpoint, resume_path
    from personpose.training.loggers import build_loggers, finish_wandb
    from personpose.training.module import PoseTransferModule
    from personpose.training.sample_grid import SampleGridCallback
    from personpose.training.test_split import run_test_split

    t0 = time.time()
    max_steps = 1 if cfg.trainer.fast_dev_run else int(cfg.trainer.max_steps)
    if cfg.resume and (done := finished_results(run_dir, max_steps)) is not None:
        log.info("%s already holds finished results; nothing to do (resume=false to redo)", run_dir)
        return done

    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    allow_random = bool(cfg.data.get("allow_random_weights", False))
    train_images = datamodule.tables()["train"].image_dir  # FID reference: the training set
    pretrained = OmegaConf.to_container(cfg.pretrained)

    def make_metrics(names=None):
        return build_metrics(
            names if names is not None else cfg.eval.protocol,
            pretrained=pretrained,
            fid_reference=train_images,
            fid_cache_dir=Path(datamodule.data_dir) / ".fid_cache",
            movenet_model=cfg.eval.movenet_model,
        )

    module = PoseTransferModule(
        cfg,
        steps_per_epoch=datamodule.steps_per_epoch_for(_world_size(cfg)),
        allow_random_vgg=allow_random,
        val_metrics=make_metrics(list(cfg.eval.val_metrics)),
    )
    ckpt = AtomicCheckpoint(run_dir / "checkpoints", int(cfg.trainer.checkpoint_every_n_steps))
    loggers = build_loggers(cfg, run_dir, job_name, group)
    t = cfg.trainer
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        strategy="ddp_find_unused_parameters_true" if t.strategy == "ddp" else t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        sync_batchnorm=bool(t.sync_batchnorm),
        max_steps=max_steps,
        max_epochs=-1,
        val_check_interval=min(int(t.val_every_n_steps), max_steps),
        check_val_every_n_epoch=None,
        limit_val_batches=t.limit_val_batches,
        num_sanity_val_steps=0,
        log_every_n_steps=int(t.log_every_n_steps),
        enable_progress_bar=bool(t.progress_bar),
        enable_checkpointing=False,
        callbacks=[ckpt, SampleGridCallback(run_dir / "samples", int(cfg.eval.grid_samples))],
        logger=loggers,
        default_root_dir=str(run_dir),
    )
    start = resume_path(run_dir, bool(cfg.resume))
    if start is not None:
        log.info("resuming from %s", start)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=start, weights_only=True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # the test split is scored by rank 0 alone: leave the process group first, so
            # the metrics do not wait for ranks that have finished
            torch.distributed.destroy_process_group()
        if not trainer.is_global_zero:
            return {}
        datamodule.setup("test")
        test = run_test_split(
            module,
            datamodule.test_dataloader(),
            make_metrics
            if cfg.eval.test_metrics is None
            else (lambda: make_metrics(list(cfg.eval.test_metrics))),
            out_dir=run_dir / "test_outputs" if cfg.eval.save_outputs else None,
            save_strips=bool(cfg.eval.save_strips),
        )
        results = {
            "status": "complete",
            "metrics": test["metrics"],
            "baselines": {"copy_source": test["copy_source"]},
            "skipped": test["skipped"],
            "protocol": test["protocol"],
            "count": test["count"],
            "choices": dict(choices or {}),
            "seed": int(cfg.seed),
            "data_seed": int(cfg.data.get("seed", 0)),
            "steps": int(trainer.global_step),
            "max_steps": max_steps,
            "resumed_from": str(start) if start else None,
            "wall_time_s": round(time.time() - t0, 2),
            "pretrained": {"vgg19": module.loss.pretrained_source or "not used"},
            "test_outputs": "test_outputs" if cfg.eval.save_outputs else None,
            "config": redact(OmegaConf.to_container(cfg, resolve=True)),
            "versions": versions(),
        }
        atomic_write_json(run_dir / RESULTS, results)
        log.info("results written to %s", run_dir / RESULTS)
        return results
    finally:
        finish_wandb()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> Any:
    check_environment()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        scrub_file(run_dir / ".hydra" / name)
    job_name = _jobdir(hc.job.override_dirname)
    try:
        results = train_and_evaluate(
            cfg,
            run_dir,
            job_name,
            cfg.sweep_name if multirun else None,
            {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra")},
        )
    except Exception as exc:
        atomic_write_json(
            run_dir / ERROR,
            {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
                "overrides": list(hc.overrides.task),
                "versions": versions(),
            },
        )
        if not multirun:
            raise
        log.error(
            "job %s failed (%s: %s); see %s; the sweep goes on",
            job_name,
            type(exc).__name__,
            exc,
            run_dir / ERROR,
        )
        return None
    if results:
        _print_summary(results)
    return results.get("metrics") if results else None


def _print_summary(results: dict) -> None:
    metrics, base = results["metrics"], results["baselines"]["copy_source"]
    lines = ["| metric | model | copy-source |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {base.get(k, float('nan')):.4f} |" for k, v in metrics.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
