"""Settings of the synthetic data set, its presets and the hash that names its cache folder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

# Bump when the output of the generator changes for the same settings (invalidates caches).
GENERATOR_VERSION = "1.0"

PRESETS: dict[str, tuple[int, int]] = {"market": (128, 64), "fashion": (256, 176)}
DEFAULT_IDS = 300
DEFAULT_IMAGES_PER_ID = 5


@dataclass(frozen=True)
class SynthSettings:
    """Everything that determines the bytes of a generated data set.

    ``size`` (H, W) px defaults to the preset's; identities are split train/val/test by the
    fractions (at least one identity each when ``ids`` >= 3); ``max_pairs_per_id`` caps the
    ordered pairs of each identity (seeded choice; None = all).
    """

    preset: str = "market"
    ids: int = DEFAULT_IDS
    seed: int = 0
    images_per_id: int = DEFAULT_IMAGES_PER_ID
    image_format: str = "png"
    size: tuple[int, int] | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_pairs_per_id: int | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"synth preset {self.preset!r}: expected one of {sorted(PRESETS)}")
        if self.image_format not in ("png", "jpg"):
            raise ValueError(f"synth image_format {self.image_format!r}: expected 'png' or 'jpg'")
        if self.ids < 3:
            raise ValueError(f"synth ids={self.ids}: need at least 3 (one per split)")
        if self.images_per_id < 2:
            raise ValueError(f"synth images_per_id={self.images_per_id}: need at least 2 for pairs")
        if not (0 < self.val_fraction < 1 and 0 < self.test_fraction < 1):
            raise ValueError("synth val_fraction and test_fraction must lie in (0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("synth val_fraction + test_fraction must be < 1")
        if self.max_pairs_per_id is not None and self.max_pairs_per_id < 1:
            raise ValueError(
                f"synth max_pairs_per_id={self.max_pairs_per_id}: expected >= 1 or None"
            )
        if self.size is not None:
            h, w = (int(x) for x in self.size)
            if h < 32 or w < 16:
                raise ValueError(f"synth size {self.size}: expected (H, W) of at least (32, 16) px")
            object.__setattr__(self, "size", (h, w))

    @property
    def hw(self) -> tuple[int, int]:
        """Image size (H, W) px."""
        return self.size if self.size is not None else PRESETS[self.preset]

    def to_dict(self) -> dict:
        """JSON-able settings incl. the resolved size and the generator version."""
        d = asdict(self)
        d["size"] = list(self.hw)
        d["generator_version"] = GENERATOR_VERSION
        return d

    def digest(self) -> str:
        """Short hash of ``to_dict()`` (names the cache folder)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def folder_name(self) -> str:
        return f"synth-{self.preset}-{self.digest()}"
