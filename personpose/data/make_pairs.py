"""Build a pairs CSV from an annotation CSV (docs/data.md#building-pairs).

Rules: keep images whose both shoulders (joints 2, 5) and both hips (8, 11) are present; drop
Market distractors (names starting with ``0000`` or ``-1``); group images by person id
(:func:`personpose.data.splits.person_id`); take all ordered pairs (permutations) of two
different images of one person, persons in order of first appearance in the file, images in
file order. With ``--n``, draw ``min(N, all)`` pairs without replacement in the order given
by ``numpy.random.RandomState(seed).choice(all, min(N, all), replace=False)``; with seed 0
this reproduces the published Market test list (N=12000) and the DeepFashion test list
(any N >= 8570), order included.

Usage::

    python -m personpose.data.make_pairs ANNOTATION_CSV --out PAIRS_CSV \
        --dataset market|deepfashion|synth [--n N --seed S]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from personpose.data.annotations import Annotations, read_annotations, write_pairs
from personpose.data.keypoints import JOINT, MISSING
from personpose.data.splits import DATASETS, person_id

TORSO_JOINTS = (JOINT["r_shoulder"], JOINT["l_shoulder"], JOINT["r_hip"], JOINT["l_hip"])
DISTRACTOR_PREFIXES = ("0000", "-1")


def has_torso(kp: np.ndarray) -> np.ndarray:
    """(..., 18, 2) keypoints -> (...) bool: both shoulders and both hips present."""
    return np.all(np.asarray(kp)[..., TORSO_JOINTS, :] != MISSING, axis=(-2, -1))


def eligible_names(annotations: Annotations, dataset: str) -> list[str]:
    """Images usable in pairs (torso present, not a Market distractor), in file order."""
    skip = DISTRACTOR_PREFIXES if dataset == "market" else ()
    ok = has_torso(annotations.keypoints)
    return [n for n, keep in zip(annotations.names, ok) if keep and not n.startswith(skip)]


def build_pairs(
    annotations: Annotations, dataset: str, n: int | None = None, seed: int = 0
) -> list[tuple[str, str]]:
    """All ordered same-person pairs, or a seeded sample of ``n`` of them (see module doc)."""
    groups: dict[str, list[str]] = {}
    for name in eligible_names(annotations, dataset):
        groups.setdefault(person_id(name, dataset), []).append(name)
    pairs = [p for names in groups.values() for p in itertools.permutations(names, 2)]
    if n is None:
        return pairs
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    chosen = np.random.RandomState(seed).choice(len(pairs), min(n, len(pairs)), replace=False)
    return [pairs[i] for i in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m personpose.data.make_pairs",
        description="Build a PATN pairs CSV (from,to) from an annotation CSV.",
    )
    parser.add_argument("annotation_csv", help="annotation CSV (name:keypoints_y:keypoints_x)")
    parser.add_argument("--out", required=True, help="pairs CSV to write")
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="person-id rule")
    parser.add_argument("--n", type=int, default=None, help="sample N pairs (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = parser.parse_args(argv)
    if Path(args.out).resolve() == Path(args.annotation_csv).resolve():
        parser.error(f"--out {args.out} is the input annotation file; choose another output path")
    annotations = read_annotations(args.annotation_csv)
    pairs = build_pairs(annotations, args.dataset, args.n, args.seed)
    write_pairs(args.out, pairs)
    kept = len(eligible_names(annotations, args.dataset))
    print(
        f"{args.out}: {len(pairs)} pairs from {kept} of {len(annotations)} images "
        f"({args.dataset} id rule)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
