"""Generate the test pairs of a trained model, save them, and score them and copy-source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.utilities import move_data_to_device
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from personpose.data.images import to_uint8
from personpose.training.module import extras_of, to_unit

OUTPUT_SEP = "___"  # generated image of pair (a, b) is saved as "<a>___<b>.png"


def output_name(name1: str, name2: str, suffix: str = ".png") -> str:
    """File name of the generated image for the pair (name1 -> name2)."""
    return f"{name1}{OUTPUT_SEP}{name2}{suffix}"


@torch.no_grad()
def score_test_pairs(
    generator: nn.Module,
    datamodule,
    make_metrics: Callable[[], Any],
    out_dir: Path | None = None,
    save_strips: bool = False,
) -> dict[str, Any]:
    """Score ``generator`` on every test pair of ``datamodule`` and the copy-source baseline
    on the same pairs (``generator(P1, BP1, BP2)``, images in [-1, 1]).

    Generated images are quantised to 8 bits before scoring, exactly as the PNG files in
    ``out_dir`` (``<from>___<to>.png``) that ``personpose.evaluate`` re-reads. With
    ``save_strips`` PATN-style JPEG strips ``[source | target | generated]`` go to
    ``out_dir/strips/<from>___<to>_vis.jpg``.

    Returns ``{"metrics", "copy_source", "skipped", "protocol", "count"}``.
    """
    generator.eval()
    device = next(generator.parameters()).device
    model_suite, base_suite = make_metrics().to(device), make_metrics().to(device)
    count = 0
    if out_dir is not None:
        (out_dir / "strips" if save_strips else out_dir).mkdir(parents=True, exist_ok=True)
    for batch in tqdm(datamodule.test_dataloader(), desc="test pairs", unit="batch", leave=False):
        batch = datamodule.on_after_batch_transfer(move_data_to_device(batch, device), 0)
        fake = generator(batch["P1"], batch["BP1"], batch["BP2"])
        pred, target = to_unit(fake), to_unit(batch["P2"])
        source = to_unit(batch["P1"])
        extras = extras_of(batch)
        model_suite.update(pred, target, **extras)
        base_suite.update(source, target, **extras)
        count += pred.shape[0]
        if out_dir is None:
            continue
        for i, (n1, n2) in enumerate(zip(batch["name1"], batch["name2"])):
            gen = to_uint8(pred[i])
            Image.fromarray(gen).save(out_dir / output_name(n1, n2))
            if save_strips:
                strip = np.concatenate([to_uint8(source[i]), to_uint8(target[i]), gen], axis=1)
                Image.fromarray(strip).save(
                    out_dir / "strips" / output_name(n1, n2, "_vis.jpg"), quality=95
                )
    return {
        "metrics": {k: float(v) for k, v in model_suite.compute().items()},
        "copy_source": {k: float(v) for k, v in base_suite.compute().items()},
        "skipped": dict(getattr(model_suite, "skipped", {})),
        "protocol": dict(getattr(model_suite, "protocol", {})),
        "count": count,
    }
