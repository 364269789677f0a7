"""Evaluation metrics with one flat naming scheme that names the protocol.

``build_metrics(names_or_protocol, ...)`` returns a torchmetrics ``MetricCollection`` with
``update(preds, target, **extras)``, ``compute()``, ``reset()``, ``skipped`` and ``protocol``;
:func:`results_of` gives its values and reasons for a results file. The definitions of the
names live in :mod:`personpose.metrics.protocols`.
"""

from personpose.metrics.collection import MetricSuite, build_metrics, results_of
from personpose.metrics.protocols import DEFINITIONS, PROTOCOLS, resolve_names

__all__ = [
    "DEFINITIONS",
    "PROTOCOLS",
    "MetricSuite",
    "build_metrics",
    "resolve_names",
    "results_of",
]
