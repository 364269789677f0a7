"""Benchmark the SSIM and PSSIM losses, forward + backward, against other implementations.

CPU, float32, gradient with respect to the prediction, at 8x3x256x176 (DeepFashion) and
32x3x128x64 (Market). Every method's value is checked against ours; the methods of one size
run round-robin (one call of each per round, so that load changes on a shared machine hit them
alike) and the median over rounds is reported, in wall and process CPU time.

- SSIM (window 7, sigma 0.8, valid, data range 1): ours eager and ``compile=True`` vs
  pytorch-msssim, piq, kornia (its ``metrics.ssim`` hard-codes sigma 1.5: run with its
  Gaussian factory patched to 0.8) and torchmetrics (its reflect-padded map cropped to valid).
- PSSIM: ours eager and compiled vs the images repeated once per part, as the study's
  reference code does (background SSIM from pytorch-msssim); part masks from
  ``part_masks`` of random poses.
- Peak memory: the largest total of live bytes allocated by torch during one forward +
  backward, from the profiler's memory events (inputs allocated beforehand not counted).

Usage: python experiments/bench_losses.py [--quick] [--out experiments/results/bench_losses.json]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import RESULTS, machine, round_robin, write_json  # noqa: E402

from personpose.data.pose import part_masks  # noqa: E402
from personpose.losses.part_ssim import part_ssim  # noqa: E402
from personpose.losses.ssim import ssim  # noqa: E402

WIN, SIGMA = 7, 0.8
MSSSIM = dict(data_range=1.0, win_size=WIN, win_sigma=SIGMA)  # pytorch-msssim's arguments
SIZES = [(8, 3, 256, 176), (32, 3, 128, 64)]


def peer_ssim() -> dict:
    import importlib

    import piq
    import pytorch_msssim
    from torchmetrics.functional.image import structural_similarity_index_measure as tm

    kssim = importlib.import_module("kornia.metrics.ssim")  # the module, not the function
    make_kernel = kssim.get_gaussian_kernel1d

    def kornia_ssim(x, y):
        kssim.get_gaussian_kernel1d = lambda k, _sigma, **kw: make_kernel(k, SIGMA, **kw)
        try:
            return kssim.ssim(x, y, WIN, max_val=1.0, padding="valid").mean()
        finally:
            kssim.get_gaussian_kernel1d = make_kernel

    def torchmetrics_ssim(x, y):
        _, full = tm(x, y, sigma=SIGMA, kernel_size=WIN, data_range=1.0, return_full_image=True)
        return full[..., WIN // 2 : -(WIN // 2), WIN // 2 : -(WIN // 2)].mean()

    return {
        "pytorch-msssim": lambda x, y: pytorch_msssim.ssim(x, y, **MSSSIM),
        "piq": lambda x, y: piq.ssim(x, y, kernel_size=WIN, kernel_sigma=SIGMA, downsample=False),
        "kornia": kornia_ssim,
        "torchmetrics": torchmetrics_ssim,
    }


def pssim_repeat(x, y, masks):
    """PSSIM as the reference computes it: images repeated once per part (N, K*C, H, W)."""
    import pytorch_msssim

    n, c, h, w = x.shape
    k = masks.shape[1] - 1
    xr = x.unsqueeze(1).expand(n, k, c, h, w).reshape(n, k * c, h, w)
    yr = y.unsqueeze(1).expand(n, k, c, h, w).reshape(n, k * c, h, w)
    mr = masks[:, 1:].unsqueeze(2).expand(n, k, c, h, w).reshape(n, k * c, h, w)
    wgt = mr / (mr.sum((-2, -1), keepdim=True) + 1e-6)
    mx, my = (xr * wgt).sum((-2, -1)), (yr * wgt).sum((-2, -1))
    var = (xr * xr * wgt).sum((-2, -1)) - mx**2 + (yr * yr * wgt).sum((-2, -1)) - my**2
    cov = (xr * yr * wgt).sum((-2, -1)) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * (2 * cov + c2) / (var + c2)
    bg = masks[:, :1]
    b = pytorch_msssim.ssim(bg * x, bg * y, **MSSSIM)
    return (s.mean() + b) / 2


def random_masks(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """``part_masks`` of random poses inside the image, one joint missing in every other one."""
    kp = torch.rand(n, 18, 2, generator=gen) * torch.tensor([h - 1.0, w - 1.0])
    kp[1::2, 4] = -1
    return part_masks(kp, (h, w))


def step(fn, x) -> None:
    x.grad = None
    fn(x).backward()


def peak_bytes(fn, x) -> int:
    """Peak live bytes allocated by torch during one forward + backward (profiler events)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, x)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def bench_size(shape: tuple[int, ...], gen: torch.Generator, repeats: int) -> dict:
    """Value, median wall / CPU ms, peak MB and difference to ours of every method."""
    n, c, h, w = shape
    y = torch.rand(shape, generator=gen)
    x = (y + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1).requires_grad_(True)
    m = random_masks(n, h, w, gen)
    methods = {  # "loss/method" -> f(x)
        "ssim/ours": lambda a: ssim(a, y),
        "ssim/ours-compiled": lambda a: ssim(a, y, compile=True),
        **{f"ssim/{k}": lambda a, f=f: f(a, y) for k, f in peer_ssim().items()},
        "pssim/ours": lambda a: part_ssim(a, y, m),
        "pssim/ours-compiled": lambda a: part_ssim(a, y, m, compile=True),
        "pssim/repeat-per-part": lambda a: pssim_repeat(a, y, m),
    }
    rows = {}
    for key, fn in methods.items():
        t0 = time.perf_counter()
        step(fn, x)  # warm-up (compiles)
        rows[key] = {"first_call_s": time.perf_counter() - t0}
        with torch.no_grad():
            rows[key]["value"] = float(fn(x))
    steps = {key: functools.partial(step, fn, x) for key, fn in methods.items()}
    wall, cpu, _ = round_robin(steps, repeats)
    for key, fn in methods.items():
        ours = rows[key.split("/")[0] + "/ours"]["value"]
        rows[key].update(
            median_ms=statistics.median(wall[key]),
            median_cpu_ms=statistics.median(cpu[key]),
            peak_mb=peak_bytes(fn, x) / 2**20,
            abs_diff_vs_ours=abs(rows[key]["value"] - ours),
        )
    return rows


def goals(rows: dict) -> dict:
    t = {k: r["median_ms"] for k, r in rows.items()}
    peak = {k: r["peak_mb"] for k, r in rows.items()}
    peers = [k for k in t if k.startswith("ssim/") and not k.startswith("ssim/ours")]
    fastest = min(peers, key=t.get)
    out = {"fastest_peer": fastest.removeprefix("ssim/")}
    for ours in ("ours", "ours-compiled"):
        out[ours] = {
            "ssim_speedup_vs_fastest_peer (goal >= 1.3)": t[fastest] / t[f"ssim/{ours}"],
            "pssim_speedup_vs_repeat (goal >= 4)": t["pssim/repeat-per-part"] / t[f"pssim/{ours}"],
            "pssim_over_ssim_peak (goal <= 1.5)": peak[f"pssim/{ours}"] / peak[f"ssim/{ours}"],
            "pssim_over_ssim_time": t[f"pssim/{ours}"] / t[f"ssim/{ours}"],
        }
    out["compiled_speedup"] = {
        g: t[f"{g}/ours"] / t[f"{g}/ours-compiled"] for g in ("ssim", "pssim")
    }
    out["values_agree_1e-5"] = all(r["abs_diff_vs_ours"] < 1e-5 for r in rows.values())
    return out


def table(results: dict) -> str:
    lines = [
        "| size | loss/method | median ms | CPU ms | vs ours | peak MB | first call s | abs diff |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, rows in results["sizes"].items():
        for key, r in rows.items():
            ours = rows[key.split("/")[0] + "/ours"]["median_ms"]
            lines.append(
                f"| {size} | {key} | {r['median_ms']:.1f} | {r['median_cpu_ms']:.1f} | "
                f"{r['median_ms'] / ours:.2f}x | {r['peak_mb']:.1f} | {r['first_call_s']:.1f} | "
                f"{r['abs_diff_vs_ours']:.1e} |"
            )
    for size, g in results["goals"].items():
        lines.append(f"\n{size}: fastest peer {g['fastest_peer']}")
        for ours in ("ours", "ours-compiled"):
            lines.append(f"  {ours}: " + ", ".join(f"{k} {v:.2f}" for k, v in g[ours].items()))
        lines.append(f"  compiled speed-up: {g['compiled_speedup']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds instead of 15")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_losses.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 15
    gen = torch.Generator().manual_seed(0)
    results = {"sizes": {"x".join(map(str, s)): bench_size(s, gen, repeats) for s in SIZES}}
    results["goals"] = {size: goals(rows) for size, rows in results["sizes"].items()}
    results.update(machine(torch=torch.__version__, threads=args.threads), repeats=repeats)
    print(table(results))
    write_json(args.out, results)


if __name__ == "__main__":
    main()
