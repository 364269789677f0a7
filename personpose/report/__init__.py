"""Ablation report from many runs: ``python -m personpose.report DIR [DIR...] [--out OUT]``.

Collects every ``results.json`` below the folders (multirun folders or single runs) and writes
to ``OUT`` (default: the first DIR):

- ``ablation.md`` and ``ablation.csv``: one row per configuration plus a ``copy-source`` row
  (the source image as the output). Per metric: the mean over seeds with its 95% confidence
  interval (t distribution, half-width ``t_{0.975, n-1} * sd / sqrt(n)``), and the mean paired
  difference ``row - l1_perceptual`` from the PATN loss (``l1_perceptual`` with the adversarial
  term on and every setting outside the loss equal; pairs are runs with the same ``seed`` and
  ``data_seed``) with its own interval. An interval needs two seeds (two pairs); without an
  ``l1_perceptual`` row the differences are empty; the notes say which cells are empty and why.
  With more than one backbone (``model`` choice, e.g. a ``model=patn_small,xinggan_small``
  sweep) each table is split by backbone, and each row is compared with its own backbone's
  ``l1_perceptual``. Also the number of seeds, the training steps, the wall time per job and
  of the grid, the best mean per column (bold), every metric's protocol, duplicate seeds and
  failed jobs.
- ``ablation_<metric>.png`` (headline metrics: bars with intervals), ``curves.png`` (generator
  loss and a validation metric per configuration, mean over seeds) and ``qualitative.png`` (the
  fixed test pairs each run writes to ``qualitative/``: source, target pose, ground truth, then
  the output of each configuration's smallest seed).

Grouping rule (:mod:`personpose.report.runs`): runs share a row when everything that can change
their results is equal: the Hydra group choices (``choices``, except ``logger``), the trained
``steps``, ``data_identity`` when recorded, whether the VGG of the perceptual terms was
pretrained, random or not used, and the resolved ``config`` except the keys in ``IGNORED``:
the training seed (the quantity averaged over; ``data.seed`` stays in the key), ``resume``,
``sweep_name``, ``logger``, ``hydra`` and ``wandb``, file locations (``data.root``,
``pretrained``, ``loss.vgg.weights_path``, ``eval.movenet_model``) and logging or output
settings (progress bar, log and checkpoint intervals, which test outputs are saved). Rows with
the same loss label are told apart by the fewest differing settings, e.g. ``l1
[model=patn_tiny, steps=3]``. Two runs of a row with the same ``seed`` and ``data_seed`` are
duplicates: the first folder in sorted order counts, the other is named in a warning.
"""

from personpose.report.cli import main

__all__ = ["main"]
