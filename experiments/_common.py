"""What the benchmark scripts share: the checkout on ``sys.path``, paths, machine facts,
timing loops, the Markdown table and the atomic JSON write."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
REAL = REPO.parent / "shared" / "data" / "real"
if str(REPO) not in sys.path:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from personpose.io.atomic import atomic_write_json  # noqa: E402

# scikit-image's Gaussian SSIM as PATN calls it (with sigma=1.5 and data_range)
SKIMAGE_GAUSSIAN = dict(gaussian_weights=True, use_sample_covariance=False, channel_axis=-1)


def machine(**extra) -> dict:
    """The CPU and the Python version, then ``extra``."""
    cpu = platform.processor() or platform.machine()
    return {"cpu": cpu, "python": platform.python_version(), **extra}


def no_sync() -> None:
    """What a CPU timing waits for before and after a call: nothing."""


def time_calls(fn: Callable[[], object], repeats: int, sync=no_sync) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after one untimed call; ``sync()`` (e.g.
    ``torch.cuda.synchronize``) before and after each timed call."""
    fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def round_robin(methods: dict[str, Callable[[], object]], rounds: int):
    """Call every method once per round (load changes hit all alike): per method the wall and
    process-CPU milliseconds of every call, and the last call's result."""
    wall: dict = {k: [] for k in methods}
    cpu: dict = {k: [] for k in methods}
    out: dict = {}
    for _ in range(rounds):
        for key, fn in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            out[key] = fn()
            wall[key].append((time.perf_counter() - t0) * 1e3)
            cpu[key].append((time.process_time() - c0) * 1e3)
    return wall, cpu, out


def markdown_table(rows: list[dict], keys: list[str] | None = None, fmt=str) -> str:
    """Rows (dicts) as a Markdown table of ``keys`` (default: the first row's, lists skipped),
    each cell ``fmt(value)``."""
    if not rows:
        return "(no rows)"
    keys = keys or [k for k, v in rows[0].items() if not isinstance(v, list)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def write_json(out: Path, doc: dict) -> dict:
    """Write ``doc`` to ``out`` atomically (folders made) and say so."""
    atomic_write_json(out, doc)
    print(f"wrote {out}", flush=True)
    return doc
