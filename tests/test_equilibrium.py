"""The equilibrium predictions of ``proofs/equilibrium.py`` on a model whose assumptions hold.

Model: a scale-invariant "loss" on w ∈ R^d driven by isotropic gradient noise,
g_t = (ξ_t − ⟨ξ_t, ŵ_t⟩ŵ_t)/‖w_t‖ with ξ_t ~ N(0, I_d) fresh each step: ⟨g_t, w_t⟩ = 0 and
g_t(cw) = g_t(w)/c exactly, E⟨g_t, v_t⟩ = 0, σ² = E‖g_t‖²‖w_t‖² = d − 1. The optimizer is stock
``torch.optim.SGD(lr=η, momentum=γ, weight_decay=λ)``; the figures are the monitor's.

Statistical error model. After the burn-in, the per-step angular updates and ‖w_t‖⁴ are a
stationary, correlated series (correlation time ≈ τ, the predicted relaxation time); their
mean over W steps is judged with batch means (NB batches of W/NB ≫ τ steps), standard error
SE = sd(batch means)/√NB. The theory neglects fluctuations of relative order 1/d (the
concentration assumption: E[1/‖w‖²] vs 1/E‖w‖², Jensen on arccos; measured: no bias visible at
d = 1024 or 4096 beyond the SE). Tolerance: |measured/predicted − 1| ≤ 4 SE/predicted + 2/d.
The negative control (the γ = 0 formulas in a run with γ = 0.9) must miss by more than the
same tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from equivalence.monitor import Monitor, predict_equilibrium, steps_to_equilibrium

D = 2048
ETA = 0.1
#: (γ, λ): relaxation times τ ≈ 37 and 50 steps
RECIPES = [(0.9, 5e-3), (0.0, 5e-2)]


def _isotropic_run(gamma: float, lam: float, steps: int, start: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    eq = predict_equilibrium(ETA, lam, gamma, D - 1.0)
    w = torch.randn(D, generator=g, dtype=torch.float64)
    with torch.no_grad():
        w *= start * eq.norm / w.norm()
    w.requires_grad_(True)
    opt = torch.optim.SGD([w], lr=ETA, momentum=gamma, weight_decay=lam)
    noise = torch.randn(steps, D, generator=g, dtype=torch.float64)
    with Monitor(opt, {"w": [w]}, flush_every=1024) as mon:
        for t in range(steps):
            with torch.no_grad():
                n2 = w.dot(w)
                xi = noise[t]
                w.grad = (xi - xi.dot(w) / n2 * w) / n2.sqrt()
            opt.step()
    return mon, eq


def _batch_mean(x: np.ndarray, nb: int = 20) -> tuple[float, float]:
    x = x[: len(x) // nb * nb].reshape(nb, -1).mean(axis=1)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(nb))


@pytest.fixture(scope="module", params=RECIPES, ids=["momentum0.9", "momentum0"])
def run(request):
    gamma, lam = request.param
    eq = predict_equilibrium(ETA, lam, gamma, D - 1.0)
    burn = int(steps_to_equilibrium(2 * eq.norm, eq, 0.01) + 5 * eq.relaxation_steps)
    window = int(60 * eq.relaxation_steps)
    mon, eq = _isotropic_run(gamma, lam, burn + window, start=2.0)
    return gamma, lam, mon, eq, burn


def _tol(se: float, pred: float) -> float:
    return 4 * se / pred + 2 / D


def test_equilibrium_angular_update(run):
    gamma, lam, mon, eq, burn = run
    _, a = mon.series("w", "angular_update")
    mean, se = _batch_mean(a[burn:])
    rel = abs(mean / eq.angular_update - 1)
    print(
        f"\nγ={gamma}: mean angular update {mean:.6g} rad, predicted {eq.angular_update:.6g}, "
        f"rel. diff {rel:.2e}, tolerance {_tol(se, eq.angular_update):.2e}"
    )
    assert rel <= _tol(se, eq.angular_update)
    # the monitor's own per-step prediction is the same number
    _, p = mon.series("w", "predicted_angular_update")
    assert np.all(p == eq.angular_update)
    if gamma > 0:  # negative control: the formula without momentum
        wrong = math.acos(1 - ETA * lam)
        miss = abs(mean / wrong - 1)
        print(f"  without-momentum formula {wrong:.6g}: rel. diff {miss:.2e} (must fail)")
        assert miss > _tol(se, wrong)


def test_equilibrium_norm(run):
    gamma, lam, mon, eq, burn = run
    _, n = mon.series("w", "weight_norm")
    mean, se = _batch_mean(n[burn:] ** 4)
    pred = eq.norm**4
    rel = abs(mean / pred - 1)
    print(
        f"\nγ={gamma}: mean ‖w‖⁴ {mean:.6g}, predicted {pred:.6g}, rel. diff {rel:.2e}, "
        f"tolerance {_tol(se, pred):.2e}"
    )
    assert rel <= _tol(se, pred)
    # the monitor's prediction, with σ² estimated from the run's gradients (running mean over
    # about τ steps: relative noise ≈ √(2/(d τ)) on σ², a quarter of it on ‖w*‖)
    _, pm = mon.series("w", "predicted_weight_norm")
    est = float(np.mean(pm[burn:]))
    assert abs(est / eq.norm - 1) <= 4 * math.sqrt(2 / (D * eq.relaxation_steps)) / 4 + 2 / D
    if gamma > 0:  # negative control: ‖w*‖⁴ = ησ²/(λ(2 − ηλ)) without momentum
        wrong = ETA * (D - 1.0) / (lam * (2 - ETA * lam))
        miss = abs(mean / wrong - 1)
        print(f"  without-momentum formula {wrong:.6g}: rel. diff {miss:.2e} (must fail)")
        assert miss > _tol(se, wrong)


def test_time_to_equilibrium(run):
    """From ‖w_0‖ = 2‖w*‖, the first step within 1% of ‖w*‖ comes at the predicted time.

    Error model: the prediction τ ln(D_0/ε) follows the slowest mode ρ of the linearised moment
    map only (for γ = 0 the decay of ‖w‖⁴ is exactly exponential in the small-ηλ continuum
    limit). With momentum, the buffer starts at 0 and so excites the second mode ρ₂ = γ/ρ,
    which can delay the crossing by up to τ₂ ln(D_0/ε), τ₂ = −1/ln ρ₂ (0 for γ = 0); noise
    on ‖w‖⁴ (sd s relative) moves the crossing by about τ s/ε. Tolerance:
    τ₂ ln(D_0/ε) + 4 τ s/ε + 2 steps.
    """
    gamma, lam, mon, eq, burn = run
    _, n = mon.series("w", "weight_norm")
    pred = steps_to_equilibrium(float(n[0]), eq, 0.01)
    first = int(np.argmax(np.abs(n / eq.norm - 1) <= 0.01))
    eps = 1.01**4 - 1
    d0 = abs(float(n[0] / eq.norm) ** 4 - 1)
    tau2 = -1 / math.log(gamma / eq.rho) if gamma > 0 else 0.0
    s = float(np.std(n[burn:] ** 4 / eq.norm**4))
    tol = tau2 * math.log(d0 / eps) + 4 * eq.relaxation_steps * s / eps + 2
    print(
        f"\nγ={gamma}: first step within 1% {first}, predicted {pred:.1f} (τ = "
        f"{eq.relaxation_steps:.1f}, τ₂ = {tau2:.1f}), tolerance ±{tol:.1f}"
    )
    assert abs(first - pred) <= tol
    _, s2e = mon.series("w", "steps_to_equilibrium")
    assert s2e[burn:].max() == 0.0 or np.mean(s2e[burn:] == 0) > 0.9
