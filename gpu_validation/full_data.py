r"""The whole CIFAR-10 training set: step decay with WD against its exact exponential-LR twins.

``python -m gpu_validation.full_data --data PATH --out DIR`` (also ``python -m gpu_validation
--full-data ...``) trains, from one θ_0 and one batch/augmentation stream, in lockstep:

- ``a``: stock ``torch.optim.SGD(lr=η, momentum=γ, weight_decay=λ)`` + stock ``MultiStepLR``
  (step decay; milestones at 1/2 and 3/4 of the steps, or at ``--milestone-epochs``, stepped
  per step at milestone·steps-per-epoch: the LR sequence of a per-epoch ``MultiStepLR``);
- ``b``: ``equivalence.convert(...)`` of the same recipe (no weight decay, η̃_t = η_t/(c_t c_{t+1}),
  running statistics corrected, BN eps at ε·m_t², power-of-two rescaling): the lockstep
  harness's ``converted`` twin;
- ``c``: TEXP, the paper's tapered exponential (``equivalence.convert(..., form="texp")``: the
  precomputed schedule with its momentum-buffer shifts; the harness's ``converted("texp")``
  twin, as :mod:`gpu_validation.recipes` builds recipe c); ``--no-texp`` leaves it out;
- ``floor``: recipe a again, the same run in exact arithmetic, with every rounding changed:
  float32's noise floor, how far rounding alone moves a training run. It is the lockstep
  harness's noise-floor twin (``equivalence.verify.lockstep.perturbed``) with all three of its
  perturbations, its draws made on the run's device: every initial weight one ulp up (stock
  SGD + stock scheduler), the samples of every batch fed in another (seeded) order (every
  batch sum — BatchNorm's statistics, the weight gradients — rounds differently), and every
  trainable weight moved by ``--jitter-ulps`` = 4 ulps in a random direction after every step
  (``--no-floor`` drops the twin). b's weights
  θ̃ = m_t θ are not bit-exact, so *every* rounding of its forward and backward passes
  differs from a's at every step; a twin that only perturbs the weights keeps most of a's
  roundings and underestimates that (measured: 8 steps on 256 images, seed 1, a weight-only
  twin stayed at 2.6e-6 while b reached 1.3e-4, because the float32 gradient of the first
  convs there is only accurate to 2e-3). One twin is one sample of the floor (the project's
  float32 test takes the maximum of several).

The four runs are driven through the harness's twin protocol (``order``, ``step``, ``scale``)
in one loop, and b and c are each judged by the harness's error model
(:func:`equivalence.verify.noise_floor.judge` with k = 0 and ``saturated="keep"``):
err_t ≤ 3·E_t at every logged step (every ``--check-every`` steps and the last), E_t the
floor's running maximum over the logged steps. In float32 on this network the floor passes
the predictability level 1e-3 within a few steps (measured: 256 images, batch 32, step 3;
reported as ``floor_horizon``), so the claim judged over the whole run is "b (c) is no
farther from a than rounding alone carries a", not rounding-level agreement. The divergences
are those of :mod:`equivalence.verify.noise_floor` (max over tensors of ‖·‖_∞-relative
errors, ``rel_err``; the parameters and the train-mode outputs at each logged step, the eval
outputs on the probe batch every ``probe_every`` steps); L2 divergences are recorded for the
plots.

The network is the scale-invariant PreResNet (:mod:`gpu_validation.model`: BN without affine
parameters, frozen last layer, every conv in the scale-invariant set), float32, BatchNorm
with its real eps. BN's eps breaks the invariance unless it scales with the weights: a
normaliser (x − μ)/√(σ² + ε) fed m·x gives the same output with ε·m² (the project's
normaliser-eps result, ``proofs/normaliser_eps.py``): the converter keeps b's and c's BN eps
at ε·m_t² (``--no-eps-follow`` turns it off for b and shows the gap).

``--device cuda`` keeps the data, the augmentation, the models and every per-step quantity
on the GPU: nothing is read to the host except at logged steps (one read of all their
figures), at the end of an epoch and at the monitors' flushes (one per epoch).
``--compile default|reduce-overhead`` runs each of the four networks through
``torch.compile`` with that mode (a and the floor as stock modules; b's and c's normalisers
made traceable first, ``run.make_compilable()`` for b and
``equivalence.optim.compile_norms.make_traceable`` for c's precomputed schedule, so that
their eps, which changes every step, is read from a tensor and one graph serves the run;
docs/converting.md). The optimizers stay eager and stock; evaluation runs the eager modules.
Not run on a GPU yet; on the CPU ``default`` is tested on a tiny configuration (slow test).

The :class:`equivalence.Monitor` is attached to a and b (groups from
:func:`equivalence.audit`). Reported (``DIR/full_data.json``, plots ``DIR/*.png``, monitor logs
``DIR/monitor_a.csv``, ``DIR/monitor_b.csv``): the test accuracies of all four runs and how
many test predictions agree with a's, the divergences ‖θ_b/m_t − θ_a‖/‖θ_a‖ (likewise c) and
the probe-output distances over training against the floor's (the verdicts above; the
whole-run ratios of running maxima are reported too, descriptive past H), the weight norm
growing in b and c while the function stays a's, the effective-LR and angular-update curves,
and the timing (``timing``): wall time per lockstep step of the four runs, each run's share
of it (sampled at logged steps: CUDA events on a GPU), and the bare forward+backward (and
stock SGD step) of the same network on the same device at the same batch size, measured warm
in the same process.

``--paper`` is the paper's CIFAR-10 recipe (:data:`PAPER`): PreResNet32 (width 16), batch
128, 160 epochs, η = 0.1 → 0.01 → 0.001 at epochs 80 and 120, λ = 5e-4, γ = 0.9, all 50,000
train and 10,000 test images, float32, BN eps 1e-5. That is 160 × 391 = 62,560 lockstep
steps, 4 × 62,560 = 250,240 network steps (forward, backward, update) for the four runs. It
fits 8 minutes only at about 1.9 ms per network step (7.7 ms per lockstep step of all four
runs), evaluation included; it has not been measured on a GPU. ``--stop-after-epochs N``
writes a checkpoint (``DIR/checkpoint.pt``: the four models, optimizers, schedulers and
conversion states, the monitors, the traces so far, every generator and the step count)
after epoch N and stops; ``--resume`` continues from it, bit-identically to an uninterrupted
run (same code path; tested on the CPU; on a GPU only with ``--deterministic`` kernels).
``gpu_validation/run_full_recipe.sh`` is the device command.

``--smoke`` (:data:`SMOKE`): 256 images, 8 steps, the same code path, the same judgement, all
four runs (seconds on a CPU). The defaults (depth 8, width 8, batch 128, 3 epochs = 1,173
steps) took about 6 minutes with three models (a, b, floor) on one core of a busy 2-core
machine (measured; ``--epochs 1``: about 2 minutes); c adds a fourth model.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence
from equivalence.monitor import Monitor, groups_from_audit, plot_all
from equivalence.optim.compile_norms import make_traceable
from equivalence.verify.lockstep import (
    ConvertedTwin,
    SGDRecipe,
    Twin,
    TwinFactory,
    converted,
    perturbed,
)
from equivalence.verify.noise_floor import FLOOR_FACTOR, U32, U64, Floor, Trace, judge

from .augment import DeviceAugmenter, normalize
from .data import default_data_path, load_cifar10
from .model import PreResNet, conv_weights, init_weights, norm_layers

__all__ = [
    "CHECKPOINT",
    "COMPILE_MODES",
    "PAPER",
    "SMOKE",
    "FullDataConfig",
    "attach_monitors",
    "build_parser",
    "main",
    "max_rel_err",
    "run_full_data",
    "write_monitors",
]

#: ``--compile`` modes (``none``: eager)
COMPILE_MODES = ("none", "default", "reduce-overhead")
DEVICES = ("cpu", "cuda")
C_SCHEDULES = ("recipe", "constant")
#: the checkpoint's file name in the output directory
CHECKPOINT = "checkpoint.pt"
_CHECKPOINT_FORMAT = 1

#: the paper's CIFAR-10 recipe (``--paper``); flags given with it override its values
PAPER: dict[str, Any] = {
    "depth": 32,
    "width": 16,
    "batch_size": 128,
    "epochs": 160,
    "milestone_epochs": (80, 120),
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "lr_gamma": 0.1,
    "bn_eps": 1e-5,
    "n_train": None,
    "n_test": None,
    "dtype": "float32",
}

#: ``--smoke``: a few steps on real images, the same code path and judgement, all four runs
SMOKE: dict[str, Any] = {
    "n_train": 256,
    "n_test": 128,
    "batch_size": 32,
    "epochs": 1,
    "depth": 8,
    "width": 8,
    "check_every": 1,
    "probe_every": 4,
    "probe_size": 64,
    "bench_iters": 3,
}

_PRESETS = {"paper": PAPER, "smoke": SMOKE}

#: settings that may differ between a checkpointed invocation and the one resuming it
_RUN_CONTROL = frozenset(
    {
        "data",
        "out",
        "cache_dir",
        "threads",
        "progress",
        "plots",
        "stop_after_epochs",
        "resume",
        "checkpoint_every",
        "bench_iters",
        "preset",
    }
)


@dataclass(frozen=True)
class FullDataConfig:
    """Settings of the full-data run; invalid values raise naming the field, its value and range."""

    data: str | None = None
    out: str = "out/full_data"
    cache_dir: str | None = None
    epochs: int = 3
    depth: int = 8
    width: int = 8
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_gamma: float = 0.1
    milestone_fractions: tuple[float, ...] = (0.5, 0.75)
    #: LR drops after these epochs (per-epoch ``MultiStepLR``); None: ``milestone_fractions``
    milestone_epochs: tuple[int, ...] | None = None
    bn_eps: float = 1e-5
    n_train: int | None = None  # None: all 50,000
    n_test: int | None = None  # None: all 10,000
    seed: int = 0
    threads: int | None = None
    floor: bool = True
    texp: bool = True  # recipe c (TEXP) as a fourth run
    #: what c converts: "recipe" (a's step decay) or "constant" (η throughout: a negative
    #: control that must fail the judgement once a's LR drops)
    c_schedule: str = "recipe"
    eps_follow: bool = True
    check_every: int = 10
    probe_every: int = 50
    probe_size: int = 256
    monitor_every: int = 1
    channels_last: bool = True
    progress: bool = True
    dtype: str = "float32"  # "float64" for exactness checks at rounding level (tests)
    jitter_ulps: float = 4.0  # the floor twin's per-step perturbation (relative 2^-24 · this)
    plots: bool = True
    device: str = "cpu"
    compile: str = "none"
    deterministic: bool = False  # torch.use_deterministic_algorithms (bitwise resume on CUDA)
    stop_after_epochs: int | None = None  # checkpoint and stop once this many epochs are done
    resume: bool = False  # continue from DIR/checkpoint.pt
    checkpoint_every: int = 0  # also checkpoint every this many epochs (0: at the stop/end only)
    bench_iters: int = 20  # timed iterations of the bare forward+backward (0: skip)
    preset: str | None = None  # "paper" or "smoke": informational, set by the command line

    def __post_init__(self) -> None:
        for name, lo in (
            ("epochs", 1),
            ("depth", 8),
            ("width", 1),
            ("batch_size", 1),
            ("check_every", 1),
            ("probe_every", 1),
            ("probe_size", 2),
            ("monitor_every", 1),
            ("seed", 0),
            ("checkpoint_every", 0),
            ("bench_iters", 0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an integer, got {v!r}")
            if v < lo:
                raise ValueError(f"{name} = {v!r} is outside the valid range [{lo}, inf)")
        if (self.depth - 2) % 6:
            raise ValueError(f"depth = {self.depth!r} must be 6n + 2 (8, 14, 20, ...)")
        for name in ("n_train", "n_test", "threads"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} = {v!r} is outside the valid range [1, inf) (or None)")
        checks = (
            ("lr", self.lr, 0, math.inf, False),
            ("momentum", self.momentum, 0, 1, True),
            ("weight_decay", self.weight_decay, 0, math.inf, False),
            ("lr_gamma", self.lr_gamma, 0, 1, False),
            ("bn_eps", self.bn_eps, 0, math.inf, False),
        )
        for name, v, lo, hi, lo_ok in checks:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise TypeError(f"{name} must be a finite real number, got {v!r}")
            if not ((lo <= v if lo_ok else lo < v) and (v <= hi if name == "lr_gamma" else v < hi)):
                raise ValueError(f"{name} = {v!r} is outside the valid range ({lo}, {hi})")
        if self.texp and self.lr * self.weight_decay > (1 - math.sqrt(self.momentum)) ** 2:
            raise ValueError(
                f"lr * weight_decay = {self.lr * self.weight_decay:.6g} is outside the valid "
                f"range (0, (1 - sqrt(momentum))**2 = {(1 - math.sqrt(self.momentum)) ** 2:.6g}] "
                "of TEXP (recipe c has no real root α there); lower them or pass texp=False"
            )
        for name, v, valid in (
            ("dtype", self.dtype, ("float32", "float64")),
            ("device", self.device, DEVICES),
            ("compile", self.compile, COMPILE_MODES),
            ("c_schedule", self.c_schedule, C_SCHEDULES),
            ("preset", self.preset, (None, *_PRESETS)),
        ):
            if v not in valid:
                raise ValueError(f"{name} = {v!r} is not one of {', '.join(map(repr, valid))}")
        if (
            isinstance(self.jitter_ulps, bool)
            or not isinstance(self.jitter_ulps, (int, float))
            or not (0 <= self.jitter_ulps < 1e6)
        ):
            raise ValueError(
                f"jitter_ulps = {self.jitter_ulps!r} is outside the valid range [0, 1e6)"
            )
        fr = tuple(self.milestone_fractions)
        if any(not 0 < f < 1 for f in fr) or list(fr) != sorted(set(fr)):
            raise ValueError(
                f"milestone_fractions = {self.milestone_fractions!r} must be increasing, each in (0, 1)"
            )
        object.__setattr__(self, "milestone_fractions", fr)
        if self.milestone_epochs is not None:
            me = tuple(self.milestone_epochs)
            if (
                any(isinstance(e, bool) or not isinstance(e, int) for e in me)
                or any(not 0 < e < self.epochs for e in me)
                or list(me) != sorted(set(me))
            ):
                raise ValueError(
                    f"milestone_epochs = {self.milestone_epochs!r} must be increasing integers, "
                    f"each in [1, epochs - 1 = {self.epochs - 1}]"
                )
            object.__setattr__(self, "milestone_epochs", me)
        if self.probe_every % self.check_every:
            raise ValueError(
                f"probe_every = {self.probe_every!r} must be a multiple of check_every = "
                f"{self.check_every!r} (the probe is read at logged steps only)"
            )
        if self.stop_after_epochs is not None:
            v = self.stop_after_epochs
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= self.epochs:
                raise ValueError(
                    f"stop_after_epochs = {v!r} is outside the valid range [1, epochs = "
                    f"{self.epochs}] (or None)"
                )

    @classmethod
    def paper(cls, **overrides: Any) -> FullDataConfig:
        """The paper's recipe (:data:`PAPER`), with ``overrides`` on top."""
        return cls(**{**PAPER, "preset": "paper", **overrides})

    def is_paper_recipe(self) -> bool:
        """Every setting of :data:`PAPER` holds (whatever the preset)."""
        return all(getattr(self, k) == v for k, v in PAPER.items())

    def milestones(self, steps_per_epoch: int) -> list[int]:
        """The steps after which the LR drops: milestone epochs × steps per epoch, or the
        fractions of all steps rounded (0 and the last step left out)."""
        total = steps_per_epoch * self.epochs
        if self.milestone_epochs is not None:
            return [e * steps_per_epoch for e in self.milestone_epochs]
        return sorted({round(f * total) for f in self.milestone_fractions} - {0, total})


# -- helpers -------------------------------------------------------------------------------------


def _flat(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in params])


def _rel_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖₂ / ‖b‖₂ as a 0-dim device tensor (``gpu_validation.measure.rel`` without the read)."""
    return torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-300)


def max_rel_err(mine: Sequence[torch.Tensor], theirs: Sequence[torch.Tensor]) -> torch.Tensor:
    """max_i ‖a_i − b_i‖_∞ / ‖b_i‖_∞ as a 0-dim float64 tensor on the tensors' device.

    Each ratio is :func:`equivalence.verify.noise_floor.rel_err` of one pair (0 when both are
    zero, inf when only b_i is), computed with fused norms and no host read; the maxima of
    |·| are exact, so the value equals the host version's bit for bit.
    """
    diffs = torch._foreach_sub(list(mine), list(theirs))
    num = torch.stack(torch._foreach_norm(diffs, math.inf)).double()
    den = torch.stack(torch._foreach_norm(list(theirs), math.inf)).double()
    inf = torch.full_like(num, math.inf)
    ratio = torch.where(den > 0, num / den, torch.where(num > 0, inf, torch.zeros_like(num)))
    return ratio.max()


@torch.no_grad()
def _eval(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000
) -> tuple[float, torch.Tensor]:
    was = model.training
    model.eval()
    preds = torch.cat([model(x[s : s + batch]).argmax(1) for s in range(0, x.shape[0], batch)])
    model.train(was)
    return float((preds == y).double().mean()), preds


@torch.no_grad()
def _probe(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode outputs (running statistics) on the probe batch, float64."""
    was = model.training
    model.eval()
    out = model(x).double()
    model.train(was)
    return out


def _machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _named_groups(report: Any) -> dict[str, list[str]]:
    """The audit's scale-invariant groups as parameter names (to pick them in each model copy)."""
    ids = {id(p): n for n, p in report.model.named_parameters()}
    return {g: [ids[id(p)] for p in ts] for g, ts in groups_from_audit(report).items()}


def _pick(model: nn.Module, named: dict[str, list[str]]) -> dict[str, list[torch.Tensor]]:
    params = dict(model.named_parameters())
    return {g: [params[n] for n in names] for g, names in named.items()}


def attach_monitors(
    recipes: Sequence[Any], example: torch.Tensor, every: int = 1
) -> dict[str, Monitor]:
    """Attach an :class:`equivalence.Monitor` to each recipe of the GPU run (``--monitor``).

    ``recipes`` are :class:`gpu_validation.recipes.Recipe` objects (``name``, ``model``,
    ``optimizer``, and ``twin``: the converted twin, None for the stock recipe a); the groups
    come from one audit of the first model on ``example`` (a few images). Returns name ->
    monitor.
    """
    first = recipes[0].model
    report = equivalence.audit(first, example, loss_fn=lambda out: out.logsumexp(1).mean())
    named = _named_groups(report)
    out: dict[str, Monitor] = {}
    for r in recipes:
        groups = _pick(r.model, named)
        if r.twin is not None:  # a converted recipe: online (b) or precomputed (c)
            out[r.name] = Monitor.for_run(r.twin.run, groups, every=every, flush_every=1024)
        else:
            out[r.name] = Monitor(r.optimizer, groups, every=every, flush_every=1024)
    return out


def write_monitors(
    monitors: dict[str, Monitor], out_dir: str | Path, plots: bool = True
) -> dict[str, Any]:
    """Close the monitors, write their CSV/JSON logs (and plots) into ``out_dir``; the summaries."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, m in monitors.items():
        m.close()
        m.to_csv(out / f"monitor_{name}.csv")
        m.to_json(out / f"monitor_{name}.json")
    if plots:
        plot_all({f"recipe {k}": v for k, v in monitors.items()}, out)
    return {k: v.summary() for k, v in monitors.items()}


# -- timing ---------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """Time stamps inside the lockstep loop without a host sync: CUDA events on a GPU (read
    after the logged step's one read, when they have completed), ``perf_counter`` on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def ms(self, t0: Any, t1: Any) -> float:
        if self.cuda:
            return float(t0.elapsed_time(t1))
        return (t1 - t0) * 1e3


def _bare_step_ms(
    base: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    compile_mode: str,
    iters: int,
    momentum: float,
    weight_decay: float,
) -> dict[str, Any]:
    """Warm per-iteration time of forward + backward (and of forward + backward + stock SGD
    step) of a copy of ``base`` on (x, y), synchronised on CUDA; ``compile_mode`` as the runs."""
    dev = x.device
    model = copy.deepcopy(base)
    fwd = _compiled(model, compile_mode)
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=1e-3,
        momentum=momentum,
        weight_decay=weight_decay,
    )

    def one(update: bool) -> None:
        _mark_step(compile_mode)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(fwd(x), y).backward()
        if update:
            opt.step()

    out: dict[str, Any] = {"iters": iters, "batch": int(x.shape[0]), "compile": compile_mode}
    for key, update in (("fwd_bwd_ms", False), ("train_step_ms", True)):
        for _ in range(3):
            one(update)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(iters):
            one(update)
        _sync(dev)
        out[key] = (time.perf_counter() - t0) * 1e3 / iters
    return out


# -- building the runs ----------------------------------------------------------------------------


def _compiled(model: nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if mode == "none":
        return model
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile = {mode!r} is not one of {', '.join(map(repr, COMPILE_MODES))}")
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=False)


def _mark_step(mode: str) -> None:
    """Tell CUDA-graph trees (``reduce-overhead``) that a new iteration begins."""
    if mode == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()


def _make_compilable(tw: Twin) -> None:
    """Give a converted twin's normalisers an eps tensor (one graph although eps changes every
    step): ``run.make_compilable()`` for the online conversion (b); for a precomputed schedule
    (c) ``make_traceable`` of its normalisers, whose eps tensors its ``EquivalentLR`` fills."""
    if not isinstance(tw, ConvertedTwin):
        return
    if tw.run.converter is not None:
        tw.run.make_compilable()
    else:
        make_traceable(norm_layers(tw.model))


def _scheduler(tw: Twin) -> Any:
    """The twin's scheduler: the conversion's for b and c, the stock one for a and the floor."""
    if isinstance(tw, ConvertedTwin):
        return tw.run.scheduler
    return getattr(tw, "scheduler", None)


def _build_runs(
    cfg: FullDataConfig, base: nn.Module, names: list[str], total: int, milestones: list[int]
) -> dict[str, Twin]:
    recipe = SGDRecipe(
        cfg.lr,
        cfg.momentum,
        cfg.weight_decay,
        lr_scheduler=lambda o: MultiStepLR(o, milestones=milestones, gamma=cfg.lr_gamma),
    )
    constant = SGDRecipe(cfg.lr, cfg.momentum, cfg.weight_decay)
    # a: the stock recipe itself (a twin with no perturbation: stock SGD + stock MultiStepLR)
    plan: list[tuple[str, TwinFactory, SGDRecipe]] = [
        ("a", perturbed(), recipe),
        ("b", converted("general", adjust_eps=cfg.eps_follow), recipe),
    ]
    if cfg.texp:
        plan.append(("c", converted("texp"), recipe if cfg.c_schedule == "recipe" else constant))
    if cfg.floor:
        floor = perturbed(
            ulp=1, permute_seed=cfg.seed + 2, jitter_seed=cfg.seed + 1, jitter_ulps=cfg.jitter_ulps
        )
        plan.append(("floor", floor, recipe))
    return {k: factory(copy.deepcopy(base), rec, names, total) for k, factory, rec in plan}


def _floor_generators(runs: dict[str, Twin]) -> dict[str, torch.Generator]:
    """The floor twin's generators (batch order, jitter): part of the checkpoint."""
    floor = runs.get("floor")
    gens = {"permute": getattr(floor, "perm", None), "jitter": getattr(floor, "jitter", None)}
    return {k: g for k, g in gens.items() if isinstance(g, torch.Generator)}


# -- the record and the checkpoint ----------------------------------------------------------------


@dataclass
class _Record:
    """Everything recorded so far (carried by the checkpoint)."""

    others: list[str]
    series: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    logged_steps: list[int] = field(default_factory=list)
    trace: dict[str, list[float]] = field(default_factory=dict)
    probe: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for k in self.others:
            self.series.setdefault(k, {"param": [], "train_out": [], "eval_out": []})
            self.trace.setdefault(f"param_{k}", [])
            self.probe.setdefault(k, [])
        self.trace.setdefault("step", [])
        self.probe.setdefault("step", [])


def _resume_key(cfg: FullDataConfig) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RUN_CONTROL}


def _checkpoint(
    cfg: FullDataConfig,
    epoch: int,
    step: int,
    runs: dict[str, Twin],
    monitors: dict[str, Monitor],
    data_gen: torch.Generator,
    record: _Record,
) -> dict[str, Any]:
    gens = {k: g.get_state() for k, g in _floor_generators(runs).items()}
    sch = {k: _scheduler(tw) for k, tw in runs.items()}
    return {
        "format": _CHECKPOINT_FORMAT,
        "config": _resume_key(cfg),
        "epoch": epoch,
        "step": step,
        "models": {k: tw.model.state_dict() for k, tw in runs.items()},
        "optimizers": {k: tw.optimizer.state_dict() for k, tw in runs.items()},
        "schedulers": {k: (s.state_dict() if s is not None else None) for k, s in sch.items()},
        "floor_generators": gens,
        "data_generator": data_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "monitors": {k: m.state_dict() for k, m in monitors.items()},
        "record": dataclasses.asdict(record),
    }


def _save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_checkpoint(cfg: FullDataConfig, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"resume = True but there is no checkpoint at {path}")
    # the project's own file: Python lists, dicts, the monitors' trackers and tensors
    ckpt: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {ckpt.get('format')!r}, expected {_CHECKPOINT_FORMAT}"
        )
    mine, theirs = _resume_key(cfg), ckpt["config"]
    diffs = [
        f"{k} = {theirs.get(k)!r} (checkpoint) vs {mine[k]!r} (this run)"
        for k in mine
        if _jsonable(theirs.get(k)) != _jsonable(mine[k])
    ]
    if diffs:
        raise ValueError(f"{path} was written by a different run: " + "; ".join(diffs))
    if cfg.stop_after_epochs is not None and cfg.stop_after_epochs <= ckpt["epoch"]:
        raise ValueError(
            f"stop_after_epochs = {cfg.stop_after_epochs} but the checkpoint {path} is at epoch "
            f"{ckpt['epoch']}: give a later epoch (at most epochs = {cfg.epochs})"
        )
    return ckpt


def _restore(
    ckpt: dict[str, Any],
    runs: dict[str, Twin],
    monitors: dict[str, Monitor],
    data_gen: torch.Generator,
) -> _Record:
    if set(ckpt["models"]) != set(runs):
        raise ValueError(f"the checkpoint holds runs {sorted(ckpt['models'])}, not {sorted(runs)}")
    for k, tw in runs.items():
        tw.model.load_state_dict(ckpt["models"][k])
        tw.optimizer.load_state_dict(ckpt["optimizers"][k])  # b: the conversion's state too
        s = _scheduler(tw)
        if s is not None:
            s.load_state_dict(ckpt["schedulers"][k])
    for k, g in _floor_generators(runs).items():
        g.set_state(ckpt["floor_generators"][k])
    data_gen.set_state(ckpt["data_generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    if ckpt["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    for k, m in monitors.items():
        m.load_state_dict(ckpt["monitors"][k])
    return _Record(**ckpt["record"])


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[list[bool]]:
    """A flag set by SIGTERM (``timeout``): the run checkpoints at the end of the epoch and stops."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        flag[0] = True

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, old)


# -- the run ---------------------------------------------------------------------------------------


def run_full_data(cfg: FullDataConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a, b, c and the floor over the training set in lockstep; write and return the results.

    The runs are the lockstep harness's (:mod:`equivalence.verify.lockstep`): a = the stock
    :class:`~equivalence.verify.lockstep.SGDRecipe` (stock SGD + stock ``MultiStepLR``), b =
    its :func:`~equivalence.verify.lockstep.converted` twin, c = its ``converted("texp")``
    twin, floor = its :func:`~equivalence.verify.lockstep.perturbed` twin with every
    rounding changed (one ulp, batch order, ``jitter_ulps`` ulps per step, drawn on the
    run's device); the verdict on b and on c is :func:`equivalence.verify.noise_floor.judge` of its
    divergence against that floor (k = 0: the floor alone, F = 3, every logged step:
    ``saturated="keep"``). With ``stop_after_epochs`` the run checkpoints and stops there;
    with ``resume`` it continues from ``out/checkpoint.pt``. A checkpoint is also written at
    the end (and every ``checkpoint_every`` epochs), and on SIGTERM at the end of the epoch.
    """
    t_start = time.perf_counter()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device = 'cuda' but torch.cuda.is_available() is False")
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    path = cfg.data or default_data_path()
    if path is None:
        raise FileNotFoundError(
            "CIFAR-10 not found: give --data (cifar10_jpeg.npz or a torchvision root)"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = _load_checkpoint(cfg, out / CHECKPOINT) if cfg.resume else None
    t0 = time.perf_counter()
    data = load_cifar10(path, n_train=cfg.n_train, n_test=cfg.n_test, cache_dir=cfg.cache_dir)
    load_s = time.perf_counter() - t0
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    unit = U64 if cfg.dtype == "float64" else U32
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format
    aug = DeviceAugmenter(data.train_x, data.train_y, dev, dtype, cfg.channels_last)
    test_x = normalize(torch.from_numpy(data.test_x).to(dev), dtype, cfg.channels_last)
    test_y = torch.from_numpy(data.test_y).to(dev)
    probe_x = test_x[: cfg.probe_size]
    n = aug.n
    spe = -(-n // cfg.batch_size)
    total = spe * cfg.epochs
    milestones = cfg.milestones(spe)

    base = PreResNet(cfg.depth, cfg.width, bn_eps=cfg.bn_eps).to(torch.float64)
    init_weights(base, torch.Generator().manual_seed(cfg.seed))
    base = base.to(dtype=dtype, memory_format=mf)  # type: ignore[call-overload]
    names = [n_ for n_, p in base.named_parameters() if p.requires_grad]
    by_id = {id(p): n_ for n_, p in base.named_parameters()}
    if sorted(names) != sorted(by_id[id(p)] for p in conv_weights(base)):
        raise RuntimeError("expected the conv weights to be the only trainable parameters")
    t0 = time.perf_counter()
    report = equivalence.audit(  # on the CPU, before the copies move to the device
        copy.deepcopy(base).to(memory_format=torch.contiguous_format),
        test_x[:4].cpu().contiguous(),
        loss_fn=lambda o: o.logsumexp(1).mean(),
    )
    named = _named_groups(report)
    audit_s = time.perf_counter() - t0
    base = base.to(dev)

    runs = _build_runs(cfg, base, names, total, milestones)
    models = {k: r.model for k, r in runs.items()}
    params = {k: conv_weights(m) for k, m in models.items()}
    norm0 = float(_flat(params["a"]).norm())
    conv = {k: tw for k, tw in runs.items() if isinstance(tw, ConvertedTwin)}
    # flushed by hand at the end of every epoch (one host read), never inside one
    every = cfg.monitor_every
    monitors = {
        "a": Monitor(
            runs["a"].optimizer, _pick(models["a"], named), every=every, flush_every=spe + 1
        ),
        "b": Monitor.for_run(
            conv["b"].run, _pick(models["b"], named), every=every, flush_every=spe + 1
        ),
    }
    others = [k for k in runs if k != "a"]
    gen = torch.Generator().manual_seed(cfg.seed)
    record = _Record(others)
    start_epoch, step = 0, 0
    if ckpt is not None:
        record = _restore(ckpt, runs, monitors, gen)
        start_epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
        del ckpt
    start_step = step
    if cfg.compile != "none":
        for tw in runs.values():
            _make_compilable(tw)
    fwd = {k: _compiled(tw.model, cfg.compile) for k, tw in runs.items()}
    stop_epoch = cfg.epochs if cfg.stop_after_epochs is None else cfg.stop_after_epochs

    clock = _Clock(dev)
    run_ms: dict[str, list[float]] = {k: [] for k in runs}
    lockstep_ms: list[float] = []
    epoch_s: list[float] = []
    zero_i = torch.zeros((), dtype=torch.int64, device=dev)
    log(
        f"full data: {n} training images, {spe} steps per epoch, {total} steps, {len(runs)} runs "
        f"({', '.join(runs)}) on {dev}, compile {cfg.compile}, {torch.get_num_threads()} threads"
        + (f"; resuming after epoch {start_epoch}" if start_epoch else "")
    )
    t_train = time.perf_counter()
    epoch = start_epoch
    with _stop_on_sigterm() as stop_flag:
        while epoch < stop_epoch and not stop_flag[0]:
            _sync(dev)
            te = time.perf_counter()
            x_ep, y_ep = aug.epoch(gen)
            correct = {k: zero_i.clone() for k in runs}
            for s in range(0, n, cfg.batch_size):
                xb, yb = x_ep[s : s + cfg.batch_size], y_ep[s : s + cfg.batch_size]
                if cfg.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logged = (step + 1) % cfg.check_every == 0 or step + 1 == total
                outs: dict[str, torch.Tensor] = {}
                marks = [clock.now()] if logged else []
                for k, tw in runs.items():  # the harness's twin protocol, as lockstep.run drives it
                    tw.optimizer.zero_grad(set_to_none=True)
                    perm = tw.order(yb.shape[0])  # the floor: the batch in another order
                    xo, yo = (xb, yb) if perm is None else (xb[perm], yb[perm])
                    _mark_step(cfg.compile)
                    outp = fwd[k](xo)
                    if logged:  # in a's sample order; a copy (CUDA graphs reuse their outputs)
                        o = outp.detach()
                        outs[k] = (o if perm is None else o[torch.argsort(perm)]).clone()
                    F.cross_entropy(outp, yo).backward()
                    correct[k] += (outp.detach().argmax(1) == yo).sum()
                    tw.step(step)
                    if logged:
                        marks.append(clock.now())
                step += 1
                if logged:
                    probing = step % cfg.probe_every == 0 or step == total
                    _log_step(step, runs, params, outs, models, probe_x, probing, record)
                    for i, k in enumerate(runs):
                        run_ms[k].append(clock.ms(marks[i], marks[i + 1]))
                    lockstep_ms.append(clock.ms(marks[0], marks[-1]))
                    if cfg.progress and step % max(spe // 10, 1) < cfg.check_every:
                        log(
                            f"  step {step}/{total}: parameter divergence "
                            + ", ".join(f"{k} {record.trace[f'param_{k}'][-1]:.2e}" for k in others)
                            + f"; {time.perf_counter() - t_train:.0f} s"
                        )
            _sync(dev)
            train_s = time.perf_counter() - te
            epoch_s.append(train_s)
            for m in monitors.values():
                m.flush()
            ep = _epoch_record(epoch, step, train_s, correct, n, models, test_x, test_y)
            record.epochs.append(ep)
            log(
                f"epoch {epoch + 1}: test acc "
                + ", ".join(f"{k} {v:.4f}" for k, v in ep["test_acc"].items())
                + f"; {train_s:.1f} s"
            )
            epoch += 1
            if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0 and epoch < stop_epoch:
                _save(_checkpoint(cfg, epoch, step, runs, monitors, gen, record), out / CHECKPOINT)
    train_s = time.perf_counter() - t_train

    bench = None
    if cfg.bench_iters:
        reps = -(-cfg.batch_size // test_x.shape[0])
        bx = torch.cat([test_x] * reps)[: cfg.batch_size]
        by = torch.cat([test_y] * reps)[: cfg.batch_size]
        if cfg.channels_last:
            bx = bx.contiguous(memory_format=torch.channels_last)
        bench = _bare_step_ms(
            base, bx, by, cfg.compile, cfg.bench_iters, cfg.momentum, cfg.weight_decay
        )
    record.invocations.append(
        {
            "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "compile": cfg.compile,
            "epochs": [start_epoch, epoch],
            "steps": step - start_step,
            "train_loop_s": train_s,
            "epoch_s": epoch_s,
            "lockstep_ms_samples": len(lockstep_ms),
            "lockstep_ms_median": _median(lockstep_ms),
            "run_ms_median": {k: _median(v) for k, v in run_ms.items()},
            "bare": bench,
        }
    )
    _save(_checkpoint(cfg, epoch, step, runs, monitors, gen, record), out / CHECKPOINT)
    summaries = write_monitors(monitors, out, cfg.plots)
    finite = all(bool(torch.isfinite(p).all()) for p in params["a"])
    judged: list[str] = [k for k in ("b", "c") if k in runs]
    verdict = _verdicts(record, judged, unit, finite) if cfg.floor else None

    def norm(k: str) -> float:
        return float(_flat(params[k]).norm())

    weight_norm: dict[str, float] = {
        "all_convs_start": norm0,
        "a_end": norm("a"),
        "a_end_over_start": norm("a") / norm0,
    }
    for k, tw in conv.items():
        weight_norm[f"{k}_end"] = norm(k)
        weight_norm[f"{k}_end_over_a_end"] = norm(k) / norm("a")
        weight_norm[f"{k}_scale_m_T"] = tw.run.current_scale()
        weight_norm[f"{k}_end_over_start"] = norm(k) / norm0
    main_group = "joint" if "joint" in named else next(iter(named))
    results = {
        "config": dataclasses.asdict(cfg),
        "paper_recipe": cfg.is_paper_recipe(),
        "completed": epoch == cfg.epochs,
        "epochs_done": epoch,
        "stopped_by_signal": stop_flag[0],
        "checkpoint": str(out / CHECKPOINT),
        "runs": list(runs),
        "machine": _machine(dev),
        "data": {"source": data.source, "n_train": n, "n_test": int(test_y.numel())},
        "model": {
            "name": f"PreResNet{cfg.depth}",
            "width": cfg.width,
            "bn_eps": cfg.bn_eps,
            "dtype": cfg.dtype,
            "n_trainable": sum(p.numel() for p in params["a"]),
            "monitor_groups": {g: len(v) for g, v in named.items()},
        },
        "steps": total,
        "steps_per_epoch": spe,
        "milestones": milestones,
        "times_s": {
            "load": load_s,
            "audit": audit_s,
            "train": train_s,
            "total": time.perf_counter() - t_start,
        },
        "timing": _timing_summary(record.invocations, len(runs)),
        "epochs": record.epochs,
        "final_test_acc": record.epochs[-1]["test_acc"] if record.epochs else {},
        "divergence": {
            "params": record.trace,
            "probe_eval_outputs": record.probe,
            "logged_steps": record.logged_steps,
            "per_step_max_rel": {k: v["param"] for k, v in record.series.items()},
        },
        "verdict": verdict,
        "weight_norm": weight_norm,
        "monitor": summaries,
        "monitor_main_group": {
            "group": main_group,
            "a": summaries["a"].get(main_group),
            "b": summaries["b"].get(main_group),
        },
    }
    (out / "full_data.json").write_text(json.dumps(_jsonable(results), indent=1))
    if cfg.plots:
        _plot_divergence(record.trace, record.probe, others, out / "divergence.png")
    return results


@torch.no_grad()
def _log_step(
    step: int,
    runs: dict[str, Twin],
    params: dict[str, list[torch.Tensor]],
    outs: dict[str, torch.Tensor],
    models: dict[str, nn.Module],
    probe_x: torch.Tensor,
    probing: bool,
    record: _Record,
) -> None:
    """Record every twin's divergence from a at a logged step, with one host read.

    Per twin k: max_i rel_err(θ_k,i, m_t θ_a,i) (``param``), rel_err of the train-mode outputs
    on the step's batch (``train_out``), ‖θ_k/m_t − θ_a‖₂/‖θ_a‖₂ (the L2 trace); when
    ``probing``, rel_err and the L2 distance of the eval-mode outputs on the probe batch.
    """
    others = [k for k in runs if k != "a"]
    wa = _flat(params["a"])
    pa = _probe(models["a"], probe_x) if probing else None
    vals: list[torch.Tensor] = []
    for k in others:
        m = runs[k].scale() or 1.0
        vals.append(max_rel_err(params[k], torch._foreach_mul(params["a"], m)))
        vals.append(max_rel_err([outs[k]], [outs["a"]]))
        vals.append(_rel_l2(_flat(params[k]) / m, wa))
        if pa is not None:
            pk = _probe(models[k], probe_x)
            vals.append(max_rel_err([pk], [pa]))
            vals.append(_rel_l2(pk, pa))
    host = torch.stack([v.double() for v in vals]).tolist()
    record.logged_steps.append(step)
    record.trace["step"].append(step)
    if pa is not None:
        record.probe["step"].append(step)
    per = len(host) // max(len(others), 1)
    for i, k in enumerate(others):
        v = host[i * per : (i + 1) * per]
        record.series[k]["param"].append(v[0])
        record.series[k]["train_out"].append(v[1])
        record.trace[f"param_{k}"].append(v[2])
        if pa is not None:
            record.series[k]["eval_out"].append(v[3])
            record.probe[k].append(v[4])


def _epoch_record(
    epoch: int,
    step: int,
    train_s: float,
    correct: dict[str, torch.Tensor],
    n: int,
    models: dict[str, nn.Module],
    test_x: torch.Tensor,
    test_y: torch.Tensor,
) -> dict[str, Any]:
    acc, preds = {}, {}
    for k, model in models.items():
        acc[k], preds[k] = _eval(model, test_x, test_y)
    return {
        "epoch": epoch + 1,
        "step": step,
        "train_s": train_s,
        "train_acc": {k: int(c) / n for k, c in correct.items()},
        "test_acc": acc,
        **{
            f"test_predictions_agree_a_{k}": float((preds["a"] == preds[k]).double().mean())
            for k in models
            if k != "a"
        },
    }


def _median(xs: Sequence[float]) -> float:
    return float(np.median(xs)) if len(xs) else math.nan


def _timing_summary(invocations: list[dict[str, Any]], n_runs: int) -> dict[str, Any]:
    """Per-step wall time over all invocations, next to the bare forward+backward floor.

    ``per_step_ms`` = the loop's wall time / its steps (logging, probes and per-epoch
    evaluation included); ``per_step_ms_steady`` leaves out each invocation's first epoch
    (compilation, autotuning) where it has more; ``lockstep_ms_median`` the four runs' share
    of one step (sampled at logged steps), ``run_ms_median`` each run's; ``bare`` the last
    invocation's forward+backward and train step of one network; ``lockstep_over_bare`` =
    lockstep_ms_median / (runs × bare train step).
    """
    steps = sum(i["steps"] for i in invocations)
    loop_s = sum(i["train_loop_s"] for i in invocations)
    steady_s, steady_n = 0.0, 0
    for inv in invocations:
        eps = inv["epoch_s"]
        if len(eps) > 1 and inv["steps"]:
            per_epoch = inv["steps"] / len(eps)
            steady_s += sum(eps[1:])
            steady_n += round(per_epoch * (len(eps) - 1))
    last = invocations[-1] if invocations else {}
    bare = last.get("bare")
    lock = last.get("lockstep_ms_median", math.nan)
    return {
        "steps": steps,
        "train_loop_s": loop_s,
        "per_step_ms": loop_s * 1e3 / steps if steps else math.nan,
        "per_step_ms_steady": steady_s * 1e3 / steady_n if steady_n else math.nan,
        "lockstep_ms_median": lock,
        "run_ms_median": last.get("run_ms_median"),
        "bare": bare,
        "lockstep_over_bare": lock / (n_runs * bare["train_step_ms"]) if bare else math.nan,
        "invocations": invocations,
    }


def _verdicts(record: _Record, judged: list[str], unit: float, finite: bool) -> dict[str, Any]:
    """:func:`equivalence.verify.noise_floor.judge` of each of ``judged`` against the floor."""
    traces = {
        k: Trace(
            tuple(v["param"]),
            tuple(v["train_out"]),
            tuple(v["eval_out"]),
            (),
            finite=finite,
            unit_roundoff=unit,
        )
        for k, v in record.series.items()
    }
    floor = Floor((traces["floor"],))
    horizon = floor.horizon()
    logged = record.logged_steps
    rf = np.maximum.accumulate(np.array(record.trace["param_floor"]))
    pf = np.maximum.accumulate(np.array(record.probe["floor"]))
    out: dict[str, Any] = {
        "criterion": f"equivalence.verify.noise_floor.judge(k=0, saturated='keep'): err_t <= "
        f"{FLOOR_FACTOR:g} x the floor's running max at every logged step",
        "logged_steps": len(logged),
        "floor_horizon": horizon,
        "floor_horizon_step": logged[horizon] if horizon < len(logged) else None,
    }
    ok = True
    for k in judged:
        v = judge(traces[k], floor, k=0.0, floor_factor=FLOOR_FACTOR, saturated="keep")
        ok = ok and v.ok
        ra = np.maximum.accumulate(np.array(record.trace[f"param_{k}"]))
        pb = np.maximum.accumulate(np.array(record.probe[k]))
        out[k] = {
            "status": v.status.value,
            "within_floor": v.ok,
            "worst_error": v.worst_error,
            "bound": v.bound,
            "worst_ratio": v.worst_ratio,
            "floor": v.floor,
            "horizon": v.horizon,
            "steps": v.steps,
            "reasons": list(v.reasons),
            "series_worst_ratio": {s.series: s.worst_ratio for s in v.series},
            # descriptive, over the whole run (also past the horizon): running maxima, L2 norms
            "param_ratio_max": float(np.max(ra / np.maximum(rf, 1e-300))) if ra.size else None,
            "probe_ratio_max": float(np.max(pb / np.maximum(pf, 1e-300))) if pb.size else None,
        }
    out["within_floor"] = ok
    out["status"] = "verified" if ok else "failed"
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _plot_divergence(
    trace: dict[str, list[float]], probe: dict[str, list[float]], others: list[str], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = {
        "b": r"b: $\|\theta_b/m_t-\theta_a\|/\|\theta_a\|$",
        "c": r"c (TEXP): $\|\theta_c/m_t-\theta_a\|/\|\theta_a\|$",
        "floor": "floor: a re-rounded (1 ulp, batch order, jitter)",
    }
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k in others:
        style = "--" if k == "floor" else "-"
        axes[0].semilogy(trace["step"], trace[f"param_{k}"], style, label=label[k])
        axes[1].semilogy(probe["step"], probe[k], style, label=f"{k} vs a")
    axes[0].set_ylabel("relative parameter distance to a")
    axes[1].set_ylabel("relative eval-output distance (probe batch)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- command line ----------------------------------------------------------------------------------


def _epoch_list(text: str) -> tuple[int, ...]:
    """``"80,120"`` -> (80, 120)."""
    return tuple(int(t) for t in text.split(",") if t.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gpu_validation.full_data",
        description="The whole CIFAR-10 training set, float32: stock SGD + WD + step decay (a) "
        "against its exact exponential-LR twin (b) and TEXP (c) in lockstep, judged against a "
        "float32 noise-floor twin of a, with the effective-LR monitor.",
        argument_default=argparse.SUPPRESS,
    )
    preset = p.add_mutually_exclusive_group()
    preset.add_argument(
        "--paper",
        dest="preset",
        action="store_const",
        const="paper",
        help="the paper's recipe: PreResNet32 (width 16), batch 128, 160 epochs, LR drops at "
        "epochs 80 and 120, all images (flags given with it override it)",
    )
    preset.add_argument(
        "--smoke",
        dest="preset",
        action="store_const",
        const="smoke",
        help="a few steps on 256 images: the same code path and judgement, all four runs",
    )
    p.add_argument("--data", help="cifar10_jpeg.npz or a directory holding cifar-10-batches-py")
    p.add_argument("--out", help="output directory (default out/full_data)")
    p.add_argument("--cache-dir", dest="cache_dir")
    p.add_argument("--device", choices=DEVICES, help="where the data and the runs live")
    p.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        help="torch.compile each network with this mode (default none; not run on a GPU yet)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument(
        "--milestone-epochs",
        dest="milestone_epochs",
        type=_epoch_list,
        help="LR drops after these epochs, e.g. 80,120 (default: at 1/2 and 3/4 of the steps)",
    )
    p.add_argument("--depth", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--lr-gamma", dest="lr_gamma", type=float)
    p.add_argument("--bn-eps", dest="bn_eps", type=float)
    p.add_argument("--n-train", dest="n_train", type=int)
    p.add_argument("--n-test", dest="n_test", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--check-every", dest="check_every", type=int, help="steps between logs")
    p.add_argument("--probe-every", dest="probe_every", type=int)
    p.add_argument("--monitor-every", dest="monitor_every", type=int)
    p.add_argument("--no-floor", dest="floor", action="store_false")
    p.add_argument("--no-texp", dest="texp", action="store_false", help="leave recipe c out")
    p.add_argument(
        "--c-schedule",
        dest="c_schedule",
        choices=C_SCHEDULES,
        help="'constant': c converts a constant LR (a negative control that must fail)",
    )
    p.add_argument(
        "--no-eps-follow",
        dest="eps_follow",
        action="store_false",
        help="keep b's BN eps fixed (shows the gap the eps correction closes)",
    )
    p.add_argument("--dtype", choices=("float32", "float64"))
    p.add_argument(
        "--jitter-ulps",
        dest="jitter_ulps",
        type=float,
        help="the floor twin's per-step perturbation in ulps (default 4)",
    )
    p.add_argument(
        "--stop-after-epochs",
        dest="stop_after_epochs",
        type=int,
        help="write OUT/checkpoint.pt once this many epochs are done, and stop",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=int,
        help="also write the checkpoint every this many epochs",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic kernels (a resumed CUDA run then equals an uninterrupted one)",
    )
    p.add_argument(
        "--bench-iters",
        dest="bench_iters",
        type=int,
        help="timed iterations of the bare forward+backward (0: skip)",
    )
    p.add_argument("--no-plots", dest="plots", action="store_false")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def config_from_args(argv: list[str] | None = None) -> FullDataConfig:
    """The configuration of a command line: the preset (``--paper``, ``--smoke``), then the
    flags given (which override it). Bad values exit with status 2 naming the field."""
    parser = build_parser()
    ns = vars(parser.parse_args(argv))
    preset = ns.get("preset")
    try:
        return FullDataConfig(**{**(_PRESETS[preset] if preset else {}), **ns})
    except (TypeError, ValueError) as e:
        parser.error(str(e))


def main(argv: list[str] | None = None) -> int:
    """Run; 0 when b and c stay within the floor (or no floor was run), 1 otherwise, 2 on bad
    input, 3 when stopped before the last epoch (a checkpoint to ``--resume`` from)."""
    cfg = config_from_args(argv)
    try:
        res = run_full_data(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"python -m gpu_validation.full_data: error: {e}", file=sys.stderr)
        return 2
    acc = ", ".join(f"{k} {v:.4f}" for k, v in res["final_test_acc"].items())
    t = res["timing"]
    print(
        f"after {res['epochs_done']} of {cfg.epochs} epochs: test accuracy {acc}; "
        f"{res['times_s']['total']:.0f} s ({t['per_step_ms']:.2f} ms per lockstep step); "
        f"wrote {Path(cfg.out) / 'full_data.json'}"
    )
    v = res["verdict"]
    if v is not None:
        for k in ("b", "c"):
            if k in v:
                print(
                    f"verdict on {k} (equivalence.verify.noise_floor.judge, every logged step, <= "
                    f"{FLOOR_FACTOR:g}x the float32 floor): {v[k]['status']}, worst error/bound "
                    f"{v[k]['worst_ratio']:.3g}; whole-run running max ratios {k}/floor: params "
                    f"{v[k]['param_ratio_max']:.3g}, probe outputs {v[k]['probe_ratio_max']:.3g}"
                )
                for reason in v[k]["reasons"]:
                    print(f"  {reason}")
    if not res["completed"]:
        print(f"stopped; continue with --resume (checkpoint {res['checkpoint']})")
        return 3 if v is None or v["within_floor"] else 1
    return 0 if v is None or v["within_floor"] else 1


if __name__ == "__main__":
    sys.exit(main())
