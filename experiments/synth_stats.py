"""How hard is the synthetic data set compared with real Market-1501?

Prints a Markdown table and writes JSON (default experiments/results/synth_stats.json):
- body-proportion ratios (upper arm / torso, thigh / torso, torso / image height; medians and
  IQRs) and the within-pair joint displacement (mean displacement of the joints visible in
  both images / the target's torso length), synthetic vs the real Market annotations;
- the copy-source baseline ("generated" = the source image) on the test pairs: SSIM,
  mask-SSIM and L1 under the PATN protocol, synthetic vs the real Market test sample.

Definitions: torso length = |neck - mid-hip| px (joints 1 and mean of 8, 11), only where
all three are present; height = image height (px). PATN protocol: the package's
``ssim_patn`` and ``mask_ssim`` (scikit-image 0.14.2's Gaussian SSIM as PATN ran it, the mask
of the target pose; docs/protocols.md); L1 = mean |generated - target| on [0, 1] intensities.

    python experiments/synth_stats.py [--data DIR | --cache-root ROOT] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import REAL, RESULTS, write_json  # noqa: E402

from personpose.data.annotations import read_annotations, read_pairs  # noqa: E402
from personpose.data.images import read_rgb  # noqa: E402
from personpose.data.pose_stats import pair_displacement, proportion_ratios  # noqa: E402
from personpose.metrics.pixel import l1  # noqa: E402
from personpose.metrics.ssim_variants import mask_ssim, ssim_patn  # noqa: E402

# docs/data.md#pair-statistics: copy-source baseline on 100 real Market test pairs; displacement.
REFERENCE = {"ssim": 0.148, "mask_ssim": 0.716, "l1": 0.194, "displacement_median": 0.45}
SPLITS = ("train", "val", "test")


def quartiles(x) -> list[float]:
    return [round(float(v), 4) for v in np.percentile(x, [25, 50, 75])]


def ratio_stats(kps: np.ndarray, height: int) -> dict[str, list[float]]:
    """Quartiles [q25, median, q75] of the proportion ratios over (N, 18, 2) keypoints."""
    return {k: quartiles(v) for k, v in proportion_ratios(kps, height).items()}


def displacements(ann, pairs) -> np.ndarray:
    """Per pair with a defined value: :func:`pair_displacement` (target = second name)."""
    d = np.array([pair_displacement(ann[a], ann[b]) for a, b in pairs])
    return d[np.isfinite(d)]


def copy_source_scores(img_dir: Path, ann, pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Copy-source baseline (generated := source image) over ``pairs``: the package's
    ``ssim_patn``, ``mask_ssim`` (NaN images left out) and ``l1`` on uint8-level images."""

    def load(names):  # (N, 3, H, W) in [0, 1]
        images = np.stack([read_rgb(img_dir / n) for n in names])
        return torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0

    src, tgt = load(a for a, _ in pairs), load(b for _, b in pairs)
    kp2 = torch.as_tensor(np.stack([ann[b] for _, b in pairs]))
    scores = dict(ssim=ssim_patn(src, tgt), mask_ssim=mask_ssim(src, tgt, kp2), l1=l1(src, tgt))
    return {k: round(float(v.nanmean()), 4) for k, v in scores.items()} | {"pairs": len(pairs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, help="an existing synthetic data folder")
    p.add_argument("--cache-root", type=Path, help="generate/reuse the default set under here")
    p.add_argument("--ids", type=int, default=None, help="identities (default: the default size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="60 ids, 100 test pairs")
    p.add_argument("--out", type=Path, default=RESULTS / "synth_stats.json")
    a = p.parse_args(argv)

    from personpose.data.synth import DEFAULT_IDS, ensure_dataset

    t0 = time.process_time()
    data = a.data
    if data is None:
        ids = a.ids or (60 if a.quick else DEFAULT_IDS)
        root = a.cache_root or Path(tempfile.gettempdir()) / "personpose-synth-cache"
        data = ensure_dataset(root, "market", ids=ids, seed=a.seed, progress=False)
    gen_cpu = time.process_time() - t0
    meta = json.loads((data / "synth-meta.json").read_text())
    splits = [read_annotations(data / f"synth-annotation-{s}.csv") for s in SPLITS]
    ann = {name: kp for a in splits for name, kp in zip(a.names, a.keypoints, strict=True)}
    pairs = [pr for s in SPLITS for pr in read_pairs(data / f"synth-pairs-{s}.csv")]
    test = read_pairs(data / "synth-pairs-test.csv")[: 100 if a.quick else None]
    synth = {"data": str(data), "settings": meta["settings"]}
    synth["ratios"] = ratio_stats(np.stack(list(ann.values())), meta["size"][0])
    synth["displacement"] = quartiles(displacements(ann, pairs))
    synth["copy_source"] = copy_source_scores(data / "test", ann, test)
    if a.data is None:  # includes reusing a cached set (then ~0)
        synth["generation_cpu_s"] = round(gen_cpu, 1)
    real = {}
    real_ann, sample = REAL / "annotations", REAL / "market"
    if (real_ann / "market-annotation-train.csv").is_file():
        train = read_annotations(real_ann / "market-annotation-train.csv").keypoints
        real["ratios"] = ratio_stats(train, 128)
        real_test = read_annotations(real_ann / "market-annotation-test.csv")
        d = displacements(real_test, read_pairs(real_ann / "market-pairs-test.csv"))
        real["displacement"] = quartiles(d)
        sample_ann = read_annotations(sample / "market-annotation-test.csv")
        sample_pairs = read_pairs(sample / "market-pairs-test.csv")
        real["copy_source"] = copy_source_scores(sample / "test", sample_ann, sample_pairs)
    result = {"synthetic": synth, "real_market": real, "real_market_reference": REFERENCE}

    rows = [("| measure | synthetic | real Market | reference |"), "|---|---|---|---|"]
    fmt = lambda q: f"{q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f})"  # noqa: E731
    for k in ("upper_arm/torso", "thigh/torso", "torso/height"):
        rv = fmt(real["ratios"][k]) if real else "-"
        rows.append(f"| {k} median (IQR) | {fmt(synth['ratios'][k])} | {rv} | |")
    rv = fmt(real["displacement"]) if real else "-"
    rows.append(f"| pair displacement / torso | {fmt(synth['displacement'])} | {rv} | 0.45 |")
    for k in ("ssim", "mask_ssim", "l1"):
        rv = f"{real['copy_source'][k]:.3f}" if real else "-"
        sv = synth["copy_source"][k]
        rows.append(f"| copy-source {k} | {sv:.3f} | {rv} | {REFERENCE[k]} |")
    n_r = real["copy_source"]["pairs"] if real else 0
    rows.append(f"| test pairs scored | {synth['copy_source']['pairs']} | {n_r} | 100 |")
    print("\n".join(rows))
    write_json(a.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
