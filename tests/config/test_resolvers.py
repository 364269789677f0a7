"""The config tree's resolvers."""

from __future__ import annotations

from omegaconf import OmegaConf

from personpose.config.resolvers import MAX_DIRNAME, jobdir, register_resolvers


def test_run_folder_names_are_deterministic_and_bounded():
    assert jobdir("") == "default"
    assert jobdir("data.root=/a/b,loss=l1") == "data.root=%a%b,loss=l1"
    long = ",".join(f"key{i}=value{i}" for i in range(40))
    assert jobdir(long) == jobdir(long) and len(jobdir(long)) <= MAX_DIRNAME
    assert jobdir(long) != jobdir(long + ",x=1")


def test_resolver_registers_once():
    register_resolvers()
    register_resolvers()
    cfg = OmegaConf.create({"name": "x=1", "dir": "outputs/${pp_jobdir:${name}}"})
    assert cfg.dir == "outputs/x=1"
