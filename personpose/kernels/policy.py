"""An environment-variable switch with ``with``-block overrides, shared by
:mod:`personpose.kernels.compiled` (``PERSONPOSE_COMPILE``) and
:mod:`personpose.kernels.native` (``PERSONPOSE_NATIVE``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EnvPolicy"]

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class EnvPolicy:
    """A mode among ``modes`` (``"auto"`` is the default, ``"never"`` the off switch) read from
    the environment variable ``env``, where ``1/true/yes/on`` mean ``on_mode`` and
    ``0/false/no/off`` mean ``never``; :meth:`override` sets it inside a ``with`` block
    (nested blocks stack)."""

    def __init__(self, env: str, modes: tuple[str, ...], on_mode: str, name: str) -> None:
        self.env, self.modes, self.on_mode, self.name = env, modes, on_mode, name
        self._stack: list[str] = []

    def current(self) -> str:
        """The innermost override if any, else the environment variable (``auto`` if unset).
        Raises ``ValueError`` naming the variable for an unknown value."""
        if self._stack:
            return self._stack[-1]
        mode = os.environ.get(self.env, "auto").strip().lower() or "auto"
        if mode in TRUE:
            return self.on_mode
        if mode in FALSE:
            return "never"
        if mode not in self.modes:
            raise ValueError(f"{self.env}={mode!r}: expected one of {self.modes} (or 1/0)")
        return mode

    @contextmanager
    def override(self, mode: str) -> Iterator[None]:
        """Use ``mode`` inside the ``with`` block; ``ValueError`` for a mode not in ``modes``."""
        if mode not in self.modes:
            raise ValueError(f"{self.name}: expected one of {self.modes}, got {mode!r}")
        self._stack.append(mode)
        try:
            yield
        finally:
            self._stack.pop()
