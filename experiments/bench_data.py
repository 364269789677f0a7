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
        [--batch 32] [--repeats 20] [--device cpu|cuda]
        [--out experiments/results/bench_data.json]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import RESULTS, machine, markdown_table, no_sync, time_calls, write_json  # noqa: E402

from personpose.data.keypoints import PART_JOINTS, PART_PERP_SIGMA  # noqa: E402
from personpose.data.pose import part_masks, pose_heatmaps  # noqa: E402

SIZES = ((256, 176), (128, 64))
# A standing pose at 128x64 (row, col), scaled and jittered to make the benchmark poses.
STAND = np.array(
    [(20, 32), (32, 32), (32, 22), (47, 15), (38, 8), (32, 42), (50, 46), (66, 48), (68, 26),
     (92, 25), (116, 24), (68, 38), (91, 42), (115, 45), (17, 35), (17, 29), (19, 38), (19, 26)],
    dtype=np.float64,
)  # fmt: skip
COLS = ["size", "method", "device", "threads", "batch", "pose_maps_ms", "part_masks_ms",
        "total_ms", "speedup"]  # fmt: skip


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


def make_poses(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(n, 18, 2) int64 plausible poses in the frame, about 10% of the joints missing."""
    h, w = size
    rng = np.random.default_rng(seed)
    base = STAND * np.array([h / 128, w / 64])
    kp = base + rng.normal(0, 0.03 * h, (n, 18, 2))
    kp = np.clip(np.rint(kp), 0, np.array([h - 1, w - 1])).astype(np.int64)
    kp[rng.random((n, 18)) < 0.1] = -1
    return kp


def median_s(fn, poses, size, repeats: int, sync=no_sync) -> float:
    """Median seconds of ``fn(next(poses), size)`` over ``repeats`` calls after a warm-up call."""
    return statistics.median(time_calls(lambda: fn(next(poses), size), repeats, sync))


def row(size, method, device, threads, batch, t_maps: float, t_masks: float, t_base: float):
    """A table row from seconds per sample."""
    total = t_maps + t_masks
    ms = (t_maps * 1e3, t_masks * 1e3, total * 1e3)
    return dict(zip(COLS, (size, method, device, threads, batch, *ms, t_base / total), strict=True))


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def bench_maps(args) -> dict:
    """Pose maps + part masks, time per sample, and the baseline's agreement with ours."""
    rows, checks = [], []
    devices = ["cpu"] + (["cuda"] if args.device == "cuda" else [])
    for size in SIZES:
        name = f"{size[0]}x{size[1]}"
        kp = make_poses(max(args.batch, args.repeats), size, seed=1)
        # correctness: the baseline and ours agree (float32 vs float64)
        sample = kp[: 3 if args.quick else 8]
        ours_bp = pose_heatmaps(torch.from_numpy(sample), size).numpy()
        ours_m = part_masks(torch.from_numpy(sample), size).numpy()
        ref_bp = np.stack([numpy_pose_maps(k, size).transpose(2, 0, 1) for k in sample])
        ref_m = np.stack([numpy_part_masks(k, size).transpose(2, 0, 1) for k in sample])
        diffs = {"pose_maps": np.abs(ours_bp - ref_bp), "part_masks": np.abs(ours_m - ref_m)}
        checks.append({"size": name, "samples": len(sample)})
        checks[-1].update({f"max_abs_diff_{k}": float(v.max()) for k, v in diffs.items()})

        poses = itertools.cycle(kp)  # a new pose per call, on through both
        t_bm = median_s(numpy_pose_maps, poses, size, args.repeats)
        t_bk = median_s(numpy_part_masks, poses, size, args.repeats)
        base = t_bm + t_bk
        rows.append(
            row(name, "numpy, reference structure (float64)", "cpu", 1, 1, t_bm, t_bk, base)
        )
        for device in devices:
            sync = torch.cuda.synchronize if device == "cuda" else no_sync
            for threads in args.threads if device == "cpu" else args.threads[:1]:
                torch.set_num_threads(threads)
                for batch in (1, args.batch):
                    if batch == 1:  # cycle through the poses, one (18, 2) tensor per call
                        poses = itertools.cycle([torch.from_numpy(k).to(device) for k in kp])
                    else:
                        poses = itertools.repeat(torch.from_numpy(kp[:batch]).to(device))
                    t_m = median_s(pose_heatmaps, poses, size, args.repeats, sync) / batch
                    t_k = median_s(part_masks, poses, size, args.repeats, sync) / batch
                    method = "personpose.data.pose (torch, float32)"
                    threads_col = threads if device == "cpu" else ""
                    rows.append(row(name, method, device, threads_col, batch, t_m, t_k, base))
    torch.set_num_threads(args.threads[0])
    print("\n## Pose maps (18 ch) + part masks (11 ch), time per sample\n")
    print(markdown_table(rows, COLS, fmt=_fmt))
    print("\nBaseline vs ours (float32):\n")
    print(markdown_table(checks, fmt=_fmt))
    return {"rows": rows, "agreement": checks}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few repeats, few loader samples")
    threads = "torch.set_num_threads; several values add rows (the first one is kept)"
    p.add_argument("--threads", type=int, nargs="+", default=[2], help=threads)
    p.add_argument("--batch", type=int, default=32, help="batch size of the batched torch rows")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (median)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda adds GPU rows")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_data.json")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (5 if args.quick else 20)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device")
    torch.set_num_threads(args.threads[0])
    meta = machine(torch=torch.__version__, numpy=np.__version__, cpu_count=os.cpu_count())
    meta.update(threads=args.threads, quick=args.quick, repeats=args.repeats)
    result = {"meta": {**meta, "load_average_start": os.getloadavg()}, "maps": bench_maps(args)}
    result["meta"]["load_average_end"] = os.getloadavg()
    return write_json(args.out, result)


if __name__ == "__main__":
    main()
