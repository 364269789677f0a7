"""Command line: ``python -m personpose.data.synth --out DIR --preset market --ids N --seed S``.

Writes the data set to DIR (through a temporary folder renamed when complete; what a killed
run left behind is removed by the next one), or, with
``--cache-root ROOT`` instead of ``--out``, into the hashed cache folder under ROOT (the one
the data config uses) and prints its path.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from filelock import FileLock

from personpose.data.synth.cache import build_into, ensure_dataset
from personpose.data.synth.settings import (
    DEFAULT_IDS,
    DEFAULT_IMAGES_PER_ID,
    PRESETS,
    SynthSettings,
)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected HxW, e.g. 128x64") from e
    return h, w


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m personpose.data.synth", description=__doc__)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="output folder (must not exist or be empty)")
    where.add_argument("--cache-root", type=Path, help="cache root: write synth-<preset>-<hash>/")
    p.add_argument("--preset", choices=sorted(PRESETS), default="market")
    p.add_argument("--ids", type=int, default=DEFAULT_IDS, help="identities over all splits")
    p.add_argument("--seed", type=int, default=0, help="data seed (not the training seed)")
    p.add_argument("--images-per-id", type=int, default=DEFAULT_IMAGES_PER_ID)
    p.add_argument("--format", dest="image_format", choices=["png", "jpg"], default="png")
    p.add_argument("--size", type=_size, default=None, help="HxW px (default: the preset's)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--max-pairs-per-id", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="processes (output is identical)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(SynthSettings)}
    try:
        settings = SynthSettings(**fields)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.cache_root is not None:
        print(ensure_dataset(a.cache_root, **fields, progress=not a.no_progress, workers=a.workers))
        return 0
    out: Path = a.out
    if out.exists() and any(out.iterdir()) and not a.overwrite:
        print(f"error: {out} exists and is not empty (use --overwrite)", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.with_name(f".{out.name}.lock"))):
        build_into(out, settings, progress=not a.no_progress, workers=a.workers)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
