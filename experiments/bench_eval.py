"""Benchmark: ssim_patn + mask_ssim + pssim on CPU, batched torch vs a per-image skimage loop.

The baseline does what the PATN evaluation scripts do, one image at a time: scikit-image
0.14.2's SSIM on uint8 arrays (scipy's 13-tap gaussian_filter per channel, as ported in
tests/metrics/helpers.py), PATN's mask drawn by 0.14.2's polygon rule (numpy port) and
skimage.draw.disk + a 5x5 closing and the masked SSIM, and PSSIM with numpy per-part
statistics and skimage's windowed SSIM of the background (part masks from ``part_masks``,
one image at a time). Ours: the metrics'
``update`` on batches, as the evaluate command runs them (pSSIM in float32 always), in float32
and float64 eager, and float32 with ``compile=True`` (compiled in a warm-up call). Methods run
round-robin, one call each per round. Images: real DeepFashion
(256x176) and Market (128x64) test pairs from ../shared/data/real (the source image scored as
the generated one). Prints a Markdown table; writes JSON (experiments/results/bench_eval.json).

    python experiments/bench_eval.py [--quick] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import REAL, RESULTS, SKIMAGE_GAUSSIAN, machine, round_robin, write_json  # noqa: E402

from personpose.data.pose import part_masks  # noqa: E402
from personpose.metrics.part_ssim_metric import PartSSIM  # noqa: E402
from personpose.metrics.ssim_variants import MaskSSIM, SSIMPatn  # noqa: E402
from tests.metrics.helpers import load_pairs, reference_mask, ssim_0142  # noqa: E402

SETS = {"DeepFashion 256x176": "deepfashion", "Market 128x64": "market"}
METRICS = ["ssim_patn", "mask_ssim", "pssim"]
VARIANTS = {  # label -> (SSIM metrics' dtype, compile)
    "float32": (torch.float32, False),
    "float64": (torch.float64, False),
    "float32, compiled": (torch.float32, True),
}


def pssim_numpy(x: np.ndarray, y: np.ndarray, kp: np.ndarray) -> float:
    """PSSIM of images (H, W, 3) in [0, 1], one image: per-part weighted statistics."""
    m = part_masks(torch.from_numpy(kp).double(), x.shape[:2]).numpy()
    c1, c2 = 0.01**2, 0.03**2
    s = []
    for k in range(1, 11):
        w = (m[k] / (m[k].sum() + 1e-6))[..., None]
        mx, my = (w * x).sum((0, 1)), (w * y).sum((0, 1))
        var = (w * x * x).sum((0, 1)) - mx**2 + (w * y * y).sum((0, 1)) - my**2
        cov = (w * x * y).sum((0, 1)) - mx * my
        s.append((2 * mx * my + c1) / (mx**2 + my**2 + c1) * (2 * cov + c2) / (var + c2))
    bg = m[0][..., None]  # background: today's scikit-image Gaussian SSIM, sigma 0.8, 7 taps
    b = structural_similarity(bg * x, bg * y, sigma=0.8, data_range=1.0, **SKIMAGE_GAUSSIAN)
    return (float(np.mean(s)) + b) / 2


def baseline(gen: np.ndarray, tgt: np.ndarray, kp2: np.ndarray) -> dict[str, float]:
    out = {k: [] for k in METRICS}
    for g, t, kp in zip(gen, tgt, kp2):
        out["ssim_patn"].append(ssim_0142(t, g))
        out["mask_ssim"].append(ssim_0142(t, g, reference_mask(kp, g.shape[:2])))
        out["pssim"].append(pssim_numpy(g / 255.0, t / 255.0, kp))
    return {k: float(np.mean(v)) for k, v in out.items()}


def ours(gen, tgt, kp2, batch: int, dtype: torch.dtype, compile: bool) -> dict:
    """The metrics' update on batches of uint8 images converted to float (N, 3, H, W)."""
    suite = [SSIMPatn(dtype, compile), MaskSSIM(dtype, compile), PartSSIM(compile=compile)]
    kp = torch.from_numpy(kp2)
    for i in range(0, len(gen), batch):
        x, y = (torch.from_numpy(a[i : i + batch]).permute(0, 3, 1, 2) for a in (gen, tgt))
        x, y = (t.contiguous().float() / 255 for t in (x, y))  # as the evaluate command stacks
        for metric in suite:
            metric.update(x, y, kp2=kp[i : i + batch])
    return {m.name: float(m.compute()) for m in suite}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--batch", type=int, default=32, help="the evaluate command's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_eval.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, n_base, repeats = (64, 16, 2) if args.quick else (96, 32, 5)

    rows, records = [], []
    for name, folder in SETS.items():
        gen, tgt, kp = load_pairs(REAL, folder, n)
        n = len(gen)  # the pairs files may hold fewer
        few = (gen[:n_base], tgt[:n_base], kp[:n_base])  # the baseline's images
        methods = {"skimage loop": functools.partial(baseline, *few)}
        for label, (dtype, comp) in VARIANTS.items():
            methods[label] = functools.partial(ours, gen, tgt, kp, args.batch, dtype, comp)
            methods[label]()  # warm-up: compiles
        ms, _, out = round_robin(methods, repeats)
        base_ips, v_base = 1e3 * n_base / statistics.median(ms["skimage loop"]), out["skimage loop"]
        record = {"data": name, "images": n, "baseline_images": n_base, "baseline": base_ips}
        rows.append((name, "skimage/numpy per-image loop", base_ips, 1.0, 0.0))
        for label, (dtype, comp) in VARIANTS.items():
            ips = 1e3 * n / statistics.median(ms[label])
            check = ours(*few, args.batch, dtype, comp)
            diff = max(abs(check[k] - v_base[k]) for k in METRICS)
            rows.append((name, f"personpose batched, {label}", ips, ips / base_ips, diff))
            record[label] = {"images_per_s": ips, "speedup": ips / base_ips, "max_abs_diff": diff}
        records.append(record)

    lines = [
        "| data | implementation | images/s | speed-up | max abs diff |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {d} | {m} | {ips:.1f} | {sp:.1f}x | {df:.1e} |" for d, m, ips, sp, df in rows]
    print("\n".join(lines))
    doc = {
        "benchmark": "ssim_patn + mask_ssim + pssim, CPU (goal: >= 10x the loop at 256x176)",
        "threads": args.threads,
        "batch": args.batch,
        "quick": args.quick,
        **machine(torch=torch.__version__),
        "results": records,
        "table": "\n".join(lines),
    }
    write_json(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
