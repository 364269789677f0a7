"""Training-speed benchmarks: prints a Markdown table per section, writes JSON.

Sections (a registry: add one with ``@section("name")``, a function ``args -> list[dict]``):
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
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))
DEFAULT_OUT = REPO / "experiments" / "results" / "bench_train.json"

from personpose.io.atomic import atomic_write_json  # noqa: E402

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


def load_models(model: str, norm: str | None = None) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Generator and ``{"appearance": D_PP (6 ch), "shape": D_PB (21 ch)}`` from
    ``conf/model/<model>.yaml``."""
    from personpose.losses.adversarial import PATNAdversarial

    cfg = OmegaConf.load(REPO / "conf" / "model" / f"{model}.yaml")
    if norm is not None:
        cfg.norm = norm
    g = instantiate(cfg.generator)
    return g, {
        name: instantiate(cfg.discriminator, in_channels=channels)
        for name, channels in PATNAdversarial.IN_CHANNELS.items()
    }


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


def compose(overrides: list[str]):
    """The project's run config composed with ``overrides`` (schemas registered)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import personpose.run  # noqa: F401  (schemas, resolvers)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def with_masks(batch: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Add ``mask2`` (N, 11, H, W): part masks of a random in-frame pose per sample."""
    from personpose.data.pose import part_masks

    n, _, h, w = batch["P2"].shape
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, 18, 2, generator=g) * torch.tensor([h - 1, w - 1])
    return {**batch, "mask2": part_masks(kp.round(), (h, w)).contiguous()}


def project_loss(name: str, weights: str = "market") -> Callable[[torch.Tensor, dict], Tensor]:
    """The generator's non-adversarial loss of ``conf/loss/<name>.yaml`` (random-init VGG:
    the same cost as the ImageNet one), as ``fn(fake, batch) -> total``."""
    from personpose.losses.composite import GeneratorLoss

    cfg = compose([f"loss={name}", f"weights={weights}"])
    loss = GeneratorLoss(cfg.loss, cfg.weights, allow_random_vgg=True)

    def fn(fake: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss(fake, batch)["total"]

    return fn


def l1_loss(fake: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stand-in generator reconstruction loss: 10 * mean |fake - P2|."""
    return 10.0 * (fake - batch["P2"]).abs().mean()


class GANStep:
    """One PATN training iteration: G step, then the appearance-D and shape-D steps.

    ``recon_loss(fake, batch)`` is the generator's non-adversarial loss (a stand-in L1 by
    default); the adversarial terms are PATN's objective (:class:`PATNAdversarial`, BCE, no
    pool, weight ``lambda_gan``). Discriminators are frozen during the G step, as Lightning's
    ``toggle_optimizer`` does.
    """

    def __init__(
        self,
        g: nn.Module,
        discriminators: dict[str, nn.Module],
        recon_loss: Callable[[torch.Tensor, dict], torch.Tensor] = l1_loss,
        lambda_gan: float = 5.0,
        bf16: bool = False,
    ) -> None:
        from personpose.losses.adversarial import PATNAdversarial

        self.g, self.discriminators = g, discriminators
        self.recon_loss, self.lambda_gan, self.bf16 = recon_loss, lambda_gan, bf16
        self.adversarial = PATNAdversarial("bce", pool_size=0, weight=lambda_gan)
        adam = dict(lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(g.parameters(), **adam)
        self.opt_d = {
            n: torch.optim.Adam(d.parameters(), **adam) for n, d in discriminators.items()
        }

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for d in self.discriminators.values():
            d.requires_grad_(False)
        with self._autocast():
            fake = self.g(batch["P1"], batch["BP1"], batch["BP2"])
            adv = self.adversarial(fake, batch, self.discriminators)
            loss_g = self.recon_loss(fake.float(), batch) + self.lambda_gan * adv.float()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        out = {"g": loss_g.detach()}
        for name in self.adversarial.ORDER:
            d = self.discriminators[name]
            d.requires_grad_(True)
            with self._autocast():
                loss_d = self.adversarial.discriminator_loss(name, d, batch["P2"], fake, batch)
            self.opt_d[name].zero_grad(set_to_none=True)
            loss_d.float().backward()
            self.opt_d[name].step()
            out[f"d_{name}"] = loss_d.detach()
        return out


def iteration_gflop(model: str, h: int, w: int, n: int) -> float:
    """GFLOP of one :class:`GANStep` (counted on the meta device: no compute, no data)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        g, discriminators = load_models(model)
        batch = {k: torch.empty(n, c, h, w) for k, c in BATCH_CHANNELS.items()}
    step = GANStep(g, discriminators)
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
    """Seconds per training iteration and peak memory of ``--model`` at the paper's two sizes,
    each size in a fresh subprocess (:func:`speed_row`) so that its peak RSS is its own."""
    rows = []
    for h, w, n in args.sizes:
        cmd = [sys.executable, __file__, "--speed-row", f"{h}x{w}x{n}", *_row_argv(args)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"bench_train.py: the speed row {h}x{w}x{n} failed:\n{done.stderr[-3000:]}"
            )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  {args.model} {h}x{w} batch {n}: {row['s_per_iter_median']:.2f} s/iter, "
            f"peak RSS {row['peak_rss_mb']} MB",
            flush=True,
        )
        rows.append(row)
    return rows


def _row_argv(args: argparse.Namespace) -> list[str]:
    """The options a speed-row subprocess needs to repeat this run's settings."""
    argv = ["--model", args.model, "--loss", args.loss, "--threads", str(args.threads)]
    argv += ["--memory-format", args.memory_format]
    return argv + (["--quick"] if args.quick else []) + (["--bf16"] if args.bf16 else [])


def _max_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB: ``VmHWM`` of /proc/self/status
    (Linux), which starts afresh at exec; getrusage's ``ru_maxrss`` (the fallback) carries the
    parent's peak over into a subprocess."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def speed_row(args: argparse.Namespace, h: int, w: int, n: int) -> dict:
    """One row of the speed table, measured in this (fresh) process."""
    rss_start = _max_rss_mb()  # torch, hydra and the project imported; nothing built yet
    warmup, repeats = (1, 1) if args.quick else (1, 3)
    fmt = MEMORY_FORMATS[args.memory_format]
    torch.manual_seed(0)
    g, discriminators = load_models(args.model)
    for m in (g, *discriminators.values()):
        m.to(memory_format=fmt).train()
    batch = {k: v.contiguous(memory_format=fmt) for k, v in synthetic_batch(n, h, w).items()}
    batch = with_masks(batch)
    recon = l1_loss if args.loss == "l1_standin" else project_loss(args.loss)
    step = GANStep(g, discriminators, recon_loss=recon, bf16=args.bf16)
    load_before = os.getloadavg()[0]
    times = time_calls(lambda: step(batch), warmup, repeats)
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


MEMORY_MEASURE = (
    "peak resident set size (VmHWM, MiB) of a fresh process that imports torch and "
    "the project, builds G and both Ds, and runs the warm-up and timed iterations; "
    "peak_rss_above_imports_mb subtracts the peak before the models were built"
)


# ---------------------------------------------------------------------------------------------
# section: overhead


def _plain_loop(module, loader, steps: int) -> float:
    """Seconds for ``steps`` iterations of the module's computation without Lightning."""
    opt_g, *opt_d = module.configure_optimizers()[0]
    discs, adversarial = module.discriminators, module.loss.adversarial
    it = iter(loader)
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
        discs.requires_grad_(False)
        fake = module(batch["P1"], batch["BP1"], batch["BP2"])
        terms = module.loss(fake, batch, discs)
        opt_g.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt_g.step()
        for name, opt in zip(adversarial.ORDER, opt_d):
            discs[name].requires_grad_(True)
            loss_d = adversarial.discriminator_loss(name, discs[name], batch["P2"], fake, batch)
            opt.zero_grad(set_to_none=True)
            loss_d.backward()
            opt.step()
    return time.perf_counter() - t0


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


@section("overhead")
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

PARTS_PRESET = ["logger=csv"]  # the default run: patn_small, synthetic 128x64, batch 8, part_ssim


class _Clock:
    """Seconds per named part, summed over the iterations timed so far."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.when: dict[str, str] = {}

    def __call__(self, name: str, fn: Callable[[], object], when: str = "every step"):
        t0 = time.perf_counter()
        out = fn()
        self.seconds.setdefault(name, []).append(time.perf_counter() - t0)
        self.when[name] = when
        return out


def _term_inputs(term: str, fake: Tensor, batch: dict, features: tuple | None, discs) -> tuple:
    """The arguments of loss term ``term`` (the order of ``GeneratorLoss.forward``)."""
    from personpose.losses.config import VGG_TERMS

    if term in VGG_TERMS:
        return features
    if term == "part_ssim":
        return fake, batch["P2"], batch["mask2"]
    if term == "adversarial":
        return fake, batch, discs
    return fake, batch["P2"]


def _timed_iteration(module, optimizers, batch_iter, clock: _Clock, step_terms: set[str]) -> None:
    """One training iteration of ``module`` (``PoseTransferModule.training_step``'s order),
    each part timed by ``clock``: the loss terms of ``step_terms`` run forward on a detached
    copy of the generated image (and of the VGG features), and their gradients are carried
    back through the VGG and the generator afterwards, so each part is timed alone."""
    from personpose.losses.config import VGG_TERMS

    loss, discs, g = module.loss, module.discriminators, module.generator
    opt_g, *opt_d = optimizers
    batch = clock("data loading (one batch)", lambda: next(batch_iter))
    if discs is not None:
        discs.requires_grad_(False)
    fake = clock("generator forward", lambda: g(batch["P1"], batch["BP1"], batch["BP2"]))
    leaf = fake.detach().requires_grad_(True)
    vgg_terms = [t for t in VGG_TERMS if t in step_terms]
    features = leaves = None
    if vgg_terms:
        features = clock("VGG features forward (generated image)", lambda: loss.vgg(leaf))
        with torch.no_grad():
            target_features = clock("VGG features forward (target)", lambda: loss.vgg(batch["P2"]))
        leaves = {k: v.detach().requires_grad_(True) for k, v in features.items()}
        features_in = (leaves, target_features)
    for term in [t for t in loss.terms if t in step_terms]:
        trained = term in loss.active_terms and getattr(loss.weights, term) != 0
        args = _term_inputs(term, leaf, batch, features_in if vgg_terms else None, discs)
        with torch.set_grad_enabled(trained):
            raw = clock(f"loss {term} forward", lambda t=term, a=args: loss.terms[t](*a))
        if trained:
            weighted = getattr(loss.weights, term) * raw
            clock(f"loss {term} backward (to the image)", weighted.backward)
    if vgg_terms and any(v.grad is not None for v in leaves.values()):
        keys = [k for k, v in leaves.items() if v.grad is not None]
        clock(
            "VGG features backward",
            lambda: torch.autograd.backward(
                [features[k] for k in keys], [leaves[k].grad for k in keys]
            ),
        )
    clock("generator backward", lambda: fake.backward(leaf.grad))

    def g_step():
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)

    clock("generator Adam step", g_step)
    names = loss.adversarial.ORDER if discs is not None else ()
    for name, opt in zip(names, opt_d):

        def d_step(name=name, opt=opt):
            discs[name].requires_grad_(True)
            out = loss.adversarial.discriminator_loss(
                name, discs[name], batch["P2"], leaf.detach(), batch
            )
            out.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        clock(f"discriminator {name} step (forward, backward, Adam)", d_step)


def _validation_only_terms(module, batch: dict, clock: _Clock, step_terms: set[str]) -> None:
    """Time the terms computed for the log at validation only (not in the training step)."""
    from personpose.losses.config import VGG_TERMS

    loss = module.loss
    later = [t for t in loss.terms if t in VGG_TERMS and t not in step_terms]
    if not later or loss.vgg is None:
        return
    with torch.no_grad():
        fake = module.generator(batch["P1"], batch["BP1"], batch["BP2"])
        features = (loss.vgg(fake), loss.vgg(batch["P2"]))
        for term in later:
            clock(
                f"loss {term} forward", lambda t=term: loss.terms[t](*features), "validation only"
            )


@section("parts")
def bench_parts(args: argparse.Namespace) -> list[dict]:
    """Milliseconds per part of one training iteration of the default synthetic run (patn_small,
    128x64, batch 8, loss part_ssim; random VGG as on the synthetic set; ``--parts-overrides``
    change it), median over iterations, with the whole iteration timed separately as a check
    of the sum."""
    import lightning as L

    from personpose.data.datamodule import build_datamodule
    from personpose.run import build_module

    warmup, repeats = (1, 2) if args.quick else (2, 10)
    cfg = compose([*PARTS_PRESET, *args.parts_overrides])
    L.seed_everything(0, verbose=False)
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()

    def batches():
        while True:
            for batch in loader:
                yield datamodule.on_after_batch_transfer(batch, 0)

    batch_iter = batches()
    module = build_module(cfg, datamodule.steps_per_epoch_for(1), allow_random_vgg=True)
    module.train()
    optimizers = module.configure_optimizers()
    optimizers = optimizers[0] if isinstance(optimizers, tuple) else optimizers
    probe = next(batch_iter)
    with torch.no_grad():
        fake = module.generator(probe["P1"], probe["BP1"], probe["BP2"])
        computed = module.loss(fake, probe, module.discriminators)
    step_terms = {k for k in computed if k in module.loss.terms}  # what a training call computes
    clock = _Clock()
    for i in range(warmup + repeats):
        if i == warmup:
            clock = _Clock()
        _timed_iteration(module, optimizers, batch_iter, clock, step_terms)
    _validation_only_terms(module, probe, clock, step_terms)
    whole = [_plain_loop(module, batch_iter, 1) for _ in range(repeats)]  # data loading included
    ms = {name: 1e3 * statistics.median(s) for name, s in clock.seconds.items()}
    step_ms = sum(v for name, v in ms.items() if clock.when[name] == "every step")
    ms["sum of the parts"] = step_ms
    ms["whole iteration, timed alone"] = 1e3 * statistics.median(whole)
    h, w = cfg.data.image_size
    terms = "+".join(k for k, v in cfg.loss.items() if OmegaConf.is_dict(v) and v.get("enabled"))
    rows = []
    for name, value in ms.items():
        when = clock.when.get(name, "every step")
        share = round(100 * value / step_ms, 1) if when == "every step" else None
        rows.append(
            {
                "part": name,
                "when": when,
                "ms_median": round(value, 1),
                "share_of_step_pct": share,
                "model": cfg.model.name,
                "loss_terms": terms,
                "batch": f"{cfg.data.batch_size}x3x{h}x{w}",
                "repeats": repeats,
            }
        )
    print(
        f"  parts sum {step_ms:.0f} ms, whole iteration {ms['whole iteration, timed alone']:.0f} ms"
    )
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
    p.add_argument(
        "--loss",
        default="part_ssim",
        help="conf/loss/<name>.yaml for the generator (default part_ssim); l1_standin: 10*L1",
    )
    p.add_argument(
        "--parts-overrides",
        nargs="*",
        default=[],
        metavar="OVERRIDE",
        help="run-config overrides of the parts section (default: the default run)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--speed-row", type=_size, help=argparse.SUPPRESS)  # internal: one row, JSON
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.speed_row is not None:  # a subprocess of bench_speed: one row as JSON on stdout
        row = speed_row(args, *args.speed_row)
        print(json.dumps(row))
        return row
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "memory_measure": MEMORY_MEASURE,  # how peak_rss_mb is measured (speed rows)
        "sections": {},
    }
    for name in args.sections:
        print(f"## {name}", flush=True)
        rows = SECTIONS[name](args)
        results["sections"][name] = rows
        print(markdown_table(rows), flush=True)
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
