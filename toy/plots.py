"""PNG figures of the toy: trajectories, one BN + WD cycle close up, phase diagram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

__all__ = ["plot_trajectories", "plot_cycle", "plot_phase"]

TITLES = {
    "wd_only": "WD only (no BN)",
    "bn_only": "BN only (λ = 0)",
    "bn_wd": "BN + WD",
}
FLOOR = 1e-18  # log-scale floor for quantities that reach 0


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(x), FLOOR)


def plot_trajectories(result: dict, path: Path) -> Path:
    """Seven quantities (rows) of the three regimes (columns) against the step."""
    config = result["config"]
    trajs = result["trajectories"]
    pred = result["predicted_threshold"]
    rows = [
        ("excess", "objective − its minimum"),
        ("grad_norm", "‖∇L + λw‖"),
        ("norm", "‖w‖"),
        ("angle", "angle to optimum (rad)"),
        ("error", "training error"),
        ("eff_lr", "effective LR η/‖w‖²"),
        ("inner", "⟨∇L + λw, w⟩"),
    ]
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 19), sharex="col")
    for j, name in enumerate(("wd_only", "bn_only", "bn_wd")):
        traj = trajs[name]
        steps = np.arange(traj["norm"].shape[0])
        verdict = result["verdicts"][name]
        wd = config.weight_decay if name != "bn_only" else 0.0
        bn = name != "wd_only"
        status = "converged" if verdict["converged"] else "does NOT converge"
        axes[0, j].set_title(f"{TITLES[name]}: {status}", fontsize=13, fontweight="bold")
        for i, (key, label) in enumerate(rows):
            ax = axes[i, j]
            y = traj[key] if key != "excess" else traj["loss"]
            if key == "excess":
                best = result["optima"][name].value
                excess = traj["objective"] - best if name == "wd_only" else traj["loss"] - best
                ax.plot(steps, _pos(excess), lw=0.9, color="C0")
                ax.set_yscale("log")
                ax.text(
                    0.97,
                    0.93,
                    "L + (λ/2)‖w‖² − min" if name == "wd_only" else "L(w) − min over directions",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=9,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
                )
            elif key == "norm":
                ax.plot(steps, y, lw=0.9, color="C0")
                if bn:
                    ax.axhline(
                        pred["norm"],
                        color="C3",
                        ls="--",
                        lw=1.2,
                        label="predicted threshold √(ηk/2)",
                    )
                    ax.legend(fontsize=9, loc="upper right")
                ax.set_ylim(bottom=0)
            elif key == "eff_lr":
                ax.plot(steps, y, lw=0.9, color="C0")
                if bn:
                    ax.axhline(
                        pred["critical_eff_lr"],
                        color="C3",
                        ls="--",
                        lw=1.2,
                        label="2/k (instability)",
                    )
                    ax.legend(fontsize=9, loc="lower right")
                ax.set_yscale("log")
            elif key == "inner":
                ax.plot(steps, _pos(y), lw=0.9, color="C0", label="|⟨∇L + λw, w⟩|")
                if wd > 0:
                    ax.plot(
                        steps, wd * traj["norm"] ** 2, lw=1.2, ls="--", color="C3", label="λ‖w‖²"
                    )
                ax.set_yscale("log")
                ax.legend(fontsize=9, loc="upper right")
            else:
                ax.plot(steps, _pos(y), lw=0.9, color="C0")
                ax.set_yscale("log")
                if key == "grad_norm":
                    ax.axhline(config.grad_tol, color="C2", ls=":", lw=1.2, label="grad_tol")
                    if bn and wd > 0:
                        ax.plot(
                            steps,
                            wd * traj["norm"],
                            color="C3",
                            ls="--",
                            lw=1.0,
                            label="λ‖w‖ (lower bound)",
                        )
                    ax.legend(fontsize=9, loc="upper right")
                if key == "angle":
                    ax.axhline(config.angle_tol, color="C2", ls=":", lw=1.2, label="angle_tol")
                    ax.legend(fontsize=9, loc="upper right")
            tail = verdict["tail_start"]
            ax.axvspan(tail, steps[-1], color="0.9", zorder=0)
            ax.tick_params(labelsize=9)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(label, fontsize=11)
        axes[-1, j].set_xlabel("step", fontsize=11)
    fig.suptitle(
        f"Toy counterexample ({config.mode}): η = {config.lr:g}, λ = {config.weight_decay:g}, "
        f"m = {config.dim}; shaded: the tail where convergence is judged",
        fontsize=14,
    )
    # explicit margins: tight_layout on 21 log axes costs seconds
    fig.subplots_adjust(left=0.065, right=0.985, top=0.945, bottom=0.035, hspace=0.12, wspace=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cycle(result: dict, path: Path, cycles: int = 3) -> Path:
    """BN + WD close up: a few cycles of ‖w‖, angle and loss in the last half."""
    traj = result["trajectories"]["bn_wd"]
    pred = result["predicted_threshold"]
    angle = traj["angle"]
    n = angle.shape[0]
    above = angle > 0.05
    ups = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    ups = ups[ups >= n // 2]
    if ups.size >= cycles + 1:
        lo, hi = max(ups[0] - 20, 0), min(ups[cycles] + 20, n)
    else:
        lo, hi = n // 2, n
    steps = np.arange(lo, hi)
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    axes[0].plot(steps, traj["norm"][lo:hi], color="C0", lw=1.2, label="‖w‖")
    axes[0].axhline(
        pred["norm"],
        color="C3",
        ls="--",
        lw=1.2,
        label=f"predicted threshold √(ηk/2) = {pred['norm']:.4f}",
    )
    axes[0].set_ylabel("‖w‖", fontsize=11)
    axes[0].legend(fontsize=10, loc="upper right")
    axes[1].plot(steps, _pos(angle[lo:hi]), color="C0", lw=1.2)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("angle to e₁ (rad)", fontsize=11)
    axes[2].plot(steps, traj["loss"][lo:hi], color="C0", lw=1.2, label="loss")
    ax2 = axes[2].twinx()
    ax2.plot(steps, traj["error"][lo:hi] * 100, color="C1", lw=1.0, ls="-", label="error (%)")
    ax2.set_ylabel("training error (%)", fontsize=11, color="C1")
    axes[2].set_ylabel("loss L(w)", fontsize=11)
    axes[2].set_xlabel("step", fontsize=11)
    axes[2].legend(
        handles=[Line2D([], [], color="C0"), Line2D([], [], color="C1")],
        labels=["loss", "training error (%)"],
        fontsize=10,
        loc="center right",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    config = result["config"]
    fig.suptitle(
        f"BN + WD close up (η = {config.lr:g}, λ = {config.weight_decay:g}): the norm decays "
        "below the threshold,\nthe direction blows up, the norm jumps back, and again",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_phase(sweep_result: dict, path: Path) -> Path:
    """Phase diagram over (η, λ): measured oscillation vs the predicted boundary."""
    lrs = sweep_result["lrs"]
    wds = sweep_result["weight_decays"]
    osc = sweep_result["oscillates"]
    ratio = sweep_result["mean_norm_sq_ratio"]
    fig, ax = plt.subplots(figsize=(10, 8.5))

    # cell edges on the log grid
    def edges(v: np.ndarray) -> np.ndarray:
        lv = np.log10(v)
        if lv.size == 1:
            return 10 ** np.array([lv[0] - 0.5, lv[0] + 0.5])
        mid = 0.5 * (lv[1:] + lv[:-1])
        return 10 ** np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]])

    mesh = ax.pcolormesh(
        edges(lrs), edges(wds), np.log10(ratio).T, cmap="viridis", shading="flat", vmin=0.0
    )
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(
        "log10( mean ‖w‖² over the last quarter / (ηk/2) );  0: norm sits at the threshold",
        fontsize=10,
    )
    lg, wg = np.meshgrid(lrs, wds, indexing="ij")
    ax.scatter(lg[osc], wg[osc], marker="X", s=90, c="red", edgecolors="white", linewidths=0.8)
    ax.scatter(
        lg[~osc], wg[~osc], marker="o", s=60, facecolors="none", edgecolors="white", linewidths=1.5
    )
    ax.plot(
        sweep_result["boundary_lrs"],
        sweep_result["boundary_weight_decays"],
        color="orange",
        lw=2.5,
    )
    ax.plot(
        sweep_result["boundary_lrs"],
        sweep_result["boundary_weight_decays_no_delay"],
        color="orange",
        lw=1.5,
        ls="--",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate η", fontsize=12)
    ax.set_ylabel("weight decay λ", fontsize=12)
    steps = sweep_result["steps"]
    ax.set_title(
        f"BN + WD, population GD, {steps} steps: where it oscillates\n"
        f"agreement of measured with predicted: {100 * sweep_result['agreement']:.0f}% of cells",
        fontsize=12,
    )
    handles = [
        Line2D(
            [],
            [],
            marker="X",
            ls="",
            color="red",
            markeredgecolor="white",
            markersize=10,
            label="measured: oscillates (error spike)",
        ),
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            markerfacecolor="none",
            markeredgecolor="black",
            markersize=9,
            label="measured: settled, no spike",
        ),
        Line2D([], [], color="orange", lw=2.5, label="predicted: first spike at step T"),
        Line2D(
            [], [], color="orange", lw=1.5, ls="--", label="predicted: ‖w‖² reaches ηk/2 at step T"
        ),
    ]
    ax.legend(
        handles=handles,
        fontsize=10,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.11),
        ncol=2,
        framealpha=0.9,
    )
    ax.set_xlim(edges(lrs)[0], edges(lrs)[-1])
    ax.set_ylim(edges(wds)[0], edges(wds)[-1])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
