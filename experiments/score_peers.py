"""Score the peer outputs in ../shared/data/real/peer_outputs under every named protocol.

Deformable GAN and VUNet, 100 pairs each on DeepFashion (256x256 panels) and Market-1501
(128x64), plus the copy-source baseline (the source panel as the "generated" image) on the
VUNet pairs. Prints a Markdown table and writes experiments/results/peer_outputs.md and
.json. Run: ``python experiments/score_peers.py [--real DIR] [--limit N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import REAL, RESULTS, write_json  # noqa: E402

from personpose.data.annotations import read_annotations  # noqa: E402
from personpose.evaluate import EvalItem, evaluate_pairs, folder_items  # noqa: E402
from personpose.io.atomic import atomic_write_text  # noqa: E402
from personpose.io.provenance import versions  # noqa: E402
from personpose.metrics import build_metrics  # noqa: E402
from personpose.metrics.layouts import scan  # noqa: E402
from personpose.metrics.protocols import PROTOCOLS, SHORT, protocols_of  # noqa: E402

DF_ANN = "annotations/fasion-annotation-test.csv"  # 256x256 coordinates, as the panels
MK_TRAIN, MK_TEST = "market/market-annotation-train.csv", "market/market-annotation-test.csv"
# column -> (method folder, layout, data set folder, annotation CSV, centre crop or None)
RUNS = {
    "Deform DF": ("deform", "deform", "DeepFashion", DF_ANN, None),
    "VUNet DF": ("vunet", "vunet", "DeepFashion", DF_ANN, None),
    "copy source DF": ("vunet", "vunet", "DeepFashion", DF_ANN, None),
    "Deform DF crop 256x176": ("deform", "deform", "DeepFashion", DF_ANN, (256, 176)),
    "VUNet DF crop 256x176": ("vunet", "vunet", "DeepFashion", DF_ANN, (256, 176)),
    "Deform Market": ("deform", "deform", "Market1501", MK_TRAIN, None),
    "VUNet Market": ("vunet", "vunet", "Market1501", MK_TEST, None),
    "copy source Market": ("vunet", "vunet", "Market1501", MK_TEST, None),
}
MOVENET = "models/movenet/movenet_singlepose_lightning_int8_4.tflite"


def score_run(real: Path, run: str, movenet: Path | None, limit: int | None = None) -> dict:
    """Evaluate one column of the table (protocol ``all``); returns evaluate_pairs' result."""
    method, layout, dataset, csv, crop = RUNS[run]
    ann = read_annotations(real / csv)
    files = scan(real / "peer_outputs" / method / dataset, layout, names=set(ann.names))
    files = files[: limit or None]
    suite = build_metrics("all", movenet_model=movenet)
    items = folder_items(files, {"panels": None, "crop": crop}, ann)
    if run.startswith("copy source"):
        items = (EvalItem(i.source, i.target, i.source, i.kp2, i.name) for i in items)
    result = evaluate_pairs(items, suite, total=len(files), progress=True)
    inputs = {"pred_dir": f"peer_outputs/{method}/{dataset}", "layout": layout}
    return result | {"inputs": {**inputs, "annotations": csv, "files": len(files)}}


def table(results: dict[str, dict]) -> str:
    runs = list(results)
    lines = [
        "| metric | " + " | ".join(runs) + " | protocols | definition |",
        "|---|" + "---:|" * len(runs) + "---|---|",
    ]
    for name in PROTOCOLS["all"]:
        values = [results[r]["metrics"].get(name) for r in runs]
        if all(v is None for v in values):
            continue
        cells = [f"{v:.4f}" if v is not None else "-" for v in values]
        protos = ", ".join(protocols_of(name)) or "all"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {protos} | {SHORT[name]} |")
    skipped: dict[str, str] = {}
    for r in runs:
        for name, reason in results[r]["skipped"].items():
            if not any(name in results[q]["metrics"] for q in runs):
                skipped.setdefault(name, reason.split(":")[0].split(";")[0])
    notes = "\n".join(f"- `{n}`: not reported ({reason})" for n, reason in skipped.items())
    return "\n".join(lines) + "\n\n" + notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--limit", type=int, default=None, help="first N pairs of each run")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS / "peer_outputs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    movenet = args.real.parents[1] / MOVENET
    movenet = movenet if movenet.is_file() else None
    t0 = time.perf_counter()
    results = {run: score_run(args.real, run, movenet, args.limit) for run in RUNS}
    md = table(results)
    header = (
        "Peer outputs in `../shared/data/real/peer_outputs` (100 pairs per run). DeepFashion "
        "panels are stored at 256x256; the `crop 256x176` columns score their centre crop "
        "(the 176-wide frame of PATN's protocol, keypoints shifted), where PATN's 40 px white "
        "padding (`ssim_patn_padded`) applies. The Deform Market pairs come from the training "
        "split. The copy-source columns score the source panel of the VUNet pairs as if it "
        "were generated. Command: `python experiments/score_peers.py`.\n\n"
    )
    print(md)
    atomic_write_text(args.out.with_suffix(".md"), header + md + "\n")
    doc = {"runs": results, "seconds": round(time.perf_counter() - t0, 1), "versions": versions()}
    write_json(args.out.with_suffix(".json"), doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
