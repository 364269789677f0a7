"""OmegaConf resolvers of the config tree: ``${pp_jobdir:...}`` names a run's folder."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

MAX_DIRNAME = 150  # file systems allow 255 bytes per name


def jobdir(override_dirname: str) -> str:
    """Run-folder name from the overrides (``default`` when there are none).

    Deterministic, so re-running a command finds its folder; names longer than
    ``MAX_DIRNAME`` are cut and made unique with a hash of the whole string.
    """
    name = override_dirname.replace("/", "%") or "default"
    if len(name) > MAX_DIRNAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = f"{name[: MAX_DIRNAME - 13]}~{digest}"
    return name


def register_resolvers() -> None:
    """Register the resolvers with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("pp_jobdir"):
        OmegaConf.register_new_resolver("pp_jobdir", jobdir)
