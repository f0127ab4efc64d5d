r"""The whole CIFAR-10 training set on a CPU: step decay with WD against its exact exponential-LR twin.

``python -m gpu_validation.full_data --data PATH --out DIR`` (also ``python -m gpu_validation
--full-data ...``) trains, from one θ_0 and one batch/augmentation stream, in lockstep:

- ``a``: stock ``torch.optim.SGD(lr=η, momentum=γ, weight_decay=λ)`` + stock ``MultiStepLR``
  (step decay, milestones at 1/2 and 3/4 of the steps, stepped per step);
- ``b``: ``equivalence.convert(...)`` of the same recipe (no weight decay, η̃_t = η_t/(c_t c_{t+1}),
  running statistics corrected, power-of-two rescaling);
- ``floor``: recipe a again, the same run in exact arithmetic, with every rounding changed:
  the lockstep harness's noise-floor twin (``equivalence.lockstep.perturbed``) with all
  three of its perturbations at once: every initial weight one ulp up, the samples of every
  batch fed in another (seeded) order (every batch sum — BatchNorm's statistics, the weight
  gradients — rounds differently), and every trainable weight moved by ``--jitter-ulps`` = 4
  ulps in a random direction after every step (``--no-floor`` drops it): float32's noise
  floor, how far rounding alone moves a training run. b's weights θ̃ = m_t θ are not
  bit-exact, so *every* rounding of its forward and backward passes differs from a's at
  every step; a twin that only perturbs the weights keeps most of a's roundings and
  underestimates that (measured: 8 steps on 256 images, seed 1, a weight-only twin stayed at
  2.6e-6 while b reached 1.3e-4, because the float32 gradient of the first convs there is
  only accurate to 2e-3). One twin is one sample of the floor (the project's float32 test
  takes the maximum of several).

a, b and the floor are driven through the harness's twin protocol (``order``, ``step``,
``scale``) in one loop, and b is judged by the harness's error model
(:func:`equivalence.noise_floor.judge` with k = 0 and ``saturated="keep"``): err_t ≤ 3·E_t at
every step, E_t the floor's running maximum. In float32 on this network the floor passes the
predictability level 1e-3 within a few steps (measured: 256 images, batch 32, step 3;
reported as ``floor_horizon``), so the claim judged over the whole run is "b is no farther
from a than rounding alone carries a", not rounding-level agreement. The divergences are
those of :mod:`equivalence.noise_floor` (max over tensors of ‖·‖_∞-relative errors; per step
for the parameters and the train-mode outputs, every ``probe_every`` steps for the eval
outputs on the probe batch); L2 divergences are recorded for the plots.

The network is a small PreResNet (:mod:`gpu_validation.model`: BN without affine parameters,
frozen last layer, every conv in the scale-invariant set), float32, BatchNorm with its real
eps. BN's eps breaks the invariance unless it scales with the weights: a normaliser
(x − μ)/√(σ² + ε) fed m·x gives the same output with ε·m² (the project's normaliser-eps
result, ``proofs/normaliser_eps.py``): the converter keeps run b's BN eps at ε·m_t²
(``adjust_eps``; ``--no-eps-follow`` turns it off and shows the gap).

The :class:`equivalence.Monitor` is attached to a and b (groups from
:func:`equivalence.audit`). Reported (``DIR/full_data.json``, plots ``DIR/*.png``, monitor logs
``DIR/monitor_a.csv``, ``DIR/monitor_b.csv``): both test accuracies and how many test
predictions agree, the divergence ‖θ_b/m_t − θ_a‖/‖θ_a‖ and the probe-output distance over
training against the floor's (the verdict above; the whole-run ratios of running maxima are
reported too, descriptive past H), the weight norm growing in b while the function stays a's, and the
effective-LR curves. The defaults (depth 8, width 8, batch 128, 3 epochs = 1,173 steps, three
models) take about 6 minutes on one core of a busy 2-core machine (measured; ``--epochs 1``:
about 2 minutes).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence
from equivalence.monitor import Monitor, groups_from_audit, plot_all
from equivalence.verify.lockstep import (
    ConvertedTwin,
    SGDRecipe,
    Twin,
    TwinFactory,
    converted,
    perturbed,
)
from equivalence.verify.noise_floor import FLOOR_FACTOR, U32, U64, Floor, Trace, judge, rel_err

from .augment import DeviceAugmenter, normalize
from .data import default_data_path, load_cifar10
from .measure import rel
from .model import PreResNet, conv_weights, init_weights

__all__ = ["FullDataConfig", "run_full_data", "main", "build_parser", "attach_monitors"]


@dataclass(frozen=True)
class FullDataConfig:
    """Settings of the CPU full-data run; invalid values raise naming the field and range."""

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
    bn_eps: float = 1e-5
    n_train: int | None = None  # None: all 50,000
    n_test: int | None = None  # None: all 10,000
    seed: int = 0
    threads: int | None = None
    floor: bool = True
    eps_follow: bool = True
    check_every: int = 10
    probe_every: int = 50
    probe_size: int = 256
    channels_last: bool = True
    progress: bool = True
    dtype: str = "float32"  # "float64" for exactness checks at rounding level (tests)
    jitter_ulps: float = 4.0  # the floor twin's per-step perturbation (relative 2^-24 · this)
    plots: bool = True

    def __post_init__(self) -> None:
        for name, lo in (
            ("epochs", 1),
            ("depth", 8),
            ("width", 1),
            ("batch_size", 1),
            ("check_every", 1),
            ("probe_every", 1),
            ("probe_size", 2),
            ("seed", 0),
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
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype = {self.dtype!r} is not one of 'float32', 'float64'")
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


# -- helpers -------------------------------------------------------------------------------------


def _flat(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in params])


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


def _machine() -> dict[str, Any]:
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


# -- the run ---------------------------------------------------------------------------------------


def _divergence(tw: Twin, ref: Twin, names: list[str]) -> float:
    """max over the trainable tensors of rel_err(θ_twin, m_t θ_a) (``noise_floor.rel_err``)."""
    m = tw.scale()
    mine, theirs = dict(tw.model.named_parameters()), dict(ref.model.named_parameters())
    with torch.no_grad():
        return max(rel_err(mine[n].detach(), theirs[n].detach() * (m or 1.0)) for n in names)


def run_full_data(cfg: FullDataConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a, b (and the floor) over the whole training set; write and return the results.

    The runs are the lockstep harness's (:mod:`equivalence.lockstep`): a = the stock
    :class:`~equivalence.lockstep.SGDRecipe` (stock SGD + stock ``MultiStepLR``), b = its
    :func:`~equivalence.lockstep.converted` twin, floor = its
    :func:`~equivalence.lockstep.perturbed` twin with every rounding changed (one ulp, batch
    order, ``jitter_ulps`` ulps per step); the verdict is
    :func:`equivalence.noise_floor.judge` of b's divergence against that floor (k = 0: the
    floor alone, F = 3, every step: ``saturated="keep"``).
    """
    t_start = time.perf_counter()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    path = cfg.data or default_data_path()
    if path is None:
        raise FileNotFoundError(
            "CIFAR-10 not found: give --data (cifar10_jpeg.npz or a torchvision root)"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = load_cifar10(path, n_train=cfg.n_train, n_test=cfg.n_test, cache_dir=cfg.cache_dir)
    load_s = time.perf_counter() - t0
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    unit = U64 if cfg.dtype == "float64" else U32
    dev = torch.device("cpu")
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format
    aug = DeviceAugmenter(data.train_x, data.train_y, dev, dtype, cfg.channels_last)
    test_x = normalize(torch.from_numpy(data.test_x), dtype, cfg.channels_last)
    test_y = torch.from_numpy(data.test_y)
    probe_x = test_x[: cfg.probe_size]
    n = aug.n
    spe = -(-n // cfg.batch_size)
    total = spe * cfg.epochs
    milestones = sorted({round(f * total) for f in cfg.milestone_fractions} - {0, total})

    base = PreResNet(cfg.depth, cfg.width, bn_eps=cfg.bn_eps).to(torch.float64)
    init_weights(base, torch.Generator().manual_seed(cfg.seed))
    base = base.to(dtype=dtype, memory_format=mf)
    names = [n_ for n_, p in base.named_parameters() if p.requires_grad]
    by_id = {id(p): n_ for n_, p in base.named_parameters()}
    if sorted(names) != sorted(by_id[id(p)] for p in conv_weights(base)):
        raise RuntimeError("expected the conv weights to be the only trainable parameters")
    recipe = SGDRecipe(
        cfg.lr,
        cfg.momentum,
        cfg.weight_decay,
        lr_scheduler=lambda o: MultiStepLR(o, milestones=milestones, gamma=cfg.lr_gamma),
    )
    # a: the stock recipe itself (a twin with no perturbation: stock SGD + stock MultiStepLR)
    factories: dict[str, TwinFactory] = {
        "a": perturbed(),
        "b": converted("general", adjust_eps=cfg.eps_follow),
    }
    if cfg.floor:
        factories["floor"] = perturbed(
            ulp=1,
            permute_seed=cfg.seed + 2,
            jitter_seed=cfg.seed + 1,
            jitter_ulps=cfg.jitter_ulps,  # type: ignore[arg-type]
        )
    runs: dict[str, Twin] = {
        k: f(copy.deepcopy(base), recipe, names, total) for k, f in factories.items()
    }
    models = {k: r.model for k, r in runs.items()}
    params = {k: conv_weights(m) for k, m in models.items()}
    norm0 = float(_flat(params["a"]).norm())
    conv_b = runs["b"]
    assert isinstance(conv_b, ConvertedTwin)

    t0 = time.perf_counter()
    report = equivalence.audit(
        copy.deepcopy(base).to(memory_format=torch.contiguous_format),
        test_x[:4].contiguous(),
        loss_fn=lambda o: o.logsumexp(1).mean(),
    )
    named = _named_groups(report)
    audit_s = time.perf_counter() - t0
    monitors = {
        "a": Monitor(runs["a"].optimizer, _pick(models["a"], named), flush_every=512),
        "b": Monitor.for_run(conv_b.run, _pick(models["b"], named), flush_every=512),
    }

    others = [k for k in runs if k != "a"]
    series: dict[str, dict[str, list[float]]] = {
        k: {"param": [], "train_out": [], "eval_out": []} for k in others
    }
    trace: dict[str, list[float]] = {"step": [], "param_b": [], "param_floor": []}
    probe: dict[str, list[float]] = {"step": [], "b": [], "floor": []}
    epochs: list[dict[str, Any]] = []
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    t_train = time.perf_counter()
    log(
        f"full data: {n} training images, {spe} steps per epoch, {total} steps, "
        f"{len(runs)} models, {torch.get_num_threads()} threads"
    )
    for epoch in range(cfg.epochs):
        te = time.perf_counter()
        x_ep, y_ep = aug.epoch(gen)
        correct = {k: 0 for k in runs}
        for s in range(0, n, cfg.batch_size):
            xb, yb = x_ep[s : s + cfg.batch_size], y_ep[s : s + cfg.batch_size]
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            outs = {}
            for k, tw in runs.items():  # the harness's twin protocol, as lockstep.run drives it
                tw.optimizer.zero_grad(set_to_none=True)
                perm = tw.order(yb.shape[0])  # the floor: the batch in another order
                xo, yo = (xb, yb) if perm is None else (xb[perm], yb[perm])
                outp = tw.model(xo)
                F.cross_entropy(outp, yo).backward()
                correct[k] += int((outp.detach().argmax(1) == yo).sum())
                tw.step(step)
                outs[k] = outp.detach() if perm is None else outp.detach()[torch.argsort(perm)]
            for k in others:
                series[k]["param"].append(_divergence(runs[k], runs["a"], names))
                series[k]["train_out"].append(rel_err(outs[k], outs["a"]))
            step += 1
            if step % cfg.check_every == 0 or step == total:
                with torch.no_grad():
                    wa = _flat(params["a"])
                    trace["step"].append(step)
                    trace["param_b"].append(
                        rel(_flat(params["b"]) / conv_b.run.current_scale(), wa)
                    )
                    trace["param_floor"].append(
                        rel(_flat(params["floor"]), wa) if cfg.floor else math.nan
                    )
            if step % cfg.probe_every == 0 or step == total:
                pa = _probe(models["a"], probe_x)
                probe["step"].append(step)
                for k in others:
                    pk = _probe(models[k], probe_x)
                    probe[k].append(rel(pk, pa))
                    series[k]["eval_out"].append(rel_err(pk, pa))
                if not cfg.floor:
                    probe["floor"].append(math.nan)
            if cfg.progress and step % max(spe // 10, 1) == 0:
                log(
                    f"  step {step}/{total}: param divergence b {trace['param_b'][-1]:.2e}, floor "
                    f"{trace['param_floor'][-1]:.2e}; {time.perf_counter() - t_train:.0f} s"
                )
        acc = {}
        preds = {}
        for k, model in models.items():
            acc[k], preds[k] = _eval(model, test_x, test_y)
        ep = {
            "epoch": epoch + 1,
            "step": step,
            "train_s": time.perf_counter() - te,
            "train_acc": {k: correct[k] / n for k in runs},
            "test_acc": acc,
            "test_predictions_agree_a_b": float((preds["a"] == preds["b"]).double().mean()),
            "test_predictions_agree_a_floor": float((preds["a"] == preds["floor"]).double().mean())
            if cfg.floor
            else None,
        }
        epochs.append(ep)
        log(
            f"epoch {epoch + 1}: test acc "
            + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
            + f"; predictions a = b on {ep['test_predictions_agree_a_b']:.4f} of the test set"
        )
    train_s = time.perf_counter() - t_train

    summaries = write_monitors(monitors, out, cfg.plots)
    finite = all(bool(torch.isfinite(p).all()) for p in params["a"])
    traces = {
        k: Trace(
            tuple(v["param"]),
            tuple(v["train_out"]),
            tuple(v["eval_out"]),
            (),
            finite=finite,
            unit_roundoff=unit,
        )
        for k, v in series.items()
    }
    verdict = None
    if cfg.floor:
        ra = np.maximum.accumulate(np.array(trace["param_b"]))
        rf = np.maximum.accumulate(np.array(trace["param_floor"]))
        pb, pf = (
            np.maximum.accumulate(np.array(probe["b"])),
            np.maximum.accumulate(np.array(probe["floor"])),
        )
        floor = Floor((traces["floor"],))
        judged = judge(traces["b"], floor, k=0.0, floor_factor=FLOOR_FACTOR, saturated="keep")
        verdict = {
            "criterion": f"equivalence.noise_floor.judge(k=0, saturated='keep'): err_t <= "
            f"{FLOOR_FACTOR:g} x the floor's running max at every step",
            "floor_horizon": floor.horizon(),
            "status": judged.status.value,
            "within_floor": judged.ok,
            "worst_error": judged.worst_error,
            "bound": judged.bound,
            "worst_ratio": judged.worst_ratio,
            "floor": judged.floor,
            "horizon": judged.horizon,
            "steps": judged.steps,
            "reasons": list(judged.reasons),
            "series_worst_ratio": {v.series: v.worst_ratio for v in judged.series},
            # descriptive, over the whole run (also past the horizon): running maxima, L2 norms
            "param_ratio_max": float(np.max(ra / np.maximum(rf, 1e-300))),
            "probe_ratio_max": float(np.max(pb / np.maximum(pf, 1e-300))),
        }
    main_group = "joint" if "joint" in named else next(iter(named))
    results = {
        "config": dataclasses.asdict(cfg),
        "machine": _machine(),
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
        "milestones": milestones,
        "times_s": {
            "load": load_s,
            "audit": audit_s,
            "train": train_s,
            "total": time.perf_counter() - t_start,
        },
        "epochs": epochs,
        "final_test_acc": epochs[-1]["test_acc"],
        "divergence": {
            "params": trace,
            "probe_eval_outputs": probe,
            "per_step_max_rel": {k: v["param"] for k, v in series.items()},
        },
        "verdict": verdict,
        "weight_norm": {
            "all_convs_start": norm0,
            "a_end": float(_flat(params["a"]).norm()),
            "b_end": float(_flat(params["b"]).norm()),
            "b_end_over_a_end": float(_flat(params["b"]).norm() / _flat(params["a"]).norm()),
            "b_scale_m_T": conv_b.run.current_scale(),
            "b_end_over_start": float(_flat(params["b"]).norm()) / norm0,
            "a_end_over_start": float(_flat(params["a"]).norm()) / norm0,
        },
        "monitor": summaries,
        "monitor_main_group": {
            "group": main_group,
            "a": summaries["a"].get(main_group),
            "b": summaries["b"].get(main_group),
        },
    }
    (out / "full_data.json").write_text(json.dumps(_jsonable(results), indent=1))
    if cfg.plots:
        _plot_divergence(trace, probe, out / "divergence.png")
    return results


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
    trace: dict[str, list[float]], probe: dict[str, list[float]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.semilogy(
        trace["step"], trace["param_b"], label=r"b: $\|\theta_b/m_t-\theta_a\|/\|\theta_a\|$"
    )
    ax.semilogy(
        trace["step"],
        trace["param_floor"],
        "--",
        label="floor: a re-rounded (1 ulp, batch order, jitter)",
    )
    ax.set_xlabel("step")
    ax.set_ylabel("relative parameter distance to a")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    ax.semilogy(probe["step"], probe["b"], label="b vs a")
    ax.semilogy(probe["step"], probe["floor"], "--", label="floor vs a")
    ax.set_xlabel("step")
    ax.set_ylabel("relative eval-output distance (probe batch)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gpu_validation.full_data",
        description="CPU, float32, the whole CIFAR-10 training set: stock SGD + WD + step decay (a) "
        "against its exact exponential-LR twin (b) in lockstep, with the effective-LR monitor.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--data", help="cifar10_jpeg.npz or a directory holding cifar-10-batches-py")
    p.add_argument("--out", help="output directory (default out/full_data)")
    p.add_argument("--cache-dir", dest="cache_dir")
    p.add_argument("--epochs", type=int)
    p.add_argument("--depth", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--bn-eps", dest="bn_eps", type=float)
    p.add_argument("--n-train", dest="n_train", type=int)
    p.add_argument("--n-test", dest="n_test", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--check-every", dest="check_every", type=int)
    p.add_argument("--probe-every", dest="probe_every", type=int)
    p.add_argument("--no-floor", dest="floor", action="store_false")
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
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run; 0 when b stays within the floor (or no floor was run), 1 otherwise, 2 on bad input."""
    parser = build_parser()
    ns = vars(parser.parse_args(argv))
    try:
        cfg = FullDataConfig(**ns)
    except (TypeError, ValueError) as e:
        parser.error(str(e))
    try:
        res = run_full_data(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"python -m gpu_validation.full_data: error: {e}", file=sys.stderr)
        return 2
    v = res["verdict"]
    print(
        f"test accuracy a {res['final_test_acc']['a']:.4f}, b {res['final_test_acc']['b']:.4f}; "
        f"{res['times_s']['total']:.0f} s; wrote {Path(cfg.out) / 'full_data.json'}"
    )
    if v is not None:
        print(
            f"verdict (equivalence.noise_floor.judge, every step, <= {FLOOR_FACTOR:g}x the float32 "
            f"floor): {v['status']}, worst error/bound {v['worst_ratio']:.3g}; whole-run running "
            f"max ratios b/floor: params {v['param_ratio_max']:.3g}, probe outputs "
            f"{v['probe_ratio_max']:.3g}"
        )
        for reason in v["reasons"]:
            print(f"  {reason}")
        return 0 if v["within_floor"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
