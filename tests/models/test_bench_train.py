"""experiments/bench_train.py runs end to end on the tiny model and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "bench_train.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_train_quick_tiny(tmp_path):
    bench = _load()
    out = tmp_path / "bench.json"
    argv = ["--quick", "--model", "patn_tiny", "--sizes", "32x16x2", "128x64x8", "--out", str(out)]
    res = bench.main(argv)
    rows = json.loads(out.read_text())["sections"]["speed"]
    assert res["sections"]["speed"] == rows
    assert [(r["size"], r["batch"], r["reference_s"]) for r in rows] == [
        ("32x16", 2, None),
        ("128x64", 8, 10.6),
    ]
    assert all(r["s_per_iter_median"] > 0 and r["memory_format"] == "channels_last" for r in rows)
    assert all(r["peak_rss_mb"] >= r["peak_rss_above_imports_mb"] > 0 for r in rows)
    assert bench.parse_args([]).sizes == [(128, 64, 8), (256, 176, 4)]


def test_bench_train_runs_xinggan(tmp_path):
    bench = _load()
    argv = ["--quick", "--sections", "speed", "--model", "xinggan_small", "--sizes", "32x16x2"]
    argv += ["--threads", "1", "--out", str(tmp_path / "b.json")]
    threads = torch.get_num_threads()
    try:
        (row,) = bench.main(argv)["sections"]["speed"]
    finally:
        torch.set_num_threads(threads)
    assert (row["model"], row["size"], row["batch"]) == ("xinggan_small", "32x16", 2)
    assert row["peak_rss_mb"] >= row["peak_rss_above_imports_mb"] > 0 and row["gflop_per_iter"] > 0


def test_gan_step_updates_all_three_networks():
    bench = _load()
    torch.manual_seed(0)
    g, discriminators = bench.load_models("patn_tiny")
    nets = (g, *discriminators.values())
    before = [[p.detach().clone() for p in m.parameters()] for m in nets]
    losses = bench.GANStep(g, discriminators)(bench.synthetic_batch(2, 32, 16))
    assert set(losses) == {"g", "d_appearance", "d_shape"}
    for old, net in zip(before, nets):
        assert any(not torch.equal(a, b) for a, b in zip(old, net.parameters()))
