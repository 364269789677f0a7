"""Write a synthetic data set in the PATN layout.

``out/{train,val,test}/`` images, ``out/synth-annotation-{split}.csv``,
``out/synth-pairs-{split}.csv``, ``out/{split}-labels/<stem>.png`` part label maps,
``out/synth-info-{split}.csv`` (view and activity per image) and ``out/synth-meta.json``
(written last: its presence marks a complete data set).
"""

from __future__ import annotations

import csv
import json
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from itertools import groupby, permutations
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from personpose.data.annotations import write_annotations, write_pairs
from personpose.data.keypoints import KEYPOINT_NAMES
from personpose.data.make_pairs import has_torso
from personpose.data.synth.render import LABEL, LABEL_DESCRIPTIONS, LABEL_NAMES
from personpose.data.synth.scene import render_shot, sample_identity, sample_shot, view_name
from personpose.data.synth.settings import GENERATOR_VERSION, SynthSettings

SPLITS = ("train", "val", "test")
META_NAME = "synth-meta.json"
NAME_RULE = "market: person id = the first '_'-separated token of the file name (never 0000)"


def split_ids(settings: SynthSettings) -> dict[str, list[int]]:
    """Person ids (1-based) of each split; disjoint, seeded, sorted."""
    n = settings.ids
    n_test = max(1, round(n * settings.test_fraction))
    n_val = max(1, round(n * settings.val_fraction))
    perm = np.random.default_rng([0x5E17, settings.seed, 0]).permutation(np.arange(1, n + 1))
    return {
        "test": sorted(int(i) for i in perm[:n_test]),
        "val": sorted(int(i) for i in perm[n_test : n_test + n_val]),
        "train": sorted(int(i) for i in perm[n_test + n_val :]),
    }


def image_name(pid: int, index: int, ext: str) -> str:
    """Market-style name ``<pid:04d>_c<cam>s1_<frame:06d>_01.<ext>``; person id = first token."""
    return f"{pid:04d}_c{index % 6 + 1}s1_{index * 25:06d}_01.{ext}"


def _write_identity(args: tuple[SynthSettings, str, int, Path]) -> list[tuple]:
    """Render and write all images of one identity; returns (name, keypoints, info) rows."""
    settings, split, pid, out = args
    ident = sample_identity(settings.seed, pid)
    rows = []
    for k in range(settings.images_per_id):
        shot = sample_shot(settings.seed, ident, k, settings.preset, settings.hw)
        img, lab = render_shot(settings.seed, ident, k, shot, settings.preset, settings.hw)
        name = image_name(pid, k, settings.image_format)
        Image.fromarray(img).save(out / split / name, quality=95)  # format from the suffix
        Image.fromarray(lab, mode="L").save(out / f"{split}-labels" / (Path(name).stem + ".png"))
        pose = shot.figure.pose
        info = (
            view_name(pose.yaw),
            round(float(np.rad2deg(pose.yaw) + 180) % 360 - 180, 1),
            pose.activity,
            int((lab == LABEL["print"]).any()),
        )
        rows.append((name, shot.keypoints, info))
    return rows


def make_pairs(
    names: list[str], kps: list[np.ndarray], settings: SynthSettings
) -> list[tuple[str, str]]:
    """All ordered pairs of different usable images of one person (shoulders and hips present),
    optionally a seeded subset of ``max_pairs_per_id`` per person. ``names`` lists each
    person's images one after the other (as ``generate_dataset`` writes them)."""
    usable = [name for name, kp in zip(names, kps) if has_torso(kp)]
    pairs: list[tuple[str, str]] = []
    for pid, group in groupby(usable, key=lambda name: name.split("_")[0]):
        perms = list(permutations(group, 2))
        cap = settings.max_pairs_per_id
        if cap is not None and len(perms) > cap:
            rng = np.random.default_rng([0x5E17, settings.seed, int(pid), 4])
            keep = np.sort(rng.choice(len(perms), cap, replace=False))
            perms = [perms[i] for i in keep]
        pairs.extend(perms)
    return pairs


def generate_dataset(
    out: Path, settings: SynthSettings, progress: bool = True, workers: int = 1
) -> Path:
    """Generate the data set into the (new or empty) folder ``out``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out}: output folder is not empty")
    ids = split_ids(settings)
    for split in SPLITS:
        (out / split).mkdir()
        (out / f"{split}-labels").mkdir()
    jobs = [(settings, split, pid, out) for split in SPLITS for pid in ids[split]]
    desc = f"synthetic {settings.preset} data ({settings.ids} ids)"
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        rows = pool.map(_write_identity, jobs, chunksize=4) if pool else map(_write_identity, jobs)
        results = list(tqdm(rows, total=len(jobs), desc=desc, unit="id", disable=not progress))
    summary = {}
    for split in SPLITS:
        rows = [r for job, res in zip(jobs, results) if job[1] == split for r in res]
        names, kps = [r[0] for r in rows], [r[1] for r in rows]
        write_annotations(out / f"synth-annotation-{split}.csv", names, kps)
        pairs = make_pairs(names, kps, settings)
        write_pairs(out / f"synth-pairs-{split}.csv", pairs)
        with open(out / f"synth-info-{split}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["name", "person", "view", "yaw_deg", "activity", "print_visible"])
            w.writerows([name, name.split("_")[0], *info] for name, _, info in rows)
        summary[split] = {"ids": len(ids[split]), "images": len(names), "pairs": len(pairs)}
    meta = {
        "generator": "personpose.data.synth",
        "generator_version": GENERATOR_VERSION,
        "settings": settings.to_dict(),
        "digest": settings.digest(),
        "size": list(settings.hw),
        "image_format": settings.image_format,
        "name_rule": NAME_RULE,
        "keypoints": {"order": list(KEYPOINT_NAMES), "coords": "(row, col) px, -1 = missing"},
        "labels": {str(i): n for i, n in enumerate(LABEL_NAMES)},
        "label_descriptions": LABEL_DESCRIPTIONS,
        "files": {
            "images": "{split}/<name>",
            "labels": "{split}-labels/<image stem>.png (uint8, 0 = background)",
            "annotations": "synth-annotation-{split}.csv",
            "pairs": "synth-pairs-{split}.csv",
            "info": "synth-info-{split}.csv (view: front/back/left/right = facing the camera, "
            "away, image left, image right)",
        },
        "splits": summary,
        "split_ids": ids,
    }
    (out / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return out
