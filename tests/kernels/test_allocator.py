"""The CPU allocator policy: freed blocks stay in the process (no page faults per batch)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from personpose.kernels import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# In a fresh process: optionally configure, then malloc + touch + free 24 MiB and report how
# much of it stays resident (glibc by default maps such a block afresh and unmaps it on free).
SCRIPT = r"""
import ctypes, json, os, sys
from personpose.kernels import allocator, report
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
state = allocator.configure() if sys.argv[1] == "configure" else allocator.state()
before = rss()
p = libc.malloc(24 << 20)
ctypes.memset(p, 1, 24 << 20)
libc.free(p)
print(json.dumps({"state": state, "retained": rss() - before, "report": report()["allocator"]}))
"""


def _run(arg: str, policy: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop(allocator.ENV, None)
    if policy is not None:
        env[allocator.ENV] = policy
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, arg], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the policy acts on glibc's malloc only")
def test_retain_keeps_freed_blocks_resident():
    untouched = _run("state")
    assert untouched["state"]["policy"] is None and not untouched["state"]["applied"]
    assert untouched["retained"] < 8 << 20  # unmapped on free
    tuned = _run("configure")
    assert tuned["state"]["applied"] and tuned["state"]["policy"] == "retain"
    assert tuned["state"]["settings"]["mmap_threshold"] == 32 << 20
    assert tuned["retained"] > 20 << 20  # kept for the next tensor of that size
    assert tuned["report"] == tuned["state"]  # results files record it


@pytest.mark.skipif(not GLIBC, reason="the policy acts on glibc's malloc only")
def test_system_policy_leaves_malloc_alone():
    out = _run("configure", policy="system")
    assert not out["state"]["applied"] and "PERSONPOSE_MALLOC=system" in out["state"]["reason"]
    assert out["retained"] < 8 << 20


def test_unknown_policy_names_the_variable(monkeypatch):
    monkeypatch.setattr(allocator, "_state", None)
    monkeypatch.setenv(allocator.ENV, "hoard")
    with pytest.raises(ValueError, match="PERSONPOSE_MALLOC='hoard'.*retain"):
        allocator.configure()


def test_preloaded_allocator_is_respected(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    reason = allocator._skip_reason()
    if GLIBC:
        assert "jemalloc is preloaded" in reason
    else:
        assert reason is not None
