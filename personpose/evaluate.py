"""Score generated images under named protocols: ``python -m personpose.evaluate key=value ...``.

::

    python -m personpose.evaluate pred_dir=DIR layout=deform|vunet|patn|gfla|single \\
        [gt_dir=DIR] [annotations=CSV] [pairs=CSV] protocol=patn|gfla|all out=FILE

Writes ``out`` (JSON, atomically) with ``metrics`` (flat names), ``protocol`` (the definition
of each), ``count``, ``excluded`` (metric -> images left out as undefined), ``pairs`` (the
expected pairs and how many were missing, duplicated or left out), ``inputs``, ``skipped``
(metric -> reason), ``info`` and ``versions``, and prints a Markdown table. The expected
pairs are those of ``pairs`` (a pairs CSV), else those the prediction files name; a missing
or duplicate prediction is an error unless ``allow_missing`` / ``allow_duplicates``.
Keypoints for
``mask_ssim``/``pssim``/``mask_is_tv``/PCK come from ``annotations`` (by target name; their
coordinates must be in the frame of the stored images); without it those metrics are skipped
with the reason.

Library use (e.g. a training run's test pairs): build a suite with
:func:`personpose.metrics.build_metrics` and call :func:`evaluate_pairs` on an iterable of
``(pred, target, source, kp2, name[, label2])``; :func:`result_document` and
:func:`markdown_table` format the outcome.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from personpose.io.provenance import versions
from personpose.metrics.collection import MetricSuite, build_metrics, results_of
from personpose.metrics.protocols import SHORT


@dataclass
class EvalItem:
    """One pair to score. Images: uint8 (H, W, 3) arrays or float (3, H, W) tensors in [0, 1];
    ``kp2`` (18, 2) target keypoints (row, col) px, -1 missing; ``label2`` (H, W) int labels."""

    pred: Any
    target: Any
    source: Any = None
    kp2: Any = None
    name: str = ""
    label2: Any = None


def _as_item(x) -> EvalItem:
    if isinstance(x, EvalItem):
        return x
    if isinstance(x, tuple | list) and 2 <= len(x) <= 6:
        return EvalItem(*x)
    raise TypeError(
        f"expected EvalItem or (pred, target, source, kp2, name[, label2]); got {type(x)}"
    )


def _image01(img) -> torch.Tensor:
    """uint8 (H, W, 3) array or float (3, H, W) tensor in [0, 1] -> float32 (3, H, W)."""
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) image array; got {img.dtype} {img.shape}")
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255
    t = torch.as_tensor(img)
    if t.dtype == torch.uint8:
        return t.permute(2, 0, 1).float() / 255 if t.shape[-1] == 3 else t.float() / 255
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a float (3, H, W) image tensor in [0, 1]; got {tuple(t.shape)}")
    return t.float()


def _batches(items: Iterable, batch_size: int) -> Iterator[list[EvalItem]]:
    """Consecutive items with the same image size and the same extras, ``batch_size`` at most;
    the images of each item converted to float (3, H, W) tensors in [0, 1]."""
    batch: list[EvalItem] = []
    key = None
    for raw in items:
        item = _as_item(raw)
        item.pred, item.target = _image01(item.pred), _image01(item.target)
        if item.source is not None:
            item.source = _image01(item.source)
        given = (item.kp2 is None, item.label2 is None, item.source is None)
        k = (item.pred.shape, item.target.shape, given)
        if batch and (k != key or len(batch) >= batch_size):
            yield batch
            batch = []
        key = k
        batch.append(item)
    if batch:
        yield batch


def evaluate_pairs(
    items: Iterable,
    suite: MetricSuite,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    total: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score pairs with ``suite`` (from ``build_metrics``), batched.

    ``items``: :class:`EvalItem` or tuples ``(pred, target, source, kp2, name[, label2])``.
    Returns ``{"metrics", "skipped", "excluded", "protocol", "count", "image_sizes"}``;
    ``suite`` is reset first.
    """
    from tqdm.auto import tqdm

    suite.reset()
    suite.to(device)
    count = 0
    sizes: set[tuple[int, int]] = set()
    with tqdm(total=total, desc="images", unit="img", disable=not progress) as bar:
        for batch in _batches(items, batch_size):
            pred = torch.stack([b.pred for b in batch]).to(device)
            target = torch.stack([b.target for b in batch]).to(device)
            if pred.shape != target.shape:
                raise ValueError(
                    f"{batch[0].name}: generated {tuple(pred.shape[1:])} and target "
                    f"{tuple(target.shape[1:])} differ in size"
                )
            extras = {
                key: torch.stack([torch.as_tensor(np.asarray(getattr(b, key))) for b in batch])
                for key in ("kp2", "label2", "source")
                if getattr(batch[0], key) is not None
            }
            suite.update(pred, target, **{k: v.to(device) for k, v in extras.items()})
            count += len(batch)
            sizes.add(tuple(pred.shape[-2:]))
            bar.update(len(batch))
    metrics, skipped = results_of(suite) if count else ({}, dict.fromkeys(suite.names, "no images"))
    return {
        "metrics": metrics,
        "skipped": skipped,
        "excluded": suite.excluded if count else {},
        "protocol": dict(suite.protocol),
        "count": count,
        "image_sizes": sorted(f"{h}x{w}" for h, w in sizes),
    }


def result_document(result: Mapping[str, Any], inputs: Mapping[str, Any], info=None) -> dict:
    """The JSON document of an evaluation: metrics, protocol, count, excluded, inputs,
    skipped and versions."""
    return {
        "metrics": dict(result["metrics"]),
        "protocol": dict(result["protocol"]),
        "count": result["count"],
        "excluded": dict(result.get("excluded", {})),
        "image_sizes": result.get("image_sizes", []),
        "inputs": dict(inputs),
        "skipped": dict(result["skipped"]),
        "info": dict(info or {}),
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def markdown_table(result: Mapping[str, Any], reason_chars: int = 90) -> str:
    """``| metric | value | definition |`` rows, then the skipped metrics with their reasons."""
    lines = ["| metric | value | definition |", "|---|---:|---|"]
    excluded = result.get("excluded", {})
    for name, value in result["metrics"].items():
        base = name.removesuffix("_std")
        label = SHORT.get(name, f"std over splits of {base}" if name != base else "")
        if excluded.get(name):
            label += f" ({excluded[name]} images left out: score undefined)"
        lines.append(f"| {name} | {value:.4f} | {label} |")
    for name, reason in result["skipped"].items():
        short = reason if len(reason) <= reason_chars else reason[: reason_chars - 3] + "..."
        lines.append(f"| {name} | skipped | {short} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line
def folder_items(
    files, loader_kwargs: Mapping[str, Any] | None = None, annotations=None
) -> Iterator[EvalItem]:
    """:class:`EvalItem` of each ``PairFile`` (``layouts.scan``), with ``kp2`` from
    ``annotations`` (an ``Annotations``; coordinates checked against, and shifted with, the
    stored target image and its crop)."""
    from personpose.data.annotations import check_keypoints
    from personpose.metrics.layouts import load_pair

    for pf in files:
        pair = load_pair(pf, **(loader_kwargs or {}))
        kp2 = None
        if annotations is not None:
            if pf.target_name not in annotations:
                raise ValueError(
                    f"{pf.path}: target {pf.target_name!r} is not in the annotation file "
                    f"{annotations.path}"
                )
            kp2 = annotations[pf.target_name].copy()
            where = f"{annotations.path}:{annotations.line_of(pf.target_name)}"
            h, w = pair.target.shape[:2]
            dy, dx = pair.offset
            if dy or dx:
                present = (kp2 != -1).all(-1)
                kp2[present] -= np.array([dy, dx])
                outside = present & ((kp2 < 0).any(-1) | (kp2[:, 0] >= h) | (kp2[:, 1] >= w))
                kp2[outside] = -1
            check_keypoints(
                kp2, (h, w), where + f" (frame of {pf.path.name}, {h}x{w})", pf.target_name
            )
        yield EvalItem(pair.pred, pair.target, pair.source, kp2, pf.name)


def suite_for(cfg, fid_reference=None) -> MetricSuite:
    """The metric suite of an evaluate config (``metrics`` or ``protocol``, ``precision``,
    ``compile``, weights, FID and MoveNet settings); ``fid_reference``: the default FID
    reference when ``fid.reference_stats`` and ``fid.reference_dir`` are unset."""
    from omegaconf import OmegaConf

    fid = cfg.fid
    return build_metrics(
        list(cfg.metrics) if cfg.metrics else cfg.protocol,
        pretrained=OmegaConf.to_container(cfg.pretrained) if cfg.pretrained else None,
        fid_reference=fid.reference_stats or fid.reference_dir or fid_reference,
        fid_cache_dir=fid.cache_dir,
        fid_drop_last=fid.drop_last,
        movenet_model=cfg.movenet_model,
        dtype=cfg.precision,
        compile=cfg.compile,
        device=cfg.device,
        progress=cfg.progress,
    )


def run_folder(cfg) -> dict:
    """Evaluate ``cfg.pred_dir`` (the ``pred_dir=`` mode); returns the JSON document."""
    from personpose.data.annotations import read_annotations, read_pairs
    from personpose.metrics.layouts import match_pairs, scan

    limit = cfg.limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1 or null (all pairs); got {limit!r}")
    annotations = read_annotations(cfg.annotations) if cfg.annotations else None
    names = set(annotations.names) if annotations is not None else None
    files = scan(
        cfg.pred_dir, cfg.layout, gt_dir=cfg.gt_dir, source_dir=cfg.source_dir, names=names
    )
    pairs = read_pairs(cfg.pairs) if cfg.pairs else None
    files, counts = match_pairs(
        files, pairs, allow_missing=cfg.allow_missing, allow_duplicates=cfg.allow_duplicates
    )
    counts["beyond_limit"] = max(0, len(files) - limit) if limit else 0
    files = files[:limit] if limit else files
    counts["scored"] = len(files)
    counts["skipped"] = counts["expected"] - len(files)
    suite = suite_for(cfg)
    crop = tuple(cfg.crop) if cfg.crop else None
    items = folder_items(files, {"panels": cfg.panels, "crop": crop}, annotations)
    result = evaluate_pairs(
        items,
        suite,
        batch_size=cfg.batch_size,
        device=cfg.device,
        total=len(files),
        progress=cfg.progress,
    )
    inputs = {
        "pred_dir": str(cfg.pred_dir),
        "layout": cfg.layout,
        "gt_dir": cfg.gt_dir,
        "source_dir": cfg.source_dir,
        "annotations": cfg.annotations,
        "pairs": cfg.pairs,
        "protocol": cfg.protocol if not cfg.metrics else list(cfg.metrics),
        "panels": cfg.panels,
        "crop": list(crop) if crop else None,
        "files": len(files),
        "ground_truth": "gt_dir" if files and files[0].gt_path else "target panel of each strip",
        "precision": cfg.precision,
    }
    return result_document(result, inputs, suite.info) | {"pairs": counts}


TRUSTED_PACKAGES = ("personpose.models", "personpose.data", "personpose.losses")
_DOTTED = re.compile(r"[A-Za-z]\w*(\.[A-Za-z]\w*)+")


def check_targets(node: Any, where: str) -> None:
    """Refuse every ``_target_`` in ``node`` (nested dicts and lists, as Hydra instantiates
    them) that is not an ``nn.Module`` or ``LightningDataModule`` subclass defined under
    :data:`TRUSTED_PACKAGES`: a run folder's config must not call arbitrary functions.
    Nothing outside those packages is imported. Raises ValueError naming the target."""
    if isinstance(node, Mapping):
        if "_target_" in node:
            _check_target(str(node["_target_"]), f"{where}._target_")
        for key, value in node.items():
            check_targets(value, f"{where}.{key}")
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            check_targets(value, f"{where}[{i}]")


def _check_target(target: str, where: str) -> None:
    import importlib
    import inspect

    import lightning as L
    from torch import nn

    def under(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in TRUSTED_PACKAGES)

    module, _, attr = target.rpartition(".")
    obj = None
    if _DOTTED.fullmatch(target) and under(module):
        try:
            obj = getattr(importlib.import_module(module), attr, None)
        except ImportError:
            obj = None
    if not (
        inspect.isclass(obj)
        and issubclass(obj, nn.Module | L.LightningDataModule)
        and under(obj.__module__)
    ):
        raise ValueError(
            f"{where} = {target!r} is refused: a run folder may only instantiate nn.Module or "
            f"LightningDataModule classes defined under {', '.join(TRUSTED_PACKAGES)}"
        )


def run_trained(cfg) -> dict:
    """Regenerate and score the test pairs of a training run (the ``run_dir=`` mode).

    Rebuilds the run's data module and generator from its resolved config (``results.json``
    or ``.hydra/config.yaml``; only the classes :func:`check_targets` allows), loads the
    generator's weights from ``checkpoints/last.ckpt`` (``weights_only=True``), and scores it
    and the copy-source baseline on the run's test split.
    """
    import json
    from pathlib import Path

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from personpose.config.resolvers import register_resolvers
    from personpose.data.datamodule import build_datamodule
    from personpose.training.score_test_pairs import score_test_pairs

    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt_path.is_file():
        raise SystemExit(f"run_dir={run_dir}: no checkpoints/last.ckpt (not a training run?)")
    results, hydra_cfg = run_dir / "results.json", run_dir / ".hydra" / "config.yaml"
    if results.is_file():
        source = results
        run_cfg = OmegaConf.create(json.loads(results.read_text())["config"])
    elif hydra_cfg.is_file():
        source = hydra_cfg
        register_resolvers()
        run_cfg = OmegaConf.load(hydra_cfg)
    else:
        raise SystemExit(f"run_dir={run_dir}: neither results.json nor .hydra/config.yaml")
    for key in ("data", "model.generator"):
        check_targets(OmegaConf.to_container(OmegaConf.select(run_cfg, key)), f"{source}: {key}")
    datamodule = build_datamodule(run_cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    generator = instantiate(run_cfg.model.generator)
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    g = "generator."  # the generator's keys in the module's state dict
    state = {k[len(g) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(g)}
    generator.load_state_dict(state)
    generator.to(cfg.device)
    tables = datamodule.tables()
    train_dir = tables["train"].image_dir if "train" in tables else None
    test = score_test_pairs(generator, datamodule, lambda: suite_for(cfg, train_dir), out_dir=None)
    inputs = {
        "run_dir": str(run_dir),
        "checkpoint": str(ckpt_path),
        "global_step": int(ckpt.get("global_step", -1)),
        "protocol": cfg.protocol if not cfg.metrics else list(cfg.metrics),
        "data": str(datamodule.data_dir),
        "precision": cfg.precision,
    }
    return result_document(test, inputs) | {"baselines": {"copy_source": test["copy_source"]}}


def main(cfg) -> dict:
    """Run the command for a composed config; writes ``cfg.out`` and prints the table."""
    from personpose.config.removed import check_environment
    from personpose.io.atomic import atomic_write_json

    check_environment()
    if cfg.get("run_dir"):
        doc = run_trained(cfg)
    elif not cfg.pred_dir:
        raise SystemExit(
            "give pred_dir=DIR (and layout=...) or run_dir=DIR; see conf/evaluate.yaml"
        )
    else:
        doc = run_folder(cfg)
    if cfg.out:
        atomic_write_json(cfg.out, doc)
    print(markdown_table(doc))
    print(f"\n{doc['count']} images" + (f"; results in {cfg.out}" if cfg.out else ""))
    pairs = doc.get("pairs")
    if pairs and (pairs["skipped"] or pairs["duplicates"] or pairs["unexpected"]):
        print(
            f"warning: {pairs['skipped']} of the {pairs['expected']} expected pairs not scored "
            f"({pairs['missing']} missing, {pairs['beyond_limit']} beyond limit); "
            f"{pairs['duplicates']} duplicates and {pairs['unexpected']} files outside the "
            "expected pairs not scored"
        )
    return doc


if __name__ == "__main__":
    import hydra

    hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")(main)()
