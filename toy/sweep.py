r"""Phase diagram: where BN + WD starts to oscillate within a horizon, over (η, λ).

Prediction (the project's derivation, see :mod:`toy.dynamics`). Once the
direction has settled, ‖w_t‖² ≈ ‖w_0‖² (1 − ηλ)^{2t}, so the norm reaches the
threshold η k / (2(1 − ηλ)) after

    t*(η, λ) = ln(η k / (2(1 − ηλ) ‖w_0‖²)) / (2 ln(1 − ηλ))  steps

(t* = 0 if ‖w_0‖² is already below it). Past the threshold the angle grows by
|1 − ηk/((1−ηλ)‖w‖²)| ≈ 1 + 4ηλ s per step, s steps after the crossing, so
from the rounding floor ε it reaches a visible spike (SPIKE_ANGLE) after
about s = √(ln(SPIKE_ANGLE/ε) / (2ηλ)) more steps. BN + WD is predicted to
oscillate within the horizon T iff t* + s ≤ T. The boundary ignores the
small rise of ‖w‖ while the direction first settles.

Every cell is a population BN + WD run; all cells run together as one batch
(numpy, vectorised over the grid), from the same w_0 as :func:`run_regimes`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import brentq
from tqdm import tqdm

from .config import DEFAULT_JITTER, ToyConfig
from .dynamics import SPIKE_ANGLE, initial_point, predicted_onset_step
from .model import POPULATION_CURVATURE, PopulationObjective, gauss_rule

__all__ = ["SWEEP_RULE", "predicted_boundary", "sweep"]

SWEEP_RULE = gauss_rule(24, 32)
"""Coarser rule for unit vectors only (error < 4e-13 on the unit circle)."""

SETTLED_ANGLE = 1e-3


def predicted_boundary(
    lrs: np.ndarray,
    horizon: int,
    init_norm: float = 1.0,
    curvature: float = POPULATION_CURVATURE,
    jitter: float = DEFAULT_JITTER,
    with_delay: bool = True,
) -> np.ndarray:
    """For each η, the λ above which BN + WD is predicted to oscillate within ``horizon`` steps."""
    out = np.full(len(lrs), np.nan)
    for i, lr in enumerate(lrs):

        def excess(log_wd: float, lr: float = float(lr)) -> float:
            t_cross, t_onset = predicted_onset_step(
                lr, math.exp(log_wd), init_norm, curvature, jitter
            )
            return float((t_onset if with_delay else t_cross) - horizon)

        lo, hi = math.log(1e-12), math.log(0.999 / lr)
        if excess(hi) > 0 or excess(lo) < 0:
            continue
        out[i] = math.exp(brentq(excess, lo, hi, xtol=1e-10))
    return out


def sweep(
    config: ToyConfig | None = None,
    lrs: np.ndarray | None = None,
    weight_decays: np.ndarray | None = None,
    steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run population BN + WD on the grid lrs × weight_decays for ``steps`` steps.

    Returns, per cell (arrays of shape (len(lrs), len(weight_decays))):
    ``oscillates`` (a spike — angle above SPIKE_ANGLE — after the direction
    first settled below 1e-3 rad, or never settling), ``first_spike_step``
    (−1 if none), ``predicted_oscillates``, ``predicted_onset_step``,
    ``mean_norm_sq_ratio`` (mean of ‖w‖² over the last quarter divided by
    η k / 2) and ``min_norm_sq_ratio``; plus the predicted boundary and the
    agreement fraction.
    """
    config = config or ToyConfig()
    lrs = np.geomspace(1e-2, 1.0, 9) if lrs is None else np.asarray(lrs, dtype=np.float64)
    weight_decays = (
        np.geomspace(1e-4, 1e-1, 13)
        if weight_decays is None
        else np.asarray(weight_decays, dtype=np.float64)
    )
    steps = config.steps if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1 (valid range [1, inf)), got {steps!r}")
    if lrs.ndim != 1 or lrs.size == 0 or np.any(~(lrs > 0)):
        raise ValueError(f"lrs must be a non-empty 1-D array of values > 0, got {lrs!r}")
    if weight_decays.ndim != 1 or weight_decays.size == 0 or np.any(~(weight_decays > 0)):
        raise ValueError(
            f"weight_decays must be a non-empty 1-D array of values > 0, got {weight_decays!r}"
        )
    if np.max(lrs) * np.max(weight_decays) >= 1:
        raise ValueError("every lr * weight_decay must be < 1")

    lr_grid, wd_grid = np.meshgrid(lrs, weight_decays, indexing="ij")
    lr_flat, wd_flat = lr_grid.ravel(), wd_grid.ravel()
    cells = lr_flat.size
    k = POPULATION_CURVATURE
    w0 = initial_point(config)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
    objective = PopulationObjective(normalized=True, rule=SWEEP_RULE)

    w = np.tile(w0, (cells, 1))
    angle = np.empty((steps + 1, cells))
    norm_sq = np.empty((steps + 1, cells))
    bar = tqdm(total=steps, desc=f"sweep {lrs.size}x{weight_decays.size}", disable=not progress)
    for t in range(steps + 1):
        nsq = np.einsum("ij,ij->i", w, w)
        norm_sq[t] = nsq
        angle[t] = np.arctan2(np.sqrt(np.einsum("ij,ij->i", w[:, 1:], w[:, 1:])), w[:, 0])
        if t == steps:
            break
        _, grad = objective.value_and_grad(w, with_value=False)
        # w_{t+1} = w_t − η (∇L(w_t) + λ w_t), every cell at once
        w = w - lr_flat[:, None] * (grad + wd_flat[:, None] * w)
        if config.jitter > 0:
            scale = config.jitter * np.sqrt(np.einsum("ij,ij->i", w, w)) / math.sqrt(config.dim)
            w += scale[:, None] * rng.standard_normal(w.shape)
        if (t + 1) % 100 == 0 or t + 1 == steps:
            bar.update((t + 1) - bar.n)
    bar.close()

    threshold = lr_flat * k / 2.0
    settled = angle < SETTLED_ANGLE
    first_spike = np.full(cells, -1)
    never_settled = np.zeros(cells, dtype=bool)
    for c in range(cells):
        idx = np.flatnonzero(settled[:, c])
        if idx.size == 0:
            never_settled[c] = True
            continue
        later = np.flatnonzero(angle[idx[0] :, c] > SPIKE_ANGLE)
        if later.size:
            first_spike[c] = idx[0] + later[0]
    oscillates = (first_spike >= 0) | never_settled
    quarter = (3 * steps) // 4
    _, onset = predicted_onset_step(lr_flat, wd_flat, config.init_norm, k, config.jitter)
    predicted = onset <= steps
    shape = lr_grid.shape
    fine_lrs = np.geomspace(lrs.min(), lrs.max(), 200)
    return {
        "lrs": lrs,
        "weight_decays": weight_decays,
        "steps": steps,
        "oscillates": oscillates.reshape(shape),
        "never_settled": never_settled.reshape(shape),
        "first_spike_step": first_spike.reshape(shape),
        "predicted_oscillates": predicted.reshape(shape),
        "predicted_onset_step": onset.reshape(shape),
        "mean_norm_sq_ratio": (norm_sq[quarter:].mean(axis=0) / threshold).reshape(shape),
        "min_norm_sq_ratio": (norm_sq.min(axis=0) / threshold).reshape(shape),
        "agreement": float(np.mean(oscillates == predicted)),
        "boundary_lrs": fine_lrs,
        "boundary_weight_decays": predicted_boundary(
            fine_lrs, steps, config.init_norm, k, config.jitter, with_delay=True
        ),
        "boundary_weight_decays_no_delay": predicted_boundary(
            fine_lrs, steps, config.init_norm, k, config.jitter, with_delay=False
        ),
    }
