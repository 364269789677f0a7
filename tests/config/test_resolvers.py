"""The config tree's resolvers: run-folder names."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from personpose.config.resolvers import MAX_DIRNAME, data_root_tag, jobdir, register_resolvers

EXCLUDE = ["resume", "logger"]
CASES = [
    [],
    ["loss=l1", "trainer.max_steps=3"],
    ["data.batch_size=-1", "seed=0,1"],
    ["data.image_size=[64,32]", "+loss.x={a: 1}", "~loss.perceptual"],
    ["pretrained.vgg19=/w/vgg 19.pth", "data.root=../data/market", "eval.test_metrics=['l1']"],
    [f"key{i}=value{i}" for i in range(40)],
]


def test_run_folder_names_are_readable_deterministic_and_bounded():
    assert jobdir([]) == "default"
    assert jobdir(["trainer.max_steps=3", "loss=l1"]) == "loss-l1__trainer.max_steps-3"
    assert jobdir(["loss=l1", "resume=false", "logger=csv"], EXCLUDE) == "loss-l1"
    assert jobdir(["pretrained.vgg19=/w/vgg.pth"]) == "pretrained.vgg19-%w%vgg.pth"
    long = CASES[-1]
    assert jobdir(long) == jobdir(list(reversed(long))) and len(jobdir(long)) <= MAX_DIRNAME
    assert jobdir(long) != jobdir([*long, "x=1"])


@pytest.mark.parametrize("overrides", CASES)
def test_run_folder_names_pass_back_through_hydra_as_typed(overrides):
    """``run_dir=outputs/<name>`` parses as one plain string (no `=`, `,`, brackets, quotes)."""
    name = jobdir(overrides)
    assert "/" not in name and len(name) <= MAX_DIRNAME
    [parsed] = OverridesParser.create().parse_overrides([f"run_dir=outputs/{name}"])
    assert parsed.value() == f"outputs/{name}"


def test_unsafe_characters_never_merge_two_runs():
    a, b = jobdir(["data.image_size=[64,32]"]), jobdir(["data.image_size=_64_32_"])
    assert a != b and a.startswith("data.image_size-_64_32_")


def test_data_root_is_its_name_and_a_hash_of_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "a" / "market").mkdir(parents=True)
    (tmp_path / "b" / "market").mkdir(parents=True)
    a, b = jobdir([f"data.root={tmp_path}/a/market"]), jobdir([f"data.root={tmp_path}/b/market"])
    assert a != b and a.startswith("data.root-market.") and b.startswith("data.root-market.")
    monkeypatch.chdir(tmp_path / "a")  # a relative root means the folder it names from here
    assert jobdir(["data.root=market"]) == a
    assert data_root_tag("'market'") == data_root_tag(str(tmp_path / "a" / "market"))


def test_resolver_registers_once():
    register_resolvers()
    register_resolvers()
    cfg = OmegaConf.create(
        {
            "task": ["b=2", "a=1", "resume=false"],
            "ex": ["resume"],
            "dir": "${pp_jobdir:${task},${ex}}",
        }
    )
    assert cfg.dir == "a-1__b-2"
