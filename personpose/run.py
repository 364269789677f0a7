"""Train and evaluate one configuration: ``python -m personpose.run [key=value ...]``.

With no overrides: generates the embedded synthetic data set if needed, trains the small
PATN with the paper's proposed loss (adversarial + perceptual + part-based SSIM) on the CPU,
scores the last model and the copy-source baseline on the test pairs and writes
``results.json``. Re-running the same command resumes (or skips a finished run, leaving its
folder as it was); ``-m`` runs sweeps, where a failing job records ``error.json`` and the
others go on. One process at a time per run folder (a lock); SIGTERM stops a run with
``error.json`` saying so and a non-zero exit, and a re-run resumes it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from personpose.config.callbacks import ERROR, RESULTS
from personpose.config.removed import check_environment
from personpose.config.resolvers import jobdir, register_resolvers
from personpose.config.schema import check_overrides, register_configs
from personpose.data.datamodule import build_datamodule
from personpose.data.identity import data_identity
from personpose.io.atomic import atomic_write_json, atomic_write_text
from personpose.io.lock import FolderBusy, folder_lock
from personpose.io.provenance import redact, scrub_file, versions
from personpose.losses.adversarial import PATNAdversarial
from personpose.losses.composite import GeneratorLoss
from personpose.metrics import build_metrics
from personpose.training.checkpoint import resume_path
from personpose.training.loggers import build_loggers, finish_wandb
from personpose.training.module import PoseTransferModule
from personpose.training.qualitative import QualitativeCallback
from personpose.training.sample_grid import SampleGridCallback
from personpose.training.score_test_pairs import score_test_pairs

log = logging.getLogger("personpose.run")

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
# Messages a user can do nothing about, silenced while a run lasts (:func:`quiet_lightning`).
QUIET_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning calls torch's old pytree API
    r"Found \d+ module\(s\) in eval mode at the start of training",  # the frozen pretrained nets
)
LIGHTNING_LOGS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


register_resolvers()
register_configs()


class RunRefused(RuntimeError):
    """The run folder holds the results of another data set; nothing was written."""


def is_first_process() -> bool:
    """False in the processes a launcher started for the other ranks of a multi-process run
    (they share the first process's folder and lock)."""
    return all(os.environ.get(k, "0") == "0" for k in RANK_VARIABLES)


def changed_settings(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs between two config trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += changed_settings(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old} -> {new}"]


def finished_results(cfg: DictConfig, run_dir: Path, identity: dict) -> dict | None:
    """The results of a completed run of ``cfg`` in ``run_dir`` (same ``trainer.max_steps``),
    if any. Raises :class:`RunRefused` when the folder holds results of other data
    (``identity``: :func:`~personpose.data.identity.data_identity` of this run's data):
    neither reused nor extended, whatever the step budget."""
    path = run_dir / RESULTS
    try:
        results = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return None
    if results.get("status") != "complete":
        return None
    old = results.get("data_identity")
    if old != identity:
        held = (
            f"{old.get('root')} (CSV sha256 {str(old.get('csv_sha256'))[:12]})"
            if isinstance(old, dict)
            else "data it did not record (written by an older version)"
        )
        raise RunRefused(
            f"{run_dir} holds the results of a run on {held}; this run reads "
            f"{identity['root']} (CSV sha256 {identity['csv_sha256'][:12]}): pass resume=false "
            "to train again in this folder, or choose another folder (hydra.run.dir=...)"
        )
    return results if results.get("max_steps") == int(cfg.trainer.max_steps) else None


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
    """The Trainer of the ``trainer`` group, writing into ``run_dir``, with the run's loggers,
    sample grids and qualitative images, and the resolved config saved in each checkpoint."""
    factory = instantiate(cfg.trainer, _partial_=True, _convert_="all")
    return factory(
        run_dir=run_dir,
        config=redact(OmegaConf.to_container(cfg, resolve=True)),
        callbacks=[
            SampleGridCallback(run_dir / "samples", int(cfg.eval.grid_samples)),
            QualitativeCallback(run_dir / "qualitative"),
        ],
        logger=build_loggers(cfg, run_dir, job_name, group),
    )


def build_suite(cfg: DictConfig, datamodule, names: list[str] | None = None) -> nn.Module:
    """A fresh metric suite of ``names`` (``cfg.eval.protocol`` by default); FID's reference
    is the training set."""
    return build_metrics(
        names if names is not None else cfg.eval.protocol,
        pretrained=OmegaConf.to_container(cfg.pretrained),
        fid_reference=datamodule.tables()["train"].image_dir,
        fid_cache_dir=Path(datamodule.data_dir) / ".fid_cache",
        movenet_model=cfg.eval.movenet_model,
        dtype=cfg.eval.precision,
        compile=cfg.eval.compile,
    )


def train_and_evaluate(
    cfg: DictConfig,
    run_dir: Path,
    job_name: str,
    group: str | None,
    choices: dict | None = None,
    on_start: Callable[[], None] | None = None,
) -> dict:
    """Fit (resuming from ``run_dir/checkpoints/last.ckpt``), then test; returns the results.

    A finished run of the same config and data is returned as it is, its folder untouched
    (settings that differ from the finished run's are logged as ignored). Otherwise the first
    process takes the folder's lock (:class:`~personpose.io.lock.FolderBusy` when another
    holds it) and calls ``on_start()`` before anything is written.
    """
    t0 = time.time()
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    identity = data_identity(datamodule.data_dir, datamodule.layout)
    config = redact(OmegaConf.to_container(cfg, resolve=True))  # as results.json records it
    if cfg.resume and (done := finished_results(cfg, run_dir, identity)) is not None:
        ignored = changed_settings(done.get("config"), json.loads(json.dumps(config, default=str)))
        log.log(
            logging.WARNING if ignored else logging.INFO,
            "%s already holds finished results; nothing to do (resume=false to redo)%s",
            run_dir,
            f"; ignored, as the run is finished: {'; '.join(ignored)}" if ignored else "",
        )
        return done
    with folder_lock(run_dir) if is_first_process() else nullcontext():
        start = resume_path(run_dir, bool(cfg.resume))  # before any work: an untrusted one stops
        if on_start is not None:
            on_start()
        if cfg.smoke_test:
            log.warning(
                "smoke test: %d training steps of %s on %s; it checks that the pipeline runs, "
                "its numbers say nothing about the method",
                int(cfg.trainer.max_steps),
                cfg.model.name,
                datamodule.data_dir,
            )
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
        datamodule.setup("fit")
        trainer = make_trainer(cfg, run_dir, job_name, group)
        module = build_module(
            cfg,
            datamodule.steps_per_epoch_for(trainer.world_size),
            datamodule.allow_random_weights,
            val_metrics=build_suite(cfg, datamodule, list(cfg.eval.val_metrics)),
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
            # the test pairs: eval.test_metrics, else the whole protocol
            names = None if cfg.eval.test_metrics is None else list(cfg.eval.test_metrics)
            datamodule.setup("test")
            test = score_test_pairs(
                module.generator,
                datamodule,
                lambda: build_suite(cfg, datamodule, names),
                out_dir=run_dir / "test_outputs" if cfg.eval.save_outputs else None,
                save_strips=bool(cfg.eval.save_strips),
            )
            results = {  # test metrics, the copy-source baseline and provenance
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
                "data_identity": identity,
                "smoke_test": bool(cfg.smoke_test),
                "choices": dict(choices or {}),
                "resumed_from": str(start) if start else None,
                "wall_time_s": round(time.time() - t0, 2),
                "pretrained": {"vgg19": module.loss.pretrained_source or "not used"},
                "test_outputs": "test_outputs" if cfg.eval.save_outputs else None,
                "config": config,
                "versions": versions(),
            }
            atomic_write_json(run_dir / RESULTS, results)
            log.info("results written to %s", run_dir / RESULTS)
            return results
        finally:
            finish_wandb()


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """While the block runs, silence what a user can do nothing about: the warnings of
    :data:`QUIET_WARNINGS` and Lightning's advertisements ("💡 Tip: ... try installing ...").
    Every other warning stays, e.g. that the VGG-19 is random."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGS]

    def no_tips(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")

    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        for logger in loggers:
            logger.addFilter(no_tips)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(no_tips)


def _sigterm(signum, frame) -> None:
    """SIGTERM outside ``trainer.fit`` (set-up, scoring): stop at once. During fit Lightning's
    own handler (which calls this one) stops at the next step instead, raising the same
    :class:`SIGTERMException`."""
    if signal.getsignal(signal.SIGTERM) is _sigterm:
        raise SIGTERMException(128 + signal.SIGTERM)


def _detach_file_logs(run_dir: Path) -> Callable[[], None]:
    """Detach the root logger's files inside ``run_dir`` (Hydra's ``<job>.log``) until the
    run goes ahead, so that a skipped or refused run writes nothing there; returns the
    function that attaches them again."""
    root, folder = logging.getLogger(), run_dir.resolve()
    held = [
        h
        for h in root.handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == folder
    ]
    for handler in held:
        root.removeHandler(handler)

    def attach() -> None:
        for handler in held:
            if handler not in root.handlers:
                root.addHandler(handler)

    return attach


def save_hydra_files(cfg: DictConfig, hc: DictConfig, run_dir: Path) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` of a run that goes ahead,
    secrets redacted (Hydra's own copies are off, ``hydra.output_subdir: null``, so that a
    skipped run leaves its folder as it was)."""
    nodes = {
        "config.yaml": cfg,
        "hydra.yaml": OmegaConf.create({"hydra": hc}),
        "overrides.yaml": OmegaConf.create(list(hc.overrides.task)),
    }
    for name, node in nodes.items():
        scrub_file(atomic_write_text(run_dir / ".hydra" / name, OmegaConf.to_yaml(node)))


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> Any:
    check_environment()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    job_name = jobdir(hc.overrides.task, hc.job.config.override_dirname.exclude_keys)
    attach_logs = _detach_file_logs(run_dir)

    def on_start() -> None:
        attach_logs()
        if is_first_process():
            save_hydra_files(cfg, hc, run_dir)

    signal.signal(signal.SIGTERM, _sigterm)
    try:
        with quiet_lightning():
            results = train_and_evaluate(
                cfg,
                run_dir,
                job_name,
                cfg.sweep_name if multirun else None,
                {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra")},
                on_start=on_start,
            )
    except (RunRefused, FolderBusy) as exc:  # nothing was written in the folder
        if not multirun:
            raise SystemExit(f"personpose.run: {exc}") from None
        log.error("job %s refused: %s; the sweep goes on", job_name, exc)
        return None
    except SIGTERMException:
        attach_logs()
        _write_error(run_dir, hc, "interrupted by SIGTERM; re-run the same command to resume")
        log.error("interrupted by SIGTERM; re-run the same command to resume from %s", run_dir)
        raise SystemExit(128 + signal.SIGTERM) from None
    except Exception as exc:
        attach_logs()
        _write_error(run_dir, hc, f"{type(exc).__name__}: {exc}", traceback.format_exc())
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


def _write_error(run_dir: Path, hc: DictConfig, error: str, trace: str | None = None) -> None:
    atomic_write_json(
        run_dir / ERROR,
        {
            "error": error,
            "traceback": trace,
            "overrides": list(hc.overrides.task),
            "versions": versions(),
        },
    )


def _print_summary(results: dict) -> None:
    metrics, base = results["metrics"], results["baselines"]["copy_source"]
    lines = ["| metric | model | copy-source |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {base.get(k, float('nan')):.4f} |" for k, v in metrics.items()]
    if results.get("smoke_test"):
        lines.append(f"smoke test: {results['steps']} steps, {results['count']} test pairs")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        check_overrides(sys.argv[1:])
    except ValueError as exc:
        raise SystemExit(f"personpose.run: {exc}") from None
    main()
