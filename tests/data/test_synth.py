"""The embedded synthetic data set: realism statistics, file formats, determinism, caching."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from personpose.data.pose_stats import pair_displacement, proportion_ratios
from personpose.data.synth import LABEL, SynthSettings, ensure_dataset, generate_dataset
from personpose.data.synth import cache as synth_cache
from personpose.data.synth.__main__ import main as synth_main
from personpose.data.synth.scene import (
    render_shot,
    sample_identity,
    sample_keypoints,
    sample_shot,
)
from personpose.data.synth.writer import SPLITS, split_ids

MARKET = (128, 64)


# -- helpers (own CSV parsing: independent of the data-io reader) --------------------------------
def read_annotations(path: Path) -> dict[str, np.ndarray]:
    lines = path.read_text().splitlines()
    assert lines[0] == "name:keypoints_y:keypoints_x", f"{path}: bad header {lines[0]!r}"
    out = {}
    for i, line in enumerate(lines[1:], start=2):
        name, ys, xs = line.split(":")
        ys, xs = json.loads(ys), json.loads(xs)
        assert len(ys) == len(xs) == 18, f"{path}:{i}: expected 18 joints"
        assert all(isinstance(v, int) for v in ys + xs), f"{path}:{i}: non-integer"
        out[name.strip()] = np.stack([ys, xs], -1)
    return out


def read_pairs(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "from,to"
    return [tuple(line.split(",")) for line in lines[1:]]


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    settings = SynthSettings(ids=6, seed=3, images_per_id=3)
    return generate_dataset(out, settings, progress=False)


# -- realism against real Market annotations -------------------------------------------------------
def test_proportions_and_pair_displacement_match_real_market(real_data):
    real = read_annotations(real_data / "annotations" / "market-annotation-train.csv")
    real_r = proportion_ratios(np.stack(list(real.values())), MARKET[0])
    kps = sample_keypoints(0, range(1, 401), 5, "market", MARKET)  # (400, 5, 18, 2)
    synth_r = proportion_ratios(kps.reshape(-1, 18, 2), MARKET[0])
    for key in real_r:
        q_r = np.percentile(real_r[key], [25, 50, 75])
        q_s = np.percentile(synth_r[key], [25, 50, 75])
        assert abs(q_s[1] / q_r[1] - 1) < 0.3, f"{key}: median {q_s[1]:.3f} vs real {q_r[1]:.3f}"
        assert q_s[2] - q_s[0] >= 0.25 * (q_r[2] - q_r[0]), f"{key}: IQR too narrow"
    # all ordered pairs of usable images of one person (shoulders and hips present)
    disp = []
    for person in kps:
        usable = [k for k in person if (k[[2, 5, 8, 11]] >= 0).all() and k[1, 0] >= 0]
        disp += [
            pair_displacement(a, b)
            for i, a in enumerate(usable)
            for j, b in enumerate(usable)
            if i != j
        ]
    med = float(np.median(disp))
    assert 0.35 <= med <= 0.55, f"median pair displacement {med:.3f} torso lengths"


def test_keypoint_visibility_follows_view():
    """Back views hide nose and eyes; profiles hide the far eye and ear; R is on the image's left
    in front views; most joints are present."""
    n_back = n_profile = n_front = 0
    for pid in range(1, 60):
        ident = sample_identity(0, pid)
        for k in range(4):
            shot = sample_shot(0, ident, k, "market", MARKET)
            head = shot.figure.head  # columns: the head's left, up, forward in camera space
            yaw = np.rad2deg(np.arctan2(head[0, 2], head[2, 2]))  # 0 facing the camera
            kp = shot.keypoints
            if abs(yaw) > 150:
                n_back += 1
                assert (kp[[0, 14, 15]] == -1).all(), f"back view (yaw {yaw:.0f}) shows face points"
            elif 80 < abs(yaw) < 100:
                n_profile += 1
                far_eye, far_ear = (15, 17) if yaw > 0 else (14, 16)  # facing right: left is far
                assert (kp[far_eye] == -1).all(), f"profile (yaw {yaw:.0f}) shows the far eye"
                assert (kp[far_ear] == -1).all(), f"profile (yaw {yaw:.0f}) shows the far ear"
            elif abs(yaw) < 30 and (kp[[2, 5], 1] >= 0).all():
                n_front += 1  # the person's right shoulder is on the image's left
                assert kp[2, 1] < kp[5, 1], f"front view (yaw {yaw:.0f}): R/L swapped"
    assert n_back > 5 and n_profile > 1 and n_front > 5
    kps = sample_keypoints(0, range(1, 101), 4, "market", MARKET).reshape(-1, 18, 2)
    vis = (kps >= 0).all(-1).mean(0)
    assert vis[[1, 2, 5, 8, 11]].min() > 0.9 and 0.4 < vis[4] < 0.85


# -- files ----------------------------------------------------------------------------------------
def test_layout_and_formats(tiny: Path):
    meta = json.loads((tiny / "synth-meta.json").read_text())
    assert meta["labels"]["0"] == "background" and meta["labels"][str(LABEL["print"])] == "print"
    assert meta["size"] == [128, 64] and "first '_'-separated token" in meta["name_rule"]
    persons = {}
    for split in SPLITS:
        ann = read_annotations(tiny / f"synth-annotation-{split}.csv")
        assert len(ann) == meta["splits"][split]["images"] > 0
        for name, kp in ann.items():
            pid = name.split("_")[0]
            assert len(pid) == 4 and pid != "0000" and name.endswith(".png")
            persons.setdefault(split, set()).add(pid)
            with Image.open(tiny / split / name) as img:
                assert img.mode == "RGB" and img.size == (64, 128)
            lab = np.asarray(Image.open(tiny / f"{split}-labels" / (Path(name).stem + ".png")))
            assert lab.dtype == np.uint8 and lab.shape == (128, 64)
            assert (
                lab.max() < len(meta["labels"])
                and (lab == 0).mean() > 0.3
                and (lab > 0).mean() > 0.1
            )
            vis = (kp >= 0).all(-1)
            assert ((kp == -1).all(-1) | vis).all()
            assert (kp[vis, 0] < 128).all() and (kp[vis, 1] < 64).all()
            # the neck lies on the person in the label map
            if vis[1]:
                r, c = kp[1]
                assert (lab[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] > 0).any(), name
        pairs = read_pairs(tiny / f"synth-pairs-{split}.csv")
        usable = [n for n, kp in ann.items() if (kp[[2, 5, 8, 11]] >= 0).all()]
        expected = {(a, b) for a in usable for b in usable if a != b and a[:4] == b[:4]}
        assert set(pairs) == expected and len(pairs) == len(expected)
    assert not (persons["train"] & persons["val"]) and not (persons["train"] & persons["test"])
    assert not (persons["val"] & persons["test"])


def test_annotations_equal_keypoint_sampling(tiny: Path):
    settings = SynthSettings(ids=6, seed=3, images_per_id=3)
    ids = split_ids(settings)["train"]
    kps = sample_keypoints(3, ids, 3, "market", MARKET)
    ann = read_annotations(tiny / "synth-annotation-train.csv")
    assert np.array_equal(np.stack(list(ann.values())), kps.reshape(-1, 18, 2))


def test_split_ids_disjoint_and_cover():
    ids = split_ids(SynthSettings(ids=50, seed=1))
    all_ids = ids["train"] + ids["val"] + ids["test"]
    assert sorted(all_ids) == list(range(1, 51)) and len(ids["test"]) == len(ids["val"]) == 5


def test_deterministic_for_seed_and_different_across_seeds(tmp_path: Path):
    def make(seed, name):
        return generate_dataset(
            tmp_path / name, SynthSettings(ids=3, seed=seed, images_per_id=2), progress=False
        )

    a, b, c = make(7, "a"), make(7, "b"), make(8, "c")
    d = generate_dataset(
        tmp_path / "d", SynthSettings(ids=3, seed=7, images_per_id=2), progress=False, workers=2
    )
    da, db, dc = file_digests(a), file_digests(b), file_digests(c)
    assert da == db == file_digests(d)  # also with worker processes
    images = [k for k in da if k.startswith("train/")]
    assert images and all(da[k] != dc.get(k) for k in images)


def test_back_views_hide_the_front_print():
    backs = fronts = 0
    front_with_print = 0
    for pid in range(1, 80):
        ident = sample_identity(0, pid)
        if ident.look.print is None:
            continue
        for k in range(4):
            shot = sample_shot(0, ident, k, "market", MARKET)
            yaw = (np.rad2deg(shot.figure.pose.yaw) + 180) % 360 - 180
            if abs(yaw) > 140 and backs < 6:
                backs += 1
                img, lab = render_shot(0, ident, k, shot, "market", MARKET)
                img2, _ = render_shot(0, ident, k, shot, "market", MARKET, draw_print=False)
                assert not (lab == LABEL["print"]).any(), (
                    f"person {pid} image {k}: print from behind"
                )
                assert np.array_equal(img, img2), (
                    f"person {pid} image {k}: print changes a back view"
                )
            elif abs(yaw) < 25 and fronts < 6:
                fronts += 1
                _, lab = render_shot(0, ident, k, shot, "market", MARKET)
                front_with_print += int((lab == LABEL["print"]).sum() >= 4)
    assert backs == 6 and fronts == 6 and front_with_print >= 4


def test_fashion_preset(tmp_path: Path):
    out = generate_dataset(
        tmp_path / "f", SynthSettings(preset="fashion", ids=3, images_per_id=2), progress=False
    )
    ann = read_annotations(out / "synth-annotation-test.csv")
    name = next(iter(ann))
    with Image.open(out / "test" / name) as img:
        assert img.size == (176, 256)


# -- cache ----------------------------------------------------------------------------------------
def test_ensure_dataset_generates_once_under_lock(tmp_path: Path, monkeypatch):
    calls = []
    real_generate = synth_cache.generate_dataset

    def counting(out, settings, **kw):
        calls.append(out)
        return real_generate(out, settings, **kw)

    monkeypatch.setattr(synth_cache, "generate_dataset", counting)
    settings = SynthSettings(ids=3, seed=5, images_per_id=2)
    stale = tmp_path / f".{settings.folder_name()}.tmp-999-1-abc"  # left by a crashed job
    stale.mkdir()
    results, errors = [], []

    def job():
        try:
            results.append(
                ensure_dataset(tmp_path, "market", ids=3, seed=5, images_per_id=2, progress=False)
            )
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(calls) == 1 and len(set(results)) == 1
    folder = results[0]
    assert folder.name == settings.folder_name() and (folder / "synth-meta.json").is_file()
    assert calls[0].parent == tmp_path and calls[0] != folder  # generated beside it, then renamed
    leftovers = [p.name for p in tmp_path.iterdir() if p != folder and not p.name.endswith(".lock")]
    assert leftovers == []
    assert (
        ensure_dataset(tmp_path, "market", ids=3, seed=5, images_per_id=2, progress=False) == folder
    )
    assert len(calls) == 1
    other = ensure_dataset(tmp_path, "market", ids=3, seed=6, images_per_id=2, progress=False)
    assert other != folder and len(calls) == 2


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch):
    def boom(out, settings, **kw):
        Path(out).mkdir(parents=True)
        (Path(out) / "half").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth_cache, "generate_dataset", boom)
    with pytest.raises(RuntimeError):
        ensure_dataset(tmp_path, "market", ids=3, seed=0, images_per_id=2, progress=False)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_settings_validation_and_hash():
    with pytest.raises(ValueError, match="preset"):
        SynthSettings(preset="deepfashion")
    with pytest.raises(ValueError, match="ids"):
        SynthSettings(ids=2)
    a, b = SynthSettings(seed=1), SynthSettings(seed=2)
    assert a.digest() != b.digest() and a.digest() == SynthSettings(seed=1).digest()
    assert SynthSettings(size=(128, 64)).digest() == SynthSettings().digest()


def test_cli(tmp_path: Path, capsys):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--ids", "3", "--images-per-id", "2", "--seed", "2", "--no-progress"]
    assert synth_main(args) == 0
    assert (out / "synth-meta.json").is_file() and (out / "synth-pairs-train.csv").is_file()
    assert synth_main(args) == 2  # exists, no --overwrite
    assert "not empty" in capsys.readouterr().err
    assert synth_main([*args, "--format", "jpg", "--overwrite"]) == 0
    assert any(p.suffix == ".jpg" for p in (out / "train").iterdir())


def test_cli_removes_what_a_killed_run_left(tmp_path: Path):
    out = tmp_path / "cli"
    stale = tmp_path / ".cli.tmp-4242"  # the temporary folder of a run killed mid-way
    (stale / "train").mkdir(parents=True)
    args = ["--out", str(out), "--ids", "3", "--images-per-id", "2", "--no-progress"]
    assert synth_main(args) == 0
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert left == ["cli"]
