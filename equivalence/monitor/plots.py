"""Plots of one or more monitors: effective LR, angular update against Δ*, weight norms against ‖w*‖.

Each takes :class:`~equivalence.monitor.core.Monitor` objects (e.g. a stock run and its
converted twin, by label) and writes a PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .core import Monitor

__all__ = ["plot_effective_lr", "plot_angular_update", "plot_weight_norms", "plot_all"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_monitors(monitors: Mapping[str, Monitor]) -> None:
    if not isinstance(monitors, Mapping) or not monitors:
        raise ValueError(f"monitors must be a non-empty mapping label -> Monitor, got {monitors!r}")
    for label, m in monitors.items():
        if not isinstance(m, Monitor):
            raise TypeError(f"monitors[{label!r}] is {type(m).__name__}, not a Monitor")


def _pick(m: Monitor, groups: Iterable[str] | None) -> list[str]:
    names = list(m.group_names if groups is None else groups)
    bad = [g for g in names if g not in m.group_names]
    if bad:
        raise ValueError(f"groups {bad} are not among {m.group_names}")
    return names


def plot_effective_lr(
    monitors: Mapping[str, Monitor], path: str | Path, groups: Iterable[str] | None = None
) -> Path:
    """Effective LR η_t/(‖w_t‖‖w_{t+1}‖) over time for each run (e.g. stock and converted)."""
    _check_monitors(monitors)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = ["-", "--", ":", "-."]
    for i, (label, m) in enumerate(monitors.items()):
        for g in _pick(m, groups):
            s, v = m.series(g, "effective_lr")
            ax.plot(s, v, styles[i % len(styles)], lw=1.2 if i == 0 else 1.8, label=f"{label}: {g}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"effective LR $\eta_t/(\|w_t\|\,\|w_{t+1}\|)$")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, plt, path)


def plot_angular_update(
    monitor: Monitor, path: str | Path, groups: Iterable[str] | None = None, smooth: int = 50
) -> Path:
    """Angular update per step (running mean over ``smooth`` steps) against its prediction Δ*."""
    if not isinstance(monitor, Monitor):
        raise TypeError(f"monitor must be a Monitor, got {type(monitor).__name__}")
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth = {smooth!r} is outside the valid range [1, inf)")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for g in _pick(monitor, groups):
        s, v = monitor.series(g, "angular_update")
        _, p = monitor.series(g, "predicted_angular_update")
        k = min(smooth, max(len(v), 1))
        (line,) = ax.plot(s, _trailing_mean(v, k), lw=1.2, label=f"{g} (mean of last {k})")
        ax.plot(s, p, "--", color=line.get_color(), lw=1.0)
    ax.plot([], [], "k--", lw=1.0, label=r"predicted $\arccos(1-\eta\lambda/(1+\gamma))$")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"angular update $\angle(w_t, w_{t+1})$ (rad)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, plt, path)


def _trailing_mean(v: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last k values at every index (fewer at the start), ignoring NaN."""
    ok = np.isfinite(v)
    c = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    n = np.concatenate([[0], np.cumsum(ok)])
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(i - k, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[i] - c[lo]) / (n[i] - n[lo])


def plot_weight_norms(
    monitors: Mapping[str, Monitor], path: str | Path, groups: Iterable[str] | None = None
) -> Path:
    """Stored weight norms ‖w_t‖ of each run, and the stock run's predicted equilibrium ‖w*‖."""
    _check_monitors(monitors)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = ["-", "--", ":", "-."]
    for i, (label, m) in enumerate(monitors.items()):
        for g in _pick(m, groups):
            s, v = m.series(g, "weight_norm")
            ax.plot(s, v, styles[i % len(styles)], lw=1.2, label=f"{label}: {g}")
            if i == 0:
                _, p = m.series(g, "predicted_weight_norm")
                ax.plot(s, p, color="grey", lw=0.8, alpha=0.7)
    ax.plot([], [], color="grey", lw=0.8, label=r"predicted $\|w^*\|$ (stock)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"$\|w_t\|$ (stored)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, plt, path)


def plot_all(
    monitors: Mapping[str, Monitor], out_dir: str | Path, groups: Iterable[str] | None = None
) -> list[Path]:
    """The three plots into ``out_dir``; the angular-update plot of the first monitor."""
    _check_monitors(monitors)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(monitors.values()))
    gl = None if groups is None else list(groups)
    return [
        plot_effective_lr(monitors, out / "effective_lr.png", gl),
        plot_angular_update(first, out / "angular_update.png", gl),
        plot_weight_norms(monitors, out / "weight_norms.png", gl),
    ]


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p
