"""Embedded synthetic person data set: procedural, articulated, clothed people in PATN format.

``ensure_dataset(root, preset, ids, seed)`` returns a generated (cached) data folder;
``python -m personpose.data.synth --out DIR ...`` writes one from the command line. The other
parts live in the submodules: ``settings`` (presets, ``SynthSettings``), ``scene``
(``sample_keypoints`` without rendering), ``render`` (the part labels), ``writer`` (the
folder layout, ``split_ids``) and ``cache`` (``is_complete``).
"""

from personpose.data.synth.cache import ensure_dataset
from personpose.data.synth.render import LABEL
from personpose.data.synth.settings import DEFAULT_IDS, SynthSettings
from personpose.data.synth.writer import generate_dataset

__all__ = ["DEFAULT_IDS", "LABEL", "SynthSettings", "ensure_dataset", "generate_dataset"]
