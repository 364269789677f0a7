"""OmegaConf resolvers of the config tree: ``${pp_jobdir:...}`` names a run's folder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

MAX_DIRNAME = 150  # file systems allow 255 bytes per name
KV_SEP, ITEM_SEP = "-", "__"  # key-value, item__item: no character of Hydra's override grammar
UNSAFE = re.compile(r"[^A-Za-z0-9_.+%-]")  # kept: characters a shell and Hydra take unquoted
DATA_ROOT = "data.root"


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def data_root_tag(value: str) -> str:
    """``data.root`` in a folder name: the folder's last component and a hash of its resolved
    absolute path (``/data/market_data`` -> ``market_data.3f2a9c1b``), so two roots never share
    a run folder and a relative root means the folder it names from where the run starts."""
    path = Path(value.strip("'\"")).expanduser().resolve()
    return f"{path.name}.{_digest(str(path))}"


def jobdir(overrides: Sequence[str], exclude_keys: Sequence[str] = ()) -> str:
    """Run-folder name from the command-line overrides (``default`` when there are none).

    Sorted ``key-value`` items joined by ``__`` (``loss-l1__trainer.max_steps-3``): names free
    of Hydra's grammar characters (``=``, ``,``, brackets, quotes, spaces), so a folder can be
    passed back as typed (``run_dir=outputs/<name>``). ``/`` becomes ``%``; any other unsafe
    character becomes ``_`` and a hash of the overrides is appended, so distinct overrides
    never share a name. ``data.root`` is written as :func:`data_root_tag`. Keys in
    ``exclude_keys`` are left out. Deterministic; longer than ``MAX_DIRNAME``: cut and hashed.
    """
    items = []
    for line in sorted(str(o) for o in overrides):
        key, sep, value = line.partition("=")
        if key.lstrip("+~") in exclude_keys:
            continue
        if key.lstrip("+") == DATA_ROOT and sep:
            value = data_root_tag(value)
        items.append(f"{key}{KV_SEP if sep else ''}{value}")
    name = ITEM_SEP.join(items).replace("/", "%") or "default"
    safe = UNSAFE.sub("_", name)
    if safe != name:
        safe = f"{safe}{ITEM_SEP}{_digest(name)}"
    if len(safe) > MAX_DIRNAME:
        safe = f"{safe[: MAX_DIRNAME - 10]}{ITEM_SEP}{_digest(safe)}"
    return safe


def register_resolvers() -> None:
    """Register the resolvers with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("pp_jobdir"):
        OmegaConf.register_new_resolver(
            "pp_jobdir", lambda overrides, exclude=(): jobdir(list(overrides), list(exclude))
        )
