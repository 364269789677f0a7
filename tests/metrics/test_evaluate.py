"""The evaluate command and its library entry point, on small folders and the real peer outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from personpose.evaluate import EvalItem, evaluate_pairs, main, markdown_table
from personpose.metrics import build_metrics

REPO = Path(__file__).resolve().parents[2]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=list(overrides))


def test_evaluate_pairs_batches_by_size_and_extras():
    rng = np.random.default_rng(0)
    items = []
    for i in range(7):
        h, w = (32, 24) if i < 5 else (40, 24)
        pred = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        target = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        label = rng.integers(0, 4, (h, w))
        items.append((pred, target, None, None, f"p{i}", label))
    items.append(EvalItem(torch.rand(3, 40, 24), torch.rand(3, 40, 24), name="t"))
    suite = build_metrics(["l1", "ssim_patn", "gt_part_l1"])
    result = evaluate_pairs(items, suite, batch_size=3, progress=False)
    assert result["count"] == 8 and result["image_sizes"] == ["32x24", "40x24"]
    expected_l1 = np.mean(
        [np.abs(p / 255.0 - t / 255.0).mean() for p, t, *_ in items[:7]]
        + [float((items[7].pred - items[7].target).abs().mean())]
    )
    assert result["metrics"]["l1"] == pytest.approx(expected_l1, abs=1e-6)
    assert "missing for 1 of 8" in result["skipped"]["gt_part_l1"]
    table = markdown_table(result)
    assert table.startswith("| metric | value | definition |") and "| l1 | 0." in table


def _write_single_layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(1)
    gen, gt = tmp_path / "gen", tmp_path / "gt"
    gen.mkdir()
    gt.mkdir()
    names = [f"{i:04d}_c1.jpg" for i in range(4)]
    rows = ["name:keypoints_y:keypoints_x"]
    for i, n in enumerate(names):
        img = rng.integers(0, 255, (64, 56, 3), dtype=np.uint8)
        Image.fromarray(img).save(gt / n.replace(".jpg", ".png"))
        noisy = np.clip(img.astype(int) + rng.integers(-30, 30, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(gen / f"{names[(i + 1) % 4]}___{n}.png")
        ys = [10, 15, 15, 25, 35, 15, 25, 35, 35, 45, 55, 35, 45, 55, 8, 8, -1, -1]
        xs = [16, 16, 10, 8, 8, 22, 24, 24, 12, 12, 12, 20, 20, 20, 14, 18, -1, -1]
        rows.append(f"{n}: {json.dumps(ys)}: {json.dumps(xs)}")
    ann = tmp_path / "ann.csv"
    ann.write_text("\n".join(rows) + "\n")
    return gen, gt, ann


def test_main_writes_json_and_table(tmp_path, capsys):
    gen, gt, ann = _write_single_layout(tmp_path)
    out = tmp_path / "res" / "eval.json"
    cfg = config(
        f"pred_dir={gen}",
        "layout=single",
        f"gt_dir={gt}",
        f"annotations={ann}",
        "protocol=all",
        f"out={out}",
        "progress=false",
        "batch_size=3",
    )
    main(cfg)
    doc = json.loads(out.read_text())
    assert doc["count"] == 4
    assert {"metrics", "protocol", "count", "inputs", "skipped", "versions"} <= set(doc)
    assert {"ssim_patn", "mask_ssim", "ssim_gfla", "l1", "psnr"} <= set(doc["metrics"])
    assert set(doc["protocol"]) == set(doc["metrics"]) | set(doc["skipped"])
    assert doc["versions"]["torch"] and "scikit-image" in doc["versions"]
    assert doc["inputs"]["ground_truth"] == "gt_dir" and doc["inputs"]["layout"] == "single"
    assert "lpips_alex" in doc["skipped"]
    printed = capsys.readouterr().out
    assert "| ssim_patn |" in printed and "4 images" in printed
    assert not list(out.parent.glob("*.tmp"))

    cfg = config(
        f"pred_dir={gen}",
        "layout=single",
        f"gt_dir={gt}",
        "metrics=[mask_ssim,l1]",
        f"out={out}",
        "progress=false",
    )
    doc = main(cfg)
    assert list(doc["metrics"]) == ["l1"] and "kp2" in doc["skipped"]["mask_ssim"]
    written = json.loads(out.read_text())
    assert written["skipped"] == doc["skipped"] and isinstance(written["metrics"]["l1"], float)


def test_annotation_frame_mismatch_is_an_error(tmp_path):
    gen, gt, ann = _write_single_layout(tmp_path)
    text = ann.read_text().replace("[16, 16, 10", "[60, 16, 10")  # a column beyond 56 px
    ann.write_text(text)
    cfg = config(
        f"pred_dir={gen}",
        "layout=single",
        f"gt_dir={gt}",
        f"annotations={ann}",
        "metrics=[l1]",
        "progress=false",
    )
    with pytest.raises(ValueError, match=r"ann.csv:\d+ \(frame of .*outside the 64x56 image"):
        main(cfg)


@pytest.mark.slow
def test_command_line_leaves_no_files(tmp_path):
    gen, gt, ann = _write_single_layout(tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PERSONPOSE_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "personpose.evaluate",
        f"pred_dir={gen}",
        "layout=single",
        f"gt_dir={gt}",
        f"annotations={ann}",
        "protocol=patn",
        "out=r.json",
        "progress=false",
    ]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in work.iterdir()) == ["r.json"]
    assert "| mask_ssim |" in proc.stdout


PEER_RUNS = [
    ("deform", "DeepFashion", "annotations/fasion-annotation-test.csv", 0.70, 0.80),
    ("vunet", "DeepFashion", "annotations/fasion-annotation-test.csv", 0.70, 0.80),
    ("deform", "Market1501", "market/market-annotation-train.csv", 0.25, 0.45),
    ("vunet", "Market1501", "market/market-annotation-test.csv", 0.20, 0.32),
]


@pytest.mark.parametrize("method,dataset,csv,lo,hi", PEER_RUNS)
def test_peer_outputs_score_sanely(real_data, method, dataset, csv, lo, hi, tmp_path):
    out = tmp_path / "peer.json"
    cfg = config(
        f"pred_dir={real_data / 'peer_outputs' / method / dataset}",
        f"layout={method}",
        f"annotations={real_data / csv}",
        "protocol=all",
        f"out={out}",
        "progress=false",
        "precision=float32",
        "limit=24",
    )
    doc = main(cfg)
    m = doc["metrics"]
    assert doc["count"] == 24 and doc["inputs"]["ground_truth"] == "target panel of each strip"
    assert lo < m["ssim_patn"] < hi
    assert m["ssim_patn"] < m["mask_ssim"] < 1  # the background is hard, the person easier
    assert 0 < m["l1"] < 0.2 and 12 < m["psnr"] < 25 and 0.3 < m["ssim_gfla"] < 0.8
    if "pssim" in m:
        assert 0.5 < m["pssim"] < 0.9
    assert "256x176" in doc["skipped"]["ssim_patn_padded"] or dataset == "Market1501"
