"""Training-speed benchmarks: prints a Markdown table per section, writes JSON.

Sections (a registry: add one with ``@section("name")``, a function ``args -> list[dict]``):
- ``speed``: seconds per training iteration of the paper-size PATN on CPU (generator
  forward + backward + Adam step with a stand-in loss, then the shape and appearance
  discriminators' forward + backward + Adam steps), at 128x64 batch 8 and 256x176 batch 4.
  The study authors' code takes 10.6 s and 29.3 s per iteration on this machine.

Usage:
    python experiments/bench_train.py [--quick] [--sections speed] [--model patn]
        [--memory-format channels_last|contiguous] [--bf16] [--sizes 128x64x8 256x176x4]
        [--out experiments/results/bench_train.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))
DEFAULT_OUT = REPO / "experiments" / "results" / "bench_train.json"

# Seconds per iteration of the study authors' code on this 2-core CPU (from the issue).
REFERENCE_S = {(128, 64, 8): 10.6, (256, 176, 4): 29.3}
PAPER_SIZES = tuple(REFERENCE_S)  # (H px, W px, batch): Market, DeepFashion
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}

SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {}


def section(name: str):
    """Register ``fn(args) -> rows`` as benchmark section ``name``."""

    def register(fn):
        SECTIONS[name] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# shared helpers


def load_models(model: str, norm: str | None = None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Generator, shape D (21 ch) and appearance D (6 ch) from ``conf/model/<model>.yaml``."""
    cfg = OmegaConf.load(REPO / "conf" / "model" / f"{model}.yaml")
    if norm is not None:
        cfg.norm = norm
    g = instantiate(cfg.generator)
    d_shape = instantiate(cfg.discriminator, in_channels=21)
    d_app = instantiate(cfg.discriminator, in_channels=6)
    return g, d_shape, d_app


BATCH_CHANNELS = {"P1": 3, "P2": 3, "BP1": 18, "BP2": 18}


def synthetic_batch(n: int, h: int, w: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random P1, P2 in [-1, 1] (N, 3, H, W) and pose maps BP1, BP2 in [0, 1] (N, 18, H, W)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "P1": torch.rand(n, 3, h, w, generator=g) * 2 - 1,
        "P2": torch.rand(n, 3, h, w, generator=g) * 2 - 1,
        "BP1": torch.rand(n, 18, h, w, generator=g),
        "BP2": torch.rand(n, 18, h, w, generator=g),
    }


def l1_loss(fake: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stand-in generator reconstruction loss: 10 * mean |fake - P2|."""
    return 10.0 * (fake - batch["P2"]).abs().mean()


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class GANStep:
    """One PATN training iteration: G step, then shape-D and appearance-D steps.

    ``recon_loss(fake, batch)`` is the generator's non-adversarial loss (a stand-in L1 by
    default); the adversarial terms are BCE-with-logits with weight ``lambda_gan`` (PATN form:
    G gets the mean of both Ds' terms, each D 0.5 * (real + fake)). Discriminators are frozen
    during the G step, as Lightning's ``toggle_optimizer`` does.
    """

    def __init__(
        self,
        g: nn.Module,
        d_shape: nn.Module,
        d_app: nn.Module,
        recon_loss: Callable[[torch.Tensor, dict], torch.Tensor] = l1_loss,
        lambda_gan: float = 5.0,
        bf16: bool = False,
    ) -> None:
        self.g, self.d_shape, self.d_app = g, d_shape, d_app
        self.recon_loss, self.lambda_gan, self.bf16 = recon_loss, lambda_gan, bf16
        adam = dict(lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(g.parameters(), **adam)
        self.opt_d_shape = torch.optim.Adam(d_shape.parameters(), **adam)
        self.opt_d_app = torch.optim.Adam(d_app.parameters(), **adam)

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        P1, BP1, BP2 = batch["P1"], batch["BP1"], batch["BP2"]
        for d in (self.d_shape, self.d_app):
            d.requires_grad_(False)
        with self._autocast():
            fake = self.g(P1, BP1, BP2)
            adv = 0.5 * (
                _bce(self.d_shape(torch.cat((fake, BP2), 1)), True)
                + _bce(self.d_app(torch.cat((fake, P1), 1)), True)
            )
            loss_g = self.recon_loss(fake.float(), batch) + self.lambda_gan * adv.float()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        out = {"g": loss_g.detach()}
        fake = fake.detach()
        for name, d, opt, cond in (
            ("d_shape", self.d_shape, self.opt_d_shape, BP2),
            ("d_app", self.d_app, self.opt_d_app, P1),
        ):
            d.requires_grad_(True)
            with self._autocast():
                real_logits = d(torch.cat((batch["P2"], cond), 1))
                fake_logits = d(torch.cat((fake, cond), 1))
                loss_d = (
                    0.5 * self.lambda_gan * (_bce(real_logits, True) + _bce(fake_logits, False))
                )
            opt.zero_grad(set_to_none=True)
            loss_d.float().backward()
            opt.step()
            out[name] = loss_d.detach()
        return out


def iteration_gflop(model: str, h: int, w: int, n: int) -> float:
    """GFLOP of one :class:`GANStep` (counted on the meta device: no compute, no data)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        g, d_shape, d_app = load_models(model)
        batch = {k: torch.empty(n, c, h, w) for k, c in BATCH_CHANNELS.items()}
    step = GANStep(g, d_shape, d_app)
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return counter.get_total_flops() / 1e9


def time_calls(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------------------------------------
# section: speed


@section("speed")
def bench_speed(args: argparse.Namespace) -> list[dict]:
    """Seconds per training iteration of ``--model`` at the paper's two sizes."""
    warmup, repeats = (1, 1) if args.quick else (1, 3)
    fmt = MEMORY_FORMATS[args.memory_format]
    rows = []
    for h, w, n in args.sizes:
        torch.manual_seed(0)
        g, d_shape, d_app = load_models(args.model)
        for m in (g, d_shape, d_app):
            m.to(memory_format=fmt).train()
        batch = {k: v.contiguous(memory_format=fmt) for k, v in synthetic_batch(n, h, w).items()}
        step = GANStep(g, d_shape, d_app, bf16=args.bf16)
        load_before = os.getloadavg()[0]
        times = time_calls(lambda step=step, batch=batch: step(batch), warmup, repeats)
        med = statistics.median(times)
        ref = REFERENCE_S.get((h, w, n))
        gflop = iteration_gflop(args.model, h, w, n)
        rows.append(
            {
                "model": args.model,
                "size": f"{h}x{w}",
                "batch": n,
                "precision": "bf16-autocast" if args.bf16 else "fp32",
                "memory_format": args.memory_format,
                "repeats": repeats,
                "s_per_iter_median": round(med, 3),
                "gflop_per_iter": round(gflop, 1),
                "gflops_achieved": round(gflop / med, 1),
                "s_per_iter_all": [round(t, 3) for t in times],
                "load_1min_before": round(load_before, 2),  # other processes skew timings
                "reference_s": ref,
                "ratio_to_reference": round(med / ref, 3) if ref else None,
            }
        )
        print(f"  {args.model} {h}x{w} batch {n}: {med:.2f} s/iter", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# driver


def markdown_table(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) as a Markdown table; list values are skipped."""
    if not rows:
        return "(no rows)"
    keys = [k for k, v in rows[0].items() if not isinstance(v, list)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int, int]:
    try:
        h, w, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes: {text!r}; expected HxWxN, e.g. 128x64x8"
        ) from None
    return h, w, n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 warm-up + 1 timed iteration per row")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--model", default="patn", help="conf/model/<name>.yaml (default: patn)")
    p.add_argument(
        "--memory-format",
        default="channels_last",
        choices=list(MEMORY_FORMATS),
        help="layout of weights and activations (channels_last is 2-4x faster on CPU here)",
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        type=_size,
        default=list(PAPER_SIZES),
        metavar="HxWxN",
        help="image height x width x batch (default: 128x64x8 256x176x4)",
    )
    p.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "sections": {},
    }
    for name in args.sections:
        print(f"## {name}", flush=True)
        rows = SECTIONS[name](args)
        results["sections"][name] = rows
        print(markdown_table(rows), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
