"""Tests of the proofs package: every derivation checks, every negative control fails,
the checks are not vacuous, the symbolic mappings agree with the numeric library
``equivalence`` at random rational points (rtol 1e-12), and the CLI writes LaTeX
that pdflatex compiles.

Tolerance: the exact side is SymPy/Fraction/mpmath (40 digits); the numeric side is
float64 over at most a few dozen steps, whose rounding error is a few ulps per step,
far below rtol 1e-12.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import proofs
from proofs import _core
from proofs._core import MODULE_NAMES, Proof, ProofError, Step

RTOL = 1e-12
SEED = 20200401


@pytest.fixture(scope="module", params=MODULE_NAMES)
def module(request):
    return _core.load(request.param)


@pytest.fixture(scope="module")
def record(module):
    return _core.get(module.NAME)


# ---------------------------------------------------------------------------
# Every proof checks; every negative control fails
# ---------------------------------------------------------------------------


def test_module_is_a_record(module, record):
    assert module.__doc__ and "Paper result" in module.__doc__
    assert isinstance(module.PROOF, Proof) and record is module.PROOF
    assert (record.name, record.result, record.statement, record.assumptions) == (
        module.NAME,
        module.RESULT,
        module.STATEMENT,
        module.ASSUMPTIONS,
    )
    assert record.derive is module.derive
    assert record.negative_control is module.negative_control
    assert record.witness is module.NEGATIVE_WITNESS
    for gone in ("verify", "check_negative_control", "to_latex"):  # produced by the registry
        assert not hasattr(module, gone), gone


def test_verify(record):
    steps = record.verify()
    assert len(steps) >= 3
    assert all(isinstance(s, Step) for s in steps)
    assert len({s.name for s in steps}) == len(steps)


def test_negative_control_fails(record):
    claim = record.negative_control()
    assert isinstance(claim, Step)
    outcome = record.check_negative_control()
    assert claim.name in outcome
    if claim.check is not None:
        assert claim.check() is False
    else:
        assert not _core.equal(claim.lhs, claim.rhs)


def test_negative_control_through_verify_raises(record):
    claim = record.negative_control()
    with pytest.raises(ProofError, match="step"):
        _core.verify_steps(record.name, [claim])


def test_to_latex_marks_every_equation(record):
    text = record.to_latex()
    n_eq = text.count(r"\begin{equation*}") + text.count(r"\begin{multline*}")
    assert n_eq == len(record.derive()) + 1  # + the negative control
    assert text.count("proofs." + record.name.replace("_", r"\_")) >= n_eq
    assert rf"\label{{sec:{record.name}}}" in text and record.result in text


def test_registry_order_and_lookup():
    assert list(proofs.registry()) == list(MODULE_NAMES)
    with pytest.raises(ValueError, match="name='nonexistent'"):
        proofs.get("nonexistent")


def test_proof_record_rejects_bad_fields():
    rec = _core.get("no_momentum")
    good = dict(
        name=rec.name,
        result=rec.result,
        statement=rec.statement,
        assumptions=rec.assumptions,
        derive=rec.derive,
        negative_control=rec.negative_control,
        witness=rec.witness,
    )
    for field_name, bad, exc in (
        ("name", "not an identifier", ValueError),
        ("result", "", TypeError),
        ("assumptions", ["a list"], TypeError),
        ("derive", "not callable", TypeError),
        ("witness", [1, 2], TypeError),
    ):
        with pytest.raises(exc, match=field_name):
            Proof(**{**good, field_name: bad})


def test_run_all():
    results = proofs.run_all()
    assert [r.name for r in results] == list(MODULE_NAMES)
    bad = [(r.name, r.error) for r in results if not r.ok]
    assert not bad
    assert all(r.seconds >= 0 and r.steps > 0 for r in results)


# ---------------------------------------------------------------------------
# The checks are not vacuous
# ---------------------------------------------------------------------------


def test_false_step_is_caught_and_named():
    x = sp.Symbol("x", positive=True)
    steps = [
        Step("fine", (x + 1) ** 2, x**2 + 2 * x + 1, "expand"),
        Step("wrong", (x + 1) ** 2, x**2 + 1, "bad expand"),
    ]
    with pytest.raises(ProofError, match="'wrong'"):
        _core.verify_steps("demo", steps)


def test_vector_linearity_enforced():
    a, b = _core.vec("a"), _core.vec("b")
    with pytest.raises(ValueError):
        _core.vector_coefficients(a * b)
    assert _core.equal(2 * a + b - a, a + b)
    assert not _core.equal(a, b)


def test_homogeneity_rewrite_requires_positive_scale():
    from proofs._sgd import G, homogeneous

    th = _core.vec("th")
    c = sp.Symbol("c", positive=True)
    assert _core.equal(homogeneous(G(th / c)), c * G(th))
    r = sp.Symbol("r", real=True)
    with pytest.raises(ValueError, match="positive"):
        homogeneous(G(r * th))


def test_z3_bridge_finds_counterexamples():
    x, y = sp.symbols("x y", real=True)
    assert _core.z3_prove([x > 0, y > x], y > 0)
    assert not _core.z3_prove([y > x], y > 0)


def test_scale_invariance_check_rejects_non_invariant_function():
    from proofs import scale_invariance as si

    invariant = si.L_SPHERE
    not_invariant = si.TH[0] / si.r  # homogeneous of degree 0 ... times r: see below
    assert si._identities_hold(invariant, si.S_NORM, si.TH)
    assert not si._identities_hold(not_invariant * si.r**2, si.S_NORM, si.TH)  # degree 1


def test_general_schedule_wrong_recurrence_fails():
    from proofs import general_schedule as gs

    wrong = (1 + gs.gamma - gs.eta * gs.lam) * gs.c - gs.gamma * gs.c_prev  # r_t dropped
    assert not _core.equal(wrong, gs.C_NEXT)


def test_closed_form_larger_root_zero_buffer_is_also_not_exact():
    """Only the initial buffer makes c_t = α^t exact; a zero buffer fails for either root."""
    from proofs import closed_form as cf
    from proofs._sgd import torch_step

    th_e, _ = torch_step(cf.theta0, sp.S.Zero, cf.eta / cf.ALPHA, 0, cf.gamma)
    th_w, _ = torch_step(cf.theta0, sp.S.Zero, cf.eta, cf.lam, cf.gamma)
    claim = Step("larger root, zero buffer", th_e, th_w / cf.ALPHA, "")
    assert "!= 0" in _core.refute("closed_form", claim, cf.NEGATIVE_WITNESS)


def test_normaliser_eps_checks_are_not_vacuous():
    from proofs import normaliser_eps as ne

    # The variance is homogeneous of degree 2, not 1; the mean of degree 1, not 0.
    assert not ne._sums_equal(ne.variance(ne._scaled), ne.m * ne.variance(ne._entry))
    assert not ne._sums_equal(ne.mean(ne._scaled), ne.mean(ne._entry))
    # eps left alone, or a scale m not known to be positive (sqrt(m^2) = |m|), fails.
    left_alone = ne.y(ne.m * ne.xj, ne.m * ne.mu, ne.m**2 * ne.var, ne.eps)
    assert not ne._sqrt_equal(left_alone, ne.y(ne.xj, ne.mu, ne.var, ne.eps))
    k = sp.Symbol("k", real=True)
    signed = ne.y(k * ne.xj, k * ne.mu, k**2 * ne.var, k**2 * ne.eps)
    assert not ne._sqrt_equal(signed, ne.y(ne.xj, ne.mu, ne.var, ne.eps))


def test_mid_run_zero_buffer_unrolled_is_not_exact():
    from proofs import mid_run as mr

    lhs, rhs = mr.unrolled_runs((Fraction(0),) * 3)
    assert lhs[0, :] == rhs[0, :] and lhs[1:, :] != rhs[1:, :]
    lhs, rhs = mr.unrolled_runs(mr.UNROLL_BUF0)
    assert lhs == rhs


# ---------------------------------------------------------------------------
# Cross-check against the numeric library at random rational points
# ---------------------------------------------------------------------------


def _rationals(rng, lo, hi, n, den=1000):
    return [Fraction(int(k), den) for k in rng.integers(int(lo * den), int(hi * den), size=n)]


def _close(a, b, rtol=RTOL):
    a = np.asarray([float(x) for x in a], dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def equivalence():
    return pytest.importorskip("equivalence")


@pytest.mark.parametrize("trial", range(5))
def test_general_schedule_matches_equivalence(equivalence, trial):
    from proofs import general_schedule as gs

    rng = np.random.default_rng(SEED + trial)
    n = 30
    lrs = _rationals(rng, 0.001, 0.5, n)
    wds = _rationals(rng, 0.0001, 0.01, n, den=100000)
    mom = Fraction(int(rng.integers(0, 95)), 100)
    cs = gs.scale_factors_exact(lrs, wds, mom)
    f = [float(x) for x in lrs]
    _close(cs, equivalence.scale_factors(f, [float(x) for x in wds], float(mom)))
    et = gs.equivalent_lrs_exact(lrs, wds, mom)
    _close(et, equivalence.equivalent_lrs(f, [float(x) for x in wds], float(mom)))
    # Constant WD given as a float.
    cs1 = gs.scale_factors_exact(lrs, wds[0], mom)
    _close(cs1, equivalence.scale_factors(f, float(wds[0]), float(mom)))


@pytest.mark.parametrize("trial", range(5))
def test_reverse_map_matches_equivalence(equivalence, trial):
    from proofs import reverse_map as rm

    rng = np.random.default_rng(SEED + 100 + trial)
    n = 25
    et = _rationals(rng, 0.01, 0.5, n)
    wd = Fraction(int(rng.integers(1, 100)), 10000)
    mom = Fraction(int(rng.integers(0, 95)), 100)
    lrs = rm.original_lrs_mp(et, wd, mom)
    _close(lrs, equivalence.original_lrs([float(x) for x in et], float(wd), float(mom)))


@pytest.mark.parametrize(
    ("lr", "wd", "mom"),
    [
        (Fraction(1, 10), Fraction(5, 10000), Fraction(9, 10)),  # the paper's recipe
        (Fraction(1, 20), Fraction(1, 1000), Fraction(1, 2)),
        (Fraction(3, 10), Fraction(1, 10000), Fraction(98, 100)),  # ηλ < (1 - √γ)² holds
        (Fraction(1, 10), Fraction(1, 100), Fraction(0)),
    ],
)
def test_closed_form_matches_equivalence(equivalence, lr, wd, mom):
    from proofs import closed_form as cf

    subs = {cf.eta: sp.Rational(lr), cf.lam: sp.Rational(wd), cf.gamma: sp.Rational(mom)}
    alpha = cf.ALPHA.subs(subs)
    a_num = float(sp.N(alpha, 40))
    assert equivalence.alpha_root(float(lr), float(wd), float(mom)) == pytest.approx(
        a_num, rel=RTOL
    )
    steps = 40
    exact = [
        sp.N(cf.ETA_TILDE.subs(subs).subs({cf.alpha: alpha, cf.t: t}), 40) for t in range(steps)
    ]
    _close(exact, equivalence.closed_form_lrs(float(lr), float(wd), float(mom), steps))
    if mom > 0:
        b = sp.N(cf.BUFFER.subs(subs).subs(cf.alpha, alpha), 40)
        got = equivalence.closed_form_initial_buffer(float(lr), float(wd), float(mom))
        assert got == pytest.approx(float(b), rel=RTOL)


def test_no_momentum_matches_equivalence(equivalence):
    from proofs import no_momentum as nm

    lr, wd, steps = Fraction(1, 10), Fraction(1, 100), 50
    subs = {nm.eta: sp.Rational(lr), nm.lam: sp.Rational(wd)}
    exact = [nm.ETA_TILDE.subs(subs).subs(nm.t, t) for t in range(steps)]
    _close(exact, equivalence.equivalent_lrs([float(lr)] * steps, float(wd), 0.0))
    _close(exact, equivalence.closed_form_lrs(float(lr), float(wd), 0.0, steps))


@pytest.mark.parametrize("trial", range(3))
def test_texp_matches_equivalence(equivalence, trial):
    from proofs import texp

    rng = np.random.default_rng(SEED + 200 + trial)
    phases = [
        (Fraction(int(rng.integers(1, 300)), 1000), int(rng.integers(3, 12))) for _ in range(3)
    ]
    lrs = [lr for lr, n in phases for _ in range(n)]
    wd = Fraction(5, 10000)
    mom = Fraction(9, 10)
    exact = texp.texp_lrs_exact(lrs, wd, mom)
    _close(exact, equivalence.texp_lrs([float(x) for x in lrs], float(wd), float(mom)))


def test_texp_buffer_shifts_match_equivalence(equivalence):
    """δ_I of proofs.texp (and the initial −(1−α)/(αη)) against equivalence.texp_buffer_shifts."""
    from proofs import texp

    if not hasattr(equivalence, "texp_buffer_shifts"):
        pytest.skip("equivalence.texp_buffer_shifts not provided")
    lrs = [Fraction(1, 10)] * 4 + [Fraction(1, 100)] * 3
    wd, mom = Fraction(5, 10000), Fraction(9, 10)
    shifts = equivalence.texp_buffer_shifts([float(x) for x in lrs], float(wd), float(mom))

    def root(lr):
        e = sp.Rational(lr) * sp.Rational(wd)
        b = 1 + sp.Rational(mom) - e
        return (b + sp.sqrt(b**2 - 4 * sp.Rational(mom))) / 2

    a1, a2 = root(lrs[0]), root(lrs[-1])
    subs = {
        texp.a_p: a1,
        texp.a_n: a2,
        texp.eta_p: sp.Rational(lrs[0]),
        texp.eta_n: sp.Rational(lrs[-1]),
    }
    delta = float(sp.N(texp.DELTA.subs(subs), 40))
    assert shifts[4] == pytest.approx(delta, rel=1e-9)  # a difference of two close terms
    init = float(sp.N(-(1 - a1) / (a1 * sp.Rational(lrs[0])), 40))
    assert shifts[0] == pytest.approx(init, rel=RTOL)


def _torch_norms(torch):
    """Stock PyTorch normalisers in training mode, as functions (x, eps) -> output."""
    f = torch.nn.functional
    return {
        "batch_norm": lambda x, eps: f.batch_norm(x, None, None, training=True, eps=eps),
        "group_norm": lambda x, eps: f.group_norm(x, 2, eps=eps),
        "layer_norm": lambda x, eps: f.layer_norm(x, x.shape[1:], eps=eps),
        "instance_norm": lambda x, eps: f.instance_norm(x, eps=eps),
    }


def test_normaliser_eps_matches_stock_torch_layers():
    """proofs.normaliser_eps on PyTorch's own BN/GN/LN/IN (train and eval mode), float64.

    Error model: the two sides compute the same formula on inputs that differ by the
    factor m = 3.7 (not a power of two), so each side rounds independently: mean and
    variance over <= 64 entries carry a relative error of ~64 ulps, the root and
    division a few more, so |difference| <= 1e-13 on outputs of size ~1. The negative
    control (eps left alone) moves the outputs by ~1e-2 with eps = 0.1.
    """
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(4, 4, 2, 2, generator=gen, dtype=torch.float64)
    m, eps = 3.7, 0.1
    for name, norm in _torch_norms(torch).items():
        ref = norm(x, eps)
        assert (norm(m * x, eps * m**2) - ref).abs().max().item() <= 1e-13, name
        assert (norm(m * x, eps) - ref).abs().max().item() > 1e-3, name  # must fail
    rmean = torch.randn(4, generator=gen, dtype=torch.float64)
    rvar = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
    f = torch.nn.functional
    ref = f.batch_norm(x, rmean, rvar, training=False, eps=eps)
    out = f.batch_norm(m * x, m * rmean, m**2 * rvar, training=False, eps=eps * m**2)
    assert (out - ref).abs().max().item() <= 1e-13
    alone = f.batch_norm(m * x, m * rmean, m**2 * rvar, training=False, eps=eps)
    assert (alone - ref).abs().max().item() > 1e-3


def test_mid_run_matches_stock_torch_sgd():
    """proofs.mid_run on stock torch.optim.SGD: convert after 5 steps, buffer copied.

    The reference is torch.optim.SGD(momentum, weight_decay) on the scale-invariant
    loss of proofs._sgd; the converted run is torch.optim.SGD without weight decay,
    LR eta_t/(c_t c_{t+1}) (exact, from proofs.general_schedule), its momentum buffer
    set to the reference's at the conversion. Error model: float64, 6 steps, a few
    roundings per step on O(1) values, the two runs rounding independently: relative
    error ~1e-15 per step, bound 1e-12. Zeroing the buffer instead must move the run
    by far more (> 1e-3).
    """
    torch = pytest.importorskip("torch")
    from proofs import general_schedule as gs

    def loss(th):
        x, y, z = th
        return (x * x + 3 * x * y - 2 * y * z + z * z / 2) / (th @ th)

    def step(opt, th, lr, wd):
        opt.zero_grad()
        for group in opt.param_groups:
            group["lr"], group["weight_decay"] = lr, wd
        loss(th).backward()
        opt.step()

    mom = float(gs.UNROLL_MOMENTUM)
    th = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    ref = torch.optim.SGD([th], lr=0.05, momentum=mom, weight_decay=0.01)
    for _ in range(5):  # the run that has already stepped
        step(ref, th, 0.05, 0.01)
    theta0 = th.detach().clone()
    v0 = ref.state[th]["momentum_buffer"].clone()
    assert v0.abs().max().item() > 0.1
    lrs, wds = gs.UNROLL_LRS, gs.UNROLL_WDS
    cs = [float(c) for c in gs.scale_factors_exact(lrs, wds, gs.UNROLL_MOMENTUM)]
    lrs_e = [float(x) for x in gs.equivalent_lrs_exact(lrs, wds, gs.UNROLL_MOMENTUM)]
    stock = []
    for lr, wd in zip(lrs, wds):
        step(ref, th, float(lr), float(wd))
        stock.append(th.detach().clone())

    def converted(buf0):
        th_c = theta0.clone().requires_grad_(True)
        opt = torch.optim.SGD([th_c], lr=lrs_e[0], momentum=mom, weight_decay=0.0)
        opt.state[th_c]["momentum_buffer"] = buf0.clone()
        out = []
        for t, lr in enumerate(lrs_e):
            step(opt, th_c, lr, 0.0)
            out.append(th_c.detach() * cs[t + 1])
        return out

    worst = max(((a - b).norm() / b.norm()).item() for a, b in zip(converted(v0), stock))
    assert worst <= 1e-12
    zeroed = max(
        ((a - b).norm() / b.norm()).item() for a, b in zip(converted(torch.zeros(3)), stock)
    )
    assert zeroed > 1e-3


def test_kappa_form_checks_are_not_vacuous():
    from proofs import general_schedule as gs
    from proofs import kappa_form as kf

    # The converted run from a zero buffer (the WD run's is not) is not exact ...
    assert not kf._unrolled_holds((Fraction(0),) * 3)
    assert kf._unrolled_holds(kf.UNROLL_BUF0)
    # ... and the buffer relation without the kappa term fails on the exact run.
    cs, _, wd_run, exp_run = kf.unrolled_runs()
    assert any(vw != tuple(b / ct for b in ve) for (_, vw), (_, ve), ct in zip(wd_run, exp_run, cs))
    # The paper's recurrence cannot even be evaluated on a schedule starting at lr 0.
    with pytest.raises(ZeroDivisionError):
        gs.scale_factors_exact(kf.UNROLL_LRS, kf.UNROLL_WDS, kf.UNROLL_MOMENTA[0])
    # Where every lr is positive and the momentum constant, the two recurrences agree.
    lrs, wds, mom = gs.UNROLL_LRS, gs.UNROLL_WDS, gs.UNROLL_MOMENTUM
    cs_k, ks = kf.scales_exact(lrs, wds, mom)
    assert cs_k == gs.scale_factors_exact(lrs, wds, mom)
    assert ks[1:] == [(cs_k[t + 1] - cs_k[t]) / lrs[t] for t in range(len(lrs))]
    assert kf.normalised_exact(lrs, wds, mom) == (cs_k, [k / c for k, c in zip(ks, cs_k)])


def test_kappa_form_matches_stock_torch_sgd():
    """proofs.kappa_form on stock torch.optim.SGD: warm-up from lr 0, cosine decay to lr 0.

    Both runs are stock torch.optim.SGD from fresh buffers (v_0 = 0) on the scale-invariant
    loss of proofs._sgd; the reference has weight decay 5e-3, the converted run none, LR
    eta_t/(c_t c_{t+1}) with c_t, kappa_t from proofs.kappa_form in exact arithmetic; the
    momentum is changed every step in both (a schedule between 0.8 and 0.95). Error model:
    float64, 26 steps, a few roundings per step on O(1) values, the runs rounding
    independently: relative error ~1e-15 per step, bound 1e-12. The stock buffer is
    recovered as (v~_t - kappa_t theta_t)/c_t; without the kappa term it misses by > 1e-3.
    """
    import math

    torch = pytest.importorskip("torch")
    from proofs import kappa_form as kf

    def loss(th):
        x, y, z = th
        return (x * x + 3 * x * y - 2 * y * z + z * z / 2) / (th @ th)

    def step(opt, th, lr, wd, mom):
        opt.zero_grad()
        for group in opt.param_groups:
            group["lr"], group["weight_decay"], group["momentum"] = lr, wd, mom
        loss(th).backward()
        opt.step()

    warm = [0.1 * i / 5 for i in range(5)]
    decay = [0.05 * (1 + math.cos(math.pi * i / 20)) for i in range(20)] + [0.0]
    lrs = warm + decay
    assert lrs[0] == 0.0 and lrs[-1] == 0.0
    moms = [0.8 + 0.15 * (i % 4) / 3 for i in range(len(lrs))]
    wd = 5e-3
    cs, ks = kf.scales_exact(lrs, wd, moms)
    lrs_e = [float(x) for x in kf.equivalent_lrs_exact(lrs, wd, moms)]
    cs, ks = [float(x) for x in cs], [float(x) for x in ks]

    th0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    th = th0.clone().requires_grad_(True)
    th_c = th0.clone().requires_grad_(True)
    ref = torch.optim.SGD([th], lr=0.1, momentum=0.9, weight_decay=wd)
    conv = torch.optim.SGD([th_c], lr=0.1, momentum=0.9, weight_decay=0.0)
    worst_theta = worst_buf = without_kappa = 0.0
    for t, (lr, mom) in enumerate(zip(lrs, moms)):
        step(ref, th, lr, wd, mom)
        step(conv, th_c, lrs_e[t], 0.0, mom)
        c, kap = cs[t + 1], ks[t + 1]
        theta, buf = th.detach(), ref.state[th]["momentum_buffer"]
        buf_c = conv.state[th_c]["momentum_buffer"]
        worst_theta = max(worst_theta, ((th_c.detach() * c - theta).norm() / theta.norm()).item())
        rec = (buf_c - kap * theta) / c
        worst_buf = max(worst_buf, ((rec - buf).norm() / buf.norm()).item())
        without_kappa = max(without_kappa, ((buf_c / c - buf).norm() / buf.norm()).item())
    assert worst_theta <= 1e-12
    assert worst_buf <= 1e-12
    assert without_kappa > 1e-3


# ---------------------------------------------------------------------------
# CLI, LaTeX, PDF, Coq marking
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory):
    from proofs.__main__ import main

    out = tmp_path_factory.mktemp("proofs")
    args = ["--out", str(out), "--no-coq"]
    if shutil.which("pdflatex"):
        args.append("--pdf")
    assert main(args) == 0
    return out


def test_cli_writes_tex(cli_out):
    for name in MODULE_NAMES:
        text = (cli_out / f"{name}.tex").read_text()
        assert r"\section" in text and "Negative control" in text
    doc = (cli_out / "proofs.tex").read_text()
    assert doc.startswith(r"\documentclass") and doc.rstrip().endswith(r"\end{document}")
    for name in MODULE_NAMES:
        assert rf"\input{{{name}}}" in doc
    assert "Coq check skipped" in doc
    record = json.loads((cli_out / "proofs.json").read_text())
    assert all(r["ok"] for r in record["results"])


def test_pdflatex_compiles(cli_out):
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex not installed")
    assert (cli_out / "proofs.pdf").stat().st_size > 10_000
    log = (cli_out / "proofs.log").read_text(errors="replace")
    assert "! " not in log  # no TeX error


def test_cli_exit_status_on_failure(tmp_path, monkeypatch):
    from proofs import __main__ as cli
    from proofs import document

    def broken(names=None):
        return [_core.ProofResult("no_momentum", False, 0.0, "ProofError: demo")]

    monkeypatch.setattr(document, "run_all", broken)
    assert cli.main(["--out", str(tmp_path), "--no-coq", "--only", "no_momentum"]) == 1
    assert "FAILED" in (tmp_path / "no_momentum.tex").read_text()


def test_cli_one_result_with_steps(tmp_path, capsys):
    from proofs.__main__ import main

    assert main(["--out", str(tmp_path), "--no-coq", "--only", "rescaling", "--steps"]) == 0
    out = capsys.readouterr().out
    for s in _core.get("rescaling").derive():
        assert f"ok  {s.name}" in out
    assert "negative control: uncorrected running mean" in out
    assert sorted(p.name for p in tmp_path.glob("*.tex")) == ["proofs.tex", "rescaling.tex"]


def test_build_api_returns_a_report(tmp_path):
    report = proofs.build(proofs.Config(out=str(tmp_path), coq=False, only=("no_momentum",)))
    assert report.ok and [r.name for r in report.results] == ["no_momentum"]
    assert report.coq.status == "Coq check skipped (--no-coq)"
    assert json.loads((tmp_path / "proofs.json").read_text())["results"][0]["ok"]
    with pytest.raises(ValueError, match="only="):
        proofs.Config(only=("nonexistent",))
    with pytest.raises(ValueError, match="coq_timeout=0"):
        proofs.Config(coq_timeout=0)


class _CoqResult:
    def __init__(self, file, theorem, ok):
        self.file, self.theorem, self.ok = file, theorem, ok
        self.assumptions, self.seconds, self.message = (), 0.1, ""


def _fake_coq(monkeypatch, available=True, ok=True, broken=False):
    """Stand-ins for the public functions of proofs.coq_check that the build calls."""
    from proofs import document

    def check_all(timeout=120.0):
        if broken:
            raise ValueError("import cycle among Coq files: A -> B -> A")
        cq = document.coq_check
        pairs = [*cq.KERNEL_THEOREMS["no_momentum"], *cq.NEGATIONS["no_momentum"], *cq.WITNESS]
        return [_CoqResult(f, t, ok) for f, t in pairs]

    monkeypatch.setattr(
        document.coq_check,
        "KERNEL_CHECKED",
        {"no_momentum": "NoMomentum.v: no_momentum_equivalence"},
    )
    monkeypatch.setattr(document.coq_check, "coq_available", lambda: available)
    monkeypatch.setattr(document.coq_check, "check_all", check_all)


def test_coq_marking(tmp_path, monkeypatch, capsys):
    from proofs.__main__ import main

    _fake_coq(monkeypatch)
    assert main(["--out", str(tmp_path), "--only", "no_momentum"]) == 0
    assert "NoMomentum.v: no_momentum_equivalence" in capsys.readouterr().out
    assert "Kernel-checked" in (tmp_path / "no_momentum.tex").read_text()


def test_coq_failed_theorem_not_marked(tmp_path, monkeypatch):
    """A failed Coq check: no mark, and python -m proofs exits non-zero (no false green)."""
    from proofs.__main__ import main

    _fake_coq(monkeypatch, ok=False)
    assert main(["--out", str(tmp_path), "--only", "no_momentum"]) == 1
    assert "Kernel-checked" not in (tmp_path / "no_momentum.tex").read_text()


def test_coq_not_installed(tmp_path, monkeypatch, capsys):
    from proofs.__main__ import main

    _fake_coq(monkeypatch, available=False)
    assert main(["--out", str(tmp_path), "--only", "no_momentum"]) == 0
    assert "Coq not installed" in capsys.readouterr().out


def test_coq_sources_broken(tmp_path, monkeypatch, capsys):
    from proofs.__main__ import main

    _fake_coq(monkeypatch, broken=True)
    assert main(["--out", str(tmp_path), "--only", "no_momentum"]) == 1
    assert "Coq check failed to run: import cycle" in capsys.readouterr().out
