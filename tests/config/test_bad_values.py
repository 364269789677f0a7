"""A value that cannot work is refused where it enters, naming its key and the valid range."""

from __future__ import annotations

import pytest

from personpose.data.annotations import DataFormatError
from personpose.data.datamodule import build_datamodule
from personpose.run import make_trainer
from tests.data.test_dataset import write_patn_folder
from tests.training.conftest import TINY, compose_cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=-1", "data.batch_size must be an integer >= 1, got -1"),
        ("data.batch_size=0", "data.batch_size must be an integer >= 1, got 0"),
        ("data.eval_batch_size=0", "data.eval_batch_size must be an integer >= 1, got 0"),
        ("data.pairs_per_epoch=0", "data.pairs_per_epoch must be an integer >= 1, got 0"),
        ("data.num_workers=-2", "data.num_workers must be an integer >= 0, got -2"),
        ("data.val_fraction=1.5", "data.val_fraction must lie in (0, 1), got 1.5"),
    ],
)
def test_data_values_are_checked_by_the_data_module(override, message):
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_datamodule(compose_cfg([override]).data)


@pytest.mark.parametrize(
    "override",
    [
        "trainer.val_check_interval=0",
        "trainer.checkpoint_every_n_steps=0",
        "trainer.max_steps=-1",
        "trainer.log_every_n_steps=0",
    ],
)
def test_step_counts_are_checked_by_the_trainer_builder(override, tmp_path):
    key, value = override.split("=")
    with pytest.raises(Exception, match=rf"{key} must be an integer >= 1 .*got {value}"):
        make_trainer(compose_cfg([*TINY, override]), tmp_path, "run", None)


def test_wrong_image_size_is_named_before_the_joints(tmp_path):
    root = write_patn_folder(tmp_path / "market", layout="market", size=(128, 64), labels=False)
    cfg = compose_cfg(["data=market", f"data.root={root}", "data.image_size=[64,32]"])
    with pytest.raises(DataFormatError) as err:
        build_datamodule(cfg.data).tables()
    text = str(err.value)
    assert "data.image_size=[64, 32] (H, W) does not match the images of" in text
    assert "is 128x64; set data.image_size=[128,64]" in text and "joint" not in text
    cfg = compose_cfg(["data=market", f"data.root={root}", "data.image_size=[128,64]"])
    assert set(build_datamodule(cfg.data).tables()) == {"train", "val", "test"}
