"""Benchmark the SSIM and PSSIM losses against other implementations (CPU, fp32, 2 threads).

Forward + backward (gradient with respect to the prediction only) at 8x3x256x176
(DeepFashion) and 32x3x128x64 (Market batch). Each method's value is checked against ours
first. All methods of one size run round-robin (one call of each per round) so that load
changes on a shared machine hit all of them alike; the median over rounds is reported.

- SSIM (window 7, sigma 0.8, valid, data range 1): ours vs pytorch-msssim, piq, kornia and
  torchmetrics. kornia's ``metrics.ssim`` hard-codes sigma 1.5, so it is run with its
  Gaussian-kernel factory patched to sigma 0.8 (its own code otherwise).
- PSSIM: ours vs a direct implementation that repeats the images once per part, as the
  study's reference code does, with its background SSIM from pytorch-msssim.
- Two lower bounds, not peers: PSSIM with its part kernels answered from their cached
  results ("bound: part kernels free": the cost of everything but the part half), and the
  same plus reading the part masks and both images twice ("bound: + part inputs read
  twice": the least memory traffic of any part kernels, which must read them in the forward
  and again in the backward). The ratio goal cannot be met below the second one.
- "ours" runs the fused kernels compiled (``torch.compile``, the default on inputs this
  large; compiled during the warm-up round) and, for PSSIM, the part statistics and the
  parts' gradient in personpose's native C kernels (:mod:`personpose.kernels.native`; the
  windowed SSIM kernels are plain SSIM's); "ours-torch-kernels" the compiled kernels alone
  (``PERSONPOSE_NATIVE=never``); "ours-eager" the torch kernels eagerly
  (``PERSONPOSE_COMPILE=never``, the fallback without a C/C++ compiler).
- The whole process (every method) runs under personpose's CPU allocator policy, as the run
  command does (``PERSONPOSE_MALLOC``, :mod:`personpose.kernels.allocator`; recorded in the
  JSON); ``PERSONPOSE_MALLOC=system`` measures with glibc's defaults.

Peak memory: the largest total of live bytes allocated by torch's CPU allocator during one
forward + backward, from the profiler's memory events (allocations minus frees, in time
order; inputs allocated beforehand are not counted). tracemalloc cannot see torch's
allocations and process RSS is blurred by the C allocator's caching, hence this measure.

Usage: python experiments/bench_losses.py [--quick] [--out experiments/results/bench_losses.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personpose.kernels import allocator, native  # noqa: E402
from personpose.kernels.compiled import compile_mode, current_mode  # noqa: E402
from personpose.kernels.native import native_mode  # noqa: E402
from personpose.kernels.native import state as native_state  # noqa: E402
from personpose.losses.part_ssim import part_ssim  # noqa: E402
from personpose.losses.ssim import ssim  # noqa: E402

WIN, SIGMA = 7, 0.8
SIZES = [(8, 3, 256, 176), (32, 3, 128, 64)]


# ----------------------------------------------------------------------------- peers
def _peer_ssim() -> dict[str, Callable]:
    peers: dict[str, Callable] = {}
    try:
        import pytorch_msssim

        peers["pytorch-msssim"] = lambda x, y: pytorch_msssim.ssim(
            x, y, data_range=1.0, win_size=WIN, win_sigma=SIGMA, size_average=True
        )
    except ImportError:
        pass
    try:
        import piq

        peers["piq"] = lambda x, y: piq.ssim(
            x, y, kernel_size=WIN, kernel_sigma=SIGMA, data_range=1.0, downsample=False
        )
    except ImportError:
        pass
    try:
        kssim = importlib.import_module("kornia.metrics.ssim")
        make_kernel = kssim.get_gaussian_kernel1d

        def kornia_ssim(x, y):
            kssim.get_gaussian_kernel1d = lambda k, _sigma, **kw: make_kernel(k, SIGMA, **kw)
            try:
                return kssim.ssim(x, y, WIN, max_val=1.0, padding="valid").mean()
            finally:
                kssim.get_gaussian_kernel1d = make_kernel

        peers["kornia"] = kornia_ssim
    except ImportError:
        pass
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure as tm

        # gaussian kernel size from sigma: 2 * int(3.5 * 0.8 + 0.5) + 1 = 7. torchmetrics
        # averages the whole reflect-padded ("same") map: crop it to the valid part.
        r = WIN // 2

        def torchmetrics_ssim(x, y):
            _, full = tm(
                x,
                y,
                gaussian_kernel=True,
                sigma=SIGMA,
                kernel_size=WIN,
                data_range=1.0,
                return_full_image=True,
            )
            return full[..., r:-r, r:-r].mean()

        peers["torchmetrics"] = torchmetrics_ssim
    except ImportError:
        pass
    return peers


def pssim_repeat(x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """PSSIM as the reference computes it: images repeated once per part (N, K*C, H, W)."""
    import pytorch_msssim

    n, c, h, w = x.shape
    parts = masks[:, 1:]
    k = parts.shape[1]
    xr = x.unsqueeze(1).repeat(1, k, 1, 1, 1).reshape(n, k * c, h, w)
    yr = y.unsqueeze(1).repeat(1, k, 1, 1, 1).reshape(n, k * c, h, w)
    mr = parts.unsqueeze(2).repeat(1, 1, c, 1, 1).reshape(n, k * c, h, w)
    wgt = mr / (mr.sum((-2, -1), keepdim=True) + 1e-6)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = (xr * wgt).sum((-2, -1)), (yr * wgt).sum((-2, -1))
    vx = (xr * xr * wgt).sum((-2, -1)) - mx**2
    vy = (yr * yr * wgt).sum((-2, -1)) - my**2
    cov = (xr * yr * wgt).sum((-2, -1)) - mx * my
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * (2 * cov + c2) / (vx + vy + c2)
    bg = masks[:, :1]
    b = pytorch_msssim.ssim(bg * x, bg * y, data_range=1.0, win_size=WIN, win_sigma=SIGMA)
    return (s.mean() + b) / 2


def make_masks(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Soft part masks (N, 11, H, W) like ``part_masks``: 10 oriented Gaussians, background
    ``1 - max``, one part missing in every other sample."""
    r = torch.arange(h, dtype=torch.float32).view(h, 1)
    col = torch.arange(w, dtype=torch.float32).view(1, w)
    parts = torch.zeros(n, 10, h, w)
    for i in range(n):
        for k in range(10):
            if i % 2 and k == 4:
                continue  # missing part: all zeros
            cy, cx = (
                float(torch.rand((), generator=gen)) * h,
                float(torch.rand((), generator=gen)) * w,
            )
            sy, sx = h / 8 * (0.5 + float(torch.rand((), generator=gen))), w / 10
            parts[i, k] = torch.exp(-((r - cy) ** 2) / (2 * sy**2) - (col - cx) ** 2 / (2 * sx**2))
    parts = parts / (parts.flatten(2).amax(-1)[..., None, None] + 1e-6)
    return torch.cat([1 - parts.amax(1, keepdim=True), parts], dim=1)


def _eager(fn: Callable) -> Callable:
    """``fn`` with the fused kernels run eagerly and no native kernels
    (``PERSONPOSE_COMPILE=never PERSONPOSE_NATIVE=never``): the fallback where no C/C++
    compiler is available."""

    def run(*args):
        with compile_mode("never"), native_mode("never"):
            return fn(*args)

    run.eager = True  # read by _mode: the backward runs eagerly too
    return run


def _torch_kernels(fn: Callable) -> Callable:
    """``fn`` without personpose's native C kernels (``PERSONPOSE_NATIVE=never``): the
    compiled torch kernels alone (the backward follows the forward's choice)."""

    def run(*args):
        with native_mode("never"):
            return fn(*args)

    return run


class _PartsFree:
    """A lower bound, not a peer: the PSSIM loss ``fn`` with its native part kernels
    (``part_contract``, ``part_grad``) answered from their results for these inputs (computed
    in the warm-up), so that the part half costs nothing and the rest of PSSIM (the masked
    background's SSIM, the part statistics, autograd) is what is timed. (``part_grad`` adds
    the parts' terms in place to the background's gradient; here it adds nothing, so the
    value is PSSIM's and the gradient the background's alone: timing only.) With ``stream``
    (the part masks and both images), those tensors are also read twice (summed): the least
    memory traffic of any part kernels, which read them in the forward and again in the
    backward. :meth:`context` must wrap the whole forward + backward (see ``_step``)."""

    eager = False

    def __init__(self, fn: Callable, stream: tuple[torch.Tensor, ...] = ()) -> None:
        self.fn, self.stream, self.cache = fn, stream, {}

    def _cached(self, name: str, real: Callable) -> Callable:
        def call(*args, out=None):
            if out is not None:  # part_grad adding in place: the background's terms alone
                return out
            if name not in self.cache:
                self.cache[name] = real(*args)
            return self.cache[name]

        return call

    @contextmanager
    def context(self) -> Iterator[None]:
        real = native.part_contract, native.part_grad
        native.part_contract = self._cached("contract", real[0])
        native.part_grad = self._cached("grad", real[1])
        try:
            yield
        finally:
            native.part_contract, native.part_grad = real

    def __call__(self, *args):
        out = self.fn(*args)
        for _ in range(2 if self.stream else 0):
            for t in self.stream:
                t.detach().sum()
        return out


def _context(fn: Callable):
    return getattr(fn, "context", nullcontext)()


# ----------------------------------------------------------------------------- measuring
def _mode(fn: Callable) -> str:
    """The compile mode for a whole forward + backward of ``fn``: the eager variants' backward
    must run eagerly too, and the mode is read at call time."""
    return "never" if getattr(fn, "eager", False) else current_mode()


def _step(fn: Callable, x: torch.Tensor) -> None:
    x.grad = None
    with compile_mode(_mode(fn)), _context(fn):
        fn(x).backward()


def peak_bytes(fn: Callable, x: torch.Tensor) -> int:
    """Peak live bytes allocated by torch during one forward + backward (profiler events)."""
    x.grad = None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with compile_mode(_mode(fn)), _context(fn):
            fn(x).backward()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    x.grad = None
    return peak


def time_round_robin(methods: dict, x: torch.Tensor, repeats: int) -> tuple[dict, dict]:
    """Wall-clock and process CPU ms of forward + backward, one call of each method per
    round. (CPU time, summed over our threads, is less sensitive to a busy machine.)"""
    wall: dict = {name: [] for name in methods}
    cpu: dict = {name: [] for name in methods}
    for fn in methods.values():  # warm-up
        _step(fn, x)
    for _ in range(repeats):
        for name, fn in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            _step(fn, x)
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return wall, cpu


def run(repeats: int) -> dict:
    alloc = allocator.configure()  # as the run command does; every method runs under it
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    results: dict = {
        "torch": torch.__version__,
        "allocator": alloc,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "repeats": repeats,
        "sizes": {},
    }
    peers = _peer_ssim()
    for shape in SIZES:
        n, c, h, w = shape
        y = torch.rand(shape, generator=gen)
        x = (y + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1).requires_grad_(True)
        masks = make_masks(n, h, w, gen)
        parts = masks[:, 1:]
        groups = {
            "ssim": ({"ours": ssim, "ours-eager": _eager(ssim), **peers}, ()),
            "pssim": (
                {
                    "ours": part_ssim,
                    "ours-torch-kernels": _torch_kernels(part_ssim),
                    "ours-eager": _eager(part_ssim),
                    "repeat-per-part": pssim_repeat,
                    "bound: part kernels free": _PartsFree(part_ssim),
                    "bound: + part inputs read twice": _PartsFree(part_ssim, (parts, x, y)),
                },
                (masks,),
            ),
        }
        entry: dict = {group: {} for group in groups}
        calls: dict[tuple[str, str], Callable] = {}
        for group, (methods, args) in groups.items():
            with torch.no_grad():
                ref = float(methods["ours"](x, y, *args))
            for name, fn in methods.items():
                with torch.no_grad(), _context(fn):
                    value = float(fn(x, y, *args))
                entry[group][name] = {"value": value, "abs_diff_vs_ours": abs(value - ref)}
                # every call as f(x): y and the masks are bound here
                calls[group, name] = lambda a, f=fn, y=y, args=args: f(a, y, *args)
                calls[group, name].eager = getattr(fn, "eager", False)
                if hasattr(fn, "context"):
                    calls[group, name].context = fn.context
        # one round-robin over all methods of this size, so ratios see the same load
        times, cpu = time_round_robin(calls, x, repeats)
        for (group, name), fn in calls.items():
            row = entry[group][name]
            row["median_ms"] = statistics.median(times[group, name])
            row["min_ms"] = min(times[group, name])
            row["median_cpu_ms"] = statistics.median(cpu[group, name])
            row["peak_mb"] = peak_bytes(fn, x) / 2**20
        results["sizes"]["x".join(map(str, shape))] = entry
    results["native"] = native_state()  # the library built and the calls made
    return results


def summarise(results: dict) -> tuple[str, dict]:
    lines = [
        "| size | loss | method | median ms | vs ours | CPU ms | peak MB | value | abs diff |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    goals = {}
    for size, entry in results["sizes"].items():
        for group, rows in entry.items():
            ours = rows["ours"]["median_ms"]
            for name, r in rows.items():
                lines.append(
                    f"| {size} | {group} | {name} | {r['median_ms']:.1f} | "
                    f"{r['median_ms'] / ours:.2f}x | {r['median_cpu_ms']:.1f} | "
                    f"{r['peak_mb']:.1f} | {r['value']:.6f} | "
                    f"{r['abs_diff_vs_ours']:.1e} |"
                )
        ss, ps = entry["ssim"], entry["pssim"]
        peers = {k: v for k, v in ss.items() if not k.startswith("ours")}
        fastest = min(peers, key=lambda k: peers[k]["median_ms"]) if peers else None
        goals[size] = {
            "ssim_speedup_vs_fastest_peer": (
                peers[fastest]["median_ms"] / ss["ours"]["median_ms"] if fastest else math.nan
            ),
            "fastest_peer": fastest,
            "pssim_speedup_vs_repeat": ps["repeat-per-part"]["median_ms"] / ps["ours"]["median_ms"],
            "pssim_time_over_ssim": ps["ours"]["median_ms"] / ss["ours"]["median_ms"],
            "torch_kernels_pssim_time_over_ssim": (
                ps["ours-torch-kernels"]["median_ms"] / ss["ours"]["median_ms"]
            ),
            "bound_pssim_time_over_ssim": {
                name.removeprefix("bound: "): ps[name]["median_ms"] / ss["ours"]["median_ms"]
                for name in ps
                if name.startswith("bound: ")
            },
            "eager_pssim_time_over_ssim": (
                ps["ours-eager"]["median_ms"] / ss["ours-eager"]["median_ms"]
            ),
            "ssim_speedup_vs_eager": ss["ours-eager"]["median_ms"] / ss["ours"]["median_ms"],
            "pssim_cpu_time_over_ssim": ps["ours"]["median_cpu_ms"] / ss["ours"]["median_cpu_ms"],
            "pssim_peak_over_ssim": ps["ours"]["peak_mb"] / ss["ours"]["peak_mb"],
            "peers_agree_1e-5": all(
                v["abs_diff_vs_ours"] < 1e-5 for g in entry.values() for v in g.values()
            ),
        }
    lines += [
        "",
        "| size | SSIM vs fastest peer (goal >= 1.3x) | PSSIM vs repeat (goal >= 4x) "
        "| PSSIM / SSIM time, CPU time (goal <= 1.3) | same, torch kernels only "
        "| same, eager kernels | PSSIM / SSIM peak (goal <= 1.5) | values agree |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    bounds = []
    for size, g in goals.items():
        lines.append(
            f"| {size} | {g['ssim_speedup_vs_fastest_peer']:.2f}x ({g['fastest_peer']}) | "
            f"{g['pssim_speedup_vs_repeat']:.2f}x | {g['pssim_time_over_ssim']:.2f}, "
            f"{g['pssim_cpu_time_over_ssim']:.2f} | "
            f"{g['torch_kernels_pssim_time_over_ssim']:.2f} | "
            f"{g['eager_pssim_time_over_ssim']:.2f} | "
            f"{g['pssim_peak_over_ssim']:.2f} | {g['peers_agree_1e-5']} |"
        )
        bounds.append(
            f"| {size} | "
            + " | ".join(f"{v:.2f}" for v in g["bound_pssim_time_over_ssim"].values())
            + f" | {g['pssim_time_over_ssim']:.2f} |"
        )
    names = next(iter(goals.values()))["bound_pssim_time_over_ssim"] if goals else {}
    lines += [
        "",
        "Lower bounds of PSSIM / SSIM time (part kernels answered from a cache; see _PartsFree):",
        "",
        "| size | " + " | ".join(names) + " | ours |",
        "|---|" + "---:|" * (len(names) + 1),
        *bounds,
    ]
    return "\n".join(lines), goals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds instead of 15")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_losses.json"))
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 15)
    results = run(repeats)
    table, goals = summarise(results)
    results["goals"] = goals
    results["quick"] = args.quick
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
