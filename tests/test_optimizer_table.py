"""The optimizer table: each row's proof module, its implementation or refusal, and a figure.

Rows: SGD with dampening (exact, LR only), SGD with Nesterov momentum (exact with a buffer
rewrite), the LR inside the velocity (Keras/TensorFlow; exact with LR and momentum
schedules, checked against a numpy reference of that convention), Adam with coupled L2
(refuted; the residual of the natural candidate map grows with ηλ).

Error model as in tests/test_adamw.py: the converted run is judged against 3× the stock
run's measured float64 floor (a twin from one-ulp-nudged weights, jittered by four ulps per
weight and buffer entry after every step).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR

import equivalence as eq
from equivalence.sgd_variants import convert_sgd_variant, keras_equivalent_schedule
from equivalence.torch_adamw import convert_adamw
from proofs._core import refute, verify_steps
from tests.conftest import examples
from tests.test_adamw import batches, flat, make_net, rel, step

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


def _nudge(t: torch.Tensor, ulps: int, gen: torch.Generator | None) -> None:
    if gen is None:
        target = torch.full_like(t, math.inf)
    else:
        up = torch.rand(t.shape, generator=gen, dtype=t.dtype) < 0.5
        target = torch.where(up, math.inf, -math.inf).to(t.dtype)
    for _ in range(ulps):
        t.copy_(torch.nextafter(t, target))


def run_sgd_pair(
    seed: int,
    steps: int,
    sched: str,
    *,
    lr: float = 0.1,
    wd: float = 1e-2,
    momentum: float = 0.9,
    dampening: float = 0.0,
    nesterov: bool = False,
    convert: bool = True,
    bn_eps: float | None = None,
):
    """Stock SGD variant, its jittered twin, and the converted run (or, with convert=False,
    the same SGD without WD and with the plain SGD theorem's LR: the candidate map)."""
    net, inv, _ = make_net(seed, **({} if bn_eps is None else {"bn_eps": bn_eps}))
    names = [n for n, p in net.named_parameters() if any(p is q for q in inv)]
    twin, conv = copy.deepcopy(net), copy.deepcopy(net)
    kw = dict(lr=lr, weight_decay=wd, momentum=momentum, dampening=dampening, nesterov=nesterov)

    def trainable(m: nn.Module) -> list[nn.Parameter]:
        return [p for p in m.parameters() if p.requires_grad]

    with torch.no_grad():
        for p in trainable(twin):
            _nudge(p, 1, None)
    o_ref = torch.optim.SGD(trainable(net), **kw)
    o_twin = torch.optim.SGD(trainable(twin), **kw)
    conv_inv = [dict(conv.named_parameters())[n] for n in names]
    twin_inv = [dict(twin.named_parameters())[n] for n in names]
    norms = [m for m in conv.modules() if isinstance(m, nn.BatchNorm1d)]
    run = convert_sgd_variant(
        torch.optim.SGD(trainable(conv), **kw), invariant=conv_inv, norm_layers=norms
    )
    if not convert:  # candidate map for Nesterov: its scale sequence and LR, no rewrite
        run.optimizer._optimizer_step_pre_hooks.clear()
        run.optimizer._optimizer_step_post_hooks.clear()
        _candidate_hooks(run)
    make = {
        "constant": None,
        "multistep": lambda o: MultiStepLR(o, [steps // 3, 2 * steps // 3], 0.1),
        "cosine": lambda o: CosineAnnealingLR(o, steps),
    }[sched]
    scheds = [make(o) for o in (o_ref, o_twin, run.optimizer)] if make else []
    x, y = batches(steps, seed + 1000)
    gen = torch.Generator().manual_seed(seed)
    err = floor = 0.0
    for k in range(steps):
        for m, o in ((net, o_ref), (twin, o_twin), (conv, run.optimizer)):
            step(m, o, x[k], y[k])
        for s in scheds:
            s.step()
        with torch.no_grad():
            for p in trainable(twin):
                _nudge(p, 4, gen)
                buf = o_twin.state[p].get("momentum_buffer")
                if buf is not None:
                    _nudge(buf, 4, gen)
        w = flat(inv)
        err = max(err, rel(flat(conv_inv) / run.current_scale(), w))
        floor = max(floor, rel(flat(twin_inv), w))
    for m in (net, twin, conv):
        m.eval()
    with torch.no_grad():
        out = net(x[0])
        out_err, out_floor = rel(conv(x[0]), out), rel(twin(x[0]), out)
    return err, floor, out_err, out_floor, run


def _candidate_hooks(run) -> None:
    """Nesterov without the rewrite: c_{t+1} = (1 − ηλ)c_t, η̃ = η/(c_t c_{t+1}), no WD."""
    saved: dict = {}

    def pre(opt, args, kwargs):
        for i in run.invariant_groups:
            g = opt.param_groups[i]
            saved[i] = (g["lr"], g["weight_decay"])
            c_next = (1 - g["lr"] * g["weight_decay"]) * run.c
            g["lr"], g["weight_decay"] = g["lr"] / (run.c * c_next), 0.0
            run._next = (c_next, 0.0)

    def post(opt, args, kwargs):
        for i, (lr, wd) in saved.items():
            opt.param_groups[i]["lr"], opt.param_groups[i]["weight_decay"] = lr, wd
        run.c = run._next[0]

    run.optimizer.register_step_pre_hook(pre)
    run.optimizer.register_step_post_hook(post)


@pytest.mark.parametrize("sched", ["constant", "multistep", "cosine"])
@pytest.mark.parametrize(
    "variant", [{"dampening": 0.3}, {"nesterov": True}], ids=["dampening", "nesterov"]
)
def test_sgd_variant_exact(variant: dict, sched: str) -> None:
    err, floor, out_err, out_floor, run = run_sgd_pair(2, 600, sched, **variant)
    print(
        f"\n{variant} {sched}: err {err:.3g} floor {floor:.3g}; eval {out_err:.3g} "
        f"floor {out_floor:.3g}; scale {run.current_scale():.4g}"
    )
    assert run.current_scale() > 1.2
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


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
    """Random seeds and recipes (ηλ ≤ (1 − √γ)² so c_t stays positive): within 3× the floor."""
    err, floor, out_err, out_floor, _ = run_sgd_pair(
        seed, 150, sched, lr=lr, wd=wd, momentum=momentum, **variant
    )
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


@pytest.mark.parametrize(
    "variant", [{"dampening": 0.3}, {"nesterov": True}], ids=["dampening", "nesterov"]
)
def test_sgd_variant_default_batchnorm_eps(variant: dict) -> None:
    """BatchNorm's default eps = 1e-5, fed eps·m² by the converter."""
    err, floor, out_err, out_floor, run = run_sgd_pair(
        3, 400, "cosine", wd=2e-2, bn_eps=1e-5, **variant
    )
    print(f"\n{variant} BN eps 1e-5: err {err:.3g} floor {floor:.3g}; eval {out_err:.3g}")
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


def test_nesterov_without_rewrite_residual_grows_with_decay() -> None:
    """Refuted row (a): the best-guess LR-only map's residual grows with ηλ, far above the floor."""
    residuals = []
    for wd in (1e-3, 1e-2, 1e-1):
        err, floor, *_ = run_sgd_pair(
            2, 200, "constant", lr=0.1, wd=wd, nesterov=True, convert=False
        )
        residuals.append(err)
        print(
            f"\nnesterov, no rewrite, eta*lambda={0.1 * wd:g}: residual {err:.3g} "
            f"({err / floor:.3g} x floor)"
        )
        assert err > 1e3 * floor
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


def test_refusals() -> None:
    net, inv, _ = make_net(0)
    params = [p for p in net.parameters() if p.requires_grad]
    with pytest.raises(ValueError, match="dampening > 0 or nesterov=True"):
        convert_sgd_variant(torch.optim.SGD(params, lr=0.1, momentum=0.9), invariant=inv)
    with pytest.raises(ValueError, match=r"momentum = 1.0 is outside"):
        keras_equivalent_schedule([0.1], 0.1, 1.0)


# ---------------------------------------------------------------------------------------
# LR inside the velocity: a numpy reference of that convention (not a PyTorch optimizer)
# ---------------------------------------------------------------------------------------


def _keras_run(theta0: np.ndarray, lrs, wds, moms, grad, jitter: np.random.Generator | None = None):
    """numpy reference of v ← γ_t v − η_t (∇L(θ) + λ_t θ); θ ← θ + v (from v = 0)."""
    th, v = theta0.copy(), np.zeros_like(theta0)
    out = []
    for lr, wd, mom in zip(lrs, wds, moms):
        v = mom * v - lr * (grad(th) + wd * th)
        th = th + v
        if jitter is not None:  # four ulps per entry, random direction (the per-step budget)
            for a in (th, v):
                target = np.where(jitter.random(a.shape) < 0.5, np.inf, -np.inf)
                for _ in range(4):
                    a[:] = np.nextafter(a, target)
        out.append(th.copy())
    return out


def _quadratic_ratio_loss(n: int, seed: int):
    """L(θ) = θᵀMθ/θᵀθ (scale invariant); ∇L = 2(Mθ − Lθ)/θᵀθ."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    mat = (a + a.T) / 2

    def grad(th: np.ndarray) -> np.ndarray:
        nn_ = th @ th
        return 2 * (mat @ th - (th @ mat @ th) / nn_ * th) / nn_

    return grad


@pytest.mark.parametrize("sched", ["constant", "step", "cosine"])
def test_lr_in_velocity_exact_numpy(sched: str) -> None:
    steps, n = 2000, 10
    grad = _quadratic_ratio_loss(n, 1)
    base = 0.01
    k = np.arange(steps)
    lrs = {
        "constant": np.full(steps, base),
        "step": base * 0.1 ** (k // 700),
        "cosine": base * 0.5 * (1 + np.cos(np.pi * k / steps)),
    }[sched]
    wd, mom = 0.01, 0.9  # ηλ = 1e-4 < (1 − √γ)²: c_t stays positive
    theta0 = np.random.default_rng(2).standard_normal(n)
    ref = _keras_run(theta0, lrs, [wd] * steps, [mom] * steps, grad)
    twin = _keras_run(
        np.nextafter(theta0, np.inf),
        lrs,
        [wd] * steps,
        [mom] * steps,
        grad,
        jitter=np.random.default_rng(3),
    )
    eta, gam, c = keras_equivalent_schedule(lrs, wd, mom)
    conv = _keras_run(theta0, eta, [0.0] * steps, gam, grad)
    err = max(
        np.linalg.norm(conv[t] * c[t + 1] - ref[t]) / np.linalg.norm(ref[t]) for t in range(steps)
    )
    floor = max(np.linalg.norm(twin[t] - ref[t]) / np.linalg.norm(ref[t]) for t in range(steps))
    # negative control: the momentum left at γ (LR schedule alone)
    bad = _keras_run(theta0, eta, [0.0] * steps, [mom] * steps, grad)
    bad_err = max(
        np.linalg.norm(bad[t] * c[t + 1] - ref[t]) / np.linalg.norm(ref[t]) for t in range(steps)
    )
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
        run = convert_adamw(
            torch.optim.AdamW(
                [p for p in conv.parameters() if p.requires_grad], lr=1e-2, weight_decay=wd
            ),
            invariant=conv_inv,
        )
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
    p = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(TypeError, match="convert_adamw"):
        eq.convert_optimizer(torch.optim.AdamW(p), invariant=p)
    with pytest.raises(TypeError, match=r"no exact no-WD equivalent \(proofs/adam_l2.py\)"):
        eq.convert_optimizer(torch.optim.Adam(p, weight_decay=1e-3), invariant=p)
    with pytest.raises(ValueError, match="convert_sgd_variant.*proofs/nesterov.py"):
        eq.convert_optimizer(torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), invariant=p)
    with pytest.raises(ValueError, match="convert_sgd_variant.*proofs/dampening.py"):
        eq.convert_optimizer(torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5), invariant=p)
