"""Read, write and validate PATN annotation and pairs CSV files.

Annotation CSV (separator ``:``, one header line)::

    name:keypoints_y:keypoints_x
    0001_c3s1_000551_03.jpg: [12, 25, ...]: [38, 29, ...]

Each keypoint field is a JSON list of 18 integers (rows first, then columns, in px);
``-1`` in both lists marks a missing joint. A space after each ``:`` is tolerated.

Pairs CSV (separator ``,``, header ``from,to``): one (source, target) image name pair per line.

Every error is a :class:`DataFormatError` whose message starts with ``<file>:<line>:`` and
says what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from personpose.data.keypoints import KEYPOINT_NAMES, MISSING, NUM_JOINTS
from personpose.io.atomic import atomic_write_text

ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"
PAIRS_HEADER = "from,to"
MAX_LISTED = 5  # how many offending names an error message lists
MAX_COORD = 65535  # px: larger coordinates are errors, not images


class DataFormatError(ValueError):
    """A data file does not follow the PATN format (the message names the file and line)."""


def _where(path: Path | str | None, line: int | None = None) -> str:
    where = str(path) if path is not None else "<memory>"
    return f"{where}:{line}" if line is not None else where


def _listing(items: Sequence[str]) -> str:
    more = ", ..." if len(items) > MAX_LISTED else ""
    return f"{', '.join(items[:MAX_LISTED])}{more} ({len(items)} in total)"


@dataclass
class Annotations:
    """Keypoints of the images listed in one annotation CSV.

    ``keypoints`` is (N, 18, 2) int64 of (row, col) px, -1 = missing; ``lines`` holds the
    1-based line number of each row in ``path`` (for error messages).
    """

    names: list[str]
    keypoints: np.ndarray
    lines: list[int]
    path: Path | None = None
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.int64).reshape(-1, NUM_JOINTS, 2)
        self._index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> np.ndarray:
        """Keypoints (18, 2) int64 of image ``name``."""
        return self.keypoints[self._index[name]]

    def line_of(self, name: str) -> int:
        return self.lines[self._index[name]]


@dataclass
class PairList:
    """(source, target) image names from a pairs CSV, in file order, with their line numbers."""

    pairs: list[tuple[str, str]]
    lines: list[int]
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[str, str]:
        return self.pairs[i]

    def __iter__(self):
        return iter(self.pairs)

    def names(self) -> list[str]:
        """Every image name used by a pair, each once, in order of first use."""
        return list(dict.fromkeys(n for pair in self.pairs for n in pair))

    def select(self, indices: Iterable[int]) -> PairList:
        """The pairs at ``indices`` (in the given order)."""
        rows = list(indices)
        return PairList([self.pairs[i] for i in rows], [self.lines[i] for i in rows], self.path)


def _parse_list(text: str, what: str, where: str) -> list[int]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{where}: {what} is not a JSON list ({exc.msg}); expected a JSON list of "
            f"{NUM_JOINTS} integers"
        ) from None
    if not isinstance(values, list):
        raise DataFormatError(f"{where}: {what} must be a JSON list of {NUM_JOINTS} integers")
    if len(values) != NUM_JOINTS:
        raise DataFormatError(
            f"{where}: {what} has {len(values)} values, expected {NUM_JOINTS} "
            "(OpenPose COCO-18 keypoints)"
        )
    for j, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int):
            raise DataFormatError(
                f"{where}: {what}[{j}] ({KEYPOINT_NAMES[j]}) = {v!r} is not an integer; "
                "expected whole pixel coordinates or -1 for a missing joint"
            )
        if abs(v) > MAX_COORD:
            raise DataFormatError(
                f"{where}: {what}[{j}] ({KEYPOINT_NAMES[j]}) = {v} is out of range; "
                f"expected a pixel coordinate in 0..{MAX_COORD}, or -1 for a missing joint"
            )
    return values


def check_image_name(name: str, where: str) -> None:
    """Image names are file names inside their split folder: no folder separators, no ``..``,
    not absolute (a name must never reach outside the data root or the run folder)."""
    if "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
        raise DataFormatError(
            f"{where}: image name {name!r} is not a plain file name; expected a name inside "
            "the split's image folder, without '/', '\\' or '..'"
        )


def check_keypoints(
    kp: np.ndarray, image_size: tuple[int, int] | None, where: str, name: str = ""
) -> None:
    """Raise DataFormatError unless ``kp`` (18, 2) holds (row, col) inside ``image_size`` or -1."""
    label = f" ({name})" if name else ""
    for j, (y, x) in enumerate(np.asarray(kp, dtype=np.int64).reshape(NUM_JOINTS, 2).tolist()):
        if (y == MISSING) != (x == MISSING):
            problem = f"has y={y}, x={x}: a missing joint must be -1 in both lists"
        elif y == MISSING:
            continue
        elif y < 0 or x < 0:
            problem = f"has negative coordinates (y={y}, x={x}); expected >= 0 or -1"
        elif image_size is not None and (y >= image_size[0] or x >= image_size[1]):
            h, w = image_size
            problem = (
                f"at (y={y}, x={x}) lies outside the {h}x{w} image "
                f"(expected rows 0..{h - 1}, cols 0..{w - 1}, or -1 for missing)"
            )
        else:
            continue
        raise DataFormatError(f"{where}: joint {j} ({KEYPOINT_NAMES[j]}){label} {problem}")


def _csv_rows(path: Path, header: str, kind: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of each non-blank data line of a UTF-8 CSV whose first line is
    ``header`` (spaces ignored); raises :class:`DataFormatError` naming the file (and line 1
    for a wrong header)."""
    try:
        raw_lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is accepted
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read {kind} file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not a UTF-8 text file") from None
    if not raw_lines or raw_lines[0].replace(" ", "").strip() != header:
        first = raw_lines[0][:60] if raw_lines else ""
        raise DataFormatError(f"{_where(path, 1)}: expected header {header!r}, got {first!r}")
    return [(i, line) for i, line in enumerate(raw_lines[1:], start=2) if line.strip()]


def read_annotations(path: str | Path, image_size: tuple[int, int] | None = None) -> Annotations:
    """Read and validate an annotation CSV.

    ``image_size`` (H, W) px, when given, is the frame of the coordinates (the size of the
    image files): every present joint must satisfy 0 <= y < H and 0 <= x < W.
    """
    path = Path(path)
    rows: dict[str, tuple[int, list[int], list[int]]] = {}  # name -> (line, ys, xs)
    for lineno, line in _csv_rows(path, ANNOTATION_HEADER, "annotation"):
        where = _where(path, lineno)
        fields = line.rsplit(":", 2)
        if len(fields) != 3:
            raise DataFormatError(
                f"{where}: expected 3 ':'-separated fields {ANNOTATION_HEADER!r}, got {len(fields)}"
            )
        name = fields[0].strip()
        if not name:
            raise DataFormatError(f"{where}: empty image name")
        check_image_name(name, where)
        if name in rows:
            raise DataFormatError(
                f"{where}: duplicate name {name!r} (first on line {rows[name][0]}); "
                "expected each image once"
            )
        ys = _parse_list(fields[1], "keypoints_y", where)
        rows[name] = (lineno, ys, _parse_list(fields[2], "keypoints_x", where))
    kps = [list(zip(ys, xs)) for _, ys, xs in rows.values()]
    result = Annotations(list(rows), kps, [line for line, _, _ in rows.values()], path)
    check_annotations(result, image_size)
    return result


def check_annotations(annotations: Annotations, image_size: tuple[int, int] | None) -> None:
    """Vectorised :func:`check_keypoints` over all rows; the error names the first bad line."""
    kp = annotations.keypoints
    missing = kp == MISSING
    bad = (missing[..., 0] != missing[..., 1]) | ((kp < 0) & ~missing).any(-1)
    if image_size is not None:
        bad |= ((kp >= np.array(image_size)) & ~missing).any(-1)
    if bad.any():
        r = int(bad.any(-1).argmax())  # the first bad row
        where = _where(annotations.path, annotations.lines[r])
        check_keypoints(kp[r], image_size, where, annotations.names[r])


def format_annotation_line(name: str, kp: np.ndarray) -> str:
    """One annotation row ``name: [y...]: [x...]`` for keypoints (18, 2) (row, col)."""
    kp = np.asarray(kp).reshape(NUM_JOINTS, 2)
    ys, xs = (json.dumps([int(v) for v in coords]) for coords in kp.T)
    return f"{name}: {ys}: {xs}"


def write_annotations(
    path: str | Path, names: Sequence[str], keypoints: np.ndarray | Sequence
) -> Path:
    """Write an annotation CSV (PATN style, with a space after each ':'), atomically."""
    keypoints = np.asarray(keypoints, dtype=np.int64).reshape(-1, NUM_JOINTS, 2)
    rows = [format_annotation_line(n, k) for n, k in zip(names, keypoints, strict=True)]
    return atomic_write_text(path, "\n".join([ANNOTATION_HEADER, *rows]) + "\n")


def read_pairs(path: str | Path, annotations: Annotations | None = None) -> PairList:
    """Read a pairs CSV; with ``annotations``, every name must be in that annotation file."""
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    lines: list[int] = []
    for lineno, line in _csv_rows(path, PAIRS_HEADER, "pairs"):
        where = _where(path, lineno)
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2 or not all(fields):
            raise DataFormatError(f"{where}: expected two image names 'from,to', got {line!r}")
        for name in fields:
            check_image_name(name, where)
        pairs.append((fields[0], fields[1]))
        lines.append(lineno)
    absent = [
        (line, col, name)
        for (src, dst), line in zip(pairs, lines)
        for col, name in (("from", src), ("to", dst))
        if annotations is not None and name not in annotations
    ]
    if absent:
        line, col, name = absent[0]
        raise DataFormatError(
            f"{_where(path, line)}: image {name!r} (column {col!r}) is not in the "
            f"annotation file {_where(annotations.path)}; every pair must name annotated "
            f"images. Absent names: {_listing(list(dict.fromkeys(n for *_, n in absent)))}"
        )
    return PairList(pairs, lines, path)


def write_pairs(path: str | Path, pairs: Iterable[tuple[str, str]]) -> Path:
    """Write a pairs CSV with header ``from,to``, atomically."""
    rows = [PAIRS_HEADER] + [f"{a},{b}" for a, b in pairs]
    return atomic_write_text(path, "\n".join(rows) + "\n")


def check_images_exist(
    image_dir: str | Path, names: Sequence[str], annotations: Annotations
) -> None:
    """Raise DataFormatError listing the first few (and the count of) missing image files
    (``names``: plain file names, as :func:`check_image_name` requires, from ``annotations``)."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DataFormatError(f"{image_dir}: image folder does not exist")
    present = {p.name for p in image_dir.iterdir()}
    missing = [n for n in names if n not in present]
    if missing:
        shown = [f"{n} (line {annotations.line_of(n)})" if n in annotations else n for n in missing]
        raise DataFormatError(
            f"{image_dir}: {len(missing)} of {len(names)} image files named in "
            f"{_where(annotations.path)} do not exist: {_listing(shown)}"
        )
