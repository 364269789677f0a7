"""When a pure tensor function runs compiled (``torch.compile``) and when eagerly.

SSIM-type losses and metrics are chains of a dozen elementwise operations around two 1-D
filters. Eagerly, each operation is one pass over memory; compiled by inductor, the chain is
a few fused loops (``experiments/bench_losses.py`` and ``bench_eval.py`` measure the gain).
Compiling costs seconds on the first call of each input shape, so it pays only on large
inputs; on tiny ones (unit tests, toy batches) the same function runs eagerly.

The policy, from the environment variable ``PERSONPOSE_COMPILE`` or :func:`compile_mode`:

- ``auto`` (default): compiled on CPU and CUDA when the first tensor argument has at least
  ``min_elements`` elements, eager otherwise;
- ``always``: compiled whatever the size (tests of the compiled path);
- ``never``: eager (no C++ compiler, debugging, or to compare).

When compiling fails (no C++ compiler on the machine, an unsupported device), the function
warns once with the reason, which stays in :attr:`Fused.failed`, and runs eagerly from then
on: the results are the same, only slower. Past dynamo's limit on compiled variants of one
function (``torch._dynamo.config.recompile_limit``, 8 input shapes, dtypes or constants), a
new variant runs eagerly and the others stay compiled.
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from personpose.kernels import allocator
from personpose.kernels.policy import EnvPolicy

__all__ = ["MODES", "Fused", "compile_mode", "current_mode", "fused", "report"]

MODES = ("auto", "always", "never")
ENV = "PERSONPOSE_COMPILE"
DEFAULT_MIN_ELEMENTS = 1 << 17  # one 3x256x176 image, six of 3x128x64: below, eager is fine
_registry: list[Fused] = []
# dynamo's limit on compiled variants (shapes, dtypes, constants) of one function: past it a
# new variant runs eagerly, the variants compiled so far stay compiled
_TRANSIENT = ("FailOnRecompileLimitHit", "RecompileLimitExceeded", "CacheLimitExceeded")


_policy = EnvPolicy(ENV, MODES, on_mode="always", name="compile_mode")


def current_mode() -> str:
    """The compile policy now in force: :func:`compile_mode` if active, else the env variable."""
    return _policy.current()


def compile_mode(mode: str) -> AbstractContextManager[None]:
    """Use ``mode`` (``auto``, ``always`` or ``never``) inside the ``with`` block."""
    return _policy.override(mode)


class Fused:
    """A pure tensor function ``fn``, run compiled or eagerly by the policy above.

    ``calls`` counts the calls of each kind (``"compiled"``, ``"eager"``); ``failed`` holds the
    reason compiling failed, if it did.
    """

    def __init__(self, fn: Callable, min_elements: int = DEFAULT_MIN_ELEMENTS) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.min_elements = min_elements
        self.calls: Counter[str] = Counter()
        self.failed: str | None = None
        self._compiled: Callable | None = None
        _registry.append(self)

    def _wants_compiled(self, args) -> bool:
        if self.failed is not None:
            return False
        mode = current_mode()
        if mode == "never":
            return False
        t = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if t is None or t.device.type not in ("cpu", "cuda"):
            return False
        return mode == "always" or t.numel() >= self.min_elements

    def __call__(self, *args, **kwargs):
        if self._wants_compiled(args):
            if self._compiled is None:
                self._compiled = torch.compile(self.fn, dynamic=None, fullgraph=True)
            try:
                out = self._compiled(*args, **kwargs)
            except Exception as exc:
                # past the recompile limit only this variant runs eagerly; any other failure
                # (compiler, backend) makes the function eager for good, with the reason
                if type(exc).__name__ not in _TRANSIENT:
                    self.failed = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
                    warnings.warn(
                        f"personpose: compiling {self.fn.__qualname__} failed ({self.failed}); "
                        f"running it eagerly from now on (same results, slower; set {ENV}=never "
                        "to silence this)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            else:
                self.calls["compiled"] += 1
                return out
        self.calls["eager"] += 1
        return self.fn(*args, **kwargs)


def fused(fn: Callable | None = None, *, min_elements: int = DEFAULT_MIN_ELEMENTS):
    """Decorator form of :class:`Fused` (``@fused`` or ``@fused(min_elements=...)``)."""
    if fn is None:
        return lambda f: Fused(f, min_elements)
    return Fused(fn, min_elements)


def report() -> dict:
    """How the fused kernels ran in this process, for results files: the policy, the calls of
    each kind per kernel, the reason of any compile failure, and the CPU allocator settings
    (:mod:`personpose.kernels.allocator`). (Compiled and eager kernels agree to float32
    rounding; a training run may still drift by that much.) ``native``: the policy, library
    and calls of the native metric kernels (:mod:`personpose.kernels.native`)."""
    from personpose.kernels import native

    return {
        "mode": current_mode(),
        "calls": {f.__qualname__: dict(f.calls) for f in _registry if f.calls},
        "failed": {f.__qualname__: f.failed for f in _registry if f.failed},
        "allocator": allocator.state(),
        "native": native.state(),
    }
