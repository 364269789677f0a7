"""Read other methods' output folders: which file holds which pair, and where its panels are.

Layouts in circulation (names embed the image names with their extensions):

- ``vunet`` / ``patn``: strips ``<from>___<to>_vis.jpg``, 3 panels ``[source | target |
  generated]`` or 5 panels ``[source | source pose | target | target pose | generated]``
  (PATN's test output); the count is told by the panel shape (``panels=`` overrides).
- ``deform`` (Deformable GAN): 3-panel strips ``<from>_<to>.png``, e.g.
  ``a.jpg_b.jpg.png``; the ``_`` split is resolved against the annotation names when given
  (else at the ``.jpg_`` boundary).
- ``gfla``: single generated images ``<from>_2_<to>_vis.png`` (GFLA's test output), with the
  ground truth in ``gt_dir``.
- ``single``: single generated images named ``<from>___<to>.png`` (personpose's own test
  outputs), ``<from>_2_<to>...`` or just ``<to>``, with the ground truth in ``gt_dir``.

The ground truth of a strip is its target panel; panels are used at their stored size.
A file whose name does not parse raises :class:`LayoutError` naming the file.
:func:`match_pairs` checks the files against the expected pairs (a pairs CSV, or the pairs the
files name): missing and duplicate predictions are errors unless allowed, and counted.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from personpose.data.images import IMAGE_SUFFIXES, image_files, read_rgb

LAYOUTS = ("deform", "vunet", "patn", "gfla", "single")
STRIP_LAYOUTS = ("deform", "vunet", "patn")
# Known panel aspect ratios (W / H): Market 64/128, DeepFashion 176/256 and 256/256.
PANEL_ASPECTS = (0.5, 176 / 256, 1.0)
# Index of (source, target, generated) in a strip of n panels.
PANEL_ROLES = {3: (0, 1, 2), 5: (0, 2, 4)}


class LayoutError(ValueError):
    """A prediction file or folder does not follow the layout (the message names the file)."""


@dataclass(frozen=True)
class PairFile:
    """One scored pair: the file with the generated image and where its companions are."""

    path: Path
    source_name: str | None
    target_name: str
    layout: str
    gt_path: Path | None = None
    source_path: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.source_name}___{self.target_name}"


@dataclass
class LoadedPair:
    """Images of a pair as uint8 (H, W, 3); ``offset`` (rows, cols) px removed by a crop."""

    pred: np.ndarray
    target: np.ndarray
    source: np.ndarray | None
    offset: tuple[int, int] = (0, 0)


def _resolve(part: str, names: Collection[str] | None) -> str | None:
    """``part`` as an annotation name (trying common image extensions), or None."""
    if names is None or part in names:
        return part
    return next((part + ext for ext in IMAGE_SUFFIXES if part + ext in names), None)


def _split_at(stem: str, sep: str, names: Collection[str] | None, path: Path) -> tuple[str, str]:
    """Split ``stem`` at the one occurrence of ``sep`` whose two sides are known names."""
    cuts = list(re.finditer(re.escape(sep), stem))
    sides = ((_resolve(stem[: m.start()], names), _resolve(stem[m.end() :], names)) for m in cuts)
    found = [(a, b) for a, b in sides if a and b]
    if not found and names is not None:
        raise LayoutError(
            f"{path}: no split of the name at {sep!r} gives two images of the annotation "
            "file; expected '<from>" + sep + "<to>' with annotated image names"
        )
    if not found:
        raise LayoutError(f"{path}: expected '<from>{sep}<to>' in the file name")
    if len(found) > 1 and names is not None:
        raise LayoutError(f"{path}: ambiguous name, splits {found} all match annotated images")
    if len(found) > 1:
        raise LayoutError(
            f"{path}: ambiguous name ({len(found)} places to split at {sep!r}); pass "
            "annotations=CSV so the image names can be matched"
        )
    return found[0]


def parse_name(filename: str | Path, layout: str, names: Collection[str] | None = None):
    """``(from, to)`` image names of a prediction file name (``from`` None if unknown)."""
    path = Path(filename)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    stem = path.stem
    sep = {"vunet": "___", "patn": "___", "gfla": "_2_"}.get(layout)
    if sep is not None:
        if not stem.endswith("_vis") or sep not in stem:
            raise LayoutError(f"{path}: expected '<from>{sep}<to>_vis.<ext>' ({layout} layout)")
        return _split_at(stem.removesuffix("_vis"), sep, names, path)
    if layout == "deform":
        if names is not None:
            return _split_at(stem, "_", names, path)
        m = re.fullmatch(r"(.+?\.(?:jpg|jpeg|png))_(.+)", stem, flags=re.IGNORECASE)
        if m is None:
            raise LayoutError(
                f"{path}: expected '<from>.jpg_<to>.jpg.png' (deform layout); for names "
                "without extensions pass annotations=CSV to resolve the '_' split"
            )
        return m.group(1), m.group(2)
    stem = stem.removesuffix("_vis")  # single
    if "___" in stem:
        return _split_at(stem, "___", names, path)
    if "_2_" in stem and (names is None or _resolve(stem, names) is None):
        return _split_at(stem, "_2_", names, path)
    target = _resolve(stem, names) or _resolve(path.name, names)
    if target is None:
        raise LayoutError(f"{path}: {stem!r} is not an image of the annotation file")
    return None, target


def _find(folder: Path, name: str) -> Path | None:
    """``folder / name``, else the file of that name with another image extension, or None."""
    stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
    candidates = [folder / name] + [folder / (stem + ext) for ext in IMAGE_SUFFIXES]
    return next((p for p in candidates if p.is_file()), None)


def scan(
    pred_dir: str | Path,
    layout: str,
    *,
    gt_dir: str | Path | None = None,
    source_dir: str | Path | None = None,
    names: Collection[str] | None = None,
) -> list[PairFile]:
    """Every prediction file of ``pred_dir`` (sorted by name) as a :class:`PairFile`."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    files = image_files(Path(pred_dir), "prediction", LayoutError)
    if layout in STRIP_LAYOUTS:
        return [PairFile(p, *parse_name(p, layout, names), layout) for p in files]
    if gt_dir is None:
        raise LayoutError(f"layout {layout!r} holds generated images only: give gt_dir=DIR")
    gt, src = Path(gt_dir), Path(source_dir if source_dir is not None else gt_dir)
    out = []
    for p in files:
        a, b = parse_name(p, layout, names)
        gt_path = _find(gt, b)
        if gt_path is None:
            raise LayoutError(f"{p}: its ground truth {b!r} is not in {gt}")
        out.append(PairFile(p, a, b, layout, gt_path, None if a is None else _find(src, a)))
    return out


def _key(name: str) -> str:
    """An image name without its image extension (files may drop or change it)."""
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


def _listing(items: Sequence, n: int = 3) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def match_pairs(
    files: list[PairFile],
    pairs=None,
    *,
    allow_missing: bool = False,
    allow_duplicates: bool = False,
) -> tuple[list[PairFile], dict]:
    """One file per expected pair, in the order of the expected set, and the counts.

    ``pairs``: a :class:`personpose.data.annotations.PairList` (the pairs CSV), or None: the
    expected set is then the pairs the files name. Names match with or without an image
    extension; a file naming only its target matches the one pair with that target.
    A pair with several files (or a pairs CSV with a repeated row) is a LayoutError unless
    ``allow_duplicates`` (the first file in name order is scored); an expected pair without
    a file is a LayoutError unless ``allow_missing``. Files of pairs outside ``pairs`` are not
    scored. Returns ``(files, counts)``, counts: ``expected``, ``missing``, ``duplicates``
    (files or rows not scored because their pair came earlier), ``unexpected`` (files
    outside ``pairs``) and ``expected_from``.
    """
    if pairs is None:
        rows = [(f.source_name, f.target_name, f.path) for f in files]
        expected_from = "the prediction files (no pairs CSV)"
    else:
        rows = [(a, b, f"{pairs.path}:{line}") for (a, b), line in zip(pairs.pairs, pairs.lines)]
        expected_from = str(pairs.path)
    found: dict[tuple, list[PairFile]] = {}  # expected pair -> its files, in expected order
    dup_rows = []
    for a, b, where in rows:
        k = (None if a is None else _key(a), _key(b))
        if k in found:
            dup_rows.append(f"{where} ({a} -> {b})")
        found.setdefault(k, [])
    by_target: dict[str, list[tuple]] = {}
    for k in found:
        by_target.setdefault(k[1], []).append(k)
    unexpected = 0
    for f in files:
        k = (None if f.source_name is None else _key(f.source_name), _key(f.target_name))
        if pairs is not None and f.source_name is None:
            candidates = by_target.get(k[1], [])
            if len(candidates) > 1:
                raise LayoutError(
                    f"{f.path}: names only its target {f.target_name!r}, which "
                    f"{len(candidates)} pairs of {pairs.path} share; name the file "
                    "'<from>___<to>.png'"
                )
            k = candidates[0] if candidates else k
        if k in found:
            found[k].append(f)
        else:
            unexpected += 1
    if pairs is not None:  # files of one pair: already counted as duplicate rows without CSV
        dup_rows += [str(f.path) for fs in found.values() for f in fs[1:]]
    if dup_rows and not allow_duplicates:
        raise LayoutError(
            f"{len(dup_rows)} duplicate predictions or pair rows (a pair scored once only): "
            f"{_listing(dup_rows)}; give allow_duplicates=true to score the first of each pair"
        )
    missing = [k for k, fs in found.items() if not fs]
    if missing and not allow_missing:
        shown = [f"{a} -> {b}" for a, b in missing]
        raise LayoutError(
            f"{len(missing)} of the {len(found)} pairs of {expected_from} have no prediction "
            f"file ({_listing(shown)}); give allow_missing=true to score the "
            f"{len(found) - len(missing)} present (the missing count is recorded)"
        )
    chosen = [fs[0] for fs in found.values() if fs]
    counts = {
        "expected": len(found),
        "missing": len(missing),
        "duplicates": len(dup_rows),
        "unexpected": unexpected,
        "expected_from": expected_from,
    }
    return chosen, counts


def strip_panels(width: int, height: int, panels: int | None, path: Path) -> int:
    """Number of panels of a strip: ``panels`` if given, else told by the panel shape."""
    if panels is not None:
        if panels not in PANEL_ROLES or width % panels:
            raise LayoutError(
                f"{path}: a {width}x{height} strip cannot hold {panels} panels "
                f"(expected 3 or 5 dividing the width)"
            )
        return panels
    fits = [
        n
        for n in PANEL_ROLES
        if width % n == 0 and any(abs(width / n / height - a) < 1e-6 for a in PANEL_ASPECTS)
    ]
    if len(fits) != 1:
        raise LayoutError(
            f"{path}: cannot tell the panel count of a {width}x{height} strip from known panel "
            f"shapes (W/H {', '.join(f'{a:.4g}' for a in PANEL_ASPECTS)}); give panels=3 or 5"
        )
    return fits[0]


def center_crop(
    img: np.ndarray, size: tuple[int, int], path: Path
) -> tuple[np.ndarray, tuple[int, int]]:
    """Centre crop to ``size`` (H, W) px; returns the image and the (rows, cols) removed."""
    h, w = img.shape[:2]
    ch, cw = size
    if ch > h or cw > w:
        raise LayoutError(f"{path}: cannot crop a {h}x{w} image to {ch}x{cw}")
    dy, dx = (h - ch) // 2, (w - cw) // 2
    return img[dy : dy + ch, dx : dx + cw], (dy, dx)


def load_pair(
    item: PairFile, panels: int | None = None, crop: tuple[int, int] | None = None
) -> LoadedPair:
    """The generated, target and (if available) source images of ``item``."""
    if item.layout in STRIP_LAYOUTS:
        strip = read_rgb(item.path)
        h, w = strip.shape[:2]
        n = (
            3
            if item.layout == "deform" and panels is None
            else strip_panels(w, h, panels, item.path)
        )
        pw = w // n
        s, t, g = (strip[:, i * pw : (i + 1) * pw] for i in PANEL_ROLES[n])
    else:
        g = read_rgb(item.path)
        t = read_rgb(item.gt_path)
        s = read_rgb(item.source_path) if item.source_path is not None else None
    offset = (0, 0)
    if crop is not None:
        g, _ = center_crop(g, crop, item.path)
        t, offset = center_crop(t, crop, item.gt_path or item.path)
        if s is not None:
            s, _ = center_crop(s, crop, item.source_path or item.path)
    if g.shape != t.shape:
        raise LayoutError(
            f"{item.path}: generated image {g.shape[1]}x{g.shape[0]} (WxH) and ground truth "
            f"{t.shape[1]}x{t.shape[0]} differ; give crop=[H,W] to compare a common centre"
        )
    if s is not None and s.shape != t.shape:
        s = None
    return LoadedPair(g, t, s, offset)
