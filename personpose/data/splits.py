"""Person identities and disjoint-identity splits (train / val / test).

The person id of an image name (docs/data.md#building-pairs): Market and the synthetic set (which
writes Market-style names) -> the first ``_``-separated token (``0001_c3s1_000551_03.jpg`` ->
``0001``); DeepFashion -> everything before the last ``_``
(``fashionWOMENDressesid0000713204_2side.jpg`` -> ``fashionWOMENDressesid0000713204``).

Real sets ship train and test only; :func:`carve_val_ids` picks a seeded set of training
identities to hold out as the validation split, so train, val and test share no person.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

from personpose.data.annotations import PairList

DATASETS = ("market", "deepfashion", "synth")
_VAL_STREAM = 0x7A1  # seed-sequence tag: validation carving draws its own random stream


def person_id(name: str, dataset: str) -> str:
    """Identity of image ``name`` under the naming rule of ``dataset``."""
    if dataset in ("market", "synth"):
        return name.split("_", 1)[0]
    if dataset == "deepfashion":
        return name.rsplit("_", 1)[0]
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def pair_ids(pairs: PairList, dataset: str) -> set[str]:
    """Identities that appear in ``pairs`` (either end)."""
    return {person_id(n, dataset) for pair in pairs for n in pair}


def carve_val_ids(ids: Iterable[str], fraction: float, seed: int) -> set[str]:
    """A seeded random ``fraction`` (in (0, 1)) of the identities ``ids`` (at least one, and at
    least one left over) to use as the validation split. Pure function of (sorted ids, seed)."""
    unique = sorted(set(ids))
    if len(unique) < 2:
        raise ValueError(f"cannot carve a validation split from {len(unique)} identities")
    n_val = min(max(1, int(round(fraction * len(unique)))), len(unique) - 1)
    rng = np.random.default_rng([int(seed), _VAL_STREAM])
    chosen = rng.choice(len(unique), size=n_val, replace=False)
    return {unique[i] for i in chosen}


def split_pairs(pairs: PairList, held_out: set[str], dataset: str) -> tuple[PairList, PairList]:
    """Split ``pairs`` (file order kept) into (rest, held-out) by identity.

    A pair goes to the held-out part when both images belong to ``held_out`` identities, to
    the rest when neither does; a pair across the boundary is dropped.
    """
    rest, held = [], []
    for i, (a, b) in enumerate(pairs):
        ina, inb = person_id(a, dataset) in held_out, person_id(b, dataset) in held_out
        if ina == inb:
            (held if ina else rest).append(i)
    return pairs.select(rest), pairs.select(held)


def check_disjoint(splits: dict[str, PairList], dataset: str) -> None:
    """Raise ValueError if two splits share a person identity (listing a few and the count)."""
    ids = {name: pair_ids(p, dataset) for name, p in splits.items()}
    for a, b in itertools.combinations(ids, 2):
        common = sorted(ids[a] & ids[b])
        if common:
            raise ValueError(
                f"splits {a!r} ({splits[a].path}) and {b!r} ({splits[b].path}) share "
                f"{len(common)} person identities (e.g. {', '.join(common[:5])}); expected "
                f"disjoint identities (id rule: {dataset!r})"
            )


def subsample_pairs(pairs: PairList, max_pairs: int | None, seed: int) -> PairList:
    """At most ``max_pairs`` pairs, a seeded random subset kept in file order."""
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng([int(seed), _VAL_STREAM, 1])
    keep = np.sort(rng.choice(len(pairs), size=int(max_pairs), replace=False))
    return pairs.select(int(i) for i in keep)
