"""Annotate images with keypoints in the PATN CSV format, using the offline MoveNet estimator.

::

    python -m personpose.data.annotate IMAGES_DIR \\
        --model movenet_singlepose_lightning_int8_4.tflite \\
        --out my-annotation-test.csv [--min-score 0.3]

Every image of ``IMAGES_DIR`` (``.jpg``/``.jpeg``/``.png``, sorted by name) gets one row
``name: [y0..y17]: [x0..x17]`` of 18 OpenPose-order joints (row, col) px, rounded to
integers. A joint is written as -1 (missing) when MoveNet's score is below ``--min-score``
or it falls outside the image; the neck (not a MoveNet joint) is the mean of the shoulders,
present only when both are. The default 0.3 best matches which joints the OpenPose
annotations of ``../shared/data/real`` mark present (about 90 % agreement on DeepFashion).
Needs ``pip install -e ".[pose]"`` (``ai-edge-litert``); the model file is downloaded by
the user from TF Hub / Kaggle Models (``google/movenet/singlepose/lightning/tflite/int8/4``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from personpose.data.keypoints import JOINT, MISSING, NUM_JOINTS
from personpose.data.movenet import MoveNet, MoveNetUnavailable

DEFAULT_MIN_SCORE = 0.3


def keypoints_from_prediction(
    kp: np.ndarray, scores: np.ndarray, size: tuple[int, int], min_score: float
) -> np.ndarray:
    """MoveNet output (18, 2) float + scores (18,) -> PATN keypoints (18, 2) int64, -1 missing."""
    out = np.rint(kp).astype(np.int64)
    keep = scores >= min_score
    keep[JOINT["neck"]] = keep[JOINT["r_shoulder"]] and keep[JOINT["l_shoulder"]]
    inside = ((out >= 0) & (out < np.asarray(size))).all(-1)
    out[~(keep & inside)] = MISSING
    return out


def annotate_folder(
    images_dir: str | Path,
    model: str | Path,
    min_score: float = DEFAULT_MIN_SCORE,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Names and keypoints (N, 18, 2) int64 of every image of ``images_dir``."""
    from tqdm.auto import tqdm

    from personpose.data.images import image_files, read_rgb

    files = image_files(Path(images_dir), "image")
    estimator = MoveNet(model)
    keypoints = np.zeros((len(files), NUM_JOINTS, 2), np.int64)
    for i, path in enumerate(tqdm(files, desc="annotating", unit="img", disable=not progress)):
        img = read_rgb(path)
        keypoints[i] = keypoints_from_prediction(*estimator.predict(img), img.shape[:2], min_score)
    return [p.name for p in files], keypoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m personpose.data.annotate",
        description="Write a PATN annotation CSV for a folder of images with MoveNet.",
    )
    parser.add_argument("images_dir", type=Path, help="folder of .jpg/.png images")
    parser.add_argument("--model", type=Path, required=True, help="MoveNet .tflite file")
    parser.add_argument("--out", type=Path, required=True, help="annotation CSV to write")
    parser.add_argument(
        "--min-score",
        type=float,
        default=DEFAULT_MIN_SCORE,
        help="joints scored below this are written as -1 (default 0.3)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from personpose.data.annotations import write_annotations

    try:
        names, keypoints = annotate_folder(
            args.images_dir, args.model, args.min_score, progress=not args.no_progress
        )
    except (FileNotFoundError, MoveNetUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_annotations(args.out, names, keypoints)
    present = (keypoints != MISSING).all(-1).mean()
    print(f"{len(names)} images annotated ({present:.0%} of joints present) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
