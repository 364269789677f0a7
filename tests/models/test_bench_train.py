"""experiments/bench_train.py runs end to end on the tiny model and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import load_experiment

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "bench_train.py"


def test_bench_train_quick_tiny(tmp_path):
    bench = load_experiment("bench_train")
    out = tmp_path / "bench.json"
    argv = ["--quick", "--sections", "speed", "--model", "patn_tiny", "--out", str(out)]
    argv += ["--sizes", "32x16x2", "128x64x8"]
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


@pytest.mark.slow
def test_overhead_section_compares_lightning_with_a_plain_loop(tmp_path):
    rows = load_experiment("bench_train").main(
        ["--quick", "--sections", "overhead", "--out", str(tmp_path / "b.json")]
    )
    (row,) = rows["sections"]["overhead"]
    per_round = [v for k, v in row.items() if k.endswith("_all")]  # per-round ms, one per round
    assert [len(v) for v in per_round] == [row["rounds"]] * 2
    assert all(
        isinstance(v, (int, float, str, type(None)))
        for k, v in row.items()
        if not k.endswith("_all")
    )


def test_bench_train_runs_xinggan(tmp_path):
    bench = load_experiment("bench_train")
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
    bench = load_experiment("bench_train")
    torch.manual_seed(0)
    g, discriminators = bench.load_models("patn_tiny")
    nets = (g, *discriminators.values())
    before = [[p.detach().clone() for p in m.parameters()] for m in nets]
    losses = bench.gan_step(g, discriminators)(bench.synthetic_batch(2, 32, 16))
    assert set(losses) == {"g", "d_appearance", "d_shape"}
    for old, net in zip(before, nets):
        assert any(not torch.equal(a, b) for a, b in zip(old, net.parameters()))


def test_parts_section_breaks_an_iteration_down_on_a_tiny_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONPOSE_DATA", str(tmp_path / "data"))
    bench = load_experiment("bench_train")
    overrides = ["model=patn_tiny", "data.synth.ids=12", "data.batch_size=2"]
    argv = ["--quick", "--sections", "parts", "--out", str(tmp_path / "b.json")]
    rows = bench.main([*argv, "--parts-overrides", *overrides])["sections"]["parts"]
    parts = {r["part"]: r for r in rows}
    for name in (
        "data loading (one batch)",
        "generator forward",
        "generator backward",
        "loss part_ssim forward",
        "loss perceptual forward",
        "VGG features backward",
        "discriminator appearance step (forward, backward, Adam)",
        "discriminator shape step (forward, backward, Adam)",
        "whole iteration, timed alone",
    ):
        assert parts[name]["ms_median"] > 0, name
    totals = ("sum of the parts", "whole iteration, timed alone")
    shares = [r["share_of_step_pct"] for r in rows if r["when"] == "every step"]
    each = [
        r["share_of_step_pct"]
        for r in rows
        if r["when"] == "every step" and r["part"] not in totals
    ]
    assert len(shares) == len(each) + 2 and sum(each) == pytest.approx(100, abs=1)
    assert {r["model"] for r in rows} == {"patn_tiny"}
    assert rows[0]["loss_terms"] == "perceptual+part_ssim+adversarial"
