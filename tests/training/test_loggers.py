"""Loggers: an optional extra that is not installed is named in the error."""

from __future__ import annotations

import pytest

from personpose.training import loggers
from tests.training.conftest import compose_cfg


def test_tensorboard_without_the_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(loggers, "find_spec", lambda name: None)
    cfg = compose_cfg(["logger=tensorboard"])
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[tensorboard\]"'):
        loggers.build_loggers(cfg, tmp_path, "job", None)
