"""The toy counterexample (``toy``): WD alone or BN alone converge, BN + WD never does."""

from __future__ import annotations

import math
from pathlib import Path

from toy import ToyConfig, run_regimes
from toy.plots import plot_cycle, plot_trajectories

from .claims import Status
from .numeric import NumericResult

#: the BN + WD cycle's time-averaged ‖w‖² must be within 5 % of the predicted threshold ηk/2
THRESHOLD_TOL = 0.05
EXPECTED = {"wd_only": True, "bn_only": True, "bn_wd": False}


def check_toy(out: Path) -> NumericResult:
    """Run the three regimes of the paper's toy, plot them to OUT; the regimes in ``record``."""
    result = run_regimes(ToyConfig())
    out.mkdir(parents=True, exist_ok=True)
    plot_trajectories(result, out / "toy_trajectories.png")
    plot_cycle(result, out / "toy_cycle.png")
    got = {k: bool(result["verdicts"][k]["converged"]) for k in EXPECTED}
    ratio = (result.get("measured_threshold") or {}).get("mean_norm_sq_ratio")
    err = abs(float(ratio) - 1.0) if ratio is not None else math.nan
    ok = got == EXPECTED and (math.isnan(err) or err <= THRESHOLD_TOL)
    detail = f"converged: {got} (expected {EXPECTED})"
    if ratio is not None:
        detail += f"; BN + WD mean ‖w‖² / predicted threshold ηk/2 = {ratio:.4f}"
    regimes = {k: {"converged": got[k]} for k in EXPECTED}
    return NumericResult(Status.PASSED if ok else Status.FAILED, err, detail, record=regimes)
