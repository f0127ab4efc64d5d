"""``python -m toy --out DIR [--sweep] [--mode population|sample] ...``.

Runs the three regimes, prints a table, writes DIR/toy.json (config,
versions, verdicts, predicted and measured threshold, lemma checks),
DIR/toy_trajectories.npz (every iterate's record), DIR/toy_trajectories.png,
DIR/toy_cycle.png and, with ``--sweep``, DIR/toy_phase.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import MODES, ToyConfig
from .dynamics import CONVERGENCE_CRITERION, REGIMES, SPIKE_ANGLE, run_regimes
from .plots import plot_cycle, plot_phase, plot_trajectories
from .sweep import sweep

__all__ = ["main", "build_parser", "to_record"]


def _versions() -> dict[str, str | None]:
    import matplotlib
    import scipy
    import tqdm

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "tqdm": tqdm.__version__,
        "git_commit": commit,
    }


def _jsonable(obj: object) -> object:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    return obj


def to_record(result: dict, runtime_s: float, sweep_result: dict | None = None) -> dict:
    """The JSON record of a run: config, versions, per-regime verdicts, thresholds."""
    config: ToyConfig = result["config"]
    record: dict[str, object] = {
        "config": dataclasses.asdict(config),
        "versions": _versions(),
        "criterion": CONVERGENCE_CRITERION,
        "spike_angle": SPIKE_ANGLE,
        "runtime_s": runtime_s,
    }
    for name in REGIMES:
        entry = dict(result["verdicts"][name])
        opt = result["optima"][name]
        entry["optimum"] = {
            "direction": opt.direction,
            "point": opt.point,
            "curvature": opt.curvature,
        }
        entry["lemma"] = result["lemma"][name]
        record[name] = entry
    record["predicted_threshold"] = result["predicted_threshold"]
    record["measured_threshold"] = result["measured_threshold"]
    if sweep_result is not None:
        record["sweep"] = {
            key: sweep_result[key]
            for key in (
                "lrs",
                "weight_decays",
                "steps",
                "oscillates",
                "never_settled",
                "predicted_oscillates",
                "first_spike_step",
                "predicted_onset_step",
                "mean_norm_sq_ratio",
                "agreement",
            )
        }
    return _jsonable(record)  # type: ignore[return-value]


def _table(result: dict) -> str:
    head = (
        f"{'regime':<8} {'converged':>9} {'final |grad|':>13} {'final angle':>12} "
        f"{'final |w|':>10} {'tail |w| min..max':>20} {'tail spikes':>11} {'tail loss max':>13}"
    )
    lines = [head, "-" * len(head)]
    for name in REGIMES:
        v = result["verdicts"][name]
        lines.append(
            f"{name:<8} {'yes' if v['converged'] else 'NO':>9} {v['final_grad_norm']:>13.3e} "
            f"{v['final_angle']:>12.3e} {v['final_norm']:>10.5f} "
            f"{v['tail_norm_min']:>9.5f}..{v['tail_norm_max']:<9.5f} {v['tail_spikes']:>11d} "
            f"{v['tail_loss_max']:>13.6f}"
        )
    pred = result["predicted_threshold"]
    meas = result["measured_threshold"]
    half = meas["last_half"]
    lines += [
        "",
        f"curvature of the direction loss at its minimum: k = {pred['curvature']:.6f}"
        + (" (= 1/sqrt(2 pi))" if result["config"].mode == "population" else " (largest, sample)"),
        f"predicted threshold: ||w||^2 < eta k / 2 = {pred['norm_sq']:.6f} (||w|| < {pred['norm']:.5f});"
        f" with the (1 - eta lambda) of the step: {pred['norm_sq_exact_step']:.6f}",
        f"measured, GD map loses stability at ||w||^2 = {meas['map_norm_sq']:.6f}"
        f" (ratio {meas['map_norm_sq_ratio']:.8f})",
        f"measured, BN+WD last half: mean ||w||^2 = {half['mean_norm_sq']:.6f}"
        f" (ratio to eta k/2: {meas['mean_norm_sq_ratio']:.4f}); ||w|| cycles in"
        f" [{half['norm_min']:.4f}, {half['norm_max']:.4f}], {half['spikes']} spikes,"
        f" error up to {100 * half['error_max']:.2f}%",
        f"first spike at step {meas['first_spike_step']} (predicted {meas['predicted_first_spike_step']:.0f};"
        f" threshold crossing predicted at {meas['predicted_crossing_step']:.0f})",
    ]
    lem = result["lemma"]["bn_wd"]
    lines.append(
        f"lemma <grad(L)+lambda w, w> = lambda ||w||^2 along BN+WD: max rel. deviation"
        f" {lem['max_rel_dev_inner_vs_lambda_norm_sq']:.1e}, min ||grad||/(lambda ||w||)"
        f" = {lem['min_grad_norm_over_lambda_norm']:.6f}"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; defaults come from :class:`ToyConfig`."""
    d = ToyConfig()
    p = argparse.ArgumentParser(
        prog="python -m toy",
        description="BN + WD non-convergence toy (Li & Arora 2020): three regimes, threshold, phase diagram.",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--mode", choices=MODES, default=d.mode, help="exact population or finite sample"
    )
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate eta (> 0)")
    p.add_argument(
        "--weight-decay", type=float, default=d.weight_decay, help="weight decay lambda (>= 0)"
    )
    p.add_argument("--dim", type=int, default=d.dim, help="input dimension m (>= 2)")
    p.add_argument("--steps", type=int, default=d.steps, help="GD steps per regime (>= 1)")
    p.add_argument("--n-samples", type=int, default=d.n_samples, help="batch size in sample mode")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--init-norm", type=float, default=d.init_norm, help="||w_0|| (> 0)")
    p.add_argument(
        "--jitter", type=float, default=d.jitter, help="relative rounding perturbation per step"
    )
    p.add_argument("--grad-tol", type=float, default=d.grad_tol)
    p.add_argument("--angle-tol", type=float, default=d.angle_tol)
    p.add_argument(
        "--tail", type=float, default=d.tail, help="fraction of steps judged for convergence"
    )
    p.add_argument("--sweep", action="store_true", help="also run the (eta, lambda) phase sweep")
    p.add_argument("--sweep-steps", type=int, default=6000, help="horizon T of each sweep run")
    p.add_argument(
        "--sweep-lr-range", type=float, nargs=2, default=(1e-2, 1.0), metavar=("LO", "HI")
    )
    p.add_argument(
        "--sweep-wd-range", type=float, nargs=2, default=(1e-4, 1e-1), metavar=("LO", "HI")
    )
    p.add_argument("--sweep-points", type=int, nargs=2, default=(9, 13), metavar=("N_LR", "N_WD"))
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _sweep_grid(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[np.ndarray, np.ndarray]:
    (lr_lo, lr_hi), (wd_lo, wd_hi) = args.sweep_lr_range, args.sweep_wd_range
    n_lr, n_wd = args.sweep_points
    if not 0 < lr_lo <= lr_hi:
        parser.error(f"--sweep-lr-range must satisfy 0 < LO <= HI, got {lr_lo} {lr_hi}")
    if not 0 < wd_lo <= wd_hi:
        parser.error(f"--sweep-wd-range must satisfy 0 < LO <= HI, got {wd_lo} {wd_hi}")
    if lr_hi * wd_hi >= 1:
        parser.error(f"--sweep ranges need lr * weight_decay < 1, got {lr_hi} * {wd_hi}")
    if n_lr < 1 or n_wd < 1:
        parser.error(f"--sweep-points must be >= 1, got {n_lr} {n_wd}")
    if args.sweep_steps < 1:
        parser.error(f"--sweep-steps must be >= 1 (valid range [1, inf)), got {args.sweep_steps}")
    return np.geomspace(lr_lo, lr_hi, n_lr), np.geomspace(wd_lo, wd_hi, n_wd)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 on success (argparse exits with 2 on bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = ToyConfig(
            lr=args.lr,
            weight_decay=args.weight_decay,
            dim=args.dim,
            steps=args.steps,
            mode=args.mode,
            n_samples=args.n_samples,
            seed=args.seed,
            init_norm=args.init_norm,
            jitter=args.jitter,
            grad_tol=args.grad_tol,
            angle_tol=args.angle_tol,
            tail=args.tail,
        )
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    if config.weight_decay == 0:
        parser.error(
            "--weight-decay must be > 0 here: the WD-only and BN+WD regimes need it, got 0"
        )
    grid = _sweep_grid(args, parser) if args.sweep else None

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = run_regimes(config)
    runtime = time.perf_counter() - start
    print(_table(result))
    print(f"runtime of the three regimes: {runtime:.2f} s")

    sweep_result: dict[str, Any] | None = None
    if grid is not None:
        if config.mode != "population":
            print("note: the sweep always uses the population model")
        sweep_result = sweep(
            config, grid[0], grid[1], steps=args.sweep_steps, progress=not args.no_progress
        )
        print(
            f"sweep {grid[0].size}x{grid[1].size}, {args.sweep_steps} steps: measured oscillation agrees"
            f" with the predicted boundary in {100 * float(sweep_result['agreement']):.1f}% of cells"
        )

    record = to_record(result, runtime, sweep_result)
    trajectories: dict[str, dict[str, np.ndarray]] = result["trajectories"]  # type: ignore[assignment]
    (out / "toy.json").write_text(json.dumps(record, indent=2))
    arrays = {
        f"{name}_{key}": value for name, traj in trajectories.items() for key, value in traj.items()
    }
    np.savez_compressed(out / "toy_trajectories.npz", **arrays)  # type: ignore[arg-type]
    written = [
        out / "toy.json",
        out / "toy_trajectories.npz",
        plot_trajectories(result, out / "toy_trajectories.png"),
        plot_cycle(result, out / "toy_cycle.png"),
    ]
    if sweep_result is not None:
        written.append(plot_phase(sweep_result, out / "toy_phase.png"))
    for path in written:
        print(f"wrote {path}")
    sys.stdout.flush()
    return 0
