"""Training-speed benchmarks: prints a Markdown table per section, writes JSON.

Sections (``SECTIONS``: name -> function ``args -> list[dict]``):
- ``speed``: seconds per training iteration of ``--model`` (default the paper-size PATN;
  ``xinggan`` for XingGAN) on CPU (generator forward + backward + Adam step with the
  ``--loss`` combination (default ``part_ssim``: perceptual + PSSIM, plus the adversarial
  terms), then the appearance and shape discriminators' forward + backward + Adam steps), at
  128x64 batch 8 and 256x176 batch 4, and the peak memory (max RSS) of each row, measured in
  a fresh subprocess per row. The study authors' code takes 10.6 s and 29.3 s per iteration
  on this machine.
- ``overhead``: milliseconds per training step of the Lightning module (``trainer.fit``)
  against the same computation in a plain PyTorch loop, tiny model, interleaved runs.
- ``parts``: milliseconds per part of one training iteration of the default synthetic run
  (data loading, generator forward and backward, each loss term's forward and backward, the
  VGG features, each discriminator's step, the Adam steps), with the terms logged at
  validation only listed apart; the whole iteration is timed too, as a check of the sum.

Usage:
    python experiments/bench_train.py [--quick] [--sections speed parts] [--model patn|xinggan]
        [--parts-overrides loss=l1_perceptual]
        [--memory-format channels_last|contiguous] [--bf16] [--sizes 128x64x8 256x176x4]
        [--out experiments/results/bench_train.json]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).parent))  # the scripts' shared helpers
from _common import REPO, RESULTS, machine, markdown_table, time_calls, write_json  # noqa: E402

from personpose.losses.adversarial import PATNAdversarial  # noqa: E402
from personpose.losses.config import VGG_TERMS  # noqa: E402

# Seconds per iteration of the study authors' code on this 2-core CPU (from the issue).
REFERENCE_S = {(128, 64, 8): 10.6, (256, 176, 4): 29.3}
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
BATCH_CHANNELS = {"P1": 3, "P2": 3, "BP1": 18, "BP2": 18}
MEMORY_MEASURE = (
    "peak resident set size (VmHWM, MiB) of a fresh process that imports torch and "
    "the project, builds G and both Ds, and runs the warm-up and timed iterations; "
    "peak_rss_above_imports_mb subtracts the peak before the models were built"
)


def load_models(model: str) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Generator and ``{"appearance": D_PP (6 ch), "shape": D_PB (21 ch)}`` from
    ``conf/model/<model>.yaml``."""
    cfg = OmegaConf.load(REPO / "conf" / "model" / f"{model}.yaml")
    channels = PATNAdversarial.IN_CHANNELS
    discs = {n: instantiate(cfg.discriminator, in_channels=c) for n, c in channels.items()}
    return instantiate(cfg.generator), discs


def synthetic_batch(n: int, h: int, w: int, seed: int = 0) -> dict[str, Tensor]:
    """Random P1, P2 in [-1, 1] (N, 3, H, W) and pose maps BP1, BP2 in [0, 1] (N, 18, H, W)."""
    g = torch.Generator().manual_seed(seed)
    batch = {k: torch.rand(n, c, h, w, generator=g) for k, c in BATCH_CHANNELS.items()}
    return {k: v * 2 - 1 if k.startswith("P") else v for k, v in batch.items()}


def with_masks(batch: dict[str, Tensor], seed: int = 0) -> dict[str, Tensor]:
    """Add ``mask2`` (N, 11, H, W): part masks of a random in-frame pose per sample."""
    from personpose.data.pose import part_masks

    n, _, h, w = batch["P2"].shape
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, 18, 2, generator=g) * torch.tensor([h - 1, w - 1])
    return {**batch, "mask2": part_masks(kp.round(), (h, w)).contiguous()}


def compose(overrides: list[str]):
    """The project's run config composed with ``overrides`` (schemas registered)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import personpose.run  # noqa: F401  (schemas, resolvers)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def project_loss(name: str, weights: str = "market"):
    """The generator's non-adversarial loss of ``conf/loss/<name>.yaml`` (random-init VGG:
    the same cost as the ImageNet one), as ``fn(fake, batch) -> total``."""
    from personpose.losses.composite import GeneratorLoss

    cfg = compose([f"loss={name}", f"weights={weights}"])
    loss = GeneratorLoss(cfg.loss, cfg.weights, allow_random_vgg=True)
    return lambda fake, batch: loss(fake, batch)["total"]


def l1_loss(fake: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """Stand-in generator reconstruction loss: 10 * mean |fake - P2|."""
    return 10.0 * (fake - batch["P2"]).abs().mean()


def train_step(g, discs, adversarial, optimizers, loss_g, batch, autocast=nullcontext) -> dict:
    """One training iteration: the G step on ``loss_g(fake, batch)`` (discriminators frozen, as
    Lightning's ``toggle_optimizer`` does), then one step per discriminator in
    ``adversarial.ORDER``; ``optimizers`` are G's, then the discriminators' in that order."""
    opt_g, *opt_d = optimizers
    for d in discs.values():
        d.requires_grad_(False)
    with autocast():
        fake = g(batch["P1"], batch["BP1"], batch["BP2"])
        loss = loss_g(fake, batch)
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()
    out = {"g": loss.detach()}
    for name, opt in zip(adversarial.ORDER, opt_d):
        discs[name].requires_grad_(True)
        with autocast():
            loss_d = adversarial.discriminator_loss(name, discs[name], batch["P2"], fake, batch)
        opt.zero_grad(set_to_none=True)
        loss_d.float().backward()
        opt.step()
        out[f"d_{name}"] = loss_d.detach()
    return out


def gan_step(g, discriminators, recon_loss=l1_loss, lambda_gan: float = 5.0, bf16: bool = False):
    """One PATN training iteration as ``fn(batch) -> {"g", "d_appearance", "d_shape"}`` losses:
    ``recon_loss(fake, batch)`` (a stand-in L1 by default) plus PATN's adversarial objective
    (:class:`PATNAdversarial`, BCE, no pool, weight ``lambda_gan``), Adam for all three nets."""
    adversarial = PATNAdversarial("bce", pool_size=0, weight=lambda_gan)
    nets = [g, *(discriminators[n] for n in adversarial.ORDER)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in nets]

    def loss_g(fake, batch):
        adv = adversarial(fake, batch, discriminators)
        return recon_loss(fake.float(), batch) + lambda_gan * adv.float()

    def step(batch):
        autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16, enabled=bf16)
        return train_step(g, discriminators, adversarial, optimizers, loss_g, batch, autocast)

    return step


def iteration_gflop(model: str, h: int, w: int, n: int) -> float:
    """GFLOP of one :func:`gan_step` (counted on the meta device: no compute, no data)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        g, discriminators = load_models(model)
        batch = {k: torch.empty(n, c, h, w) for k, c in BATCH_CHANNELS.items()}
    step = gan_step(g, discriminators)
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return counter.get_total_flops() / 1e9


def _plain_loop(module, loader, steps: int) -> float:
    """Seconds for ``steps`` iterations of the module's computation without Lightning."""
    optimizers, discs = module.configure_optimizers()[0], module.discriminators  # no schedulers
    loss_g = lambda fake, batch: module.loss(fake, batch, discs)["total"]  # noqa: E731
    it = iter(loader)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(module, discs, module.loss.adversarial, optimizers, loss_g, next(it))
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# section: speed


def bench_speed(args: argparse.Namespace) -> list[dict]:
    """Seconds per training iteration and peak memory of ``--model`` at the paper's two sizes,
    each size in a fresh subprocess (:func:`speed_row`) so that its peak RSS is its own."""
    rows = []
    for h, w, n in args.sizes:
        cmd = [sys.executable, __file__, "--speed-row", f"{h}x{w}x{n}", "--model", args.model]
        cmd += ["--loss", args.loss, "--threads", str(args.threads)]
        cmd += ["--memory-format", args.memory_format] + ["--quick"] * args.quick
        done = subprocess.run(cmd + ["--bf16"] * args.bf16, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"bench_train.py: the speed row {h}x{w}x{n} failed:\n{done.stderr[-3000:]}"
            )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        med, rss = row["s_per_iter_median"], row["peak_rss_mb"]
        print(f"  {args.model} {h}x{w} batch {n}: {med:.2f} s/iter, peak RSS {rss} MB", flush=True)
        rows.append(row)
    return rows


def _max_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB: ``VmHWM`` of /proc/self/status
    (Linux), which starts afresh at exec; getrusage's ``ru_maxrss`` (the fallback) carries the
    parent's peak over into a subprocess."""
    status = Path("/proc/self/status")
    if status.is_file():
        return int(re.search(r"VmHWM:\s*(\d+)", status.read_text())[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def speed_row(args: argparse.Namespace, h: int, w: int, n: int) -> dict:
    """One row of the speed table, measured in this (fresh) process."""
    rss_start = _max_rss_mb()  # torch, hydra and the project imported; nothing built yet
    repeats = 1 if args.quick else 3  # after one warm-up iteration
    fmt = MEMORY_FORMATS[args.memory_format]
    torch.manual_seed(0)
    g, discriminators = load_models(args.model)
    for m in (g, *discriminators.values()):
        m.to(memory_format=fmt).train()
    batch = {k: v.contiguous(memory_format=fmt) for k, v in synthetic_batch(n, h, w).items()}
    batch = with_masks(batch)
    recon = l1_loss if args.loss == "l1_standin" else project_loss(args.loss)
    step = gan_step(g, discriminators, recon_loss=recon, bf16=args.bf16)
    load_before = os.getloadavg()[0]
    times = time_calls(lambda: step(batch), repeats)
    peak = _max_rss_mb()
    med = statistics.median(times)
    ref = REFERENCE_S.get((h, w, n))
    gflop = iteration_gflop(args.model, h, w, n)
    return {
        "model": args.model,
        "loss": args.loss,
        "size": f"{h}x{w}",
        "batch": n,
        "precision": "bf16-autocast" if args.bf16 else "fp32",
        "memory_format": args.memory_format,
        "repeats": repeats,
        "s_per_iter_median": round(med, 3),
        "gflop_per_iter": round(gflop, 1),
        "gflops_achieved": round(gflop / med, 1),
        "peak_rss_mb": round(peak),
        "peak_rss_above_imports_mb": round(peak - rss_start),
        "s_per_iter_all": [round(t, 3) for t in times],
        "load_1min_before": round(load_before, 2),  # other processes skew timings
        "reference_s": ref,
        "ratio_to_reference": round(med / ref, 3) if ref else None,
    }


# ---------------------------------------------------------------------------------------------
# section: overhead


def _lightning_fit(module, loader, steps: int, tmp: Path) -> float:
    """Seconds from the first to the last training batch of ``trainer.fit`` (``steps`` steps)."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    class Clock(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 0:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.t1 = time.perf_counter()

    clock = Clock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
        default_root_dir=tmp,
    )
    trainer.fit(module, train_dataloaders=loader)
    return clock.t1 - clock.t0  # steps + 1 batches, timed from the start of the first


def bench_overhead(args: argparse.Namespace) -> list[dict]:
    """Lightning module vs a plain PyTorch loop, tiny model, ``loss=part_ssim``, interleaved."""
    import tempfile
    import warnings

    import lightning as L
    from torch.utils.data import DataLoader

    from personpose.run import build_module

    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    cfg = compose(["model=patn_tiny", "loss=part_ssim", "logger=csv"])
    steps, rounds = (20, 2) if args.quick else (40, 5)
    batches = [with_masks(synthetic_batch(4, 128, 64, seed=i), seed=i) for i in range(steps + 2)]
    loader = DataLoader(batches, batch_size=None, shuffle=False)
    lightning_ms, plain_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            module = build_module(cfg, steps_per_epoch=1000, allow_random_vgg=True)
            # steps + 1 batches timed from the start of the first: ``steps`` full intervals
            seconds = _lightning_fit(module, loader, steps, Path(tmp))
            lightning_ms.append(1e3 * seconds / (steps + 1))
            module = build_module(cfg, steps_per_epoch=1000, allow_random_vgg=True)
            plain_ms.append(1e3 * _plain_loop(module, loader, steps) / steps)
    lm, pm = statistics.median(lightning_ms), statistics.median(plain_ms)
    print(f"  lightning {lm:.1f} ms/step, plain {pm:.1f} ms/step", flush=True)
    return [
        {
            "model": "patn_tiny",
            "loss": "part_ssim",
            "batch": "4x3x128x64",
            "steps_per_round": steps,
            "rounds": rounds,
            "lightning_ms_per_step": round(lm, 2),
            "plain_ms_per_step": round(pm, 2),
            "overhead_pct": round(100 * (lm - pm) / pm, 1),
            "lightning_all": [round(x, 2) for x in lightning_ms],
            "plain_all": [round(x, 2) for x in plain_ms],
        }
    ]


# ---------------------------------------------------------------------------------------------
# section: parts


class _Clock:
    """Seconds per named part (a list over the iterations timed) and when the part runs."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.when: dict[str, str] = {}

    def __call__(self, name: str, fn, when: str = "every step"):
        t0 = time.perf_counter()
        out = fn()
        self.seconds.setdefault(name, []).append(time.perf_counter() - t0)
        self.when[name] = when
        return out


def _timed_iteration(module, optimizers, batch_iter, clock: _Clock, step_terms: set[str]) -> None:
    """One training iteration of ``module`` (``PoseTransferModule.training_step``'s order),
    each part timed by ``clock``: the loss terms of ``step_terms`` run forward on a detached
    copy of the generated image (and of the VGG features), and their gradients are carried
    back through the VGG and the generator afterwards, so each part is timed alone."""
    loss, discs, g = module.loss, module.discriminators, module.generator
    opt_g, *opt_d = optimizers
    batch = clock("data loading (one batch)", lambda: next(batch_iter))
    if discs is not None:
        discs.requires_grad_(False)
    fake = clock("generator forward", lambda: g(batch["P1"], batch["BP1"], batch["BP2"]))
    leaf = fake.detach().requires_grad_(True)
    # the arguments of each term (the order of ``GeneratorLoss.forward``)
    inputs = {"part_ssim": (leaf, batch["P2"], batch["mask2"]), "adversarial": (leaf, batch, discs)}
    leaves = {}
    if any(t in step_terms for t in VGG_TERMS):
        features = clock("VGG features forward (generated image)", lambda: loss.vgg(leaf))
        with torch.no_grad():
            target_features = clock("VGG features forward (target)", lambda: loss.vgg(batch["P2"]))
        leaves = {k: v.detach().requires_grad_(True) for k, v in features.items()}
        inputs |= {t: (leaves, target_features) for t in VGG_TERMS}
    for term in [t for t in loss.terms if t in step_terms]:
        trained = term in loss.active_terms and getattr(loss.weights, term) != 0
        args = inputs.get(term, (leaf, batch["P2"]))
        with torch.set_grad_enabled(trained):
            raw = clock(f"loss {term} forward", lambda t=term, a=args: loss.terms[t](*a))
        if trained:
            weighted = getattr(loss.weights, term) * raw
            clock(f"loss {term} backward (to the image)", weighted.backward)
    keys = [k for k, v in leaves.items() if v.grad is not None]
    if keys:
        grads = [leaves[k].grad for k in keys]
        backward = functools.partial(torch.autograd.backward, [features[k] for k in keys], grads)
        clock("VGG features backward", backward)
    clock("generator backward", lambda: fake.backward(leaf.grad))

    def g_step():
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)

    clock("generator Adam step", g_step)
    for name, opt in zip(PATNAdversarial.ORDER, opt_d):

        def d_step(name=name, opt=opt):
            discs[name].requires_grad_(True)
            d_loss = loss.adversarial.discriminator_loss
            d_loss(name, discs[name], batch["P2"], leaf.detach(), batch).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        clock(f"discriminator {name} step (forward, backward, Adam)", d_step)


def bench_parts(args: argparse.Namespace) -> list[dict]:
    """Milliseconds per part of one training iteration of the default synthetic run (patn_small,
    128x64, batch 8, loss part_ssim; random VGG as on the synthetic set; ``--parts-overrides``
    change it), median over iterations, with the whole iteration timed separately as a check
    of the sum; the terms computed for the log at validation only are timed apart."""
    import lightning as L

    from personpose.data.datamodule import build_datamodule
    from personpose.run import build_module

    warmup, repeats = (1, 2) if args.quick else (2, 10)
    cfg = compose(["logger=csv", *args.parts_overrides])  # the default run, overridden
    L.seed_everything(0, verbose=False)
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    transfer = datamodule.on_after_batch_transfer
    batch_iter = (transfer(b, 0) for _ in itertools.count() for b in loader)
    module = build_module(cfg, datamodule.steps_per_epoch_for(1), allow_random_vgg=True)
    module.train()
    optimizers, loss = module.configure_optimizers()[0], module.loss
    probe = next(batch_iter)
    with torch.no_grad():
        fake = module.generator(probe["P1"], probe["BP1"], probe["BP2"])
        step_terms = {k for k in loss(fake, probe, module.discriminators) if k in loss.terms}
    clock = _Clock()
    for i in range(warmup + repeats):
        if i == warmup:
            clock = _Clock()
        _timed_iteration(module, optimizers, batch_iter, clock, step_terms)
    later = [t for t in loss.terms if t in VGG_TERMS and t not in step_terms]
    if later and loss.vgg is not None:  # the terms logged at validation only
        with torch.no_grad():
            features = (loss.vgg(fake), loss.vgg(probe["P2"]))
            for term in later:
                run = functools.partial(loss.terms[term], *features)
                clock(f"loss {term} forward", run, "validation only")
    whole = [_plain_loop(module, batch_iter, 1) for _ in range(repeats)]  # data loading included
    ms = {name: 1e3 * statistics.median(s) for name, s in clock.seconds.items()}
    step_ms = sum(v for name, v in ms.items() if clock.when[name] == "every step")
    ms["sum of the parts"] = step_ms
    whole_ms = ms["whole iteration, timed alone"] = 1e3 * statistics.median(whole)
    h, w = cfg.data.image_size
    terms = "+".join(k for k, v in cfg.loss.items() if OmegaConf.is_dict(v) and v.get("enabled"))
    run = {
        "model": cfg.model.name,
        "loss_terms": terms,
        "batch": f"{cfg.data.batch_size}x3x{h}x{w}",
    }
    rows = []
    for name, value in ms.items():
        when = clock.when.get(name, "every step")
        share = round(100 * value / step_ms, 1) if when == "every step" else None
        part = {"part": name, "when": when, "ms_median": round(value, 1)}
        rows.append({**part, "share_of_step_pct": share, **run, "repeats": repeats})
    print(f"  parts sum {step_ms:.0f} ms, whole iteration {whole_ms:.0f} ms")
    return rows


# ---------------------------------------------------------------------------------------------
# driver

SECTIONS = {"speed": bench_speed, "overhead": bench_overhead, "parts": bench_parts}


def _size(text: str) -> tuple[int, int, int]:
    try:
        h, w, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        msg = f"--sizes: {text!r}; expected HxWxN, e.g. 128x64x8"
        raise argparse.ArgumentTypeError(msg) from None
    return h, w, n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 warm-up + 1 timed iteration per row")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--model", default="patn", help="conf/model/<name>.yaml (default: patn)")
    formats = list(MEMORY_FORMATS)  # channels_last is 2-4x faster on CPU here
    p.add_argument("--memory-format", default="channels_last", choices=formats)
    p.add_argument("--sizes", nargs="+", type=_size, default=list(REFERENCE_S), metavar="HxWxN")
    p.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16)")
    p.add_argument("--loss", default="part_ssim", help="conf/loss/<name>.yaml; l1_standin: 10*L1")
    p.add_argument(
        "--parts-overrides", nargs="*", default=[], metavar="OVERRIDE", help="of the parts run"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS / "bench_train.json")
    p.add_argument("--speed-row", type=_size, help=argparse.SUPPRESS)  # internal: one row, JSON
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.speed_row is not None:  # a subprocess of bench_speed: one row as JSON on stdout
        row = speed_row(args, *args.speed_row)
        print(json.dumps(row))
        return row
    omp = os.environ.get("OMP_WAIT_POLICY")
    results = {
        "machine": machine(threads=args.threads, omp_wait_policy=omp, torch=torch.__version__),
        "quick": args.quick,
        "memory_measure": MEMORY_MEASURE,  # how peak_rss_mb is measured (speed rows)
        "sections": {},
    }
    for name in args.sections:
        print(f"## {name}", flush=True)
        results["sections"][name] = rows = SECTIONS[name](args)
        print(markdown_table(rows), flush=True)
    return write_json(args.out, results)


if __name__ == "__main__":
    main()
