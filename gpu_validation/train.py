"""Training the recipes in lockstep and recording how far apart they are, epoch by epoch.

All requested recipes (:mod:`gpu_validation.recipes`: ``a`` the stock recipe, ``b`` and ``c``
its converted twins) start from one θ_0 and take the same batch at every step, one after the
other inside one loop. Measured as the run goes (:mod:`gpu_validation.measure`), without a
host sync per step (device-side accumulators, read once per epoch):

- the relative parameter error of each twin against a (every ``check_every`` steps, default
  once per epoch);
- on a fixed probe batch, the relative distance between the recipes' outputs in training and
  eval mode, once per epoch;
- per recipe: train/test loss and accuracy, the true learning rate, the squared norm of the
  conv weights (all, and one layer), ‖w‖²/η, the effective learning rate η/‖w‖² and the angle
  between successive epochs' weights. "True" undoes the power-of-two rescaling: log10 values
  are those of the unrescaled run (up to 1e26 for the LR, 1e29 for ‖w‖²).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .augment import DeviceAugmenter, normalize
from .config import Config
from .data import Cifar10
from .full_data import attach_monitors, write_monitors
from .measure import (
    angle_deg,
    audit_check,
    autocast,
    evaluate,
    invariance_check,
    logits,
    param_errors,
    probe_outputs,
    rel,
    sq_norm,
)
from .model import PreResNet, conv_weights, init_weights
from .recipes import Recipe, build_recipes

__all__ = ["Interrupted", "train_seed"]

_LOG10_2 = math.log10(2.0)


class Interrupted(Exception):
    """Raised (from a SIGTERM handler) to stop a run after writing what it has."""


def _steps_per_epoch(n: int, batch: int) -> int:
    return -(-n // batch)


# -- the training loop --------------------------------------------------------------------------


def _warm_up(
    recipes: list[Recipe], x: torch.Tensor, y: torch.Tensor, sizes: list[int], amp: bool
) -> None:
    """Run forward/backward once per batch size (compilation, cuDNN autotuning), then undo every side effect."""
    for r in recipes:
        saved = {k: v.detach().clone() for k, v in r.model.state_dict().items()}
        for n in sizes:
            with autocast(x.device, amp):
                loss = F.cross_entropy(logits(r.step_model(x[:n])), y[:n])
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
    # the exact check judges every step's error (``equivalence.noise_floor``): kept on the host
    per_step: dict[str, list[float]] = {r.name: [] for r in others} if cfg.exact_check else {}
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
                    with autocast(device, cfg.amp):
                        out = r.step_model(xb)
                    loss = F.cross_entropy(logits(out), yb)
                    r.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    r.optimizer.step()
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
                        if cfg.exact_check:
                            per_step[r.name].append(float(per))
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
    if cfg.exact_check:
        record["param_rel_err_per_check"] = {"check_every": check_every, **per_step}
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
        sq = sq_norm(r.params)
        sq_layer = sq_norm([r.params[layer]])
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
            "angle_deg": angle_deg(r.prev_params, r.params),
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
                "probe_train_rel": rel(probes[r.name][0], probes["a"][0]),
                "probe_eval_rel": rel(probes[r.name][1], probes["a"][1]),
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
