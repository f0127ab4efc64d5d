"""Plots of a ``results.json`` (matplotlib, Agg), and an overlay of several runs.

Per seed, one figure ``seed<N>.png`` with six panels: train/test accuracy
of every recipe overlaid; the learning rate on a log axis (the unrescaled η̃,
up to about 1e26 for the paper's recipe); the squared norm of the conv
weights (log); ‖w‖²/η̃ (log; constant within each phase for the no-WD runs, the
paper's figure); the effective learning rate η/‖w‖² (log); and the
distance to recipe a (parameters and probe outputs, log).

``python -m gpu_validation.report DIR [DIR ...] [--out FILE]`` overlays the
test accuracy of every recipe and seed found in the directories' results
(for runs made by separate invocations, e.g. a+b then c).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["plot_results", "plot_overlay", "main"]

_STYLE = {"a": ("C0", "-"), "b": ("C1", "--"), "c": ("C2", ":")}
_LABEL = {"a": "a: step decay + WD", "b": "b: exact no-WD (general)", "c": "c: TEXP"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(run: dict[str, Any], recipe: str, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for e in run["epochs"]:
        if recipe in e["recipes"]:
            xs.append(e["epoch"])
            ys.append(e["recipes"][recipe][key])
    return xs, ys


def plot_results(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """One six-panel figure per seed; returns the paths written."""
    plt = _plt()
    paths = []
    for run in results["runs"]:
        if not run["epochs"]:
            continue
        recipes = list(run["epochs"][0]["recipes"])
        fig, axes = plt.subplots(2, 3, figsize=(16, 9))
        ax = axes[0, 0]
        for r in recipes:
            c, ls = _STYLE[r]
            x, y = _series(run, r, "test_acc")
            ax.plot(x, y, color=c, ls=ls, label=f"{_LABEL[r]} (test)")
            x, y = _series(run, r, "train_acc")
            ax.plot(x, y, color=c, ls=ls, alpha=0.4, label=f"{r} (train)")
        ax.set(title="accuracy", xlabel="epoch", ylabel="accuracy")
        ax.legend(fontsize=7)
        for ax, key, title in (
            (axes[0, 1], "log10_lr", "learning rate (unrescaled η̃)"),
            (axes[0, 2], "log10_sq_norm", "‖w‖² of the convs (unrescaled)"),
            (axes[1, 0], "log10_sq_norm_over_lr", "‖w‖² / η̃"),
            (axes[1, 1], "log10_effective_lr", "effective LR η / ‖w‖²"),
        ):
            for r in recipes:
                c, ls = _STYLE[r]
                x, y = _series(run, r, key)
                ax.plot(x, [10.0**v for v in y], color=c, ls=ls, label=_LABEL[r])
            ax.set_yscale("log")
            ax.set(title=title, xlabel="epoch")
            ax.legend(fontsize=7)
        ax = axes[1, 2]
        floor = 1e-17
        for r in recipes:
            if r == "a" or "a" not in recipes:  # distances are to recipe a, when it ran
                continue
            c, _ = _STYLE[r]
            xs = [e["epoch"] for e in run["epochs"]]
            for key, ls, what in (
                ("param_rel_err", "-", "params"),
                ("probe_train_rel", "--", "probe (train mode)"),
                ("probe_eval_rel", ":", "probe (eval mode)"),
            ):
                ys = [max(e["vs_a"][r][key], floor) for e in run["epochs"]]
                ax.plot(xs, ys, color=c, ls=ls, label=f"{r} vs a: {what}")
        ax.set_yscale("log")
        ax.set(title="relative distance to recipe a", xlabel="epoch")
        if any(r != "a" for r in recipes) and "a" in recipes:
            ax.legend(fontsize=7)
        for m in run.get("milestone_epochs", []):
            for a in axes.flat:
                a.axvline(m, color="0.8", lw=0.8, zorder=0)
        cfg = results.get("config", {})
        fig.suptitle(
            f"PreResNet{cfg.get('depth')} width {cfg.get('width')}, seed {run['seed']}, {cfg.get('dtype')}"
            f"{' + bf16 autocast' if cfg.get('amp') else ''}, {run['n_train']} train images, "
            f"{run['steps_per_epoch']} steps/epoch, {results.get('versions', {}).get('device')}"
        )
        fig.tight_layout()
        p = Path(out_dir) / f"seed{run['seed']}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def plot_overlay(result_files: list[Path], out_file: Path) -> Path:
    """Test accuracy of every recipe and seed found in ``result_files``, on one axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for f in result_files:
        res = json.loads(Path(f).read_text())
        for run in res.get("runs", []):
            if not run["epochs"]:
                continue
            for r in run["epochs"][0]["recipes"]:
                c, ls = _STYLE[r]
                x, y = _series(run, r, "test_acc")
                ax.plot(
                    x,
                    y,
                    color=c,
                    ls=ls,
                    alpha=0.8,
                    label=f"{r} seed {run['seed']} ({Path(f).parent.name}): {y[-1]:.4f}",
                )
    ax.set(title="test accuracy", xlabel="epoch", ylabel="accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gpu_validation.report",
        description="Overlay the test accuracy of several gpu_validation runs.",
    )
    p.add_argument("dirs", nargs="+", help="directories holding results.json")
    p.add_argument("--out", default=None, help="output PNG (default: <first dir>/../overlay.png)")
    ns = p.parse_args(argv)
    files = [Path(d) / "results.json" for d in ns.dirs]
    files = [f for f in files if f.is_file()]
    if not files:
        p.error(f"no results.json in {ns.dirs}")
    out = Path(ns.out) if ns.out else Path(ns.dirs[0]).resolve().parent / "overlay.png"
    print(plot_overlay(files, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
