"""AdamW's equilibrium (``proofs/equilibrium.py``, steps "AdamW: ...") on a model whose
assumptions hold, read by the monitor.

Model: as in ``tests/test_equilibrium.py``, a scale-invariant "loss" on w ∈ R^C driven by
isotropic noise, g_t = (ξ_t − ⟨ξ_t, ŵ_t⟩ŵ_t)/‖w_t‖, ξ_t ~ N(0, I_C) fresh each step; the
optimizer is stock ``torch.optim.AdamW(lr=η, betas=(β1, β2), eps=ε, weight_decay=λ)``.
Predictions (e = 1 − ηλ, r = (1 − β1)/(1 + β1), G = E‖g/(√v̂ + ε)‖²):
E‖u‖² = rG, ‖w*‖² = ηGr(1 + β1e)/(λ(2 − ηλ)(1 − β1e)), cos Δ* = (e + β1)/(1 + β1e).
G is the monitor's running estimate (it reads ``exp_avg_sq``); G = C is the isotropic,
ε ≪ √v̂, β2 → 1 value (Kosson et al.'s).

Statistical error model (as for SGD). After the burn-in the per-step figures are a
stationary, correlated series; a mean over W steps is judged with batch means (NB = 20
batches of W/NB steps, several relaxation times each), SE = sd(batch means)/√NB. A
comparison with a prediction that uses the run's own G is made on the difference series
(‖w_t‖² − the monitor's prediction at t), so G's noise is in its SE. Neglected by the
theory: fluctuations of relative order 1/C (concentration: ratio of expectations, Jensen on
arccos) and, wherever G enters (the norm, E‖u‖²), the finite memory of v̂ (relative order
1 − β2: E[g²/v̂] ≠ 1 at G = C, and v̂ is only nearly constant over the momentum's memory).
Tolerance: |measured/predicted − 1| ≤ 4 SE/predicted + 2/C, + (1 − β2) where G enters.
Every negative control must miss by more than the same tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from equivalence.monitor import (
    Monitor,
    optimizer_kind,
    predict_adamw_equilibrium,
    predict_equilibrium,
    steps_to_equilibrium,
)
from equivalence.monitor.core import ADAMW_LAG_LIMIT
from equivalence.monitor.equilibrium import adamw_lag_jacobian

C = 2048
ETA = 0.01
LAM = 0.5  # ηλ = 5e-3: relaxation ≈ 100 steps with v̂ in equilibrium
BETA2 = 0.999  # PyTorch's default


def _isotropic_run(
    beta1: float,
    steps: int,
    start: float,
    *,
    beta2: float = BETA2,
    eps: float = 1e-8,
    lam: float = LAM,
    seed: int = 0,
) -> tuple[Monitor, np.ndarray]:
    """A stock AdamW run under isotropic noise, from ‖w_0‖ = ``start`` × the G = C prediction;
    returns the monitor and ‖u_t‖² = ‖(1 − ηλ)w_t − w_{t+1}‖²/η² (the Adam step, measured)."""
    g = torch.Generator().manual_seed(seed)
    eq = predict_adamw_equilibrium(ETA, lam, beta1, float(C))
    w = torch.randn(C, generator=g, dtype=torch.float64)
    with torch.no_grad():
        w *= start * eq.norm / w.norm()
    w.requires_grad_(True)
    opt = torch.optim.AdamW([w], lr=ETA, betas=(beta1, beta2), eps=eps, weight_decay=lam)
    noise = torch.randn(steps, C, generator=g, dtype=torch.float64)
    u2 = np.empty(steps)
    e = 1.0 - ETA * lam
    with Monitor(opt, {"w": [w]}, flush_every=1024) as mon:
        for t in range(steps):
            with torch.no_grad():
                n2 = w.dot(w)
                xi = noise[t]
                w.grad = (xi - xi.dot(w) / n2 * w) / n2.sqrt()
                w0 = w.detach().clone()
            opt.step()
            with torch.no_grad():
                u2[t] = float((e * w0 - w).square().sum()) / ETA**2
    return mon, u2


def _batch_mean(x: np.ndarray, nb: int = 20) -> tuple[float, float]:
    x = x[: len(x) // nb * nb].reshape(nb, -1).mean(axis=1)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(nb))


def _tol(se: float, pred: float, extra: float = 0.0) -> float:
    return 4 * se / pred + 2 / C + extra


# -- the formulas: SymPy's against the monitor's ---------------------------------------------------


def test_adamw_predictions_match_the_sympy_derivation():
    from proofs import _adamw_equilibrium as pa

    rng = np.random.default_rng(11)
    for _ in range(20):
        eta, lam = float(rng.uniform(1e-4, 0.05)), float(10 ** rng.uniform(-3, 0))
        b1, b2 = float(rng.uniform(0, 0.95)), float(rng.uniform(0.5, 0.9999))
        g2 = float(10 ** rng.uniform(1, 5))
        got = predict_adamw_equilibrium(eta, lam, b1, g2)
        sub = {pa.eta: eta, pa.lam: lam, pa.beta1: b1, pa.Gn: g2, pa.beta2: b2}
        assert got.norm**2 == pytest.approx(float(pa.NORM2_STAR.subs(sub)), rel=1e-12)
        assert math.cos(got.angular_update) == pytest.approx(
            float(pa.COS_STAR.subs(sub)), rel=1e-14
        )
        assert got.rho == pytest.approx(float(pa.RHO.subs(sub)) if 1 - eta * lam >= b1 else b1**2)
        assert got.norm_power == 2
        # the lag-aware Jacobian is the derivation's matrix
        _, target = pa.lag_jacobian()
        np.testing.assert_allclose(
            adamw_lag_jacobian(eta, lam, b1, b2),
            np.array(target.subs(sub).evalf(30), dtype=float),
            rtol=1e-12,
            atol=1e-15,
        )
        lagged = predict_adamw_equilibrium(eta, lam, b1, g2, b2)
        assert lagged.norm == got.norm and lagged.angular_update == got.angular_update
        assert lagged.rho >= got.rho
    # leading order of the slowest root ("AdamW: relaxation with the lag"): 1 − ρ ≈
    # ηλ((1 + 4c) − √(1 + 16c²))/(2c), c = ηλ/(1 − β2); relative error O(ηλ/(1 − β1))
    for b1 in (0.0, 0.9):
        for b2 in (0.99, 0.999, 0.9999):
            eta, lam = 1e-3, 0.1
            c = eta * lam / (1 - b2)
            lead = eta * lam * ((1 + 4 * c) - math.sqrt(1 + 16 * c * c)) / (2 * c)
            rho = predict_adamw_equilibrium(eta, lam, b1, None, b2).rho
            assert 1 - rho == pytest.approx(lead, rel=3e-3), (b1, b2)


def test_optimizer_kinds_and_bad_input():
    p = torch.zeros(3, requires_grad=True)
    assert optimizer_kind(torch.optim.SGD([p], lr=0.1), {}) == "sgd"
    adamw = torch.optim.AdamW([p])
    assert optimizer_kind(adamw, adamw.param_groups[0]) == "adamw"
    adam_d = torch.optim.Adam([p], decoupled_weight_decay=True)
    assert optimizer_kind(adam_d, adam_d.param_groups[0]) == "adamw"
    adam = torch.optim.Adam([p], weight_decay=0.1)  # coupled L2: no derived equilibrium
    assert optimizer_kind(adam, adam.param_groups[0]) is None
    ams = torch.optim.AdamW([p], amsgrad=True)
    assert optimizer_kind(ams, ams.param_groups[0]) is None
    with Monitor(adam, {"S": [p]}) as mon:
        for _ in range(3):
            p.grad = torch.randn(3)
            adam.step()
    for field in ("predicted_angular_update", "predicted_weight_norm", "steps_to_equilibrium"):
        assert np.all(np.isnan(mon.series("S", field)[1])), field
    with pytest.raises(ValueError, match="beta1 = 1.0 is outside"):
        predict_adamw_equilibrium(1e-3, 0.1, 1.0)
    with pytest.raises(ValueError, match="outside the valid range \\[0, 1\\)"):
        predict_adamw_equilibrium(10.0, 0.1, 0.9)
    with pytest.raises(ValueError, match="g2 = -1.0 is outside"):
        predict_adamw_equilibrium(1e-3, 0.1, 0.9, -1.0)
    with pytest.raises(ValueError, match="beta2 = 1.0 is outside"):
        predict_adamw_equilibrium(1e-3, 0.1, 0.9, 1.0, 1.0)
    none = predict_adamw_equilibrium(1e-3, 0.0, 0.9, 10.0)
    assert (none.angular_update, none.norm, none.rho) == (0.0, math.inf, 1.0)


def test_adamw_negative_control_is_refuted_and_the_steps_are_not_vacuous():
    from proofs import _adamw_equilibrium as pa
    from proofs import _core
    from proofs import equilibrium as pe

    out = _core.refute("equilibrium", pe.adamw_negative_control(), pe.ADAMW_NEGATIVE_WITNESS)
    assert "AdamW with SGD's formulas" in out
    # the AdamW steps are steps of the registered result (all of it: tests/test_proofs.py)
    steps = _core.verify_steps("equilibrium", pa.adamw_steps())
    assert len(steps) == 12 and all(s.name.startswith("AdamW: ") for s in steps)
    # a wrong steady state (r replaced by 1) does not pass the "steady state" step
    step = next(s for s in steps if s.name == "AdamW: steady state")
    bad = sp.Tuple(pa.NORM2_STAR / pa.R, pa.B_STAR, pa.M_STAR)
    assert not _core.equal(step.lhs, bad)


# -- the isotropic-noise model ------------------------------------------------------------------


@pytest.fixture(scope="module", params=[0.9, 0.0], ids=["beta1=0.9", "beta1=0"])
def run(request):
    beta1 = request.param
    eq = predict_adamw_equilibrium(ETA, LAM, beta1, float(C))
    tau = -1.0 / math.log(max(1 - ETA * LAM, beta1) ** 2)  # v̂ in equilibrium: ≈ 100 steps
    burn, window = int(5 * tau), int(45 * tau)
    mon, u2 = _isotropic_run(beta1, burn + window, start=1.0)
    return beta1, mon, u2, eq, burn


def test_adamw_angular_update(run):
    beta1, mon, _, eq, burn = run
    _, a = mon.series("w", "angular_update")
    mean, se = _batch_mean(a[burn:])
    rel = abs(mean / eq.angular_update - 1)
    print(
        f"\nβ1={beta1}: mean angular update {mean:.6g} rad, predicted {eq.angular_update:.6g}, "
        f"rel. diff {rel:.2e}, tolerance {_tol(se, eq.angular_update):.2e}"
    )
    assert rel <= _tol(se, eq.angular_update)
    _, p = mon.series("w", "predicted_angular_update")
    assert np.all(p == eq.angular_update)  # no G needed for the angle
    kosson = math.sqrt(2 * ETA * LAM * (1 - beta1) / (1 + beta1))
    print(
        f"  Kosson et al.'s √(2ηλ(1−β1)/(1+β1)) = {kosson:.6g}: rel. diff {mean / kosson - 1:.2e}"
    )
    if beta1 > 0:  # negative control: SGD's formula with γ = β1
        wrong = predict_equilibrium(ETA, LAM, beta1).angular_update
        miss = abs(mean / wrong - 1)
        print(f"  SGD's arccos(1 − ηλ/(1+β1)) = {wrong:.6g}: rel. diff {miss:.2e} (must fail)")
        assert miss > _tol(se, wrong)


def test_adamw_norm(run):
    beta1, mon, u2, eq, burn = run
    _, n = mon.series("w", "weight_norm")
    _, pm = mon.series("w", "predicted_weight_norm")
    n2 = n[burn:] ** 2
    # against the monitor's own prediction (G estimated from the run), step by step
    pred = float(np.mean(pm[burn:] ** 2))
    diff, se_d = _batch_mean(n2 - pm[burn:] ** 2)
    rel = abs(diff / pred)
    print(
        f"\nβ1={beta1}: mean ‖w‖² {float(np.mean(n2)):.6g}, monitor's prediction {pred:.6g} "
        f"(G/C = {pred / eq.norm**2:.5f}), rel. diff {rel:.2e}, "
        f"tolerance {_tol(se_d, pred, 1 - BETA2):.2e}"
    )
    assert rel <= _tol(se_d, pred, 1 - BETA2)
    # against G = C (isotropic noise, β2 → 1)
    mean, se = _batch_mean(n2)
    tol_c = _tol(se, eq.norm**2, 1 - BETA2)
    rel_c = abs(mean / eq.norm**2 - 1)
    print(f"  G = C: predicted {eq.norm**2:.6g}, rel. diff {rel_c:.2e}, tolerance {tol_c:.2e}")
    assert rel_c <= tol_c
    # negative control: SGD's ‖w*‖⁴ with γ = β1 and σ² = E‖g‖²‖w‖² from the run
    _, gu = mon.series("w", "grad_norm_unit")
    sgd = predict_equilibrium(ETA, LAM, beta1, float(np.mean(gu[burn:] ** 2))).norm ** 2
    miss = abs(mean / sgd - 1)
    print(f"  SGD's formula: ‖w*‖² = {sgd:.6g}, rel. diff {miss:.2e} (must fail)")
    assert miss > _tol(se, sgd)
    if beta1 > 0:
        # negative control: the balance of an update orthogonal to w, η E‖u‖²/(λ(2 − ηλ))
        orth = ETA * float(np.mean(u2[burn:])) / (LAM * (2 - ETA * LAM))
        miss = abs(mean / orth - 1)
        print(f"  orthogonal-update balance: {orth:.6g}, rel. diff {miss:.2e} (must fail)")
        assert miss > _tol(se, orth)
        # Kosson et al.'s leading order ηC/(2λ) misses the ηλβ1/(1 − β1) correction here
        lead = ETA * C / (2 * LAM)
        miss = abs(mean / lead - 1)
        print(f"  leading order ηC/(2λ) = {lead:.6g}: rel. diff {miss:.2e} (measurably off)")
        assert miss > _tol(se, lead, 1 - BETA2)


def test_adamw_update_size(run):
    """E‖u‖² = rG: the step's RMS shrinks by √r with momentum (the ε ≪ √v̂ run has G ≈ C)."""
    beta1, mon, u2, eq, burn = run
    r = (1 - beta1) / (1 + beta1)
    mean, se = _batch_mean(u2[burn:] / C)
    rel = abs(mean / r - 1)
    tol = _tol(se, r, 1 - BETA2)
    print(
        f"\nβ1={beta1}: E‖u‖²/C = {mean:.6g}, r = {r:.6g}, rel. diff {rel:.2e}, tolerance {tol:.2e}"
    )
    assert rel <= tol
    if beta1 > 0:  # negative control: no shrink (r = 1, the update of Adam without momentum)
        assert abs(mean - 1) > _tol(se, 1.0, 1 - BETA2)


def test_monitor_on_adamw_gives_finite_predictions(run):
    beta1, mon, _, eq, burn = run
    rec = mon.records
    assert optimizer_kind(torch.optim.AdamW([torch.zeros(1, requires_grad=True)]), {}) == "adamw"
    for field in ("predicted_angular_update", "predicted_weight_norm", "relaxation_steps"):
        _, v = mon.series("w", field)
        assert np.all(np.isfinite(v)), field
    # η/‖w‖² is SGD's effective LR: not AdamW's
    assert all(math.isnan(r["effective_lr"]) for r in rec)
    # the relaxation time includes v̂'s lag (β2 = 0.999: ηλ/(1 − β2) = 5 is beyond the range
    # where one mode sets the time to equilibrium, so that field is NaN here)
    _, tau = mon.series("w", "relaxation_steps")
    assert tau[-1] == pytest.approx(
        predict_adamw_equilibrium(ETA, LAM, beta1, 1.0, BETA2).relaxation_steps
    )
    assert ETA * LAM / (1 - BETA2) > ADAMW_LAG_LIMIT
    _, s2e = mon.series("w", "steps_to_equilibrium")
    assert np.all(np.isnan(s2e))


def test_adamw_epsilon_that_is_not_negligible():
    """ε = 0.2 against √v̂ ≈ 0.3: G falls well below C. The derivation holds with the measured
    G (the steady-state algebra only uses E⟨ĝ, w⟩ = 0 and E‖ĝ‖² = G), the angle does not
    depend on G, and the G = C norm (Kosson et al.'s, ε neglected) fails."""
    beta1, burn, window = 0.9, 800, 3600
    mon, _ = _isotropic_run(beta1, burn + window, start=1.0, eps=0.2, seed=1)
    eq = predict_adamw_equilibrium(ETA, LAM, beta1, float(C))
    _, n = mon.series("w", "weight_norm")
    _, pm = mon.series("w", "predicted_weight_norm")
    pred = float(np.mean(pm[burn:] ** 2))
    diff, se_d = _batch_mean(n[burn:] ** 2 - pm[burn:] ** 2)
    print(
        f"\nε = 0.2: mean ‖w‖² {float(np.mean(n[burn:] ** 2)):.6g}, prediction with the measured "
        f"G {pred:.6g} (G/C = {pred / eq.norm**2:.4f}), rel. diff {abs(diff / pred):.2e}, "
        f"tolerance {_tol(se_d, pred, 1 - BETA2):.2e}"
    )
    assert abs(diff / pred) <= _tol(se_d, pred, 1 - BETA2)
    mean, se = _batch_mean(n[burn:] ** 2)
    miss = abs(mean / eq.norm**2 - 1)
    print(f"  G = C: {eq.norm**2:.6g}, rel. diff {miss:.2e} (must fail)")
    assert miss > _tol(se, eq.norm**2, 1 - BETA2)
    _, a = mon.series("w", "angular_update")
    mean, se = _batch_mean(a[burn:])
    assert abs(mean / eq.angular_update - 1) <= _tol(se, eq.angular_update)


@pytest.mark.parametrize(
    "beta1, beta2, lam", [(0.0, 0.95, 0.5), (0.9, 0.99, 0.1)], ids=["beta1=0", "beta1=0.9"]
)
def test_adamw_time_to_equilibrium(beta1, beta2, lam):
    """From ‖w_0‖ = 2‖w*‖, the first step within 1 % of ‖w*‖ comes at the predicted time.

    Regime: c = ηλ/(1 − β2) ≤ 0.1, where the slowest mode of the linearisation with v̂'s lag
    sets the time. Error model as for SGD: the second-slowest mode (τ₂) can delay the crossing
    by τ₂ ln(D_0/ε), noise on ‖w‖² (sd s relative) moves it by about τ s/ε; tolerance
    τ₂ ln(D_0/ε) + 4 τ s/ε + 2. ‖w*‖ uses the G measured by the monitor (β2 < 1: G < C).
    """
    eq0 = predict_adamw_equilibrium(ETA, lam, beta1, float(C), beta2)
    steps, burn = int(9 * eq0.relaxation_steps), int(6 * eq0.relaxation_steps)
    mon, _ = _isotropic_run(beta1, steps, start=2.0, beta2=beta2, lam=lam)
    _, n = mon.series("w", "weight_norm")
    _, pm = mon.series("w", "predicted_weight_norm")
    g2 = float(C) * float(np.mean(pm[burn:] ** 2)) / eq0.norm**2
    eq = predict_adamw_equilibrium(ETA, lam, beta1, g2, beta2)
    pred = steps_to_equilibrium(float(n[0]), eq, 0.01)
    first = int(np.argmax(np.abs(n / eq.norm - 1) <= 0.01))
    eps = 1.01**2 - 1
    d0 = abs(float(n[0] / eq.norm) ** 2 - 1)
    second = sorted(abs(np.linalg.eigvals(adamw_lag_jacobian(ETA, lam, beta1, beta2))))[-2]
    tau2 = -1 / math.log(second)
    s = float(np.std(n[burn:] ** 2 / eq.norm**2))
    tol = tau2 * math.log(d0 / eps) + 4 * eq.relaxation_steps * s / eps + 2
    print(
        f"\nβ1={beta1}, β2={beta2}: first step within 1% {first}, predicted {pred:.1f} "
        f"(τ = {eq.relaxation_steps:.1f}, τ₂ = {tau2:.1f}), tolerance ±{tol:.1f}"
    )
    assert abs(first - pred) <= tol
    _, s2e = mon.series("w", "steps_to_equilibrium")
    assert np.isfinite(s2e[0]) and abs(s2e[0] - pred) <= 0.05 * pred  # G estimated from step 0


def test_converted_adamw_run_predicts_the_angle_not_the_norm():
    """On the exponential-LR twin of an AdamW run (``equivalence.convert_optimizer``) the
    optimizer's moments are the twin's, so G (and ‖w*‖) cannot be read from them: NaN. The
    angle needs no G and is the same in both runs (w̃ ∥ w): predicted."""
    from equivalence.optim.converter import convert_optimizer

    g = torch.Generator().manual_seed(3)
    w = torch.randn(256, generator=g, dtype=torch.float64).requires_grad_(True)
    opt = torch.optim.AdamW([w], lr=ETA, weight_decay=LAM)
    run = convert_optimizer(opt, invariant=[w], norm_layers=[], check=False)
    with Monitor.for_run(run, {"w": [w]}) as mon:
        for _ in range(20):
            with torch.no_grad():
                n2, xi = w.dot(w), torch.randn(256, generator=g, dtype=torch.float64)
                w.grad = (xi - xi.dot(w) / n2 * w) / n2.sqrt()
            opt.step()
    eq = predict_adamw_equilibrium(ETA, LAM, 0.9, None, 0.999)
    assert np.all(mon.series("w", "predicted_angular_update")[1] == eq.angular_update)
    assert np.all(np.isnan(mon.series("w", "predicted_weight_norm")[1]))
