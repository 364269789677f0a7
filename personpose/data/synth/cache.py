"""Generate-once cache of synthetic data sets, safe for parallel jobs.

A data set lives in ``root/synth-<preset>-<hash of the settings>/``. The first caller
generates it into a temporary folder beside it and renames it into place when complete,
all under a file lock, so concurrent jobs (threads or processes) wait for one generator and
never see a half-written data set.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from filelock import FileLock

from personpose.data.synth.settings import DEFAULT_IDS, SynthSettings
from personpose.data.synth.writer import META_NAME, generate_dataset


def is_complete(folder: Path, settings: SynthSettings) -> bool:
    """True if ``folder`` holds a finished data set generated with ``settings``."""
    try:  # no (readable) meta file: not complete
        meta = json.loads((Path(folder) / META_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return meta.get("digest") == settings.digest()


def ensure_dataset(
    root: Path | str,
    preset: str = "market",
    ids: int = DEFAULT_IDS,
    seed: int = 0,
    *,
    progress: bool = True,
    workers: int = 1,
    **options,
) -> Path:
    """Folder of the synthetic data set for these settings under ``root``, generated if missing.

    ``options`` are further ``SynthSettings`` fields (images_per_id, image_format, size,
    val_fraction, test_fraction, max_pairs_per_id); ``progress`` and ``workers`` do not
    change the data and are not part of the hash.
    """
    settings = SynthSettings(preset=preset, ids=ids, seed=seed, **options)
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    final = root / settings.folder_name()
    if is_complete(final, settings):
        return final
    with FileLock(str(root / f".{final.name}.lock")):
        if not is_complete(final, settings):
            build_into(final, settings, progress=progress, workers=workers)
    return final


def build_into(final: Path, settings: SynthSettings, progress: bool, workers: int) -> None:
    """Render ``settings`` into ``final`` through a temporary folder beside it, renamed into
    place when complete. The caller holds the folder's lock: whatever a crashed or killed run
    left there (a partial ``final``, temporary folders) is removed first."""
    if final.exists():
        shutil.rmtree(final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        generate_dataset(tmp, settings, progress=progress, workers=workers)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
