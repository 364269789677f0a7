"""Train and evaluate one configuration: ``python -m personpose.run [key=value ...]``.

With no overrides: generates the embedded synthetic data set if needed, trains the small
PATN with the paper's proposed loss (adversarial + perceptual + part-based SSIM) on the CPU,
scores the last model and the copy-source baseline on the test pairs and writes
``results.json``. Re-running the same command resumes (or skips a finished run); ``-m``
runs sweeps, where a failing job records ``error.json`` and the others go on.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from personpose.config.removed import check_environment
from personpose.config.resolvers import jobdir, register_resolvers
from personpose.config.schema import check_overrides, register_configs
from personpose.data.datamodule import build_datamodule
from personpose.io.atomic import atomic_write_json
from personpose.io.provenance import redact, scrub_file, versions
from personpose.losses.adversarial import PATNAdversarial
from personpose.losses.composite import GeneratorLoss
from personpose.metrics import build_metrics
from personpose.training.checkpoint import resume_path
from personpose.training.loggers import build_loggers, finish_wandb
from personpose.training.module import PoseTransferModule
from personpose.training.sample_grid import SampleGridCallback
from personpose.training.score_test_pairs import score_test_pairs

log = logging.getLogger("personpose.run")

RESULTS = "results.json"
ERROR = "error.json"


register_resolvers()
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


def build_module(
    cfg: DictConfig,
    steps_per_epoch: int,
    allow_random_vgg: bool = False,
    val_metrics: nn.Module | None = None,
) -> PoseTransferModule:
    """The training module of ``cfg``: generator and discriminators from the ``model`` node,
    the loss from ``loss`` and ``weights``, partial optimisers and the learning-rate rule from
    ``optim`` (``steps_per_epoch``: generator steps per PATN epoch, per process)."""
    generator = instantiate(cfg.model.generator)
    loss = GeneratorLoss(
        cfg.loss, cfg.weights, cfg.pretrained.vgg19, allow_random_vgg, seed=int(cfg.seed)
    )
    discriminators = None
    if loss.adversarial is not None:
        discriminators = {
            name: instantiate(cfg.model.discriminator, in_channels=channels)
            for name, channels in PATNAdversarial.IN_CHANNELS.items()
        }
    optim = cfg.optim
    return PoseTransferModule(
        generator,
        loss,
        instantiate(optim.generator, _convert_="all"),
        discriminators,
        instantiate(optim.discriminator, _convert_="all"),
        lr_rule=instantiate(optim.lr_rule)(steps_per_epoch=steps_per_epoch),
        gradient_clip=float(optim.gradient_clip),
        val_metrics=val_metrics,
    )


def make_trainer(cfg: DictConfig, run_dir: Path, job_name: str, group: str | None) -> L.Trainer:
    """The Trainer of the ``trainer`` group, writing into ``run_dir``, with the run's loggers
    and sample grids, and the resolved config saved in each checkpoint."""
    factory = instantiate(cfg.trainer, _partial_=True, _convert_="all")
    return factory(
        run_dir=run_dir,
        config=redact(OmegaConf.to_container(cfg, resolve=True)),
        callbacks=[SampleGridCallback(run_dir / "samples", int(cfg.eval.grid_samples))],
        logger=build_loggers(cfg, run_dir, job_name, group),
    )


def metrics_factory(cfg: DictConfig, datamodule) -> Callable[..., nn.Module]:
    """``make(names=None)``: a fresh metric suite (``cfg.eval.protocol`` by default); FID's
    reference is the training set."""
    pretrained = OmegaConf.to_container(cfg.pretrained)
    train_images = datamodule.tables()["train"].image_dir

    def make(names: list[str] | None = None) -> nn.Module:
        return build_metrics(
            names if names is not None else cfg.eval.protocol,
            pretrained=pretrained,
            fid_reference=train_images,
            fid_cache_dir=Path(datamodule.data_dir) / ".fid_cache",
            movenet_model=cfg.eval.movenet_model,
            dtype=cfg.eval.precision,
            compile=cfg.eval.compile,
        )

    return make


def score_run(cfg: DictConfig, module: PoseTransferModule, datamodule, run_dir: Path) -> dict:
    """Score the trained generator on the test pairs (``eval.test_metrics``, else the whole
    protocol), writing the outputs when ``eval.save_outputs``."""
    make = metrics_factory(cfg, datamodule)
    names = None if cfg.eval.test_metrics is None else list(cfg.eval.test_metrics)
    datamodule.setup("test")
    return score_test_pairs(
        module.generator,
        datamodule,
        lambda: make(names),
        out_dir=run_dir / "test_outputs" if cfg.eval.save_outputs else None,
        save_strips=bool(cfg.eval.save_strips),
    )


def results_document(
    cfg: DictConfig, trainer: L.Trainer, module: PoseTransferModule, test: dict, **extra: Any
) -> dict:
    """The ``results.json`` of a finished run: test metrics, the copy-source baseline,
    provenance (config, versions, pretrained weights) and ``extra`` keys."""
    return {
        "status": "complete",
        "metrics": test["metrics"],
        "baselines": {"copy_source": test["copy_source"]},
        "skipped": test["skipped"],
        "protocol": test["protocol"],
        "count": test["count"],
        "seed": int(cfg.seed),
        "data_seed": int(cfg.data.get("seed", 0)),
        "steps": int(trainer.global_step),
        "max_steps": int(trainer.max_steps),
        **extra,
        "pretrained": {"vgg19": module.loss.pretrained_source or "not used"},
        "test_outputs": "test_outputs" if cfg.eval.save_outputs else None,
        "config": redact(OmegaConf.to_container(cfg, resolve=True)),
        "versions": versions(),
    }


def train_and_evaluate(
    cfg: DictConfig, run_dir: Path, job_name: str, group: str | None, choices: dict | None = None
) -> dict:
    """Fit (resuming from ``run_dir/checkpoints/last.ckpt``), then test; returns the results."""
    t0 = time.time()
    if cfg.resume and (done := finished_results(run_dir, int(cfg.trainer.max_steps))) is not None:
        log.info("%s already holds finished results; nothing to do (resume=false to redo)", run_dir)
        return done
    start = resume_path(run_dir, bool(cfg.resume))  # before any work: an untrusted one stops
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    trainer = make_trainer(cfg, run_dir, job_name, group)
    module = build_module(
        cfg,
        datamodule.steps_per_epoch_for(trainer.world_size),
        datamodule.allow_random_weights,
        val_metrics=metrics_factory(cfg, datamodule)(list(cfg.eval.val_metrics)),
    )
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
        test = score_run(cfg, module, datamodule, run_dir)
        results = results_document(
            cfg,
            trainer,
            module,
            test,
            choices=dict(choices or {}),
            resumed_from=str(start) if start else None,
            wall_time_s=round(time.time() - t0, 2),
        )
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
    job_name = jobdir(hc.job.override_dirname)
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
    try:
        check_overrides(sys.argv[1:])
    except ValueError as exc:
        raise SystemExit(f"personpose.run: {exc}") from None
    main()
