"""personpose's own CPU kernels, in C, built at first use: the evaluation's SSIM metrics and
the part half of the PSSIM loss.

- ``csrc/ssim_cpu.c``: PATN's windowed SSIM (and mask-SSIM) per image, and PSSIM's
  background SSIM and part statistics with the part masks formed on the fly, in one
  cache-blocked pass per image plane: the four moment planes are formed on the fly, filtered
  along the row into a ring of the last ``k`` rows that stays in L1, then down the column and
  into the SSIM value; no full-size plane is ever written. Forward only; the windowed SSIM in
  float32 or float64, the PSSIM pieces in float32.
- ``csrc/patn_mask_cpu.c``: PATN's mask, with the float64 arithmetic of the torch
  rasteriser (the tests hold the two to pixel-for-pixel equality).
- ``csrc/part_stats_cpu.c``: the PSSIM loss's part statistics (forward) and the parts' sum
  over masks of its gradient (backward), the masks read once per pass.

They are measurably faster than the torch kernels of the same formulas on CPU
(``experiments/bench_eval.py`` and ``bench_losses.py`` run both in one process).
Tasks run on OpenMP threads, which in a process that holds torch are torch's own pool
(``csrc/tasks.h``).

The library is compiled once per machine and source version with the system C compiler
(``$CC``, else Python's, else ``cc``; ``-O3 -march=native -fopenmp``, falling back to
fewer flags: :data:`FLAG_SETS`)
into ``$PERSONPOSE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/personpose`` or
``~/.cache/personpose``), ``native/``, under a file lock and an atomic rename, so parallel
jobs build it once and never load a half-written file. The file name hashes the source, the
compiler, the flags and the CPU's model and instruction flags, so nodes of different CPUs
sharing a home directory each get their own build.

The policy comes from ``PERSONPOSE_NATIVE`` or :func:`native_mode`: ``auto`` (default: used
for CPU tensors of the kernels' precisions when the build works) or ``never``. When building
or loading fails (no compiler), the callers warn once with the reason, kept in
:func:`state`, and use the torch kernels: the results are the same to rounding, only slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import threading
import uuid
import warnings
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import torch
from filelock import FileLock
from torch import Tensor

from personpose.kernels.policy import EnvPolicy

__all__ = [
    "ENV",
    "MAX_WINDOW",
    "MODES",
    "available",
    "library",
    "native_mode",
    "part_contract",
    "part_grad",
    "patn_mask",
    "pssim_parts",
    "ssim_mean",
    "state",
    "usable",
]

ENV = "PERSONPOSE_NATIVE"
MODES = ("auto", "never")
CSRC = Path(__file__).with_name("csrc")
SOURCES = tuple(sorted(CSRC.glob("*.c")))  # compiled together into one library
HEADERS = tuple(sorted(CSRC.glob("*.h")))  # part of the build key with the sources
MAX_WINDOW = 16  # MAXK in the C source
MAX_CHANNELS = 8  # MAXJ / 4 in the C source
# OpenMP first (the tasks then run on torch's own thread pool, see csrc/tasks.h), then
# pthreads; the machine's vector instructions first, then the compiler's defaults
FLAG_SETS = (
    ["-O3", "-march=native", "-fopenmp"],
    ["-O3", "-fopenmp"],
    ["-O3", "-march=native"],
    ["-O3"],
)
COMMON_FLAGS = ["-shared", "-fPIC", "-pthread", "-std=gnu11"]
_lib: ctypes.CDLL | None = None
_failed: str | None = None
_path: str | None = None
_warned = False
_lock = threading.Lock()
calls: Counter[str] = Counter()


_policy = EnvPolicy(ENV, MODES, on_mode="auto", name="native_mode")


def current_mode() -> str:
    """``auto`` or ``never``: :func:`native_mode` if active, else ``PERSONPOSE_NATIVE``."""
    return _policy.current()


def native_mode(mode: str) -> AbstractContextManager[None]:
    """Use ``mode`` (``auto`` or ``never``) inside the ``with`` block."""
    return _policy.override(mode)


def cache_dir() -> Path:
    """Where built libraries live: ``$PERSONPOSE_CACHE_DIR/native`` (see the module docstring)."""
    root = os.environ.get("PERSONPOSE_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "personpose")
    return Path(root).expanduser() / "native"


def _compiler() -> str:
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "").split(" ")[0] or "cc"
    found = shutil.which(cc)
    if found is None:
        raise RuntimeError(f"no C compiler: {cc!r} is not on PATH (set CC to one)")
    return found


def _cpu_signature() -> str:
    """The CPU model and instruction flags (Linux), or the platform's processor string."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(sorted(set(keep)))


def _build(cc: str, flags: list[str], target: Path) -> None:
    """Compile the source into ``target`` (atomically); raises with the compiler's message."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp")
    cmd = [cc, *flags, *COMMON_FLAGS, *map(str, SOURCES), "-o", str(tmp), "-lm"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(cmd)} failed: {' | '.join(tail)}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _load() -> ctypes.CDLL:
    global _path
    cc = _compiler()
    source = b"\0".join(p.read_bytes() for p in SOURCES + HEADERS)
    errors = []
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for flags in FLAG_SETS:
        key = hashlib.sha256(
            b"\0".join(
                [source, cc.encode(), " ".join(flags).encode(), platform.machine().encode()]
                + [_cpu_signature().encode(), sys.platform.encode()]
            )
        ).hexdigest()[:16]
        target = folder / f"personpose_cpu-{key}.so"
        try:
            if not target.is_file():
                with FileLock(str(folder / f".{target.name}.lock")):
                    if not target.is_file():
                        _build(cc, flags, target)
            lib = ctypes.CDLL(str(target))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            errors.append(str(exc).strip().splitlines()[0][:300])
            continue
        _declare(lib)
        _path = str(target)
        return lib
    raise RuntimeError("; ".join(errors))


def _declare(lib: ctypes.CDLL) -> None:
    p, i, d, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_float
    lib.pp_ssim_mean.argtypes = [p, p, p, i, i, i, i, i, p, i, d, d, i, d, p, i]
    lib.pp_ssim_mean.restype = i
    lib.pp_ssim_mean_f64.argtypes = lib.pp_ssim_mean.argtypes
    lib.pp_ssim_mean_f64.restype = i
    lib.pp_pssim_parts.argtypes = [p, p, p, p, p, p, i, i, i, i, i, p, i, f, f, p, p, p, i]
    lib.pp_pssim_parts.restype = i
    lib.pp_part_contract.argtypes = [p, p, p, i, i, i, i, i, p, p, i]
    lib.pp_part_contract.restype = i
    lib.pp_part_grad.argtypes = [p, p, p, p, i, i, i, i, i, i, i, i, i, i, p, p, i, i]
    lib.pp_part_grad.restype = i
    lib.pp_patn_mask.argtypes = [p, i, i, i, p, i, d, i, p, i]
    lib.pp_patn_mask.restype = i


def library() -> ctypes.CDLL | None:
    """The loaded library, built on first call; None (reason in :func:`state`) if it failed."""
    global _lib, _failed
    if _lib is None and _failed is None:
        with _lock:  # one build per process, whichever thread asks first
            if _lib is None and _failed is None:
                try:
                    _lib = _load()
                except Exception as exc:  # no compiler, a read-only cache, a foreign platform
                    _failed = f"{type(exc).__name__}: {exc}"
    return _lib


def available() -> bool:
    """True if the policy allows the native kernels and the library builds and loads."""
    return current_mode() != "never" and library() is not None


def usable(*tensors: Tensor, dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> bool:
    """True if the native kernels can take these tensors: CPU tensors of one of ``dtypes``
    without gradient tracking, and :func:`available`. Warns once when the library failed to
    build."""
    global _warned
    if current_mode() == "never":
        return False
    if not all(t.device.type == "cpu" and t.dtype in dtypes for t in tensors):
        return False
    if any(t.requires_grad for t in tensors) and torch.is_grad_enabled():
        return False
    if library() is None:
        if not _warned:
            _warned = True
            warnings.warn(
                f"personpose: the native SSIM kernels are unavailable ({_failed}); using the "
                f"torch kernels (same results, slower; set {ENV}=never to silence this)",
                RuntimeWarning,
                stacklevel=3,
            )
        return False
    return True


def _library_or_raise() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise RuntimeError(f"personpose native kernels unavailable: {_failed}")
    return lib


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check(rc: int, fn: str) -> None:
    if rc == -1:
        raise MemoryError(f"personpose native {fn}: out of memory")
    if rc != 0:
        raise ValueError(f"personpose native {fn}: invalid sizes (code {rc})")


def _images(x: Tensor, y: Tensor, fn: str) -> tuple[Tensor, Tensor]:
    if x.dim() != 4 or x.shape != y.shape:
        raise ValueError(f"{fn}: images must be two equal (N, C, H, W); got {x.shape}, {y.shape}")
    return x.contiguous(), y.contiguous()


def _taps(taps, fn: str, h: int, w: int, channels: int, dtype=torch.float32) -> Tensor:
    t = torch.as_tensor(tuple(float(v) for v in taps), dtype=dtype)
    if not 1 <= t.numel() <= MAX_WINDOW:
        raise ValueError(f"{fn}: window of {t.numel()} taps; the native kernel takes 1 to 16")
    if h < t.numel() or w < t.numel():
        raise ValueError(f"{fn}: window of {t.numel()} px exceeds the image ({h}x{w})")
    if channels > MAX_CHANNELS:
        raise ValueError(f"{fn}: {channels} channels; the native kernel takes at most 8")
    return t


def ssim_mean(
    x: Tensor,
    y: Tensor,
    mask: Tensor | None,
    taps,
    k1: float,
    k2: float,
    data_range: float | None = None,
) -> Tensor:
    """Per-image mean of the valid windowed SSIM map ``(N,)`` float64 of CPU images ``x, y``
    (N, C, H, W), float32 or float64 (computed in that precision), both times ``mask``
    (N, 1, H, W) if given (float, or bool / uint8 0/1 read as bytes); ``C1 = (k1 R)^2``,
    ``C2 = (k2 R)^2`` with ``R = data_range``, or when None the ``max - min`` of each (masked)
    ``x`` (PATN's protocol). Raises RuntimeError if the library is unavailable."""
    lib = _library_or_raise()
    x, y = _images(x, y, "ssim_mean")
    if x.dtype not in (torch.float32, torch.float64) or y.dtype != x.dtype:
        raise ValueError(
            f"ssim_mean: float32 or float64 images of one dtype; got {x.dtype}, {y.dtype}"
        )
    n, c, h, w = x.shape
    t = _taps(taps, "ssim_mean", h, w, 1, x.dtype)  # taps in the images' precision
    # a 0/1 mask is read as bytes: no float copy (a fresh 4-byte-per-pixel buffer costs more
    # than the conversion itself)
    as_bytes = mask is not None and mask.dtype in (torch.bool, torch.uint8)
    if mask is not None:
        if mask.shape != (n, 1, h, w):
            raise ValueError(f"ssim_mean: mask must be {(n, 1, h, w)}, got {tuple(mask.shape)}")
        mask = (mask.view(torch.uint8) if as_bytes else mask.to(x.dtype)).contiguous()
    out = torch.empty(n, dtype=torch.float64)
    from_x = int(data_range is None)  # R from each (masked) x, else data_range
    entry = lib.pp_ssim_mean if x.dtype == torch.float32 else lib.pp_ssim_mean_f64
    rc = entry(
        _ptr(x), _ptr(y), _ptr(mask), int(as_bytes), n, c, h, w, _ptr(t), t.numel(), k1, k2, from_x,
        float(data_range or 0.0), _ptr(out), torch.get_num_threads(),
    )  # fmt: skip
    _check(rc, "ssim_mean")
    calls["ssim_mean"] += 1
    return out


def pssim_parts(
    x: Tensor, y: Tensor, terms, taps, c1: float, c2: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PSSIM's pieces for float32 CPU images ``x, y`` (N, C, H, W) and the part masks' terms
    ``terms`` (:func:`personpose.data.pose.part_mask_terms`), the masks ``M_k`` formed on the
    fly and ``M_0 = 1 - max_k M_k``: the background's mean windowed SSIM of ``M_0 x``,
    ``M_0 y`` ``(N,)``; the sums over pixels of ``M_k`` times ``x, y, x^2 + y^2, x y``
    ``(N, K, 4C)`` (roles in that order, ``C`` channels each); the mask sums ``(N, K)``. All
    float64 (per-row float32 sums accumulated in float64; the masks within ~1e-7 of
    :func:`personpose.data.pose.part_masks`)."""
    lib = _library_or_raise()
    x, y = _images(x, y, "pssim_parts")
    n, c, h, w = x.shape
    t = _taps(taps, "pssim_parts", h, w, c)
    rt, ct, qc, dc = (v.to(device="cpu", dtype=torch.float32).contiguous() for v in terms)
    k = rt.shape[1] if rt.dim() == 3 else 0
    if (
        k < 1
        or rt.shape != (n, k, h)
        or qc.shape != (n, k, h)
        or ct.shape != (n, k, w)
        or (dc.shape != (n, k, w))
    ):
        shapes = [tuple(v.shape) for v in (rt, ct, qc, dc)]
        raise ValueError(
            f"pssim_parts: terms must be (N, K, H), (N, K, W), (N, K, H), (N, K, W) for images "
            f"{tuple(x.shape)}; got {shapes}"
        )
    bg = torch.empty(n, dtype=torch.float64)
    stats = torch.empty(n, k, 4 * c, dtype=torch.float64)
    sums = torch.empty(n, k, dtype=torch.float64)
    rc = lib.pp_pssim_parts(
        _ptr(x), _ptr(y), _ptr(rt), _ptr(ct), _ptr(qc), _ptr(dc), n, c, h, w, k, _ptr(t),
        t.numel(), c1, c2, _ptr(bg), _ptr(stats), _ptr(sums), torch.get_num_threads(),
    )  # fmt: skip
    _check(rc, "pssim_parts")
    calls["pssim_parts"] += 1
    return bg, stats, sums


def _part_inputs(x: Tensor, y: Tensor, masks: Tensor, fn: str):
    """The library and the contiguous images and float32 masks (N, 1 + K, H, W), checked."""
    lib = _library_or_raise()
    x, y = _images(x, y, fn)
    n, _, h, w = x.shape
    if masks.dim() != 4 or masks.shape[0] != n or masks.shape[2:] != (h, w) or masks.shape[1] < 2:
        raise ValueError(f"{fn}: masks must be (N, 1 + K, H, W); got {tuple(masks.shape)}")
    return lib, x, y, masks.to(torch.float32).contiguous()


def part_contract(x: Tensor, y: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """The PSSIM loss's part statistics for float32 CPU images ``x, y`` (N, C, H, W) and masks
    (N, 1 + K, H, W), background first: the sums over pixels of ``M_k`` times ``x, y,
    x^2 + y^2, x y`` ``(N, K, 4C)`` and the mask sums ``(N, K)``, float64 (per-row float32
    sums). The planes are formed on the fly and the masks read once."""
    lib, x, y, masks = _part_inputs(x, y, masks, "part_contract")
    n, c, h, w = x.shape
    if c > MAX_CHANNELS:
        raise ValueError(f"part_contract: {c} channels; the native kernel takes at most 8")
    k = masks.shape[1] - 1
    stats = torch.empty(n, k, 4 * c, dtype=torch.float64)
    sums = torch.empty(n, k, dtype=torch.float64)
    rc = lib.pp_part_contract(
        _ptr(x), _ptr(y), _ptr(masks), n, c, h, w, k, _ptr(stats), _ptr(sums),
        torch.get_num_threads(),
    )  # fmt: skip
    _check(rc, "part_contract")
    calls["part_contract"] += 1
    return stats, sums


def part_grad(
    x: Tensor,
    y: Tensor,
    masks: Tensor,
    coef: Tensor,
    need_x: bool,
    need_y: bool,
    out: tuple[Tensor | None, Tensor | None] | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """The PSSIM loss's part gradient: ``sum_k M_k (A_k + x B_k + y C_k)`` for ``x`` and
    ``sum_k M_k (A'_k + y B_k + x C_k)`` for ``y`` (N, C, H, W) float32 (None where not
    needed), from ``coef`` (N, K, R, C): roles ``[A] [A'] B C`` as
    :func:`personpose.kernels.ssim.ssim_statistics` orders them. With ``out`` (contiguous
    float32 tensors of the images' shape where needed), the gradient is added to them in
    place and they are returned."""
    lib, x, y, masks = _part_inputs(x, y, masks, "part_grad")
    n, c, h, w = x.shape
    k, roles = masks.shape[1] - 1, 2 + int(need_x) + int(need_y)
    coef = coef.to(torch.float32).contiguous()
    if coef.shape != (n, k, roles, c):
        raise ValueError(f"part_grad: coef must be {(n, k, roles, c)}; got {tuple(coef.shape)}")
    if out is None:
        gx = torch.empty_like(x) if need_x else None
        gy = torch.empty_like(y) if need_y else None
    else:
        gx, gy = out
        for name, t, need in (("x", gx, need_x), ("y", gy, need_y)):
            ok = t is not None and t.dtype == torch.float32 and t.device.type == "cpu"
            if need and not (ok and t.shape == x.shape and t.is_contiguous()):
                got = None if t is None else (tuple(t.shape), t.dtype, t.is_contiguous())
                raise ValueError(
                    f"part_grad: out for {name} must be a contiguous float32 CPU tensor of shape "
                    f"{tuple(x.shape)}; got {got}"
                )
        gx, gy = (gx if need_x else None), (gy if need_y else None)
    ia_x = 0 if need_x else -1
    ia_y = int(need_x) if need_y else -1
    rc = lib.pp_part_grad(
        _ptr(x), _ptr(y), _ptr(masks), _ptr(coef), n, c, h, w, k, roles, ia_x, ia_y,
        roles - 2, roles - 1, _ptr(gx), _ptr(gy), int(out is not None), torch.get_num_threads(),
    )  # fmt: skip
    _check(rc, "part_grad")
    calls["part_grad"] += 1
    return gx, gy


def patn_mask(kp: Tensor, h: int, w: int, limbs, radius: float, closing: int) -> Tensor:
    """PATN's mask ``(N, H, W)`` bool from CPU keypoints ``kp`` (N, 18, 2) (row, col) px, -1
    for missing: the float64 arithmetic of :func:`personpose.metrics.patn_mask.patn_mask`'s
    torch rasteriser, in the same order (contraction off), so the two agree pixel for pixel."""
    lib = _library_or_raise()
    kp = kp.to(device="cpu", dtype=torch.float64).contiguous()
    if kp.dim() != 3 or kp.shape[1:] != (18, 2):
        raise ValueError(f"patn_mask: kp must be (N, 18, 2); got {tuple(kp.shape)}")
    pairs = torch.as_tensor(limbs, dtype=torch.int32).contiguous()
    if pairs.dim() != 2 or pairs.shape[1] != 2 or not ((pairs >= 0) & (pairs < 18)).all():
        raise ValueError(f"patn_mask: limbs must be (L, 2) joint indices in 0..17; got {limbs}")
    out = torch.empty(kp.shape[0], h, w, dtype=torch.uint8)
    rc = lib.pp_patn_mask(
        _ptr(kp), kp.shape[0], h, w, _ptr(pairs), pairs.shape[0], float(radius), int(closing),
        _ptr(out), torch.get_num_threads(),
    )  # fmt: skip
    _check(rc, "patn_mask")
    calls["patn_mask"] += 1
    return out.view(torch.bool)


def state() -> dict:
    """For results files: the policy, the library's path (or why it is unavailable), calls."""
    out: dict = {"mode": current_mode(), "calls": dict(calls)}
    if _path is not None:
        out["library"] = _path
    if _failed is not None:
        out["failed"] = _failed
    return out
