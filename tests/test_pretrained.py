"""personpose.pretrained: explicit path, then the torch cache; offline, a message that says how."""

from __future__ import annotations

import pytest
import torch

from personpose import pretrained


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("PERSONPOSE_OFFLINE", "1")
    return tmp_path


def test_path_then_cache(torch_home):
    state = {"w": torch.ones(2)}
    path = torch_home / "given.pth"
    torch.save({"state_dict": state}, path)
    got = pretrained.resolve("alexnet", path)
    assert got.source == "path" and got.location == str(path)
    torch.testing.assert_close(got.state_dict["w"], state["w"])
    cached = pretrained.cache_dir() / pretrained.REGISTRY["alexnet"].filename
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    assert pretrained.resolve("alexnet").source == "cache"


def test_offline_and_missing_files_say_how_to_supply(torch_home):
    with pytest.raises(pretrained.WeightsUnavailable, match="pretrained.vgg19=/path/to/vgg19"):
        pretrained.resolve("vgg19")
    with pytest.raises(pretrained.WeightsUnavailable, match="does not exist"):
        pretrained.resolve("vgg19", torch_home / "nope.pth")
    with pytest.raises(KeyError, match="unknown pretrained network"):
        pretrained.resolve("resnet")
