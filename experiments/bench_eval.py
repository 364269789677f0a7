"""Benchmark: ssim_patn + mask_ssim + pssim on CPU, batched torch vs a per-image skimage loop.

The baseline does what the PATN evaluation scripts do, one image at a time: scikit-image's
SSIM on uint8 arrays, PATN's mask drawn with skimage.draw polygon/disk + a 5x5 closing and the
masked SSIM, and a numpy PSSIM (numpy part masks, per-part weighted statistics, skimage's
windowed SSIM of the background). Ours: ``build_metrics([...]).update`` on batches, as the
evaluate command runs it (personpose's native C kernels where they apply, the fused torch
kernels compiled in a warm-up call elsewhere), and as rows of their own the torch kernels
alone (``PERSONPOSE_NATIVE=never``) and eagerly (``PERSONPOSE_COMPILE=never``, native off
too: the fallback without a compiler). All run round-robin, one call each per round,
in one process under personpose's CPU allocator policy, as the evaluate command runs
(``PERSONPOSE_MALLOC``, recorded in the JSON; ``=system`` for glibc's defaults).
Images: real DeepFashion (256x176) and Market (128x64) pairs from ../shared/data/real (the
source image scored as the generated one), random images if that folder is absent.
Prints a Markdown table; writes JSON (default experiments/results/bench_eval.json).

    python experiments/bench_eval.py [--quick] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from personpose.data.keypoints import PART_JOINTS, PART_PERP_SIGMA, PATN_MASK_LIMBS  # noqa: E402
from personpose.kernels import allocator, native  # noqa: E402
from personpose.kernels.compiled import compile_mode  # noqa: E402
from personpose.kernels.native import native_mode  # noqa: E402
from personpose.metrics import build_metrics, results_of  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "real"
SETS = {
    "DeepFashion 256x176": (
        "deepfashion/test",
        "deepfashion/fasion-resize-annotation-test.csv",
        "deepfashion/fasion-resize-pairs-test.csv",
        (256, 176),
    ),
    "Market 128x64": (
        "market/test",
        "market/market-annotation-test.csv",
        "market/market-pairs-test.csv",
        (128, 64),
    ),
}
METRICS = ["ssim_patn", "mask_ssim", "pssim"]


# ----------------------------------------------------------------------------- baseline
def patn_mask_skimage(kp: np.ndarray, shape) -> np.ndarray:
    from skimage.draw import disk, polygon
    from skimage.morphology import dilation, erosion

    mask = np.zeros(shape, dtype=bool)
    for f, t in PATN_MASK_LIMBS:
        if (kp[f] == -1).any() or (kp[t] == -1).any():
            continue
        d = kp[f] - kp[t]
        n = np.array([-d[1], d[0]])
        with np.errstate(invalid="ignore"):
            n = 4 * n / np.linalg.norm(n)
        v = np.array([kp[f] + n, kp[f] - n, kp[t] - n, kp[t] + n])
        rr, cc = polygon(v[:, 0], v[:, 1], shape=shape)
        mask[rr, cc] = True
    for j in kp:
        if (j == -1).any():
            continue
        rr, cc = disk((j[0], j[1]), 4, shape=shape)
        mask[rr, cc] = True
    sq = np.ones((5, 5), dtype=bool)
    return erosion(dilation(mask, sq), sq)


def part_masks_numpy(kp: np.ndarray, shape) -> np.ndarray:
    """docs/data.md#part-masks in numpy: (11, H, W), background first."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    masks = np.zeros((11, h, w))
    for k, joints in enumerate(PART_JOINTS):
        if (kp[list(joints)] == -1).any():
            continue
        if len(joints) == 4:
            p0, p1 = (kp[joints[0]] + kp[joints[1]]) / 2, (kp[joints[2]] + kp[joints[3]]) / 2
        else:
            p0, p1 = kp[joints[0]].astype(float), kp[joints[1]].astype(float)
        centre = (p0 + p1) / 2
        v_par = max(5.0, ((p1 - p0) ** 2).sum() / 1.2)
        v_perp = PART_PERP_SIGMA[k] ** 2
        theta = np.arctan2(p1[1] - p0[1], p0[0] - p1[0])
        a = np.cos(theta) ** 2 / (2 * v_par) + np.sin(theta) ** 2 / (2 * v_perp)
        b = -np.sin(2 * theta) / (4 * v_par) + np.sin(2 * theta) / (4 * v_perp)
        c = np.sin(theta) ** 2 / (2 * v_par) + np.cos(theta) ** 2 / (2 * v_perp)
        dr, dc = rows - centre[0], cols - centre[1]
        g = np.exp(-(a * dr**2 + 2 * b * dr * dc + c * dc**2))
        masks[k + 1] = g / (g.max() + 1e-6)
    masks[0] = 1 - masks[1:].max(0)
    return masks


def pssim_numpy(x: np.ndarray, y: np.ndarray, kp: np.ndarray) -> float:
    """PSSIM of images (H, W, 3) in [0, 1] (docs/losses.md#pssim), one image."""
    from skimage.metrics import structural_similarity

    m = part_masks_numpy(kp, x.shape[:2])
    c1, c2 = 0.01**2, 0.03**2
    s = []
    for k in range(1, 11):
        w = m[k] / (m[k].sum() + 1e-6)
        for ch in range(3):
            xc, yc = x[..., ch], y[..., ch]
            mx, my = (w * xc).sum(), (w * yc).sum()
            vx, vy = (w * xc * xc).sum() - mx**2, (w * yc * yc).sum() - my**2
            cov = (w * xc * yc).sum() - mx * my
            s.append((2 * mx * my + c1) / (mx**2 + my**2 + c1) * (2 * cov + c2) / (vx + vy + c2))
    bg = m[0][..., None]
    b = structural_similarity(
        bg * x,
        bg * y,
        gaussian_weights=True,
        sigma=0.8,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    return (float(np.mean(s)) + b) / 2


def baseline(gen: np.ndarray, tgt: np.ndarray, kp2: np.ndarray) -> dict[str, float]:
    from skimage.metrics import structural_similarity

    def patn(t, g):
        return structural_similarity(
            t,
            g,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=g.max() - g.min(),
        )

    out = {k: [] for k in METRICS}
    for g, t, kp in zip(gen, tgt, kp2):
        out["ssim_patn"].append(patn(t, g))
        m = patn_mask_skimage(kp, g.shape[:2])[..., None]
        out["mask_ssim"].append(patn(t * m, g * m))
        out["pssim"].append(pssim_numpy(g / 255.0, t / 255.0, kp))
    return {k: float(np.mean(v)) for k, v in out.items()}


# ----------------------------------------------------------------------------- ours
def ours(gen: np.ndarray, tgt: np.ndarray, kp2: np.ndarray, batch: int, dtype, device="cpu"):
    """build_metrics(...).update on batches of uint8 images converted to float (N, 3, H, W)
    one batch at a time; the values (compute() synchronises)."""
    suite = build_metrics(METRICS, dtype=dtype).to(device)

    def planar(a: np.ndarray) -> torch.Tensor:  # uint8 (N, H, W, 3) -> float (N, 3, H, W)
        t = torch.from_numpy(a).permute(0, 3, 1, 2)
        out = torch.empty(t.shape, dtype=torch.float32)
        out.copy_(t)  # one strided copy-convert, ~4x faster than .float() then a copy
        return out.div_(255).to(device)

    kp = torch.from_numpy(kp2).to(device)
    for i in range(0, len(gen), batch):  # converted batch by batch, as images are read
        x, y = planar(gen[i : i + batch]), planar(tgt[i : i + batch])
        suite.update(x, y, kp2=kp[i : i + batch])
    return results_of(suite)[0]


def load(name: str, n: int, seed: int = 0):
    folder, ann_csv, pairs_csv, size = SETS[name]
    if not REAL.is_dir():
        rng = np.random.default_rng(seed)
        gen = rng.integers(0, 255, (n, *size, 3), dtype=np.uint8)
        tgt = rng.integers(0, 255, (n, *size, 3), dtype=np.uint8)
        kp = rng.integers(10, min(size) - 10, (n, 18, 2))
        return gen, tgt, kp, "random"
    from PIL import Image

    from personpose.data.annotations import read_annotations, read_pairs

    ann = read_annotations(REAL / ann_csv)
    pairs = list(read_pairs(REAL / pairs_csv))
    pairs = (pairs * (n // len(pairs) + 1))[:n]

    def img(p):
        with Image.open(REAL / folder / p) as im:
            return np.asarray(im.convert("RGB"))

    gen = np.stack([img(a) for a, _ in pairs])
    tgt = np.stack([img(b) for _, b in pairs])
    kp = np.stack([ann[b] for _, b in pairs])
    return gen, tgt, kp, "real pairs (source scored as generated)"


def round_robin(methods: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds of each method, one call of each per round (so that load changes on a
    shared machine hit all of them alike), and each method's last output."""
    times: dict = {name: [] for name in methods}
    out: dict = {}
    for _ in range(repeats):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few images, one repeat")
    parser.add_argument("--images", type=int, default=None, help="images per data set")
    parser.add_argument("--batch", type=int, default=32, help="the evaluate command's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where ours runs (the loop: CPU)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--out", type=Path, default=REPO / "experiments" / "results" / "bench_eval.json"
    )
    args = parser.parse_args(argv)
    alloc = allocator.configure()  # as the evaluate command does; the loop runs under it too
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    n = args.images or (16 if args.quick else 96)
    n_base = min(n, 16 if args.quick else 32)  # the per-image loop is timed on fewer images
    repeats = args.repeats or (1 if args.quick else 5)
    variants = {  # label -> (dtype, compile mode, native mode)
        "float64": (torch.float64, "auto", "auto"),  # native SSIM in float64; pSSIM float32
        "float32": (torch.float32, "auto", "auto"),
        "float32, inductor kernels": (torch.float32, "auto", "never"),
        "float32, eager kernels": (torch.float32, "never", "never"),
    }

    rows, records = [], []
    for name in SETS:
        # one data set per process, as an evaluation runs: without this the second set's
        # kernels hit dynamo's limit of 8 compiled variants and some run eagerly
        torch._dynamo.reset()
        gen, tgt, kp, source = load(name, n)

        def run_ours(d, mode, nat, g=gen, t=tgt, k=kp):
            with compile_mode(mode), native_mode(nat):
                return ours(g, t, k, args.batch, d, dev)

        methods = {
            "baseline": lambda g=gen, t=tgt, k=kp: baseline(g[:n_base], t[:n_base], k[:n_base])
        }
        for label, (dtype, mode, nat) in variants.items():
            run_ours(dtype, mode, nat)  # warm-up: compiles the kernels for these shapes
            methods[label] = lambda d=dtype, m=mode, nt=nat: run_ours(d, m, nt)
        secs, values = round_robin(methods, repeats)
        base_ips = n_base / secs["baseline"]
        v_base = values["baseline"]
        rows.append((name, "skimage/numpy per-image loop", base_ips, 1.0))
        record = {
            "data": name,
            "images": n,
            "baseline_images": n_base,
            "source": source,
            "baseline_images_per_s": base_ips,
            "baseline_values": v_base,
        }
        for label, (dtype, mode, nat) in variants.items():
            ips = n / secs[label]
            # agreement on the images both measured
            with compile_mode(mode), native_mode(nat):
                check = ours(gen[:n_base], tgt[:n_base], kp[:n_base], args.batch, dtype, dev)
            diff = max(abs(check[k] - v_base[k]) for k in METRICS)
            impl = f"personpose batched ({label}, batch {args.batch}, {dev.type})"
            rows.append((name, impl, ips, ips / base_ips))
            key = label.replace(", ", "_").replace(" ", "_")
            record[f"ours_{key}_images_per_s"] = ips
            record[f"ours_{key}_speedup"] = ips / base_ips
            record[f"ours_{key}_max_abs_diff_vs_baseline"] = diff
        records.append(record)

    lines = ["| data | implementation | images/s | speed-up |", "|---|---|---:|---:|"]
    lines += [f"| {d} | {impl} | {ips:.1f} | {sp:.1f}x |" for d, impl, ips, sp in rows]
    table = "\n".join(lines)
    print(table)
    for r in records:
        print(
            f"{r['data']}: max |ours - baseline| "
            f"float64 {r['ours_float64_max_abs_diff_vs_baseline']:.1e}, "
            f"float32 {r['ours_float32_max_abs_diff_vs_baseline']:.1e}"
        )
    doc = {
        "benchmark": "ssim_patn + mask_ssim + pssim, CPU",
        "threads": args.threads,
        "device": str(dev),
        "quick": args.quick,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
        },
        "allocator": alloc,
        "native": native.state(),
        "results": records,
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
