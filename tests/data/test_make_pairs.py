"""Pair building (docs/data.md#building-pairs) and the make_pairs CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from personpose.data.annotations import Annotations, read_annotations, read_pairs
from personpose.data.make_pairs import build_pairs, eligible_names, has_torso, main
from personpose.data.splits import person_id


def _ann(names, missing=()):
    """Annotations with all joints present except (name index, joint) in ``missing``."""
    kp = np.full((len(names), 18, 2), 5, np.int64)
    for i, j in missing:
        kp[i, j] = -1
    return Annotations(list(names), kp, list(range(2, len(names) + 2)))


def test_person_id_rules():
    assert person_id("0001_c3s1_000551_03.jpg", "market") == "0001"
    assert person_id("-1_c1s1_000401_03.jpg", "market") == "-1"
    name = "fashionWOMENBlouses_Shirtsid0000337203_3back.jpg"
    assert person_id(name, "deepfashion") == "fashionWOMENBlouses_Shirtsid0000337203"
    assert person_id("0042_c3s1_000017_01.png", "synth") == "0042"  # Market-style names
    with pytest.raises(ValueError, match="unknown dataset"):
        person_id("a_b", "coco")


def test_torso_rule_distractors_and_permutations():
    names = [
        "0001_c1_a.jpg",
        "0001_c2_b.jpg",
        "0001_c3_c.jpg",  # l_hip missing -> dropped
        "0002_c1_a.jpg",
        "0002_c1_b.jpg",
        "0000_c1_x.jpg",  # distractor
        "0000_c2_y.jpg",  # distractor
        "-1_c1_z.jpg",  # junk
        "-1_c2_w.jpg",  # junk
        "0003_c1_a.jpg",  # alone: no pair
    ]
    ann = _ann(names, missing=[(2, 11)])
    assert has_torso(ann.keypoints).tolist() == [True, True, False] + [True] * 7
    assert eligible_names(ann, "market") == [
        "0001_c1_a.jpg",
        "0001_c2_b.jpg",
        "0002_c1_a.jpg",
        "0002_c1_b.jpg",
        "0003_c1_a.jpg",
    ]
    assert build_pairs(ann, "market") == [
        ("0001_c1_a.jpg", "0001_c2_b.jpg"),
        ("0001_c2_b.jpg", "0001_c1_a.jpg"),
        ("0002_c1_a.jpg", "0002_c1_b.jpg"),
        ("0002_c1_b.jpg", "0002_c1_a.jpg"),
    ]
    # the DeepFashion rule: everything before the last '_' ("0001_c1" != "0001_c2")
    df = build_pairs(ann, "deepfashion")
    assert ("0002_c1_a.jpg", "0002_c1_b.jpg") in df and ("0001_c1_a.jpg", "0001_c2_b.jpg") not in df
    assert ("0000_c1_x.jpg", "0000_c1_x.jpg") not in df and len(df) == 2


def test_shoulders_required():
    ann = _ann(["a_1.jpg", "a_2.jpg", "a_3.jpg"], missing=[(0, 2), (1, 5)])
    assert build_pairs(ann, "deepfashion") == []


def test_seeded_sampling():
    names = [f"{p:04d}_{k}.jpg" for p in range(1, 7) for k in range(4)]  # 6 ids x 12 pairs
    ann = _ann(names)
    every = build_pairs(ann, "market")
    assert len(every) == 72
    a, b = build_pairs(ann, "market", n=10, seed=3), build_pairs(ann, "market", n=10, seed=3)
    assert a == b and len(set(a)) == 10 and set(a) <= set(every)
    assert build_pairs(ann, "market", n=10, seed=4) != a
    assert sorted(build_pairs(ann, "market", n=1000, seed=0)) == sorted(every)


def test_rebuilds_the_deepfashion_test_pairs(real_data):
    ann = read_annotations(real_data / "annotations" / "fasion-annotation-test.csv")
    published = read_pairs(real_data / "annotations" / "fashion-pairs-test.csv").pairs
    pairs = build_pairs(ann, "deepfashion")
    assert len(pairs) == 8570 and len(set(pairs)) == 8570
    assert set(pairs) == set(published)
    assert pairs != published  # the published file is shuffled ...
    # ... by the reference's seeded sampling of 12,000 pairs (seed 0): same order exactly
    assert build_pairs(ann, "deepfashion", n=12000, seed=0) == published


def test_market_train_and_test_pairs(real_data):
    train = read_annotations(real_data / "annotations" / "market-annotation-train.csv")
    pairs = build_pairs(train, "market")
    assert len(pairs) == 263632 and len(set(pairs)) == 263632
    assert all(person_id(a, "market") == person_id(b, "market") and a != b for a, b in pairs)
    test = read_annotations(real_data / "annotations" / "market-annotation-test.csv")
    published = read_pairs(real_data / "annotations" / "market-pairs-test.csv").pairs
    assert build_pairs(test, "market", n=12000, seed=0) == published


def test_cli(tmp_path, real_data):
    out = tmp_path / "pairs.csv"
    src = real_data / "market" / "market-annotation-train.csv"
    assert (
        main([str(src), "--out", str(out), "--dataset", "market", "--n", "50", "--seed", "1"]) == 0
    )
    pairs = read_pairs(out, read_annotations(src)).pairs
    assert len(pairs) == 50
    assert pairs == build_pairs(read_annotations(src), "market", n=50, seed=1)
    out2 = tmp_path / "all.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "personpose.data.make_pairs",
            str(src),
            "--out",
            str(out2),
            "--dataset",
            "market",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"{out2}: " in done.stderr
    assert read_pairs(out2).pairs == build_pairs(read_annotations(src), "market")


def test_cli_refuses_to_overwrite_its_input(tmp_path, real_data, capsys):
    src = tmp_path / "ann.csv"
    src.write_bytes((real_data / "market" / "market-annotation-train.csv").read_bytes())
    before = src.read_bytes()
    with pytest.raises(SystemExit) as err:
        main([str(src), "--out", str(tmp_path / "." / "ann.csv"), "--dataset", "market"])
    assert err.value.code == 2
    assert "is the input annotation file" in capsys.readouterr().err
    assert src.read_bytes() == before
