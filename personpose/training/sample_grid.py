"""Validation sample grids: rows of (source, source pose, target pose, generated, target)."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from torchvision.utils import make_grid, save_image

from personpose.data.pose import draw_pose
from personpose.io.atomic import atomic_write


def sample_grid(batch: dict, fake: torch.Tensor, rows: int = 8) -> torch.Tensor:
    """A (3, H', W') grid in [0, 1]; each row: P1, pose of P1, pose of P2, generated, P2."""
    n = min(rows, fake.shape[0])
    size = tuple(fake.shape[-2:])
    panels = [
        batch["P1"][:n].float().cpu(),
        draw_pose(batch["kp1"][:n].cpu(), size).float(),
        draw_pose(batch["kp2"][:n].cpu(), size).float(),
        fake[:n].float().cpu(),
        batch["P2"][:n].float().cpu(),
    ]
    tiles = torch.stack(panels, 1).flatten(0, 1)  # (n*5, 3, H, W), row-major
    return make_grid((tiles.clamp(-1, 1) + 1) / 2, nrow=len(panels), padding=2, pad_value=1.0)


class SampleGridCallback(Callback):
    """Write ``samples/step_<k>.png`` (and ``samples/latest.png``) after each validation."""

    def __init__(self, out_dir: str | Path, rows: int = 8) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.rows = rows

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        data = getattr(pl_module, "grid_callback_batch", None)
        if trainer.sanity_checking or not trainer.is_global_zero or data is None:
            return
        grid = sample_grid(data["batch"], data["fake"], self.rows)
        path = self.out_dir / f"step_{trainer.global_step:07d}.png"
        atomic_write(path, lambda p: save_image(grid, p, format="png"))
        atomic_write(self.out_dir / "latest.png", lambda p: save_image(grid, p, format="png"))
        pl_module.grid_callback_batch = None
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="val/samples", images=[str(path)], step=trainer.global_step)
