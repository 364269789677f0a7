"""Embedded synthetic person data set: procedural, articulated, clothed people in PATN format.

``ensure_dataset(root, preset, ids, seed)`` returns a generated (cached) data folder;
``python -m personpose.data.synth --out DIR ...`` writes one from the command line.
"""

from personpose.data.synth.cache import ensure_dataset, is_complete
from personpose.data.synth.render import LABEL, LABEL_DESCRIPTIONS, LABEL_NAMES
from personpose.data.synth.scene import sample_keypoints
from personpose.data.synth.settings import (
    DEFAULT_IDS,
    DEFAULT_IMAGES_PER_ID,
    GENERATOR_VERSION,
    PRESETS,
    SynthSettings,
)
from personpose.data.synth.writer import generate_dataset, split_ids

__all__ = [
    "DEFAULT_IDS",
    "DEFAULT_IMAGES_PER_ID",
    "GENERATOR_VERSION",
    "LABEL",
    "LABEL_DESCRIPTIONS",
    "LABEL_NAMES",
    "PRESETS",
    "SynthSettings",
    "ensure_dataset",
    "generate_dataset",
    "is_complete",
    "sample_keypoints",
    "split_ids",
]
