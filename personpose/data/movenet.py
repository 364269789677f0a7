"""MoveNet SinglePose Lightning (TFLite, int8) as a small offline pose estimator.

Runs with the optional PyPI package ``ai-edge-litert`` (``pip install -e ".[pose]"``); the
model file path is configuration (TF Hub ``google/movenet/singlepose/lightning/tflite/int8/4``).
Input: the image padded with black to a centred square, resized to 192x192 (PIL bilinear),
uint8 RGB. Output: COCO-17 (y, x, score) in [0, 1] of the square, mapped back to image px
and to the OpenPose-18 order (neck = mean of the shoulders; its score the smaller of theirs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_SIZE = 192
# OpenPose-18 joint j <- COCO-17 joint COCO_OF_OPENPOSE[j]; None = neck (mean of 5 and 6).
COCO_OF_OPENPOSE = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
COCO_INDEX = [0 if c is None else c for c in COCO_OF_OPENPOSE]  # the neck is set apart
NECK, COCO_L_SHOULDER, COCO_R_SHOULDER = COCO_OF_OPENPOSE.index(None), 5, 6


class MoveNetUnavailable(RuntimeError):
    """The model file or the ``ai-edge-litert`` package is missing."""


class MoveNet:
    """``predict(image uint8 (H, W, 3)) -> (keypoints (18, 2) (row, col) px, scores (18,))``."""

    def __init__(self, model_path: str | Path, num_threads: int = 1) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise MoveNetUnavailable(f"MoveNet model file {path} does not exist")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise MoveNetUnavailable(
                "the MoveNet pose estimator needs the package ai-edge-litert "
                "(pip install -e '.[pose]')"
            ) from exc
        self.path = path
        self._interp = Interpreter(model_path=str(path), num_threads=num_threads)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"MoveNet.predict: expected uint8 (H, W, 3); got {image.dtype} {image.shape}"
            )
        h, w = image.shape[:2]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        square = np.pad(image, ((top, side - h - top), (left, side - w - left), (0, 0)))
        small = Image.fromarray(square).resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
        self._interp.set_tensor(self._in, np.asarray(small)[None])
        self._interp.invoke()
        out = self._interp.get_tensor(self._out)[0, 0]  # (17, 3): y, x, score
        yx = out[:, :2].astype(np.float64) * side - np.array([top, left], np.float64)
        score = out[:, 2].astype(np.float64)
        kp, sc = yx[COCO_INDEX], score[COCO_INDEX]
        kp[NECK] = (yx[COCO_L_SHOULDER] + yx[COCO_R_SHOULDER]) / 2
        sc[NECK] = min(score[COCO_L_SHOULDER], score[COCO_R_SHOULDER])
        return kp, sc
