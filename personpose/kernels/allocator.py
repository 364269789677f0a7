"""CPU memory allocator settings for the entry points and the benchmarks.

glibc's ``malloc`` serves every block above its mmap threshold (128 KiB at start, rising to
at most 32 MiB as such blocks are freed) with a fresh ``mmap`` and unmaps it on ``free``, and
it returns the heap top to the system above 128 KiB. A metric or loss that allocates and frees
the same few-MB tensors on every batch therefore page-faults all of that memory in again on
every call: on this project's 2-vCPU machine the faults took about half of the evaluation's
time (``experiments/bench_eval.py``). :func:`configure` sets ``M_MMAP_THRESHOLD`` to
32 MiB (glibc's maximum), ``M_TRIM_THRESHOLD`` to 2 GiB and ``M_TOP_PAD`` to 64 MiB, so freed
blocks stay in the process and are reused without faults. The cost: the resident size stays
near its peak until the process ends. Blocks above 32 MiB are still mapped afresh.

The policy comes from ``PERSONPOSE_MALLOC``: ``retain`` (default) or ``system`` (leave the
allocator alone). It is process-wide, so the library never applies it on import: only
``python -m personpose.run``, ``python -m personpose.evaluate`` and the benchmarks call
:func:`configure` (once; it changes nothing elsewhere than Linux with glibc, nor when another
allocator such as jemalloc or tcmalloc is preloaded). The outcome is part of
:func:`personpose.kernels.report`, so every results file says which allocator ran.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["ENV", "POLICIES", "SETTINGS", "configure", "state"]

ENV = "PERSONPOSE_MALLOC"
POLICIES = ("retain", "system")
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc <malloc.h>
SETTINGS = {  # name -> (mallopt parameter, bytes)
    "mmap_threshold": (M_MMAP_THRESHOLD, 32 << 20),
    "trim_threshold": (M_TRIM_THRESHOLD, 2 << 30),
    "top_pad": (M_TOP_PAD, 64 << 20),
}
_state: dict | None = None


def _policy() -> str:
    policy = os.environ.get(ENV, "retain").strip().lower() or "retain"
    if policy not in POLICIES:
        raise ValueError(f"{ENV}={policy!r}: expected one of {POLICIES}")
    return policy


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform}): the system allocator is left alone"
    libc, _ = platform.libc_ver()
    if libc != "glibc":
        return f"C library is {libc or 'unknown'}, not glibc: the allocator is left alone"
    preload = os.environ.get("LD_PRELOAD", "")
    for other in ("jemalloc", "tcmalloc", "mimalloc"):
        if other in preload:
            return f"{other} is preloaded (LD_PRELOAD): it manages memory, not glibc"
    return None


def configure() -> dict:
    """Apply the ``PERSONPOSE_MALLOC`` policy once per process; returns :func:`state`.

    Raises ``ValueError`` for an unknown policy (the message names the variable)."""
    global _state
    if _state is not None:
        return dict(_state)
    policy = _policy()
    record: dict = {"policy": policy, "applied": False}
    reason = "PERSONPOSE_MALLOC=system" if policy == "system" else _skip_reason()
    if reason is None:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        failed = [name for name, (param, value) in SETTINGS.items() if mallopt(param, value) != 1]
        if failed:
            reason = f"glibc refused mallopt for {', '.join(failed)}"
        record["settings"] = {n: v for n, (_, v) in SETTINGS.items() if n not in failed}
        record["applied"] = not failed
    if reason is not None:
        record["reason"] = reason
    _state = record
    return dict(record)


def state() -> dict:
    """What :func:`configure` did in this process (``{"policy": None, "applied": False}`` and
    a reason if it was not called)."""
    if _state is None:
        return {"policy": None, "applied": False, "reason": "not configured in this process"}
    return dict(_state)
