"""Load person images and label maps, and fit them (with their keypoints) to the model size.

Size policy (:class:`SizePolicy`): image files on disk have ``source_size`` (H, W) px, the
frame the annotation coordinates are given in; the model sees ``image_size``. ``fit`` says
how one becomes the other:

- ``"none"``: the files must already be ``image_size`` (anything else is an error);
- ``"center_crop"``: cut the centre, e.g. DeepFashion 256x256 -> 256x176 removes 40 px on
  the left and right, so x shifts by -40; joints that leave the frame become -1;
- ``"resize"``: rescale (bicubic for images, nearest for label maps), keypoints scaled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from personpose.data.annotations import DataFormatError
from personpose.data.keypoints import MISSING

FIT_MODES = ("none", "center_crop", "resize")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")  # image files of a folder (lower case)
FIT_HINT = "; set data.fit to 'center_crop' or 'resize' and data.source_size to the file size"


def to_uint8(images01: torch.Tensor) -> np.ndarray:
    """Images (..., 3, H, W) in [0, 1] -> (..., H, W, 3) uint8 (rounded, clamped)."""
    return (images01.clamp(0, 1) * 255).round().byte().movedim(-3, -1).cpu().numpy()


def image_files(folder: Path, what: str, error: type[Exception] = FileNotFoundError) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; ``error`` (naming the folder) if
    it does not exist or holds none. ``what``: the folder's role, for the message."""
    if not folder.is_dir():
        raise error(f"{folder}: {what} folder does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise error(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _size(value, what: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be [H, W] in px, got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{what} must be positive [H, W] in px, got {value!r}")
    return h, w


@dataclass(frozen=True)
class SizePolicy:
    """How files of ``source_size`` (H, W) px become model inputs of ``image_size`` (H, W) px."""

    image_size: tuple[int, int]
    source_size: tuple[int, int]
    fit: str = "none"

    @classmethod
    def create(cls, image_size, source_size=None, fit: str | None = "none") -> SizePolicy:
        """Validated policy; ``source_size`` None means the files are already ``image_size``."""
        fit = "none" if fit in (None, "", False) else str(fit)
        if fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {FIT_MODES}, got {fit!r}")
        image_size = _size(image_size, "image_size")
        source_size = image_size if source_size is None else _size(source_size, "source_size")
        if fit == "none" and source_size != image_size:
            raise ValueError(
                f"source_size {source_size} differs from image_size {image_size}: set "
                "fit to 'center_crop' or 'resize' to adapt the images"
            )
        if fit == "center_crop" and any(s < i for s, i in zip(source_size, image_size)):
            raise ValueError(
                f"center_crop cannot enlarge {source_size} to {image_size}; use fit='resize'"
            )
        return cls(image_size, source_size, fit)

    @property
    def identity(self) -> bool:
        return self.source_size == self.image_size

    @property
    def crop_offset(self) -> tuple[int, int]:
        """(top, left) px of the centre crop in the source frame."""
        return tuple((s - i) // 2 for s, i in zip(self.source_size, self.image_size))

    def keypoints(self, kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map keypoints (..., 18, 2) (row, col) from the source frame to the model frame.

        Returns (keypoints int64, lost) where ``lost`` (..., 18) bool marks present joints
        that fall outside the frame after a crop (they are set to -1).
        """
        kp = np.asarray(kp, dtype=np.int64)
        present = (kp != MISSING).all(-1)
        lost = np.zeros(present.shape, dtype=bool)
        if self.identity:
            return kp.copy(), lost
        size = np.array(self.image_size, dtype=np.int64)
        if self.fit == "center_crop":
            moved = kp - np.array(self.crop_offset, dtype=np.int64)
            inside = ((moved >= 0) & (moved < size)).all(-1)
            lost = present & ~inside
            return np.where((present & inside)[..., None], moved, MISSING), lost
        # resize: pixel centres map onto pixel centres
        scaled = np.rint((kp + 0.5) * (size / np.array(self.source_size)) - 0.5).astype(np.int64)
        return np.where(present[..., None], np.clip(scaled, 0, size - 1), MISSING), lost

    def apply(self, img: Image.Image, *, nearest: bool = False) -> Image.Image:
        """Fit a PIL image of ``source_size`` to ``image_size`` (no size check here)."""
        if self.identity:
            return img
        h, w = self.image_size
        if self.fit == "center_crop":
            top, left = self.crop_offset
            return img.crop((left, top, left + w, top + h))
        return img.resize((w, h), Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC)


def _open(path: Path, decode: bool = True) -> Image.Image:
    try:
        img = Image.open(path)  # reads the header: format, mode and size
        if decode:
            img.load()  # decode now, so corrupt or truncated files fail here
    except FileNotFoundError:
        raise DataFormatError(f"{path}: image file does not exist") from None
    except Image.DecompressionBombError as exc:
        raise DataFormatError(
            f"{path}: image is far larger than a person crop ({exc}); expected the data set's "
            "image size (e.g. 128x64 or 256x176 px)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(
            f"{path}: unreadable or corrupt image file ({type(exc).__name__}: {exc})"
        ) from None
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert grayscale (8/16 bit), RGBA, LA, palette, CMYK... to 8-bit RGB (alpha dropped)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8), "L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def _check_size(img: Image.Image, path: Path, policy: SizePolicy) -> None:
    h, w = img.height, img.width
    if (h, w) != policy.source_size:
        eh, ew = policy.source_size
        hint = FIT_HINT if policy.fit == "none" else ""
        raise DataFormatError(f"{path}: image is {h}x{w} (HxW), expected {eh}x{ew}{hint}")


def read_rgb(path: str | Path) -> np.ndarray:
    """Any image file (8/16-bit grayscale, RGBA, palette...) as 8-bit RGB ``(H, W, 3)`` uint8,
    converted as in training (:func:`to_rgb`); unreadable files raise
    :class:`DataFormatError` naming the file."""
    with _open(path) as img:
        return np.array(to_rgb(img), dtype=np.uint8)


VERIFY_MODES = ("header", "decode", "off")


def verify_images(paths: Iterable[Path], policy: SizePolicy, mode: str | bool = "header") -> None:
    """Check image files before training: ``header`` (or True) reads each file's header
    (format and size), ``decode`` decodes every pixel too (finds truncated files), ``off`` (or
    False) checks nothing. Raises :class:`DataFormatError` naming the first bad file."""
    if isinstance(mode, bool):
        mode = "header" if mode else "off"
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify_images must be one of {VERIFY_MODES}, got {mode!r}")
    if mode == "off":
        return
    for path in paths:
        with _open(path, decode=mode == "decode") as img:
            _check_size(img, path, policy)


def load_image(path: str | Path, policy: SizePolicy) -> torch.Tensor:
    """Read an image file as float32 (3, H, W) in [-1, 1] at ``policy.image_size``."""
    img = to_rgb(_open(path))
    _check_size(img, path, policy)
    arr = np.array(policy.apply(img), dtype=np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32) / 127.5 - 1.0


def load_label_map(path: str | Path, policy: SizePolicy) -> torch.Tensor:
    """Read a single-channel label PNG (0 background, 1..K parts) as int64 (H, W)."""
    img = _open(path)
    if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        raise DataFormatError(
            f"{path}: label map has mode {img.mode!r}; expected a single-channel "
            "(grayscale or palette) PNG of label indices"
        )
    _check_size(img, path, policy)
    img = policy.apply(img, nearest=True)
    return torch.from_numpy(np.asarray(img).astype(np.int64))
