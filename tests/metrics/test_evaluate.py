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
    """The evaluate config; eager metrics unless ``compile=`` is given (compiling takes seconds
    per image size and metric)."""
    if not any(o.startswith("compile=") for o in overrides):
        overrides = ("compile=false", *overrides)
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
        "compile=false",
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


# ------------------------------------------------------------------ trust: real samples, bad sets
def _real_copy_source(real_data: Path, tmp_path: Path, n: int, present=None):
    """The first ``n`` real Market test pairs as the single layout, the source image saved as
    each pair's prediction (only the pairs in ``present``, default all); returns the
    prediction folder, a pairs CSV of the ``n`` pairs and a copy of the annotation CSV."""
    from personpose.data.annotations import read_pairs

    market = real_data / "market"
    pairs = read_pairs(market / "market-pairs-test.csv").pairs[:n]
    pred = tmp_path / "pred"
    pred.mkdir()
    for i, (a, b) in enumerate(pairs):
        if present is None or i in present:
            Image.open(market / "test" / a).convert("RGB").save(pred / f"{a}___{b}.png")
    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    ann = tmp_path / "ann.csv"
    ann.write_text((market / "market-annotation-test.csv").read_text())
    return pred, pairs_csv, ann, pairs


def _eval_cfg(real_data, pred, *extra):
    return config(
        f"pred_dir={pred}",
        "layout=single",
        f"gt_dir={real_data / 'market' / 'test'}",
        "progress=false",
        *extra,
    )


def test_target_without_keypoints_is_excluded_not_nan(real_data, tmp_path):
    """A target whose every keypoint is -1 (allowed by the format): mask_ssim leaves it out
    and counts it; results.json holds no NaN."""
    pred, _, ann, pairs = _real_copy_source(real_data, tmp_path, 4)
    target = pairs[2][1]
    lines = ann.read_text().splitlines()
    empty = json.dumps([-1] * 18)
    lines = [f"{target}: {empty}: {empty}" if ln.startswith(target + ":") else ln for ln in lines]
    ann.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    doc = main(
        _eval_cfg(
            real_data, pred, f"annotations={ann}", "metrics=[mask_ssim,ssim_patn]", f"out={out}"
        )
    )
    assert doc["count"] == 4 and doc["excluded"] == {"mask_ssim": 1}
    assert 0 < doc["metrics"]["mask_ssim"] < 1 and doc["skipped"] == {}
    text = out.read_text()
    assert "NaN" not in text and json.loads(text)["excluded"] == {"mask_ssim": 1}


def test_missing_predictions_are_an_error_unless_allowed(real_data, tmp_path, capsys):
    from personpose.metrics.layouts import LayoutError

    pred, pairs_csv, _, _ = _real_copy_source(real_data, tmp_path, 12, present=range(6))
    with pytest.raises(LayoutError, match=r"6 of the 12 pairs of .*pairs.csv have no prediction"):
        main(_eval_cfg(real_data, pred, f"pairs={pairs_csv}", "metrics=[l1]"))
    doc = main(
        _eval_cfg(real_data, pred, f"pairs={pairs_csv}", "metrics=[l1]", "allow_missing=true")
    )
    assert doc["count"] == 6
    assert doc["pairs"]["expected"] == 12 and doc["pairs"]["missing"] == 6
    assert doc["pairs"]["skipped"] == 6 and doc["pairs"]["scored"] == 6
    assert "6 of the 12 expected pairs not scored" in capsys.readouterr().out
    # without a pairs CSV the expected set is what the files name
    doc = main(_eval_cfg(real_data, pred, "metrics=[l1]"))
    assert doc["count"] == 6 and doc["pairs"]["expected"] == 6
    assert "no pairs CSV" in doc["pairs"]["expected_from"]


def test_duplicate_pairs_are_an_error_unless_allowed(real_data, tmp_path):
    from personpose.metrics.layouts import LayoutError

    pred, pairs_csv, _, pairs = _real_copy_source(real_data, tmp_path, 4)
    lines = pairs_csv.read_text().splitlines()
    pairs_csv.write_text("\n".join([*lines, lines[2]]) + "\n")  # pair 2 again, at line 6
    with pytest.raises(LayoutError, match=r"duplicate .*pairs.csv:6"):
        main(_eval_cfg(real_data, pred, f"pairs={pairs_csv}", "metrics=[l1]"))
    doc = main(
        _eval_cfg(real_data, pred, f"pairs={pairs_csv}", "metrics=[l1]", "allow_duplicates=true")
    )
    assert doc["count"] == 4 and doc["pairs"]["duplicates"] == 1
    # two prediction files of one pair, no pairs CSV
    a, b = pairs[0]
    (pred / f"{a}___{b}_vis.png").write_bytes((pred / f"{a}___{b}.png").read_bytes())
    with pytest.raises(LayoutError, match=r"1 duplicate predictions.*_vis.png"):
        main(_eval_cfg(real_data, pred, "metrics=[l1]"))
    doc = main(_eval_cfg(real_data, pred, "metrics=[l1]", "allow_duplicates=true"))
    assert doc["count"] == 4 and doc["pairs"]["duplicates"] == 1


@pytest.mark.parametrize("limit", [-1, 0])
def test_limit_must_be_positive(real_data, tmp_path, limit):
    pred, _, _, _ = _real_copy_source(real_data, tmp_path, 2)
    with pytest.raises(ValueError, match=f"limit must be an integer >= 1 or null.*got {limit}"):
        main(_eval_cfg(real_data, pred, "metrics=[l1]", f"limit={limit}"))
    doc = main(_eval_cfg(real_data, pred, "metrics=[l1]", "limit=1"))
    assert doc["count"] == 1 and doc["pairs"]["beyond_limit"] == 1


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "personpose.io.atomic.atomic_write_text",
        "personpose.models.patn.nn.Linear",  # an nn.Module, but not defined in the package
        "personpose.data.synth.__main__.main",
    ],
)
def test_run_dir_refuses_targets_outside_the_package_classes(tmp_path, target):
    """A crafted results.json must not make ``evaluate run_dir=`` call arbitrary functions."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    victim = tmp_path / "written.txt"
    generator = {"_target_": target, "path": str(victim), "text": "x", "command": f"touch {victim}"}
    config_doc = {"data": {"root": str(tmp_path)}, "model": {"generator": generator}}
    (run_dir / "results.json").write_text(json.dumps({"config": config_doc}))
    with pytest.raises(ValueError, match=f"model.generator._target_ = '{target}' is refused"):
        main(config(f"run_dir={run_dir}", "progress=false"))
    assert not victim.exists()


def test_check_targets_allows_package_classes():
    from personpose.evaluate import check_targets

    check_targets(
        {
            "_target_": "personpose.data.datamodule.PersonPoseDataModule",
            "inner": [{"_target_": "personpose.models.patn.PATNGenerator"}],
        },
        "cfg",
    )
    with pytest.raises(ValueError, match=r"cfg.inner\[0\]._target_ = 'builtins.eval'"):
        check_targets({"inner": [{"_target_": "builtins.eval"}]}, "cfg")
