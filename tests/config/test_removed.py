"""Removed environment variables stop the entry points at start-up, naming what replaces them."""

from __future__ import annotations

import pytest

from personpose.config.removed import REMOVED_ENV, check_environment


def test_clean_environment_passes():
    check_environment({"PERSONPOSE_OFFLINE": "1", "PERSONPOSE_DATA": "/data"})


@pytest.mark.parametrize("name", sorted(REMOVED_ENV))
def test_each_removed_variable_fails_with_its_replacement(name):
    with pytest.raises(SystemExit, match=name) as info:
        check_environment({name: "never"})
    assert REMOVED_ENV[name] in str(info.value)


def test_compile_names_the_loss_flag():
    with pytest.raises(SystemExit, match="compile=True"):
        check_environment({"PERSONPOSE_COMPILE": "always"})


def test_evaluate_entry_point_checks_first(monkeypatch):
    from personpose.evaluate import main

    monkeypatch.setenv("PERSONPOSE_NATIVE", "never")
    with pytest.raises(SystemExit, match="PERSONPOSE_NATIVE is set: no replacement"):
        main({})


def test_run_entry_point_checks_first(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "PERSONPOSE_COMPILE": "always"}
    out = subprocess.run(
        [sys.executable, "-m", "personpose.run", "hydra.run.dir=" + str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert "PERSONPOSE_COMPILE is set" in out.stderr
