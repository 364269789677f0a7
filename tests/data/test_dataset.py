"""PairDataset over the PATN layout: samples, epoch draws, validation at construction."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from personpose.data import pose
from personpose.data.annotations import (
    DataFormatError,
    read_annotations,
    read_pairs,
    write_annotations,
    write_pairs,
)
from personpose.data.dataset import (
    LAYOUTS,
    EpochPairSampler,
    PairDataset,
    epoch_pair_indices,
    load_split,
    resolve_layout,
)
from personpose.data.images import SizePolicy

TINY = (16, 8)


def from_folder(
    root, split, layout="market", image_size=(128, 64), source_size=None, fit="none", **kw
):
    """The PairDataset of split ``split`` of the PATN folder ``root``."""
    policy = SizePolicy.create(image_size, source_size, fit)
    return PairDataset(load_split(root, resolve_layout(layout), split, policy), policy, **kw)


def write_patn_folder(
    root: Path,
    splits: dict[str, list[str]] | None = None,
    *,
    layout: str = "synth",
    per_id: int = 3,
    size: tuple[int, int] = TINY,
    labels: bool = True,
    seed: int = 0,
) -> Path:
    """A tiny PATN data folder: per split, ``per_id`` random PNGs per identity, keypoints
    inside the image (torso present), all ordered pairs per identity, optional label maps."""
    splits = splits or {"train": ["0001", "0002", "0003"], "val": ["0004"], "test": ["0005"]}
    lay = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    h, w = size
    for split, ids in splits.items():
        image_dir = root / lay.images.format(split=split)
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir = root / lay.labels.format(split=split)
        if labels:
            label_dir.mkdir(exist_ok=True)
        names, kps, pairs = [], [], []
        for pid in ids:
            group = [f"{pid}_{k}.png" for k in range(per_id)]
            for name in group:
                rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(rgb).save(image_dir / name)
                if labels:
                    lab = rng.integers(0, 11, (h, w), dtype=np.uint8)
                    Image.fromarray(lab, "L").save(label_dir / name)
                kp = np.stack([rng.integers(0, h, 18), rng.integers(0, w, 18)], -1)
                kp[16] = -1  # one missing joint (not a torso joint)
                names.append(name)
                kps.append(kp)
            pairs += list(itertools.permutations(group, 2))
        write_annotations(root / lay.annotation.format(split=split), names, np.stack(kps))
        write_pairs(root / lay.pairs.format(split=split), pairs)
    return root


def _manual_image(path: Path) -> torch.Tensor:
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1


def test_real_market_sample_dict(real_data):
    root = real_data / "market"
    ds = from_folder(root, "test", "market", image_size=(128, 64))
    assert len(ds) == ds.num_pairs == 100 and ds.label_dir is None
    pairs = read_pairs(root / "market-pairs-test.csv")
    ann = read_annotations(root / "market-annotation-test.csv")
    s = ds[0]
    assert set(s) == {"P1", "P2", "BP1", "BP2", "mask2", "kp1", "kp2", "name1", "name2"}
    assert (
        (s["name1"], s["name2"])
        == pairs[0]
        == ("0001_c3s1_000551_03.jpg", "0001_c3s1_083067_05.jpg")
    )
    for key, shape in (
        ("P1", (3, 128, 64)),
        ("P2", (3, 128, 64)),
        ("BP1", (18, 128, 64)),
        ("BP2", (18, 128, 64)),
        ("mask2", (11, 128, 64)),
    ):
        assert s[key].shape == shape and s[key].dtype == torch.float32, key
    assert s["kp1"].dtype == torch.int64 and s["kp1"].shape == (18, 2)
    np.testing.assert_array_equal(s["kp1"].numpy(), ann[s["name1"]])
    np.testing.assert_array_equal(s["kp2"].numpy(), ann[s["name2"]])
    torch.testing.assert_close(s["P1"], _manual_image(root / "test" / s["name1"]))
    torch.testing.assert_close(s["P2"], _manual_image(root / "test" / s["name2"]))
    torch.testing.assert_close(s["BP1"], pose.pose_heatmaps(s["kp1"], (128, 64), 6.0))
    torch.testing.assert_close(s["mask2"], pose.part_masks(s["kp2"], (128, 64)))
    # missing joints give all-zero pose channels; present ones peak at the joint
    y, x = s["kp2"][1].tolist()
    assert s["BP2"][1, y, x] == 1.0
    missing = (s["kp1"] == -1).any(-1)
    assert missing.any() and s["BP1"][missing].abs().sum() == 0
    last = ds[99]
    assert (last["name1"], last["name2"]) == pairs[99]
    with pytest.raises(IndexError):
        ds[100]


def test_real_deepfashion_sample(real_data):
    ds = from_folder(
        real_data / "deepfashion", "test", "deepfashion", image_size=(256, 176), with_maps=False
    )
    assert len(ds) == 200
    s = ds[5]
    assert s["P1"].shape == (3, 256, 176) and "BP1" not in s and "mask2" not in s
    assert -1 <= s["P2"].min() and s["P2"].max() <= 1


def test_epoch_draws_are_a_pure_function_of_seed_epoch_position(tmp_path):
    root = write_patn_folder(tmp_path, labels=False)
    kwargs = dict(image_size=TINY, pairs_per_epoch=5, seed=7)
    a = from_folder(root, "train", "synth", **kwargs)
    b = from_folder(root, "train", "synth", **kwargs)
    assert a.num_pairs == 18 and len(a) == 5
    draws = {e: epoch_pair_indices(18, 5, 7, e) for e in range(4)}
    assert draws[0].tolist() == epoch_pair_indices(18, 5, 7, 0).tolist()  # deterministic
    assert len(set(draws[0].tolist())) == 5  # without replacement
    assert draws[0].tolist() != draws[1].tolist()
    assert epoch_pair_indices(18, 5, 8, 0).tolist() != draws[0].tolist()
    for e in (3, 1, 0):  # any order of access
        for i in (4, 0, 2):
            want = a.pair_names(int(draws[e][i]))
            got = b[(e, i)]
            assert (got["name1"], got["name2"]) == want
    b.set_epoch(2)
    assert (b[3]["name1"], b[3]["name2"]) == a.pair_names(int(draws[2][3]))
    # more draws than pairs: with replacement; None = every pair once, shuffled
    many = epoch_pair_indices(18, 40, 0, 0)
    assert len(many) == 40 and set(many.tolist()) <= set(range(18))
    assert sorted(epoch_pair_indices(18, None, 0, 0).tolist()) == list(range(18))
    with pytest.raises(ValueError, match=">= 0"):
        epoch_pair_indices(18, 5, -1, 0)


def test_sampler_yields_epoch_and_shards_over_ranks(tmp_path):
    root = write_patn_folder(tmp_path, labels=False)
    ds = from_folder(root, "train", "synth", image_size=TINY, pairs_per_epoch=7)
    s = EpochPairSampler(ds)
    assert list(s) == [(0, i) for i in range(7)] and len(s) == 7
    s.set_epoch(3)
    assert list(s) == [(3, i) for i in range(7)]
    shards = [EpochPairSampler(ds, num_replicas=3, rank=r) for r in range(3)]
    for sh in shards:
        sh.set_epoch(1)
    got = [list(sh) for sh in shards]
    assert [len(g) for g in got] == [3, 3, 3] and all(len(sh) == 3 for sh in shards)
    assert {p for g in got for _, p in g} == set(range(7))
    assert got[0] == [(1, 0), (1, 3), (1, 6)] and got[2] == [(1, 2), (1, 5), (1, 1)]
    file_order = from_folder(root, "train", "synth", image_size=TINY)
    with pytest.raises(ValueError, match="pairs_per_epoch"):
        EpochPairSampler(file_order)


def test_label_maps(tmp_path):
    root = write_patn_folder(tmp_path, labels=True)
    ds = from_folder(root, "val", "synth", image_size=TINY)
    assert ds.label_dir is not None and len(ds) == 6
    s = ds[1]
    expected = np.asarray(Image.open(root / "val-labels" / s["name2"]), dtype=np.int64)
    assert s["label2"].dtype == torch.int64 and s["label2"].shape == TINY
    np.testing.assert_array_equal(s["label2"].numpy(), expected)
    (root / "val-labels" / "0004_2.png").unlink()
    with pytest.raises(DataFormatError) as err:
        from_folder(root, "val", "synth", image_size=TINY)
    assert str(root / "val-labels") in str(err.value)
    assert "1 of 3 target label maps do not exist" in str(err.value) and "0004_2.png" in str(
        err.value
    )
    no_labels = resolve_layout("synth", {"labels": ""})
    assert from_folder(root, "val", no_labels, image_size=TINY).label_dir is None


def test_missing_images_and_unannotated_pairs_fail_at_construction(tmp_path):
    root = write_patn_folder(tmp_path, labels=False, per_id=4)
    for k in (0, 1, 3):
        (root / "train" / f"0002_{k}.png").unlink()
    with pytest.raises(DataFormatError) as err:
        from_folder(root, "train", "synth", image_size=TINY)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'train'}: 3 of 12 image files named in ")
    assert "synth-annotation-train.csv" in msg and "0002_0.png (line 6)" in msg

    (root / "synth-pairs-test.csv").write_text(
        "from,to\n0005_0.png,0005_1.png\n0005_1.png,9_9.png\n"
    )
    with pytest.raises(DataFormatError) as err:
        from_folder(root, "test", "synth", image_size=TINY)
    assert str(err.value).startswith(f"{root / 'synth-pairs-test.csv'}:3: image '9_9.png'")
    (root / "synth-pairs-test.csv").write_text("from,to\n")
    with pytest.raises(DataFormatError, match="no pairs"):
        from_folder(root, "test", "synth", image_size=TINY)
    with pytest.raises(DataFormatError, match="annotation CSV of split 'nope' does not exist"):
        from_folder(root, "nope", "synth", image_size=TINY)


def test_corrupt_and_wrong_size_images(tmp_path):
    root = write_patn_folder(tmp_path, labels=False)
    bad = root / "val" / "0004_1.png"
    good = bad.read_bytes()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataFormatError, match=f"^{bad}: unreadable or corrupt"):
        from_folder(root, "val", "synth", image_size=TINY)  # headers checked
    ds = from_folder(root, "val", "synth", image_size=TINY, verify_images="off")
    with pytest.raises(DataFormatError, match=f"^{bad}: unreadable or corrupt"):
        ds[0]  # pair (0004_0, 0004_1)
    Image.fromarray(np.zeros((16, 9, 3), np.uint8)).save(bad)
    wrong_size = f"^{bad}: image is 16x9 \\(HxW\\), expected 16x8"
    with pytest.raises(DataFormatError, match=wrong_size):
        from_folder(root, "val", "synth", image_size=TINY)
    with pytest.raises(DataFormatError, match=wrong_size):
        ds[0]
    bad.write_bytes(good[: len(good) // 2])  # truncated: the header is intact
    from_folder(root, "val", "synth", image_size=TINY)
    with pytest.raises(DataFormatError, match=f"^{bad}: unreadable or corrupt"):
        from_folder(root, "val", "synth", image_size=TINY, verify_images="decode")
    with pytest.raises(ValueError, match="verify_images must be one of"):
        from_folder(root, "val", "synth", image_size=TINY, verify_images="all")


def test_keypoints_outside_the_image_are_named(tmp_path):
    root = write_patn_folder(tmp_path, {"test": ["0005"]}, labels=False)
    ann = read_annotations(root / "synth-annotation-test.csv")
    kp = ann.keypoints.copy()
    kp[1, 4] = (16, 3)
    write_annotations(root / "synth-annotation-test.csv", ann.names, kp)
    with pytest.raises(DataFormatError) as err:
        from_folder(root, "test", "synth", image_size=TINY)
    assert str(err.value).startswith(f"{root / 'synth-annotation-test.csv'}:3: joint 4 (r_wrist)")
    assert "outside the 16x8 image" in str(err.value)


def test_center_crop_dataset(tmp_path):
    root = write_patn_folder(tmp_path, {"test": ["0005"]}, labels=True, size=(16, 12))
    ann = read_annotations(root / "synth-annotation-test.csv")
    kp = ann.keypoints.copy()
    kp[0, 0] = (3, 1)  # column 1 leaves the 8-wide centre crop (columns 2..9)
    kp[0, 1] = (4, 2)
    write_annotations(root / "synth-annotation-test.csv", ann.names, kp)
    with pytest.warns(UserWarning, match="puts .* joints of .* images outside the frame"):
        ds = from_folder(
            root, "test", "synth", image_size=TINY, source_size=(16, 12), fit="center_crop"
        )
    s = ds[0]
    assert s["name1"] == "0005_0.png" and s["P1"].shape == (3, 16, 8)
    assert s["kp1"][0].tolist() == [-1, -1] and s["kp1"][1].tolist() == [4, 0]
    full = _manual_image(root / "test" / "0005_0.png")
    torch.testing.assert_close(s["P1"], full[:, :, 2:10])
    assert s["label2"].shape == TINY


def test_load_split_keeps_file_order(tmp_path):
    root = write_patn_folder(tmp_path, labels=False)
    files = load_split(root, LAYOUTS["synth"], "train", SizePolicy.create(TINY))
    ds = PairDataset(files, SizePolicy.create(TINY))
    assert [ds.pair_names(i) for i in range(ds.num_pairs)] == files.pairs.pairs
    assert [(ds[i]["name1"], ds[i]["name2"]) for i in range(3)] == files.pairs.pairs[:3]
