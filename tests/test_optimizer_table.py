"""The optimizer table: each row's proof module, its implementation or refusal, and a figure.

Rows: SGD with dampening (exact, LR only), SGD with Nesterov momentum (exact with a buffer
rewrite), the LR inside the velocity (Keras/TensorFlow; exact with LR and momentum
schedules, checked against a numpy reference of that convention), Adam with coupled L2
(refuted; the residual of the natural candidate map grows with ηλ).

Error model as in tests/test_adamw.py: the PyTorch rows run through the project's one
harness (``equivalence.lockstep``, an ``SGDRecipe`` with ``dampening`` or ``nesterov``) and
are judged against 3× the stock run's measured float64 floor alone (fixed runs) or by the
whole error model, max(K·u·(t+1), 3× floor) (random recipes). The numpy rows have their own
floor: a twin of the reference from one-ulp-nudged weights, jittered by four ulps per weight
after every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR

import equivalence as eq
from equivalence.optim.sgd_variants import (
    convert_sgd_variant,
    keras_equivalent_schedule,
    keras_lockstep,
    keras_reference_run,
)
from equivalence.optim.torch_adamw import AdamWEquivalence, convert_adamw
from equivalence.verify import lockstep
from equivalence.verify.noise_floor import Floor, Status, Trace, judge
from equivalence.verify.testing_nets import ratio_of_quadratics
from proofs._core import refute, verify_steps
from tests.conftest import examples
from tests.test_adamw import batches, flat, harness_pair, make_net, rel, step, within_floor

torch.set_num_threads(1)

TABLE = ("adamw", "dampening", "nesterov", "lr_in_velocity", "adam_l2")


@pytest.mark.parametrize("name", TABLE)
def test_proof_module(name: str) -> None:
    """Every row's derivation checks and its negative control is refuted."""
    import importlib

    mod = importlib.import_module(f"proofs.{name}")
    steps = verify_steps(mod.NAME, mod.derive())
    assert steps and mod.NAME == name
    print("\n" + refute(mod.NAME, mod.negative_control(), mod.NEGATIVE_WITNESS))


def variant_pair(
    seed: int,
    steps: int,
    sched: str,
    *,
    lr: float = 0.1,
    wd: float = 1e-2,
    momentum: float = 0.9,
    dampening: float = 0.0,
    nesterov: bool = False,
    twin: lockstep.TwinFactory | None = None,
    bn_eps: float | None = None,
) -> tuple[Trace, Callable[[], Floor]]:
    """The stock SGD variant and its converted twin (or ``twin``) on the lockstep harness,
    and the measurement of the stock run's noise floor."""
    make = {
        "constant": None,
        "multistep": lambda o: MultiStepLR(o, [steps // 3, 2 * steps // 3], 0.1),
        "cosine": lambda o: CosineAnnealingLR(o, steps),
    }[sched]
    recipe = lockstep.SGDRecipe(
        lr, momentum, wd, lr_scheduler=make, dampening=dampening, nesterov=nesterov
    )
    return harness_pair(seed, steps, recipe, {} if bn_eps is None else {"bn_eps": bn_eps}, twin)


def candidate_twin(model, recipe, invariant, steps) -> lockstep.ConvertedVariantTwin:
    """Nesterov without the rewrite: the plain SGD theorem's scale sequence and LR."""
    tw = lockstep.ConvertedVariantTwin(model, recipe, invariant, True)
    _candidate_hooks(tw.run)
    return tw


def _candidate_hooks(run) -> None:
    """Nesterov without the rewrite: c_{t+1} = (1 − ηλ)c_t, η̃ = η/(c_t c_{t+1}), no WD.

    The conversion's step view is kept; only the map's per-step values are replaced."""
    nxt: list = []

    def advance(opt, layout):
        out = {}
        t, _, c, _ = run.vstate[0]
        for gi, (g, parts, _) in enumerate(layout):
            for k, _ in parts:
                c_next = (1 - g["lr"] * g["weight_decay"]) * c
                out[(k, gi)] = {"lr": g["lr"] / (c * c_next), "weight_decay": 0.0}
                nxt[:] = [c_next]
        return out

    def commit(opt):
        t, _, c, _ = run.vstate[0]
        run.vstate[0] = [t + 1, c, nxt[0], 0.0]

    run._advance = advance
    run._commit = commit


@pytest.mark.parametrize("sched", ["constant", "multistep", "cosine"])
@pytest.mark.parametrize(
    "variant", [{"dampening": 0.3}, {"nesterov": True}], ids=["dampening", "nesterov"]
)
def test_sgd_variant_exact(variant: dict, sched: str) -> None:
    """600 steps, stock schedulers: within 3x the measured floor alone at every step."""
    trace, floor = variant_pair(2, 600, sched, **variant)
    v = within_floor(trace, floor(), f"{variant} {sched}")
    assert trace.scales[-1] > 1.2
    assert v.horizon == 600
    assert v.ok, v.reasons


@settings(max_examples=examples(6))
@given(
    seed=st.integers(0, 10**6),
    lr=st.sampled_from([0.05, 0.1, 0.2]),
    wd=st.sampled_from([1e-3, 5e-3]),
    momentum=st.sampled_from([0.5, 0.9]),
    variant=st.sampled_from([{"dampening": 0.1}, {"dampening": 0.5}, {"nesterov": True}]),
    sched=st.sampled_from(["constant", "multistep", "cosine"]),
)
def test_property_sgd_variants(seed, lr, wd, momentum, variant, sched) -> None:
    """Random seeds and recipes (ηλ ≤ (1 − √γ)² so c_t stays positive), judged by the
    project's one error model (max(K·u·(t+1), 3× floor) before the horizon)."""
    trace, floor = variant_pair(seed, 150, sched, lr=lr, wd=wd, momentum=momentum, **variant)
    v = judge(trace, floor)
    assert v.status is not Status.ILL_POSED, v.reasons
    assert v.ok, v.reasons


@pytest.mark.parametrize(
    "variant", [{"dampening": 0.3}, {"nesterov": True}], ids=["dampening", "nesterov"]
)
def test_sgd_variant_default_batchnorm_eps(variant: dict) -> None:
    """BatchNorm's default eps = 1e-5, fed eps·m² by the converter."""
    trace, floor = variant_pair(3, 400, "cosine", wd=2e-2, bn_eps=1e-5, **variant)
    v = within_floor(trace, floor(), f"{variant} BN eps 1e-5")
    assert v.ok, v.reasons


def test_nesterov_without_rewrite_residual_grows_with_decay() -> None:
    """Refuted row (a): the best-guess LR-only map's residual grows with ηλ, far above the floor."""
    residuals = []
    for wd in (1e-3, 1e-2, 1e-1):
        trace, floor = variant_pair(
            2, 200, "constant", lr=0.1, wd=wd, nesterov=True, twin=candidate_twin
        )
        v = within_floor(trace, floor(), f"nesterov, no rewrite, eta*lambda={0.1 * wd:g}")
        residuals.append(v.of("param").worst_error)
        assert v.of("param").worst_ratio > 1e3
    assert residuals[0] < residuals[1] < residuals[2]


@pytest.mark.parametrize(
    "variant", [{"dampening": 0.3}, {"nesterov": True}], ids=["dampening", "nesterov"]
)
def test_sgd_variant_resume_is_bitwise(variant: dict) -> None:
    """A plain {model, optimizer, scheduler} checkpoint resumes bit-identically."""

    def build():
        net, inv, norms = make_net(12, bn_eps=1e-5)
        opt = torch.optim.SGD(
            [p for p in net.parameters() if p.requires_grad],
            lr=0.1,
            momentum=0.9,
            weight_decay=1e-2,
            **variant,
        )
        run = convert_sgd_variant(opt, invariant=inv, norm_layers=norms)
        return net, run, MultiStepLR(run.optimizer, [50], 0.1)

    x, y = batches(100, 13)
    net, run, sched = build()
    for k in range(100):
        step(net, run.optimizer, x[k], y[k])
        sched.step()
        if k == 39:
            ckpt = copy.deepcopy((net.state_dict(), run.optimizer.state_dict(), sched.state_dict()))
    net2, run2, sched2 = build()
    net2.load_state_dict(ckpt[0])
    run2.optimizer.load_state_dict(ckpt[1])
    sched2.load_state_dict(ckpt[2])
    for k in range(40, 100):
        step(net2, run2.optimizer, x[k], y[k])
        sched2.step()
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)
    assert run.state_dict() == run2.state_dict()


def test_numpy_reference_refuses_mismatched_schedules() -> None:
    grad = ratio_of_quadratics(3, 0)
    with pytest.raises(ValueError, match="one per step each"):
        keras_reference_run(np.ones(3), [0.1, 0.1], [0.0], [0.9, 0.9], grad)
    with pytest.raises(ValueError, match=r"n = 1 is outside the valid range"):
        ratio_of_quadratics(1, 0)


def test_refusals() -> None:
    net, inv, _ = make_net(0)
    params = [p for p in net.parameters() if p.requires_grad]
    with pytest.raises(ValueError, match="dampening > 0 or nesterov=True"):
        convert_sgd_variant(
            torch.optim.SGD(params, lr=0.1, momentum=0.9), invariant=inv, norm_layers=()
        )
    with pytest.raises(ValueError, match=r"momentum = 1.0 is outside"):
        keras_equivalent_schedule([0.1], 0.1, 1.0)


# ---------------------------------------------------------------------------------------
# LR inside the velocity: a numpy reference of that convention (not a PyTorch optimizer)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sched", ["constant", "step", "cosine"])
def test_lr_in_velocity_exact_numpy(sched: str) -> None:
    steps, n = 2000, 10
    grad = ratio_of_quadratics(n, 1)
    base = 0.01
    k = np.arange(steps)
    lrs = {
        "constant": np.full(steps, base),
        "step": base * 0.1 ** (k // 700),
        "cosine": base * 0.5 * (1 + np.cos(np.pi * k / steps)),
    }[sched]
    wd, mom = 0.01, 0.9  # ηλ = 1e-4 < (1 − √γ)²: c_t stays positive
    theta0 = np.random.default_rng(2).standard_normal(n)
    err, floor, c = keras_lockstep(theta0, lrs, wd, mom, grad, jitter_seed=3)
    # negative control: the momentum left at γ (LR schedule alone)
    bad_err, _, _ = keras_lockstep(theta0, lrs, wd, mom, grad, jitter_seed=3, momenta=[mom] * steps)
    print(
        f"\nkeras {sched}: err {err:.3g} floor {floor:.3g} (1/c_T = {1 / c[-1]:.4g}); "
        f"momentum fixed: {bad_err:.3g}"
    )
    assert 1 / c[-1] > 2
    assert err <= 3 * floor, (err, floor)
    assert bad_err > 1e6 * floor


# ---------------------------------------------------------------------------------------
# Adam with coupled L2: refused, and the candidate map's residual
# ---------------------------------------------------------------------------------------


def test_adam_l2_candidate_residual_grows_with_decay() -> None:
    """Adam(weight_decay=λ) vs the AdamW map applied to it: residual grows with ηλ."""
    residuals = []
    for wd in (1e-3, 1e-2, 1e-1):
        net, inv, norms = make_net(4)
        conv = copy.deepcopy(net)
        names = [n for n, p in net.named_parameters() if any(p is q for q in inv)]
        conv_inv = [dict(conv.named_parameters())[n] for n in names]
        tr = [p for p in net.parameters() if p.requires_grad]
        o_ref = torch.optim.Adam(tr, lr=1e-2, weight_decay=wd)
        opt = torch.optim.AdamW(
            [p for p in conv.parameters() if p.requires_grad], lr=1e-2, weight_decay=wd
        )
        run = convert_adamw(
            opt, invariant=conv_inv, norm_layers=()
        )  # in place: the caller keeps opt
        x, y = batches(200, 5)
        err = 0.0
        for k in range(200):
            step(net, o_ref, x[k], y[k])
            step(conv, run.optimizer, x[k], y[k])
            err = max(err, rel(flat(conv_inv) / run.current_scale(), flat(inv)))
        residuals.append(err)
        print(f"\nAdam + L2, eta*lambda={1e-2 * wd:g}: AdamW-map residual {err:.3g}")
    assert residuals[0] > 1e-6  # far above float64 rounding even at the smallest decay
    assert residuals[0] < residuals[1] < residuals[2]


def test_keras_schedule_against_fraction_oracle() -> None:
    """c_t, η̃_t, γ̃_t against the exact three-term recursion in fractions.Fraction.

    Error model: d_t carries a few ulps (its recursion contracts by γ), log c_t a
    compensated sum, exp one more rounding: rtol 1e-13 over 300 steps.
    """
    from fractions import Fraction as F

    lrs = [0.05 * 0.5 ** (t // 100) for t in range(300)]
    wd, mom = 0.01, 0.9
    eta, gam, c = keras_equivalent_schedule(lrs, wd, mom)
    cs = [F(1), F(1)]  # c_{-1}, c_0
    for t, lr in enumerate(lrs):
        cs.append((1 + F(mom) - F(lr) * F(wd)) * cs[-1] - F(mom) * cs[-2])
        if t % 50 == 0 or t == len(lrs) - 1:
            assert abs(c[t + 1] / float(cs[-1]) - 1) < 1e-13, t
            assert abs(eta[t] / float(F(lr) / (cs[-2] * cs[-1])) - 1) < 1e-13, t
            assert abs(gam[t] / float(F(mom) * cs[-3] / cs[-1]) - 1) < 1e-13, t


def test_sgd_converter_points_elsewhere_for_other_optimizers():
    """convert_optimizer refuses what it does not convert, and says where to go and why."""
    from equivalence.optim.sgd_variants import SGDVariantEquivalence

    p = [torch.nn.Parameter(torch.ones(2))]
    # the front door converts each kind it covers in place, through its own map
    opt = torch.optim.AdamW(p)
    run = eq.convert_optimizer(opt, invariant=p, norm_layers=())
    assert run.optimizer is opt and isinstance(run.converter, AdamWEquivalence)
    opt = torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)
    run = eq.convert_optimizer(opt, invariant=p, norm_layers=())
    assert run.optimizer is opt and isinstance(run.converter, SGDVariantEquivalence)
    opt = torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5)
    assert isinstance(
        eq.convert_optimizer(opt, invariant=p, norm_layers=()).converter, eq.ExpLRConverter
    )
    with pytest.raises(ValueError, match=r"coupled L2 .*proofs/adam_l2.py"):
        eq.convert_optimizer(torch.optim.Adam(p, weight_decay=1e-3), invariant=p, norm_layers=())
    with pytest.raises(
        TypeError, match=r"SGD, AdamW or Adam\(decoupled_weight_decay=True\), got RMSprop"
    ):
        eq.convert_optimizer(torch.optim.RMSprop(p), invariant=p, norm_layers=())
