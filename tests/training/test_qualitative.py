"""The qualitative pairs: the same for every run on a data set, one per view when known."""

from __future__ import annotations

import torch
from PIL import Image

from personpose.training.qualitative import fixed_pairs, target_views, write_qualitative

PAIRS = [("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b3"), ("b3", "b1"), ("c1", "c2")]


def test_one_pair_per_view_then_file_order():
    views = {"a1": "front", "a2": "front", "b1": "back", "b2": "left", "b3": "front", "c2": "right"}
    # front: a1->a2 and a2->a1 keep the view, so b2->b3 (left -> front) is the first
    assert fixed_pairs(PAIRS, views, 4) == [3, 4, 2, 5]  # targets front, back, left, right
    assert fixed_pairs(PAIRS, {}, 3) == [0, 1, 2]  # no view information: file order
    assert fixed_pairs(PAIRS[:2], views, 4) == [0, 1]  # fewer pairs than asked


class _Copy(torch.nn.Module):
    """A 'generator' that returns its source image."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, p1, bp1, bp2):
        return p1 * self.w


def test_written_images_are_the_pairs(tmp_path, data_cache):
    from personpose.data.datamodule import build_datamodule
    from tests.training.conftest import TINY, compose_cfg

    dm = build_datamodule(compose_cfg(TINY).data)
    dm.prepare_data()
    dm.setup("test")
    test = dm.test_set
    names = [test.pair_names(i) for i in range(test.num_pairs)]
    views = target_views(dm.data_dir)
    assert set(views.values()) <= {"front", "back", "left", "right"} and views
    pairs = fixed_pairs(names, views, 4)
    write_qualitative(_Copy(), test, pairs, tmp_path)
    for k, pair in enumerate(pairs):
        sample = test.sample(pair)
        source = Image.open(tmp_path / f"{k}_source.png")
        assert source.size == (sample["P1"].shape[-1], sample["P1"].shape[-2])
        assert (tmp_path / f"{k}_generated.png").read_bytes() == (
            tmp_path / f"{k}_source.png"
        ).read_bytes()
        assert Image.open(tmp_path / f"{k}_pose.png").getextrema() != ((0, 0),) * 3
