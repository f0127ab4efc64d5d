"""The effective-LR monitor on stock ``torch.optim.SGD(weight_decay=λ)`` and its converted twin.

Reference side: stock SGD with weight decay and PyTorch's MultiStepLR, as a user runs it.
Converted side: ``equivalence.convert`` (stock SGD, no weight decay, ``EquivalentLR``).

Error model (float64). The monitor's effective LR η_t/(‖w_t‖‖w_{t+1}‖) is, in exact arithmetic,
the same number in both runs (θ̃ = θ/c_t, η̃_t = η_t/(c_t c_{t+1})). In floating point it
inherits (i) the two runs' trajectory difference e_t = ‖θ̃_t/m_t − θ_t‖/‖θ_t‖, once per norm, and
(ii) a few roundings of η̃_t (computed in log space: |log η̃| ≲ 40 here, so ~40 u) and of the
two norms and the division (~ n u for an n-term sum, n ≤ 200). Bound:
|Δ/eff| ≤ 2 max(e_t, e_{t+1}) + 512 u, with e_t measured in the same test; the project's linear
error model puts e_t below 1e-11 after 2,000 steps. The negative control (η/‖w_t‖², which
differs by the factor c_{t+1}/c_t ≈ 1 − ηλ between the runs) must exceed that bound.
"""

from __future__ import annotations

import copy
import json
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence as eq
from equivalence.monitor import (
    FIELDS,
    Monitor,
    angle_from_sides,
    groups_from_audit,
    plot_all,
    predict_equilibrium,
    steps_to_equilibrium,
)

from ._nets import make_batches, make_pair, rel_param_error

U = np.finfo(np.float64).eps / 2


def _train_pair(
    steps: int, lam: float, rescale_log2: float | None, seed: int = 5, online: bool = True
):
    a, b = make_pair(seed)
    x, y = make_batches(steps, seed + 1)
    milestones = [steps // 2, 3 * steps // 4]
    opt_a = torch.optim.SGD(a.invariant(), lr=0.1, momentum=0.9, weight_decay=lam)
    sched_a = MultiStepLR(opt_a, milestones=milestones, gamma=0.1)
    run = eq.convert(
        b.invariant(),
        lr=0.1,
        momentum=0.9,
        weight_decay=lam,
        steps=steps,
        invariant=b.invariant(),
        norm_layers=b.norm_layers(),
        lr_scheduler=lambda o: MultiStepLR(o, milestones=milestones, gamma=0.1),
        rescale_log2=rescale_log2,
        online=online,
    )
    mon_a = Monitor(opt_a, {"S": a.invariant()}, flush_every=64)
    mon_b = Monitor.for_run(run, {"S": b.invariant()}, flush_every=64)
    errs = [0.0]
    plain_a, plain_b = [], []
    for t in range(steps):
        plain_a.append(opt_a.param_groups[0]["lr"] / _sq(a.invariant()))
        sq_b = _sq(b.invariant())
        lr_b = run.optimizer.param_groups[0]["lr"]  # η̃_t when precomputed (EquivalentLR)
        for model, opt in ((a, opt_a), (b, run.optimizer)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[t]), y[t]).backward()
            opt.step()
        # the η̃_t the converted step used (the online converter restores η_t after the step)
        plain_b.append((run.converter.last_equivalent_lr if online else lr_b) / sq_b)
        sched_a.step()
        run.scheduler.step()
        errs.append(rel_param_error(a.invariant(), b.invariant(), run.scheduler.current_scale()))
    mon_a.close()
    mon_b.close()
    return mon_a, mon_b, np.array(errs), np.array(plain_a), np.array(plain_b), run


def _sq(params) -> float:
    return float(sum(p.detach().square().sum() for p in params))


@pytest.fixture(scope="module")
def pair():
    # λ = 2e-2 and rescaling every 2^2: c_t passes many powers of two, so the converted run's
    # stored LR and weights are rescaled (×4^k, ×2^k) many times during the 600 steps.
    return _train_pair(600, 2e-2, 2.0)


def test_effective_lr_reads_the_same_in_stock_and_converted_runs(pair):
    mon_a, mon_b, errs, plain_a, plain_b, run = pair
    assert run.scheduler.log2_scale[0] < -5, "the converted run must have been rescaled"
    _, ea = mon_a.series("S", "effective_lr")
    _, eb = mon_b.series("S", "effective_lr")
    rel = np.abs(eb / ea - 1)
    bound = 2 * np.maximum(errs[:-1], errs[1:]) + 512 * U
    print(
        f"\nmax rel. difference of the effective LR {rel.max():.2e}; bound {bound.max():.2e}; "
        f"max trajectory error {errs.max():.2e}"
    )
    assert np.all(rel <= bound)
    assert rel.max() < 1e-11
    # the stored LR itself differs by orders of magnitude (the converted one grows)
    _, lr_a = mon_a.series("S", "lr")
    _, lr_b = mon_b.series("S", "lr")
    assert np.max(np.abs(np.log10(lr_b / lr_a))) > 1
    # negative control: η/‖w_t‖² with each run's own η and w is off by c_{t+1}/c_t ≈ 1 − ηλ
    neg = np.abs(plain_b / plain_a - 1)
    assert np.all(neg[1:] > bound[1:] * 1e3), "η/‖w_t‖² must not agree between the runs"


def test_precomputed_conversion_reads_the_same_effective_lr():
    """The same with the precomputed schedule (``EquivalentLR``, ``online=False``)."""
    mon_a, mon_b, errs, plain_a, plain_b, run = _train_pair(300, 2e-2, 2.0, seed=7, online=False)
    assert run.converter is None and run.scheduler.log2_scale[0] < -2
    _, ea = mon_a.series("S", "effective_lr")
    _, eb = mon_b.series("S", "effective_lr")
    bound = 2 * np.maximum(errs[:-1], errs[1:]) + 512 * U
    assert np.all(np.abs(eb / ea - 1) <= bound)
    assert np.all(np.abs(plain_b / plain_a - 1)[1:] > bound[1:] * 1e3)
    _, pa = mon_a.series("S", "predicted_angular_update")
    _, pb = mon_b.series("S", "predicted_angular_update")
    np.testing.assert_array_equal(pa, pb)  # the stock recipe, read from the schedule


def test_angle_norm_and_gradient_figures_agree(pair):
    mon_a, mon_b, errs, *_ = pair
    for field in (
        "angular_update",
        "grad_norm_unit",
        "weight_norm_stock",
        "predicted_angular_update",
        "relaxation_steps",
    ):
        _, va = mon_a.series("S", field)
        _, vb = mon_b.series("S", field)
        rel = np.abs(vb / va - 1)
        # the angle of a needle triangle: relative error ≈ (trajectory error) / Δ_t (Δ_t ≥ 1e-4
        # here); the other fields as the effective LR
        slack = 1.0 / max(np.min(va), 1e-4) if field == "angular_update" else 2.0
        assert rel.max() <= slack * errs.max() + 1e-12, field


def test_power_of_two_rescaling_leaves_the_monitor_bit_identical():
    """Same code path, weights ×2^k and LR ×4^k: every figure is bitwise the same."""
    _, mon_r, *_ = _train_pair(200, 2e-2, 2.0, seed=11)
    _, mon_n, *_ = _train_pair(200, 2e-2, None, seed=11)
    for field in ("effective_lr", "angular_update", "grad_norm_unit"):
        assert np.array_equal(mon_r.series("S", field)[1], mon_n.series("S", field)[1]), field
    # m_t = exp(k ln 2 − ln c_t) is evaluated through exp, not as an exact power of two: a few ulps
    np.testing.assert_allclose(
        mon_r.series("S", "weight_norm_stock")[1],
        mon_n.series("S", "weight_norm_stock")[1],
        rtol=16 * U,
        atol=0,
    )
    assert not np.array_equal(mon_r.series("S", "lr")[1], mon_n.series("S", "lr")[1])


def test_no_momentum_no_weight_decay_norm_grows_by_the_gradient():
    """Theory: ⟨g, w⟩ = 0 ⇒ ‖w_{t+1}‖² = ‖w_t‖² + η²‖g_t‖² for plain GD (no momentum, no WD).

    The monitor's figures (norms, ‖g‖‖w‖) must satisfy it to rounding (float64, a random
    normalised network; the identity holds up to ⟨g, w⟩/(‖g‖‖w‖) ~ 1e-15 and a few roundings).
    """
    _, b = make_pair(21)
    x, y = make_batches(100, 22)
    opt = torch.optim.SGD(b.invariant(), lr=0.05)
    with Monitor(opt, {"S": b.invariant()}) as mon:
        for t in range(100):
            opt.zero_grad()
            nn.functional.cross_entropy(b(x[t]), y[t]).backward()
            opt.step()
    _, n = mon.series("S", "weight_norm")
    _, gu = mon.series("S", "grad_norm_unit")
    grow = n[1:] ** 2 - n[:-1] ** 2
    expect = 0.05**2 * (gu[:-1] / n[:-1]) ** 2
    assert np.all(grow > 0)
    np.testing.assert_allclose(grow, expect, rtol=1e-9)  # cancellation in n²−n²: ~u‖w‖²/grow
    print("\nrandom normalised MLP, plain GD: summary", mon.summary())


def test_random_networks_report_only():
    """On random normalised networks with WD the figures are reported, not asserted beyond theory."""
    for seed in (31, 32):
        mon_a, *_ = _train_pair(300, 5e-3, 16.0, seed=seed)
        s = mon_a.summary()["S"]
        print(f"\nseed {seed}: {s}")
        _, a = mon_a.series("S", "angular_update")
        assert np.all((a >= 0) & (a <= math.pi))


def test_predictions_match_the_sympy_derivation():
    from proofs import equilibrium as pe

    rng = np.random.default_rng(7)
    for _ in range(20):
        eta, lam, g = (
            float(rng.uniform(0.01, 0.5)),
            float(10 ** rng.uniform(-5, -2)),
            float(rng.uniform(0, 0.95)),
        )
        s2 = float(10 ** rng.uniform(-1, 3))
        got = predict_equilibrium(eta, lam, g, s2)
        sub = {pe.eta: eta, pe.lam: lam, pe.gamma: g, pe.sigma2: s2}
        assert got.norm**4 == pytest.approx(float(pe.NORM4_STAR.subs(sub)), rel=1e-12)
        assert math.cos(got.angular_update) == pytest.approx(
            float(pe.COS_STAR.subs(sub)), rel=1e-14
        )
        b = float(pe.B_QUAD.subs(sub))
        if b * b >= 4 * g:
            assert got.rho == pytest.approx(float(pe.RHO.subs(sub)), rel=1e-12)
        # the slowest eigenvalue of the moment map's Jacobian, numerically
        jac = _jacobian(eta, lam, g)
        assert got.rho == pytest.approx(max(abs(np.linalg.eigvals(jac))), rel=1e-9)


def _jacobian(eta: float, lam: float, g: float) -> np.ndarray:
    from proofs import equilibrium as pe

    fmap = sp.Matrix(pe.moment_map()).subs(pe.Gg, pe.sigma2 / pe.A)
    jac = fmap.jacobian([pe.A, pe.B, pe.C]).subs({pe.B: pe.B_STAR, pe.C: pe.C_STAR})
    # at the fixed point A² = ‖w*‖⁴, i.e. σ² = A² λ(1−γ)(2(1+γ)−ηλ)/(η(1+γ)); then A drops out
    k = pe.lam * (1 - pe.gamma) * (2 * (1 + pe.gamma) - pe.eta * pe.lam) / (pe.eta * (1 + pe.gamma))
    jac = jac.subs(pe.sigma2, pe.A**2 * k).subs(pe.A, 1)
    vals = {pe.eta: eta, pe.lam: lam, pe.gamma: g}
    return np.array(jac.subs(vals).evalf(30), dtype=float)


def test_steps_to_equilibrium():
    e = predict_equilibrium(0.1, 5e-3, 0.9, 1000.0)
    assert steps_to_equilibrium(e.norm, e) == 0.0
    assert steps_to_equilibrium(e.norm * 1.005, e) == 0.0
    far = steps_to_equilibrium(2 * e.norm, e)
    assert far == pytest.approx(e.relaxation_steps * math.log(15 / (1.01**4 - 1)), rel=1e-12)
    assert steps_to_equilibrium(0.5 * e.norm, e) > 0
    with pytest.raises(ValueError, match="rel_tol = 0 "):
        steps_to_equilibrium(1.0, e, rel_tol=0)


def test_angle_from_sides_is_accurate_for_needles():
    """Kahan's formula against 50-digit arithmetic.

    Error model: the sides a, b are exact floats; c is the 50-digit third side rounded once
    (relative u). The angle's relative condition number in c is κ = c²/(ab Δ sin Δ) (1 for an
    isosceles needle, large when |a − b| ≫ aΔ), and Kahan's formula adds a few ulps:
    tolerance 16 u (1 + κ).
    """
    mpmath.mp.dps = 50
    rng = np.random.default_rng(3)
    for _ in range(200):
        theta = 10 ** rng.uniform(-7, 0)
        a, b = 10 ** rng.uniform(-1, 1), 10 ** rng.uniform(-1, 1)
        if rng.random() < 0.5:
            b = a * (1 + rng.uniform(-1e-3, 1e-3))  # nearly isosceles, as in training
        ma, mb, mt = mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(theta)
        mc = mpmath.sqrt(ma**2 + mb**2 - 2 * ma * mb * mpmath.cos(mt))
        c = float(mc)
        kappa = float(mc**2 / (ma * mb * mt * mpmath.sin(mt)))
        got = float(angle_from_sides(a, b, c))
        assert abs(got / theta - 1) <= 16 * U * (1 + kappa), (theta, a, b)
    # the naive arccos of the law of cosines loses half the digits at Δ = 1e-7 (negative control)
    th = 1e-7
    c = 2 * math.sin(th / 2)
    naive = math.acos((2.0 - c * c) / 2.0)
    assert abs(naive / th - 1) > 1e3 * 16 * U * 2
    assert abs(float(angle_from_sides(1.0, 1.0, c)) / th - 1) <= 16 * U * 2


def test_outputs_csv_json_scalars_and_plots(tmp_path, pair):
    mon_a, mon_b, *_ = pair
    rows = mon_a.to_csv(tmp_path / "a.csv").read_text().splitlines()
    assert rows[0].split(",") == ["step", "group", *FIELDS]
    assert len(rows) == 1 + 600
    d = json.loads(mon_b.to_json(tmp_path / "b.json").read_text())
    assert set(d["groups"]["S"]) == {"step", *FIELDS}
    assert len(d["groups"]["S"]["effective_lr"]) == 600
    sc = mon_a.scalars()
    assert set(sc) == {f"monitor/S/{f}" for f in FIELDS}
    assert sc["monitor/S/effective_lr"] == mon_a.records[-1]["effective_lr"]
    per_step = list(mon_a.iter_scalars(prefix="m", start=590))
    assert [s for s, _ in per_step] == list(range(590, 600))
    assert per_step[-1][1]["m/S/angular_update"] == mon_a.records[-1]["angular_update"]
    assert len(per_step[0][1]) == len(FIELDS)
    paths = plot_all({"stock (a)": mon_a, "converted (b)": mon_b}, tmp_path / "plots")
    assert [p.name for p in paths] == ["effective_lr.png", "angular_update.png", "weight_norms.png"]
    assert all(p.stat().st_size > 5000 for p in paths)


def test_every_k_steps_and_flush():
    _, b = make_pair(41)
    x, y = make_batches(30, 42)
    opt = torch.optim.SGD(b.invariant(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    mon = Monitor(opt, {"S": b.invariant()}, every=3, flush_every=4)
    for t in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(b(x[t]), y[t]).backward()
        opt.step()
    assert [r["step"] for r in mon.records] == list(range(0, 30, 3))
    mon.close()
    opt.step()  # hooks removed: nothing more is recorded
    assert len(mon.records) == 10


def test_groups_from_audit_on_a_preresnet():
    from gpu_validation.model import PreResNet, init_weights

    model = PreResNet(8, 2, bn_eps=1e-5).double()
    init_weights(model, torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    report = eq.audit(model, x, loss_fn=lambda out: out.square().sum())
    groups = groups_from_audit(report)
    n = sum(len(v) for v in groups.values())
    assert n == len(report.invariant_names)
    assert "joint" in groups or len(groups) == n


def test_bad_input():
    p = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    with pytest.raises(TypeError, match="optimizer must be"):
        Monitor("sgd", {"S": [p]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups must be a non-empty"):
        Monitor(opt, {})
    with pytest.raises(ValueError, match="not among the optimizer's parameters"):
        Monitor(opt, {"S": [torch.zeros(2)]})
    with pytest.raises(ValueError, match="every = 0 is outside the valid range"):
        Monitor(opt, {"S": [p]}, every=0)
    with pytest.raises(ValueError, match="already in another group"):
        Monitor(opt, {"S": [p], "T": [p]})
    with pytest.raises(ValueError, match="momentum = 1.0 is outside the valid range"):
        predict_equilibrium(0.1, 1e-3, 1.0)
    with pytest.raises(ValueError, match="lr = -0.1 is outside the valid range"):
        predict_equilibrium(-0.1, 1e-3, 0.9)
    with pytest.raises(ValueError, match="sigma2 = -1.0 is outside"):
        predict_equilibrium(0.1, 1e-3, 0.9, -1.0)
    with pytest.raises(TypeError, match="lr must be a finite real number"):
        predict_equilibrium("0.1", 1e-3, 0.9)  # type: ignore[arg-type]
    q = torch.zeros(2, requires_grad=True)
    opt2 = torch.optim.SGD([{"params": [p], "lr": 0.1}, {"params": [q], "lr": 0.2}])
    with pytest.raises(ValueError, match="different learning rates"):
        Monitor(opt2, {"S": [p, q]})


def test_reads_the_step_before_other_post_hooks_rescale():
    """A post-step hook registered *before* the monitor rescales (θ, v, η) → (2θ, v/2, 4η) after
    every step, as a hook-based converter may: the monitor's post-step read comes first, so its
    figures are those of the unrescaled run, bit for bit (powers of two change no mantissa)."""
    out = {}
    for rescale in (False, True, "monitor last"):
        _, b = make_pair(51)
        x, y = make_batches(40, 52)
        opt = torch.optim.SGD(b.invariant(), lr=0.1, momentum=0.9)
        if rescale:  # True or "monitor last"

            def hook(o, args, kwargs, b=b):
                with torch.no_grad():
                    for p in b.invariant():
                        p.mul_(2.0)
                        o.state[p]["momentum_buffer"].mul_(0.5)
                    o.param_groups[0]["lr"] *= 4.0
                    for m in b.norm_layers():
                        m.running_mean.mul_(2.0)
                        m.running_var.mul_(4.0)

            opt.register_step_post_hook(hook)
        with Monitor(opt, {"S": b.invariant()}) as mon:
            if rescale == "monitor last":  # negative control: read after the rescaling hook
                opt._optimizer_step_post_hooks.move_to_end(mon._post.id)
            for t in range(40):
                opt.zero_grad()
                nn.functional.cross_entropy(b(x[t]), y[t]).backward()
                opt.step()
        out[rescale] = mon
    for field in ("effective_lr", "angular_update", "grad_norm_unit"):
        assert np.array_equal(out[True].series("S", field)[1], out[False].series("S", field)[1]), (
            field
        )
    wrong = (
        out["monitor last"].series("S", "effective_lr")[1]
        / out[False].series("S", "effective_lr")[1]
    )
    np.testing.assert_allclose(wrong, 2.0, rtol=1e-12)  # η read after its ×4, ‖w_{t+1}‖ after ×2
    assert out[True].records[-1]["weight_norm"] == 2.0**39 * out[False].records[-1]["weight_norm"]


def test_step_from_the_momentum_buffer_equals_the_realised_difference():
    """η‖v_{t+1}‖ (no copy) against ‖w_{t+1} − w_t‖ (a copy of w_t), same run, float64.

    Error model: w_{t+1} = fl(w_t − η v_{t+1}) rounds each entry by ≤ u|w_{t+1}|, so the two
    step norms differ by ≤ u‖w_{t+1}‖ + (the norms' own roundings, n u ‖Δ‖ for n terms), and
    the angle (whose condition number in the step norm is ≈ 1 near an isosceles triangle) by
    the same relative amount: bound 4u‖w‖/‖Δ‖ + 64 n u.
    """
    _, b = make_pair(61)
    x, y = make_batches(60, 62)
    opt = torch.optim.SGD(b.invariant(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    m_buf = Monitor(opt, {"S": b.invariant()}, step_norm="buffer")
    m_dif = Monitor(opt, {"S": b.invariant()}, step_norm="difference")
    for t in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(b(x[t]), y[t]).backward()
        opt.step()
    _, a_buf = m_buf.series("S", "angular_update")
    _, a_dif = m_dif.series("S", "angular_update")
    n = sum(p.numel() for p in b.invariant())
    bound = 4 * U / a_dif + 64 * n * U
    assert np.all(np.abs(a_buf / a_dif - 1) <= bound)
    assert not np.array_equal(a_buf, a_dif)  # two code paths: not asserted bitwise
    for field in ("effective_lr", "weight_norm", "grad_norm_unit"):
        np.testing.assert_array_equal(m_buf.series("S", field)[1], m_dif.series("S", field)[1])
    plain = torch.optim.SGD(b.invariant(), lr=0.1)
    with pytest.raises(ValueError, match="step_norm = 'buffer' needs"):
        mon = Monitor(plain, {"S": b.invariant()}, step_norm="buffer")
        plain.zero_grad()
        nn.functional.cross_entropy(b(x[0]), y[0]).backward()
        plain.step()
    mon.close()
    with pytest.raises(ValueError, match="step_norm = 'fast' is not one of"):
        Monitor(plain, {"S": b.invariant()}, step_norm="fast")


def test_state_dict_round_trip_continues_the_run():
    """A monitor restored from ``state_dict`` on a restored optimizer continues exactly as the
    uninterrupted one (the same code path: records equal). Control: a monitor of other groups
    refuses the state, naming both."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6, affine=False), nn.Linear(6, 2)
    )
    x, y = torch.randn(16, 4), torch.randn(16, 2)

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()

    def fresh(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        return opt, Monitor(opt, {"w": [model[0].weight]})

    whole = copy.deepcopy(net)
    opt, mon = fresh(whole)
    train(whole, opt, 12)

    first = copy.deepcopy(net)
    opt1, mon1 = fresh(first)
    train(first, opt1, 5)
    state, opt_state = mon1.state_dict(), opt1.state_dict()
    second = copy.deepcopy(first)
    opt2, mon2 = fresh(second)
    opt2.load_state_dict(opt_state)
    mon2.load_state_dict(state)
    train(second, opt2, 7)
    assert mon2.step == mon.step == 12
    assert mon2.records == mon.records

    other = Monitor(opt2, {"v": [second[0].weight]})
    with pytest.raises(ValueError, match=r"groups \['w'\].*groups \['v'\]"):
        other.load_state_dict(state)
