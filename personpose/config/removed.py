"""Environment variables that personpose no longer reads: the entry points
(``personpose.run``, ``personpose.evaluate``) refuse to start while one is set, so that a
setting never silently stops applying. Each maps to its replacement, or says there is none."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["REMOVED_ENV", "check_environment"]

REMOVED_ENV = {
    "PERSONPOSE_COMPILE": (
        "replaced by the `compile` flag of the SSIM losses (SSIMLoss / PartSSIMLoss"
        "(compile=True), set from the loss config); the metrics always run eagerly"
    ),
    "PERSONPOSE_NATIVE": "no replacement: the native C kernels are gone, everything is PyTorch",
    "PERSONPOSE_MALLOC": "no replacement: personpose no longer changes the C allocator",
    "PERSONPOSE_CACHE_DIR": "no replacement: it held the build cache of the removed C kernels",
}


def check_environment(environ: Mapping[str, str] = os.environ) -> None:
    """Raise ``SystemExit`` naming every removed variable set in ``environ`` and what
    replaces it."""
    found = [f"{name} is set: {why}" for name, why in REMOVED_ENV.items() if name in environ]
    if found:
        raise SystemExit(
            "personpose: removed environment variables (unset them):\n  " + "\n  ".join(found)
        )
