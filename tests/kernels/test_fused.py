"""The compile policy: which calls run compiled, the fallback when compiling fails."""

from __future__ import annotations

import warnings

import pytest
import torch

from personpose.kernels import compiled as fused_mod
from personpose.kernels.compiled import Fused, compile_mode, current_mode


def _double(x):
    return x * 2 + 1


def test_mode_from_environment(monkeypatch):
    for value, mode in (("", "auto"), ("auto", "auto"), ("1", "always"), ("never", "never")):
        monkeypatch.setenv("PERSONPOSE_COMPILE", value)
        assert current_mode() == mode
    monkeypatch.setenv("PERSONPOSE_COMPILE", "sometimes")
    with pytest.raises(ValueError, match="PERSONPOSE_COMPILE='sometimes'.*auto"):
        current_mode()


def test_context_overrides_environment(monkeypatch):
    monkeypatch.setenv("PERSONPOSE_COMPILE", "never")
    with compile_mode("always"):
        assert current_mode() == "always"
        with compile_mode("never"):
            assert current_mode() == "never"
        assert current_mode() == "always"
    assert current_mode() == "never"
    with pytest.raises(ValueError, match="expected one of"):
        with compile_mode("fast"):
            pass


def test_auto_compiles_large_inputs_only():
    f = Fused(_double, min_elements=1000)
    small, large = torch.rand(10), torch.rand(2000)
    with compile_mode("auto"):
        assert torch.equal(f(small), small * 2 + 1)
        assert f.calls == {"eager": 1}
        assert torch.allclose(f(large), large * 2 + 1)
        assert f.calls["compiled"] == 1
    with compile_mode("never"):
        f(large)
        assert f.calls["eager"] == 2
    with compile_mode("always"):
        f(small)
        assert f.calls["compiled"] == 2
    assert f.failed is None


def _data_dependent(x):
    if x.sum() > 0:  # a graph break: fullgraph compilation refuses it
        return x * 3
    return x


def test_compile_failure_warns_once_and_falls_back_to_eager():
    f = Fused(_data_dependent)
    x = torch.rand(8)
    with compile_mode("always"):
        with pytest.warns(RuntimeWarning, match="compiling _data_dependent failed"):
            out = f(x)
        assert torch.equal(out, x * 3)
        assert f.failed
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert torch.equal(f(x), x * 3)  # no second warning, no second attempt
    assert f.calls == {"eager": 2}


def test_recompile_limit_runs_that_variant_eagerly_and_keeps_compiling(monkeypatch):
    class FailOnRecompileLimitHit(Exception):
        pass

    f = Fused(_double)
    seen = []

    def compiled(x):
        if x.numel() == 3:
            raise FailOnRecompileLimitHit("limit")
        seen.append(x.numel())
        return _double(x)

    f._compiled = compiled
    monkeypatch.setattr(fused_mod, "_TRANSIENT", ("FailOnRecompileLimitHit",))
    with compile_mode("always"):
        assert torch.equal(f(torch.ones(3)), torch.full((3,), 3.0))
        f(torch.ones(4))
    assert f.failed is None and seen == [4]
    assert f.calls == {"eager": 1, "compiled": 1}


def test_report_names_mode_calls_and_failures():
    f = Fused(_data_dependent)
    with compile_mode("always"):
        with pytest.warns(RuntimeWarning):
            f(torch.rand(4))
        rep = fused_mod.report()
    assert rep["mode"] == "always"
    assert rep["calls"]["_data_dependent"] == {"eager": 1}
    assert "_data_dependent" in rep["failed"]


_NO_COMPILER = """
import json, warnings, torch
import torch._inductor.config as cfg
cfg.cpp.cxx = ("/nonexistent/bin/g++",)
from personpose.kernels import compile_mode
from personpose.kernels import ssim as kernels
from personpose.losses.ssim import ssim
x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
with compile_mode("never"):
    ref = ssim(x, y)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with compile_mode("always"):
        out = ssim(x, y)
print(json.dumps({"equal": bool(torch.equal(out, ref)), "failed": kernels.ssim_forward.failed,
                  "warnings": [str(m.message) for m in caught]}))
"""


def test_without_a_cxx_compiler_the_loss_warns_and_runs_eagerly(tmp_path):
    """A machine without a working C++ compiler (simulated in a fresh process, with an empty
    inductor cache so that nothing compiled earlier is reused): same value, one clear warning."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path), TORCHINDUCTOR_FX_GRAPH_CACHE="0")
    out = subprocess.run(
        [sys.executable, "-c", _NO_COMPILER], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["equal"]
    assert "C++ compiler" in doc["failed"]
    assert any("running it eagerly" in w and "C++ compiler" in w for w in doc["warnings"])
