"""Qualitative images of a run: the same fixed test pairs in every run, for the report's grid.

At the end of training, :class:`QualitativeCallback` writes ``qualitative/<k>_source.png``,
``<k>_pose.png`` (the target pose drawn), ``<k>_target.png`` and ``<k>_generated.png`` for
k = 0..n-1. The pairs depend only on the test split (:func:`fixed_pairs`), so every run on the
same data shows the same people, and ``python -m personpose.report`` puts them side by side.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import default_collate
from torchvision.utils import save_image

from personpose.data.pose import draw_pose
from personpose.io.atomic import atomic_write

VIEWS = ("front", "back", "left", "right")  # the synthetic set's views of a person
INFO = "synth-info-{split}.csv"  # the synthetic set's per-image view (name,person,view,...)


def target_views(data_dir: Path, split: str = "test") -> dict[str, str]:
    """Image name -> view (``front``, ``back``, ``left``, ``right``) from the synthetic set's
    info file; empty when the folder has none (real data)."""
    path = Path(data_dir) / INFO.format(split=split)
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["name"]: row["view"] for row in csv.DictReader(f)}


def fixed_pairs(pairs: list[tuple[str, str]], views: dict[str, str], n: int = 4) -> list[int]:
    """Indices of ``n`` pairs (file order of ``pairs``): for each view of :data:`VIEWS` the
    first pair whose target has it and whose source has another view (a real change of view),
    then the first remaining pairs in file order."""
    chosen: list[int] = []
    for view in VIEWS:
        hits = (i for i, (a, b) in enumerate(pairs) if views.get(b) == view != views.get(a))
        hit = next((i for i in hits if i not in chosen), None)
        if hit is not None and len(chosen) < n:
            chosen.append(hit)
    chosen += [i for i in range(len(pairs)) if i not in chosen][: max(0, n - len(chosen))]
    return chosen


@torch.no_grad()
def write_qualitative(generator, dataset, pairs: list[int], out_dir: Path, prepare=None) -> None:
    """Generate the pairs ``pairs`` of ``dataset`` (a ``PairDataset``) with ``generator``
    (``(P1, BP1, BP2) -> image`` in [-1, 1]) and write the four PNGs of each, atomically.

    ``prepare(batch)``: the data module's ``on_after_batch_transfer`` (adds the pose maps
    when the samples leave them out)."""
    device = next(generator.parameters()).device
    batch = default_collate([dataset.sample(p) for p in pairs])
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    if prepare is not None:
        batch = prepare(batch)
    was_training = generator.training
    generator.eval()
    fake = generator(batch["P1"], batch["BP1"], batch["BP2"])
    generator.train(was_training)
    size = tuple(fake.shape[-2:])
    images = {
        "source": batch["P1"],
        "pose": draw_pose(batch["kp2"], size),
        "target": batch["P2"],
        "generated": fake,
    }
    for kind, tensor in images.items():
        unit = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) / 2).contiguous()
        for k in range(len(pairs)):
            atomic_write(
                Path(out_dir) / f"{k}_{kind}.png",
                lambda p, img=unit[k]: save_image(img, p, format="png"),
            )


class QualitativeCallback(Callback):
    """At the end of training (rank 0), write the qualitative images of ``n`` fixed test
    pairs into ``out_dir`` (:func:`fixed_pairs`, :func:`write_qualitative`)."""

    def __init__(self, out_dir: str | Path, n: int = 4) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.n = int(n)

    def on_train_end(self, trainer, pl_module) -> None:
        datamodule = trainer.datamodule
        if not trainer.is_global_zero or datamodule is None or self.n <= 0:
            return
        datamodule.setup("test")
        test = datamodule.test_set
        names = [test.pair_names(i) for i in range(test.num_pairs)]
        pairs = fixed_pairs(names, target_views(datamodule.data_dir), self.n)
        write_qualitative(
            pl_module.generator,
            test,
            pairs,
            self.out_dir,
            prepare=lambda b: datamodule.on_after_batch_transfer(b, 0),
        )
