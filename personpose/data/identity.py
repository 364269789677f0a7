"""Which data a run read: its folder and a fingerprint of its CSV files (``data_identity``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from personpose.data.dataset import Layout, split_paths

SPLITS = ("train", "val", "test")


def data_identity(data_dir: str | Path, layout: Layout) -> dict[str, Any]:
    """``{"root", "csv_sha256", "files"}`` of a PATN data folder: the resolved absolute folder,
    and one SHA-256 over the name and bytes of every annotation and pairs CSV present (train,
    val, test), in that order. Cheap (the CSVs only, tens of MB at most); two folders whose
    CSVs differ in one byte, or that sit in different places, have different identities."""
    root = Path(data_dir).expanduser().resolve()
    paths = [p for split in SPLITS for p in split_paths(root, layout, split)[:2] if p.is_file()]
    digest = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()  # tens of MB at most
        digest.update(f"{path.name}\0{len(data)}\0".encode() + data)
    return {"root": str(root), "csv_sha256": digest.hexdigest(), "files": [p.name for p in paths]}
