"""MoveNet PCK reproduces the model README's figures; the annotation CLI writes PATN CSV."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from personpose.data.annotations import read_annotations
from personpose.metrics import build_metrics
from personpose.metrics.pckh import head_size

pytest.importorskip("ai_edge_litert", reason="optional dependency ai-edge-litert (.[pose])")

# (images, annotations, README PCK at 0.05 x height)
README = {
    "deepfashion": ("deepfashion/test", "deepfashion/fasion-resize-annotation-test.csv", 0.951),
    "market": ("market/test", "market/market-annotation-test.csv", 0.902),
}


@pytest.mark.parametrize("name", sorted(README))
def test_pck_of_real_images_reproduces_readme(real_data, movenet_model, name):
    folder, csv, expected = README[name]
    ann = read_annotations(real_data / csv)
    suite = build_metrics(["pck_movenet", "pckh_movenet"], movenet_model=movenet_model)
    assert not suite.skipped
    for i in range(0, len(ann), 64):
        names = ann.names[i : i + 64]
        imgs = np.stack(
            [np.asarray(Image.open(real_data / folder / n).convert("RGB")) for n in names]
        )
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
        suite.update(x, x, kp2=torch.from_numpy(ann.keypoints[i : i + 64]))
    out = suite.compute()
    assert out["pck_movenet"] == pytest.approx(expected, abs=0.01)
    assert out["pck_movenet"] < out["pckh_movenet"] <= 1.0


def test_head_size():
    kp = np.full((18, 2), -1)
    assert np.isnan(head_size(kp))
    kp[0], kp[14] = (10, 20), (6, 26)
    assert head_size(kp) == 6.0


def test_missing_model_is_skipped(tmp_path):
    suite = build_metrics(["pck_movenet"], movenet_model=tmp_path / "none.tflite")
    assert "does not exist" in suite.skipped["pck_movenet"]


def test_annotate_cli_writes_patn_csv(real_data, movenet_model, tmp_path, capsys):
    from personpose.data.annotate import main

    src = real_data / "market" / "test"
    ann = read_annotations(real_data / "market" / "market-annotation-test.csv")
    images = tmp_path / "images"
    images.mkdir()
    for n in ann.names[:6]:
        (images / n).symlink_to(src / n)
    out = tmp_path / "out" / "annotation.csv"
    assert (
        main([str(images), "--model", str(movenet_model), "--out", str(out), "--no-progress"]) == 0
    )
    assert "6 images annotated" in capsys.readouterr().out
    got = read_annotations(out, image_size=(128, 64))
    assert got.names == sorted(ann.names[:6])
    both = (got.keypoints != -1).all(-1) & (ann.keypoints[:6] != -1).all(-1)
    err = np.linalg.norm(got.keypoints - ann.keypoints[:6], axis=-1)[both]
    assert both.sum() > 50 and np.median(err) < 5
    neck_ok = (got.keypoints[:, 1] != -1).all(-1)
    shoulders = (got.keypoints[:, [2, 5]] != -1).all((-1, -2))
    assert (neck_ok == shoulders).all()
    assert main([str(tmp_path / "nope"), "--model", str(movenet_model), "--out", str(out)]) == 2
