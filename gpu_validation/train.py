"""Training the recipes in lockstep and measuring how far apart they are.

All requested recipes (``a``: step decay + WD, ``b``: its exact no-WD
equivalent, ``c``: TEXP; see :mod:`gpu_validation.config`) start from one θ_0
and take the same batch at every step, one after the other inside one loop.
The general theorem (MATH.md) says the no-WD runs' stored weights are
θ_b = m_t · θ_a with m_t = ``scheduler.current_scale()`` (= 2^k / c_t), so the
network functions are equal. Measured as the run goes, without a host sync
per step (device-side accumulators, read once per epoch):

- the relative parameter error max_i ‖θ_r,i / m_t − θ_a,i‖ / ‖θ_a,i‖ over the
  conv tensors i (every ``check_every`` steps, default once per epoch);
- on a fixed probe batch, the relative distance between the recipes'
  outputs, in training mode (batch statistics, not updating the running
  ones) and in eval mode (running statistics), once per epoch;
- per recipe: train/test loss and accuracy, the true learning rate, the
  squared norm of the conv weights (all, and one layer), ‖w‖²/η, the
  effective learning rate η/‖w‖² and the angle between successive epochs'
  weights. "True" undoes the power-of-two rescaling: log10 values are those
  of the unrescaled run (up to 1e26 for the LR, 1e29 for ‖w‖²).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD
from torch.optim.lr_scheduler import MultiStepLR

import equivalence

from .augment import DeviceAugmenter, normalize
from .config import Config
from .data import Cifar10
from .full_data import attach_monitors, write_monitors
from .model import PreResNet, conv_weights, init_weights, norm_layers

__all__ = [
    "Recipe",
    "build_recipes",
    "train_seed",
    "invariance_check",
    "audit_check",
    "Interrupted",
]

_LOG10_2 = math.log10(2.0)


class Interrupted(Exception):
    """Raised (from a SIGTERM handler) to stop a run after writing what it has."""


@dataclass
class Recipe:
    """One recipe's model, optimizer and schedule, and its running sums."""

    name: str
    model: nn.Module
    step_model: Callable[[torch.Tensor], torch.Tensor]
    optimizer: SGD
    scheduler: Any
    per_step_scheduler: bool
    params: list[torch.Tensor]
    loss_sum: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    seen: int = 0
    prev_params: list[torch.Tensor] = field(default_factory=list)

    @property
    def stored_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def log2_scale(self) -> int:
        """k of the power-of-two rescaling (stored θ = 2^k θ̃); 0 for recipe a."""
        return int(self.scheduler.log2_scale[0]) if self.per_step_scheduler else 0

    def scale(self) -> float:
        """m with stored θ = m · θ_a (1 for recipe a)."""
        return float(self.scheduler.current_scale()) if self.per_step_scheduler else 1.0


def _steps_per_epoch(n: int, batch: int) -> int:
    return -(-n // batch)


def build_recipes(cfg: Config, base: nn.Module, steps_per_epoch: int) -> list[Recipe]:
    """Copies of ``base`` with their optimizers: a (stock SGD + MultiStepLR), b (general), c (TEXP)."""
    total = cfg.epochs * steps_per_epoch
    out = []
    for name in cfg.recipes:
        model = copy.deepcopy(base)
        params = conv_weights(model)
        if name == "a":
            opt = SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
            sched: Any = MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.lr_gamma)
            per_step = False
        else:
            step_milestones = [m * steps_per_epoch for m in cfg.milestones]
            run = equivalence.convert(
                params,
                lr=cfg.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                steps=total,
                invariant=params,
                lr_scheduler=lambda o, ms=step_milestones: MultiStepLR(
                    o, milestones=ms, gamma=cfg.lr_gamma
                ),
                norm_layers=norm_layers(model),
                form="general" if name == "b" else "texp",
                rescale_log2=cfg.rescale_log2,
            )
            if len(run.optimizer.param_groups) != 1:
                raise RuntimeError("expected one param group (all conv weights are invariant)")
            opt, sched, per_step = run.optimizer, run.scheduler, True
        out.append(Recipe(name, model, model, opt, sched, per_step, params))
    return out


# -- measurements -----------------------------------------------------------------------------------


@contextlib.contextmanager
def batch_stats_no_update(model: nn.Module) -> Iterator[None]:
    """Training-mode forward (batch statistics) that leaves the running statistics alone."""
    bns = norm_layers(model)
    was_training = model.training
    saved = [m.track_running_stats for m in bns]
    model.train()
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, s in zip(bns, saved):
            m.track_running_stats = s
        model.train(was_training)


def probe_outputs(
    model: nn.Module, x: torch.Tensor, amp: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training-mode, eval-mode) outputs on ``x``, as float64, no side effects."""
    with torch.no_grad(), _autocast(x.device, amp):
        with batch_stats_no_update(model):
            train_out = model(x).double()
        was = model.training
        model.eval()
        eval_out = model(x).double()
        model.train(was)
    return train_out, eval_out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-300))


def param_errors(rec: Recipe, ref: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """(max over tensors, joint) relative error of θ_rec / m against θ_ref, as 0-d device tensors."""
    m = rec.scale()
    with torch.no_grad():
        diffs = [
            torch.linalg.vector_norm(p.double() / m - q.double())
            for p, q in zip(rec.params, ref.params)
        ]
        norms = [torch.linalg.vector_norm(q.double()) for q in ref.params]
        d, n = torch.stack(diffs), torch.stack(norms)
        per = (d / n.clamp_min(1e-300)).max()
        joint = torch.linalg.vector_norm(d) / torch.linalg.vector_norm(n).clamp_min(1e-300)
    return per, joint


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, amp: bool
) -> tuple[float, float]:
    """Eval-mode (running statistics) mean loss and accuracy on (x, y)."""
    was = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad(), _autocast(x.device, amp):
        for s in range(0, x.shape[0], batch):
            out = _logits(model(x[s : s + batch]))
            yb = y[s : s + batch]
            loss += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
    model.train(was)
    n = x.shape[0]
    return float(loss) / n, float(correct) / n


def _sq_norm(params: list[torch.Tensor]) -> float:
    with torch.no_grad():
        return float(sum(torch.linalg.vector_norm(p.double()) ** 2 for p in params))


def _angle_deg(prev: list[torch.Tensor], cur: list[torch.Tensor]) -> float:
    with torch.no_grad():
        dot = sum((p.double() * q.double()).sum() for p, q in zip(prev, cur))
        na = math.sqrt(sum(float(torch.linalg.vector_norm(p.double()) ** 2) for p in prev))
        nb = math.sqrt(sum(float(torch.linalg.vector_norm(q.double()) ** 2) for q in cur))
        cos = max(-1.0, min(1.0, float(dot) / (na * nb)))
    return math.degrees(math.acos(cos))


def _logits(out: torch.Tensor) -> torch.Tensor:
    """bf16 autocast outputs -> float32 for the loss; float32/float64 outputs unchanged."""
    return out if out.dtype in (torch.float32, torch.float64) else out.float()


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def invariance_check(model: nn.Module, x: torch.Tensor, factor: float = 3.0) -> dict[str, float]:
    """Relative output change when all convs are scaled by ``factor`` (≈ 0), and when only the stem is (> 0).

    The second number is the negative control: no single conv is invariant on its own.
    """
    ref, _ = probe_outputs(model, x, False)
    out = {}
    for label, which in (("all_convs", "all"), ("stem_only_negative_control", "stem")):
        m = copy.deepcopy(model)
        ws = conv_weights(m) if which == "all" else [m.stem.weight]  # type: ignore[union-attr]
        with torch.no_grad():
            for w in ws:
                w.mul_(factor)
        scaled, _ = probe_outputs(m, x, False)
        out[label] = _rel(scaled, ref)
    return out


def audit_check(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Compare ``equivalence.audit``'s invariant set and norm layers with the conv weights and BN modules.

    Falls back (``available: False``) when the audit is not in the library.
    """
    try:
        from equivalence import audit
    except (ImportError, AttributeError) as e:
        return {
            "available": False,
            "used": "explicit list of conv weights",
            "note": f"equivalence.audit not importable ({type(e).__name__}); fell back to the explicit "
            "list of conv weights",
        }
    m = copy.deepcopy(model)
    try:
        report = audit(m, x)
        inv = _flatten(report.invariant_parameters())
        norms = _flatten(report.norm_layers())
    except Exception as e:  # the audit is optional; record what went wrong and fall back
        return {
            "available": True,
            "error": f"{type(e).__name__}: {e}",
            "used": "explicit list of conv weights",
        }
    names = {id(p): n for n, p in m.named_parameters()}
    want = {n for n, p in m.named_parameters() if p.requires_grad}
    got = {
        (x if isinstance(x, str) else names.get(id(x), f"<unknown {type(x).__name__}>"))
        for x in inv
    }
    bn_names = {id(mod): n for n, mod in m.named_modules()}
    want_bn = {bn_names[id(b)] for b in norm_layers(m)}
    got_bn = {
        (b if isinstance(b, str) else bn_names.get(id(b), f"<unknown {type(b).__name__}>"))
        for b in norms
    }
    return {
        "available": True,
        "used": "equivalence.audit",
        "invariant_agrees": got == want,
        "norm_layers_agree": got_bn == want_bn,
        "missing": sorted(want - got),
        "unexpected": sorted(got - want),
        "n_invariant": len(got),
    }


def _flatten(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple, set)) or (
        hasattr(obj, "__iter__") and not isinstance(obj, (str, torch.Tensor, nn.Module))
    ):
        out: list[Any] = []
        for o in obj:
            out.extend(_flatten(o))
        return out
    return [obj]


# -- the training loop --------------------------------------------------------------------------


def _warm_up(
    recipes: list[Recipe], x: torch.Tensor, y: torch.Tensor, sizes: list[int], amp: bool
) -> None:
    """Run forward/backward once per batch size (compilation, cuDNN autotuning), then undo every side effect."""
    for r in recipes:
        saved = {k: v.detach().clone() for k, v in r.model.state_dict().items()}
        for n in sizes:
            with _autocast(x.device, amp):
                loss = F.cross_entropy(_logits(r.step_model(x[:n])), y[:n])
            loss.backward()
        r.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for k, v in r.model.state_dict().items():
                v.copy_(saved[k])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_seed(
    cfg: Config,
    data: Cifar10,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    run_audit: bool = True,
) -> dict[str, Any]:
    """Train every recipe of ``cfg`` in lockstep from seed ``seed``; returns the run's record.

    ``on_epoch(record)`` is called after each epoch (the record so far), so a
    caller can write it to disk as the run goes. ``run_audit``: run
    ``equivalence.audit`` on the initial network (4 probe images; it does
    hundreds of float64 passes, so once per invocation is enough).
    """
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    channels_last = device.type == "cuda" if cfg.channels_last is None else cfg.channels_last
    mf = torch.channels_last if channels_last else torch.contiguous_format

    gen_init = torch.Generator().manual_seed(seed)
    base = PreResNet(cfg.depth, cfg.width, bn_eps=cfg.bn_eps).to(torch.float64)
    init_weights(base, gen_init)
    base = base.to(device=device, dtype=dtype, memory_format=mf)

    aug = DeviceAugmenter(data.train_x, data.train_y, device, dtype, channels_last)
    test_x = normalize(torch.from_numpy(data.test_x).to(device), dtype, channels_last)
    test_y = torch.from_numpy(data.test_y).to(device)
    probe_x = test_x[: cfg.probe_size]
    n = aug.n
    spe = _steps_per_epoch(n, cfg.batch_size)
    total = spe * cfg.epochs

    t_build = time.perf_counter()
    recipes = build_recipes(cfg, base, spe)
    monitors = attach_monitors(recipes, probe_x[:4]) if cfg.monitor else None
    build_s = time.perf_counter() - t_build
    ref = next((r for r in recipes if r.name == "a"), None)

    record: dict[str, Any] = {
        "seed": seed,
        "steps_per_epoch": spe,
        "total_steps": total,
        "milestone_epochs": list(cfg.milestones),
        "milestone_steps": [m * spe for m in cfg.milestones],
        "n_train": n,
        "n_test": int(test_y.numel()),
        "model": {
            "name": f"PreResNet{cfg.depth}",
            "depth": cfg.depth,
            "width": cfg.width,
            "bn_eps": cfg.bn_eps,
            "bn_affine": False,
            "last_layer": "frozen at init",
            "n_trainable": sum(p.numel() for p in conv_weights(base)),
        },
        "channels_last": channels_last,
        "schedule_build_s": build_s,
        "invariance": invariance_check(base, probe_x.to(dtype)),
        "audit": audit_check(base, probe_x[:4])
        if run_audit
        else {"skipped": "run for the first seed only"},
        "epochs": [],
        "completed": False,
    }
    compile_error = None
    if cfg.compile:
        try:
            for r in recipes:
                r.step_model = torch.compile(
                    r.model,
                    mode=None if cfg.compile_mode == "default" else cfg.compile_mode,
                    dynamic=False,
                )
        except Exception as e:
            compile_error = f"{type(e).__name__}: {e}"
    sizes = sorted(
        {cfg.batch_size if n >= cfg.batch_size else n, n % cfg.batch_size or cfg.batch_size}
    )
    if device.type == "cuda" or cfg.compile:
        wx, wy = aug.epoch(torch.Generator().manual_seed(2**31 - 1))
        try:
            _warm_up(recipes, wx, wy, sizes, cfg.amp)
        except Exception as e:
            if not cfg.compile:
                raise
            compile_error = f"{type(e).__name__}: {e}"
            for r in recipes:
                r.step_model = r.model
            _warm_up(recipes, wx, wy, sizes, cfg.amp)
        del wx, wy
    record["compile"] = {
        "requested": cfg.compile,
        "mode": cfg.compile_mode,
        "error": compile_error,
        "used": cfg.compile and compile_error is None,
    }

    gen_data = torch.Generator().manual_seed(seed)
    zero_f = torch.zeros((), dtype=torch.float64, device=device)
    zero_i = torch.zeros((), dtype=torch.int64, device=device)
    others = [r for r in recipes if r.name != "a"] if ref is not None else []
    max_err = {r.name: zero_f.clone() for r in others}
    check_every = cfg.check_every or spe
    for r in recipes:
        r.prev_params = [p.detach().clone() for p in r.params]

    epochs_iter: Any = range(cfg.epochs)
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc=f"seed {seed} [{','.join(cfg.recipes)}]", unit="epoch")

    step = 0
    try:
        for epoch in epochs_iter:
            _sync(device)
            t0 = time.perf_counter()
            x_ep, y_ep = aug.epoch(gen_data)
            for r in recipes:
                r.loss_sum, r.correct, r.seen = zero_f.clone(), zero_i.clone(), 0
            lr_start = {r.name: r.stored_lr / 4.0**r.log2_scale for r in recipes}
            for s in range(0, n, cfg.batch_size):
                xb, yb = x_ep[s : s + cfg.batch_size], y_ep[s : s + cfg.batch_size]
                for r in recipes:
                    with _autocast(device, cfg.amp):
                        out = r.step_model(xb)
                    loss = F.cross_entropy(_logits(out), yb)
                    r.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    r.optimizer.step()
                    if r.per_step_scheduler:
                        r.scheduler.step()
                    with torch.no_grad():
                        r.loss_sum += loss.detach().double() * yb.shape[0]
                        r.correct += (out.detach().argmax(1) == yb).sum()
                    r.seen += yb.shape[0]
                step += 1
                if others and step % check_every == 0:
                    for r in others:
                        per, _ = param_errors(r, ref)  # type: ignore[arg-type]
                        torch.maximum(max_err[r.name], per, out=max_err[r.name])
            for r in recipes:
                if not r.per_step_scheduler:
                    r.scheduler.step()
            _sync(device)
            train_s = time.perf_counter() - t0
            ep = _epoch_record(
                cfg,
                recipes,
                ref,
                others,
                max_err,
                test_x,
                test_y,
                probe_x,
                epoch,
                step,
                train_s,
                lr_start,
            )
            ep["eval_s"] = time.perf_counter() - t0 - train_s
            record["epochs"].append(ep)
            if bar is not None:
                bar.set_postfix(
                    {f"test_{r.name}": f"{ep['recipes'][r.name]['test_acc']:.3f}" for r in recipes}
                    | {f"d_{k}": f"{v['probe_train_rel']:.1e}" for k, v in ep["vs_a"].items()}
                )
                bar.update(1)
            if on_epoch is not None:
                on_epoch(record)
        record["completed"] = True
    except Interrupted:
        record["interrupted_at_epoch"] = len(record["epochs"])
    finally:
        if bar is not None:
            bar.close()
    record["summary"] = _summary(record, cfg)
    if monitors is not None:
        record["monitor"] = write_monitors(monitors, Path(cfg.out) / f"monitor_seed{seed}")
    return record


def _epoch_record(
    cfg: Config,
    recipes: list[Recipe],
    ref: Recipe | None,
    others: list[Recipe],
    max_err: dict[str, torch.Tensor],
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    probe_x: torch.Tensor,
    epoch: int,
    step: int,
    train_s: float,
    lr_start: dict[str, float],
) -> dict[str, Any]:
    ep: dict[str, Any] = {
        "epoch": epoch + 1,
        "step": step,
        "train_s": train_s,
        "recipes": {},
        "vs_a": {},
    }
    probes = {}
    layer = len(recipes[0].params) // 2  # one conv layer mid-network, for the per-layer norm
    for r in recipes:
        test_loss, test_acc = evaluate(r.model, test_x, test_y, cfg.eval_batch, cfg.amp)
        probes[r.name] = probe_outputs(r.model, probe_x, cfg.amp)
        k = r.log2_scale
        sq = _sq_norm(r.params)
        sq_layer = _sq_norm([r.params[layer]])
        lr = r.stored_lr  # the LR of the next step (stored: 4^k η̃)
        log10_sq = math.log10(sq) - 2 * k * _LOG10_2
        log10_lr = math.log10(lr) - 2 * k * _LOG10_2
        ep["recipes"][r.name] = {
            "train_loss": float(r.loss_sum) / r.seen,  # type: ignore[arg-type]
            "train_acc": float(r.correct) / r.seen,  # type: ignore[arg-type]
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr_first_step": lr_start[r.name],
            "log10_lr": log10_lr,
            "log10_sq_norm": log10_sq,
            "log10_sq_norm_layer": math.log10(sq_layer) - 2 * k * _LOG10_2,
            "log10_sq_norm_over_lr": math.log10(sq) - math.log10(lr),
            "log10_effective_lr": math.log10(lr) - math.log10(sq),
            "angle_deg": _angle_deg(r.prev_params, r.params),
            "log2_rescale": k,
            "scale_vs_a": r.scale(),
        }
        r.prev_params = [p.detach().clone() for p in r.params]
    if ref is not None:
        for r in others:
            per, joint = param_errors(r, ref)
            torch.maximum(max_err[r.name], per, out=max_err[r.name])
            ep["vs_a"][r.name] = {
                "param_rel_err": float(per),
                "param_rel_err_joint": float(joint),
                "param_rel_err_max_so_far": float(max_err[r.name]),
                "probe_train_rel": _rel(probes[r.name][0], probes["a"][0]),
                "probe_eval_rel": _rel(probes[r.name][1], probes["a"][1]),
                "test_acc_diff": ep["recipes"][r.name]["test_acc"] - ep["recipes"]["a"]["test_acc"],
            }
    return ep


def _summary(record: dict[str, Any], cfg: Config) -> dict[str, Any]:
    eps = record["epochs"]
    if not eps:
        return {"epochs_done": 0}
    last = eps[-1]
    train_times = [e["train_s"] for e in eps]
    out: dict[str, Any] = {
        "epochs_done": len(eps),
        "final_test_acc": {k: v["test_acc"] for k, v in last["recipes"].items()},
        "final_train_acc": {k: v["train_acc"] for k, v in last["recipes"].items()},
        "epoch_train_s_median": float(
            np.median(train_times[1:] if len(train_times) > 1 else train_times)
        ),
        "train_s_total": float(np.sum(train_times)),
        "rescalings": {k: v["log2_rescale"] for k, v in last["recipes"].items()},
    }
    if last["vs_a"]:
        out["max_relative_parameter_error"] = {
            k: max(e["vs_a"][k]["param_rel_err_max_so_far"] for e in eps) for k in last["vs_a"]
        }
        out["max_probe_distance"] = {
            k: max(
                max(e["vs_a"][k]["probe_train_rel"], e["vs_a"][k]["probe_eval_rel"]) for e in eps
            )
            for k in last["vs_a"]
        }
        out["final_probe_distance"] = {
            k: {"train": v["probe_train_rel"], "eval": v["probe_eval_rel"]}
            for k, v in last["vs_a"].items()
        }
    return out
