"""Finished runs below a folder, grouped into configurations (grouping rule: package docstring)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

COPY = "copy-source"
IGNORED = (  # config keys (and everything below them) that do not change a run's results
    *("seed", "resume", "sweep_name", "logger", "hydra", "wandb"),
    *("data.root", "pretrained", "loss.vgg.weights_path", "eval.movenet_model"),
    *("trainer.progress_bar", "trainer.log_every_n_steps", "trainer.checkpoint_every_n_steps"),
    *("eval.save_outputs", "eval.save_strips", "eval.grid_samples"),
)


@dataclass
class Group:
    """The runs of one configuration, one per seed, sorted by seed."""

    loss: str  # loss label: ``<loss>`` or ``<loss>-noadv``, or ``copy-source``
    settings: dict[str, str]  # the grouping key: ``{"model": "patn_tiny", "steps": "3", ...}``
    runs: list[dict]
    suffix: str = ""  # the settings that tell it from rows with the same loss label

    @property
    def label(self) -> str:
        return f"{self.loss} [{self.suffix}]" if self.suffix else self.loss


def seed_of(results: dict) -> tuple:
    """What pairs runs across configurations: (training seed, data seed)."""
    return results.get("seed"), results.get("data_seed")


def loss_label(results: dict) -> str:
    """``<loss>`` or ``<loss>-noadv`` from the run's resolved config."""
    loss = results.get("config", {}).get("loss", {})
    enabled = sorted(k for k, v in loss.items() if isinstance(v, dict) and v.get("enabled"))
    name = results.get("choices", {}).get("loss") or "+".join(
        t for t in enabled if t != "adversarial"
    )
    adv = loss.get("adversarial", {}).get("enabled", False)
    return name if adv else f"{name}-noadv"


def collect(roots: list[Path]) -> tuple[list[dict], list[dict]]:
    """(finished runs with their folder as ``_dir``, failed/unfinished jobs) below ``roots``."""
    runs, problems = [], []
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
        for job in sorted(
            {p.parent for p in root.rglob("*") if p.name in ("results.json", "error.json")}
            | {p.parent.parent for p in root.rglob(".hydra/config.yaml")}
        ):
            res, err = job / "results.json", job / "error.json"
            if res.is_file():
                r = json.loads(res.read_text())
                if r.get("status") == "complete":
                    r["_dir"] = str(job)
                    runs.append(r)
                    continue
            reason = json.loads(err.read_text())["error"] if err.is_file() else "no results.json"
            problems.append({"dir": str(job), "reason": reason})
    return runs, problems


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in tree.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]
    return out


def settings_of(results: dict) -> dict[str, str]:
    """The grouping key of a run: setting name (choice or dotted config key) -> value as text."""
    vgg = str(results.get("pretrained", {}).get("vgg19", "not used"))
    # `arm` (conf/arm/) only sets the loss choice and loss.* keys, which are in the key already
    choices = results.get("choices", {})
    s: dict[str, object] = {k: v for k, v in choices.items() if k not in ("logger", "arm")}
    s["steps"] = results.get("steps")
    if "data_identity" in results:
        s["data_identity"] = results["data_identity"]
    s["vgg19"] = (
        "random" if vgg.startswith("random") else "not used" if vgg == "not used" else "yes"
    )
    for key, value in _flatten(results.get("config", {})):
        if not any(key == p or key.startswith(p + ".") for p in IGNORED):
            s[key] = value
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in s.items()}


def loss_side(key: str) -> bool:
    """Settings of the loss: the only ones that may differ from the reference row's."""
    return key in ("loss", "vgg19") or key.startswith("loss.")


def data_side(key: str) -> bool:
    """Settings that decide the copy-source baseline: test images and metrics."""
    return key.split(".")[0] in ("data", "data_identity", "eval")


def distinguishing(settings: list[dict[str, str]]) -> list[str]:
    """The fewest keys (greedy, in key order) whose values tell ``settings`` apart."""
    chosen: list[str] = []

    def classes(keys: list[str]) -> int:
        return len({tuple(s.get(k, "-") for k in keys) for s in settings})

    for key in dict.fromkeys(k for s in settings for k in s):
        if classes(chosen) == len(settings):
            break
        if classes([*chosen, key]) > classes(chosen):
            chosen.append(key)
    return chosen


def _set_suffixes(groups: list[Group]) -> None:
    """Name the distinguishing settings of groups that share a loss label."""
    by_loss: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        by_loss[g.loss].append(g)
    for same in by_loss.values():
        if len(same) > 1:
            keys = distinguishing([g.settings for g in same])
            for g in same:
                g.suffix = ", ".join(f"{k}={g.settings.get(k, '-')}" for k in keys)


def group_runs(runs: list[dict]) -> tuple[list[Group], list[str]]:
    """Configurations (sorted by backbone, then label) with one run per seed, and
    duplicate-seed warnings."""
    by_key: dict[tuple, Group] = {}
    for r in sorted(runs, key=lambda r: r["_dir"]):
        s = settings_of(r)
        by_key.setdefault(tuple(sorted(s.items())), Group(loss_label(r), s, [])).runs.append(r)
    groups = list(by_key.values())
    _set_suffixes(groups)
    warnings = []
    for g in groups:
        kept: dict[tuple, dict] = {}
        for r in g.runs:
            if (seed := seed_of(r)) in kept:
                warnings.append(
                    f"duplicate seed {seed[0]} (data seed {seed[1]}) in `{g.label}`: "
                    f"counted {kept[seed]['_dir']}, ignored {r['_dir']}"
                )
            else:
                kept[seed] = r
        g.runs = [kept[k] for k in sorted(kept, key=lambda k: (k[0] or 0, k[1] or 0))]
    return sorted(groups, key=lambda g: (g.settings.get("model", ""), g.label)), warnings


def copy_groups(groups: list[Group]) -> list[Group]:
    """One copy-source group per data setting (test images and metrics) among ``groups``."""
    by_data: dict[tuple, Group] = {}
    for g in groups:
        data = {k: v for k, v in g.settings.items() if data_side(k)}
        by_data.setdefault(tuple(sorted(data.items())), Group(COPY, data, [])).runs.extend(g.runs)
    copies = list(by_data.values())
    _set_suffixes(copies)
    return copies
