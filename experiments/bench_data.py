"""Data-pipeline benchmark: prints a Markdown table, writes JSON.

- ``maps``: per-sample time of one pose-map set (18 channels) + one part-mask set (11 channels)
  at 256x176 and 128x64: ``personpose.data.pose`` (torch, batch 1 and batch N) against a NumPy
  baseline with the reference's structure (a fresh ``np.meshgrid`` pixel grid for every joint
  and every part, float64, one sample at a time); also checks both give the same values.

Timing notes: the machine may be shared, so every row is a median; with 2 torch threads on an
oversubscribed machine each parallel op waits for a descheduled OpenMP thread (compare
``--threads 2 1``). Batched CPU rows include first-touch page faults on the freshly allocated
outputs (29 maps x H x W float32 per sample), a large share of their time in a VM.

Usage:
    python experiments/bench_data.py [--quick] [--threads 2 [1 ...]]
        [--batch 32] [--device cpu|cuda]
        [--out experiments/results/bench_data.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))
DEFAULT_OUT = REPO / "experiments" / "results" / "bench_data.json"

from personpose.data.keypoints import PART_JOINTS, PART_PERP_SIGMA  # noqa: E402
from personpose.data.pose import part_masks, pose_heatmaps  # noqa: E402

SIZES = ((256, 176), (128, 64))
# A standing pose at 128x64 (row, col), scaled and jittered to make the benchmark poses.
STAND = np.array(
    [(20, 32), (32, 32), (32, 22), (47, 15), (38, 8), (32, 42), (50, 46), (66, 48), (68, 26),
     (92, 25), (116, 24), (68, 38), (91, 42), (115, 45), (17, 35), (17, 29), (19, 38), (19, 26)],
    dtype=np.float64,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the baseline: the reference's structure (loops, a fresh pixel grid per joint and per part)


def numpy_pose_maps(kp: np.ndarray, size: tuple[int, int], sigma: float = 6.0) -> np.ndarray:
    """(H, W, 18) float32, channels last, one joint at a time, as the reference stores them."""
    h, w = size
    out = np.zeros((h, w, len(kp)), dtype=np.float32)
    for j, (y, x) in enumerate(kp):
        if y == -1 or x == -1:
            continue
        cols, rows = np.meshgrid(np.arange(w), np.arange(h))
        out[..., j] = np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * sigma**2))
    return out


def numpy_part_masks(kp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 11) float64, channels last, background first, one part at a time."""
    h, w = size
    parts = np.zeros((h, w, len(PART_JOINTS)))
    for k, joints in enumerate(PART_JOINTS):
        if any(kp[j][0] == -1 or kp[j][1] == -1 for j in joints):
            continue
        pts = np.array([kp[j] for j in joints], dtype=np.float64)
        if len(pts) == 4:  # torso: mean of the shoulders -> mean of the hips
            pts = np.stack([pts[:2].mean(0), pts[2:].mean(0)])
        centre = pts.mean(0)
        v_par = max(5.0, np.sum((pts[1] - pts[0]) ** 2) / 1.2)
        v_perp = PART_PERP_SIGMA[k] ** 2
        theta = np.arctan2(pts[1, 1] - pts[0, 1], pts[0, 0] - pts[1, 0])
        a = np.cos(theta) ** 2 / (2 * v_par) + np.sin(theta) ** 2 / (2 * v_perp)
        b = -np.sin(2 * theta) / (4 * v_par) + np.sin(2 * theta) / (4 * v_perp)
        c = np.sin(theta) ** 2 / (2 * v_par) + np.cos(theta) ** 2 / (2 * v_perp)
        cols, rows = np.meshgrid(np.arange(w), np.arange(h))
        dr, dc = rows - centre[0], cols - centre[1]
        g = np.exp(-(a * dr * dr + 2 * b * dr * dc + c * dc * dc))
        parts[..., k] = g / (np.amax(g) + 1e-6)
    return np.concatenate([1.0 - parts.max(-1, keepdims=True), parts], -1)


# ---------------------------------------------------------------------------------------------
# helpers


def make_poses(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(n, 18, 2) int64 plausible poses in the frame, about 10% of the joints missing."""
    h, w = size
    rng = np.random.default_rng(seed)
    base = STAND * np.array([h / 128, w / 64])
    kp = base + rng.normal(0, 0.03 * h, (n, 18, 2))
    kp = np.clip(np.rint(kp), 0, np.array([h - 1, w - 1])).astype(np.int64)
    kp[rng.random((n, 18)) < 0.1] = -1
    return kp


def median_time(fn, repeats: int, sync=None) -> float:
    """Median wall time (s) of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def markdown(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# section: pose maps + part masks


def bench_maps(args) -> dict:
    rows, checks = [], []
    devices = ["cpu"] + (["cuda"] if args.device == "cuda" else [])
    for size in SIZES:
        kp = make_poses(max(args.batch, args.repeats), size, seed=1)
        # correctness: the baseline and ours agree (float32 vs float64)
        n_check = 3 if args.quick else 8
        ours_bp = pose_heatmaps(torch.from_numpy(kp[:n_check]), size).numpy()
        ours_m = part_masks(torch.from_numpy(kp[:n_check]), size).numpy()
        ref_bp = np.stack([numpy_pose_maps(k, size).transpose(2, 0, 1) for k in kp[:n_check]])
        ref_m = np.stack([numpy_part_masks(k, size).transpose(2, 0, 1) for k in kp[:n_check]])
        checks.append(
            {
                "size": f"{size[0]}x{size[1]}",
                "samples": n_check,
                "max_abs_diff_pose_maps": float(np.abs(ours_bp - ref_bp).max()),
                "max_abs_diff_part_masks": float(np.abs(ours_m - ref_m).max()),
            }
        )

        it = iter(range(10**9))

        def baseline_maps(kp=kp, size=size, it=it):
            numpy_pose_maps(kp[next(it) % len(kp)], size)

        def baseline_masks(kp=kp, size=size, it=it):
            numpy_part_masks(kp[next(it) % len(kp)], size)

        t_bm = median_time(baseline_maps, args.repeats)
        t_bk = median_time(baseline_masks, args.repeats)
        base = t_bm + t_bk
        rows.append(
            {
                "size": f"{size[0]}x{size[1]}",
                "method": "numpy, reference structure (float64)",
                "device": "cpu",
                "threads": 1,
                "batch": 1,
                "pose_maps_ms": t_bm * 1e3,
                "part_masks_ms": t_bk * 1e3,
                "total_ms": base * 1e3,
                "speedup": 1.0,
            }
        )
        for device in devices:
            sync = torch.cuda.synchronize if device == "cuda" else None
            for threads in args.threads if device == "cpu" else args.threads[:1]:
                torch.set_num_threads(threads)
                for batch in (1, args.batch):
                    if batch == 1:  # cycle through the poses, one (18, 2) tensor per call
                        pool = [torch.from_numpy(k).to(device) for k in kp]
                        nxt = iter(range(10**9))

                        def one(fn, pool=pool, nxt=nxt, size=size):
                            fn(pool[next(nxt) % len(pool)], size)

                        t_m = median_time(lambda: one(pose_heatmaps), args.repeats, sync)
                        t_k = median_time(lambda: one(part_masks), args.repeats, sync)
                    else:
                        k = torch.from_numpy(kp[:batch]).to(device)
                        t_m = median_time(
                            lambda k=k, s=size: pose_heatmaps(k, s), args.repeats, sync
                        )
                        t_k = median_time(lambda k=k, s=size: part_masks(k, s), args.repeats, sync)
                    total = (t_m + t_k) / batch
                    rows.append(
                        {
                            "size": f"{size[0]}x{size[1]}",
                            "method": "personpose.data.pose (torch, float32)",
                            "device": device,
                            "threads": threads if device == "cpu" else "",
                            "batch": batch,
                            "pose_maps_ms": t_m / batch * 1e3,
                            "part_masks_ms": t_k / batch * 1e3,
                            "total_ms": total * 1e3,
                            "speedup": base / total,
                        }
                    )
    torch.set_num_threads(args.threads[0])
    cols = ["size", "method", "device", "threads", "batch", "pose_maps_ms", "part_masks_ms",
            "total_ms", "speedup"]  # fmt: skip
    print("\n## Pose maps (18 ch) + part masks (11 ch), time per sample\n")
    print(markdown(rows, cols))
    print("\nBaseline vs ours (float32):\n")
    print(markdown(checks, list(checks[0])))
    return {"rows": rows, "agreement": checks}


SECTIONS = {"maps": bench_maps}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few repeats, few loader samples")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2],
        help="torch.set_num_threads; several values add rows (the first one is kept)",
    )
    p.add_argument("--batch", type=int, default=32, help="batch size of the batched torch rows")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (median)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda adds GPU rows")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    args.repeats = args.repeats or (5 if args.quick else 20)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device")
    torch.set_num_threads(args.threads[0])

    result = {
        "meta": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "quick": args.quick,
            "repeats": args.repeats,
            "load_average_start": os.getloadavg(),
        }
    }
    for name in args.sections:
        result[name] = SECTIONS[name](args)
    result["meta"]["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
