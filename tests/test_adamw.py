"""Stock AdamW + stock schedulers ≡ stock Adam without weight decay, driven by convert_adamw.

The reference side is always ``torch.optim.AdamW(weight_decay=λ)`` with PyTorch's own
schedulers; the converted side is a stock ``torch.optim.Adam`` whose hyper-parameters the
converter sets per step (equivalence/torch_adamw.py, derived in proofs/adamw.py).

Error model (float64 trajectories): both runs round differently at every step and the
training dynamics amplify those differences, so the converted run is judged against the
stock run's own measured noise floor: the largest relative distance, over the run, between
the stock run and a twin of it started from weights nudged by one ulp (every trainable
weight moved to its next float) and nudged again by four ulps, in a random direction per
weight and per Adam buffer entry, after every step: the initial nudge measures how the dynamics amplify a
perturbation, the per-step one measures the rounding the converted run adds at every
step (its linear error model: about one ulp per weight per step). A correct map must
stay within 3× that floor; a wrong one (the LR-only negative control) is off by orders
of magnitude more.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import mpmath
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR, OneCycleLR

import equivalence
from equivalence.noise_floor import FLOOR_FACTOR, U64, K
from equivalence.torch_adamw import (
    AdamWEquivalence,
    adamw_equivalent_schedule,
    adamw_step_params,
    convert_adamw,
)
from tests.conftest import examples

U = U64  # the unit roundoff the error model uses for float64

torch.set_num_threads(1)

EPS_BN = 1e-300  # BatchNorm's eps breaks invariance; at 1e-300 it is below float64 rounding


class BNNet(nn.Module):
    """Linear(no bias) → BN → ReLU, ``depth`` times, then a linear head.

    No bias before a BN: its exact gradient is zero, and Adam divides that rounding
    noise by its own square root (an O(η) step driven by rounding alone).
    """

    def __init__(
        self, d_in: int, width: int, depth: int, d_out: int, bn_eps: float = EPS_BN
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(depth):
            layers += [
                nn.Linear(d, width, bias=False),
                nn.BatchNorm1d(width, eps=bn_eps),
                nn.ReLU(),
            ]
            d = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def make_net(
    seed: int, d_in: int = 5, width: int = 8, depth: int = 2, d_out: int = 3, bn_eps: float = EPS_BN
):
    """A random BN network made scale invariant, its invariant set and normalisers (audited).

    With ``bn_eps`` > 0 the audit runs with eps at rounding level (``respect_eps=False``, the
    default): the converter keeps eps·m² so the eps does not break the equivalence.
    """
    torch.manual_seed(seed)
    net = BNNet(d_in, width, depth, d_out, bn_eps).double()
    equivalence.make_scale_invariant(net)
    x = torch.randn(16, d_in, dtype=torch.float64)
    report = equivalence.audit(net, x)
    assert report.fully_invariant or report.invariant_parameters(), str(report)
    inv = report.invariant_parameters()
    assert len(inv) == depth  # every hidden weight, nothing else
    assert len(report.norm_layers()) == depth
    return net, inv, report.norm_layers()


def batches(steps: int, seed: int, d_in: int = 5, d_out: int = 3, batch: int = 16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, d_in, generator=g, dtype=torch.float64)
    y = torch.randint(0, d_out, (steps, batch), generator=g)
    return x, y


def step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


SCHEDULERS = {
    "constant": None,
    "multistep": lambda o, n: MultiStepLR(o, milestones=[n // 3, 2 * n // 3], gamma=0.1),
    "cosine": lambda o, n: CosineAnnealingLR(o, T_max=n),
    # cycles betas[0] too: the map takes each step's live β1
    "onecycle": lambda o, n: OneCycleLR(o, max_lr=2e-2, total_steps=n),
}


def run_pair(
    seed: int,
    sched: str,
    steps: int,
    *,
    lr: float = 1e-2,
    wd: float = 0.5,
    eps: float = 1e-8,
    betas: tuple[float, float] = (0.9, 0.999),
    amsgrad: bool = False,
    maximize: bool = False,
    lr_only: bool = False,
    rescale_log2: float | None = 16.0,
    net_kw: dict | None = None,
    **adam_kw,
):
    """Stock AdamW, its one-ulp twin and the converted Adam in lockstep.

    Returns (max parameter error, max floor, final eval-output error, eval floor, run,
    worst ratio): the last is max_k err_k / max(K·u·(k+1), 3·F_k), the project's one error
    model (``equivalence.noise_floor``: a linear term for the per-step rounding a non-chaotic
    run accumulates, and 3× the running max F_k of the floor twin's divergence).
    ``lr_only``: the negative control, which keeps the stock betas and ε and schedules
    only the LR η_k/(A_{k-1} A_k) (the SGD theorem's LR; no ν, σ, ε rescaling).
    """
    net, inv, norms = make_net(seed, **(net_kw or {}))
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p in (q for q in twin.parameters() if q.requires_grad):
            p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    conv = copy.deepcopy(net)
    names = [n for n, p in net.named_parameters() if any(p is q for q in inv)]
    twin_inv = [dict(twin.named_parameters())[n] for n in names]
    conv_inv = [dict(conv.named_parameters())[n] for n in names]
    conv_norms = [m for m in conv.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == len(conv_norms)
    kw = dict(
        lr=lr, weight_decay=wd, eps=eps, betas=betas, amsgrad=amsgrad, maximize=maximize, **adam_kw
    )

    def trainable(m: nn.Module) -> list[nn.Parameter]:
        return [p for p in m.parameters() if p.requires_grad]

    o_ref = torch.optim.AdamW(trainable(net), **kw)
    o_twin = torch.optim.AdamW(trainable(twin), **kw)
    o_user = torch.optim.AdamW(trainable(conv), **kw)
    run = convert_adamw(
        o_user, invariant=conv_inv, norm_layers=conv_norms, rescale_log2=rescale_log2
    )
    if lr_only:
        _make_lr_only(run)
    make = SCHEDULERS[sched]
    scheds = [make(o, steps) for o in (o_ref, o_twin, run.optimizer)] if make else []
    x, y = batches(steps, seed + 1000, d_in=(net_kw or {}).get("d_in", 5))
    gen = torch.Generator().manual_seed(seed + 2000)
    err = floor = worst = 0.0
    for k in range(steps):
        for m, o in ((net, o_ref), (twin, o_twin), (conv, run.optimizer)):
            step(m, o, x[k], y[k])
        for s in scheds:
            s.step()
        jitter(twin, o_twin, gen)
        w = flat(inv)
        err_k = rel(flat(conv_inv) / run.current_scale(), w)
        err = max(err, err_k)
        floor = max(floor, rel(flat(twin_inv), w))
        worst = max(worst, err_k / max(K * U * (k + 1), FLOOR_FACTOR * floor))
    for m in (net, twin, conv):
        m.eval()
    with torch.no_grad():
        xe = x[0]
        out = net(xe)
        out_err = rel(conv(xe), out)
        out_floor = rel(twin(xe), out)
    return err, floor, out_err, out_floor, run, worst


#: Per-step jitter of the twin, in ulps: the per-step rounding budget of the linear error
#: model (an Adam step rounds each weight after the decay and after addcdiv, and each buffer
#: in lerp / mul + addcmul), the same four ulps as the SGD suite's jitter twins.
JITTER_ULPS = 4


def jitter(net: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
    """Move every trainable weight and Adam buffer by JITTER_ULPS ulps, random direction each."""
    with torch.no_grad():
        for p in (q for q in net.parameters() if q.requires_grad):
            st = opt.state.get(p, {})
            for t in (p, st.get("exp_avg"), st.get("exp_avg_sq"), st.get("max_exp_avg_sq")):
                if t is None:
                    continue
                up = torch.rand(t.shape, generator=gen, dtype=t.dtype) < 0.5
                target = torch.where(up, math.inf, -math.inf).to(t.dtype)
                for _ in range(JITTER_ULPS):
                    t.copy_(torch.nextafter(t, target))
            if "exp_avg_sq" in st:
                st["exp_avg_sq"].clamp_(min=0.0)  # a second moment stays non-negative


def _make_lr_only(run: AdamWEquivalence) -> None:
    """Replace the map by the LR-only one: η_k/(A_{k-1}A_k), stock betas and ε (must fail)."""

    def pre(opt, args, kwargs):
        for i in run.invariant_groups:
            g = opt.param_groups[i]
            a = 1.0 - g["lr"] * g["weight_decay"]
            run._stock[i] = {k: g[k] for k in ("lr", "weight_decay", "betas", "eps")}
            g["lr"] = g["lr"] / (run.scale * run.scale * a)
            g["weight_decay"] = 0.0
            run.sigma[i] = run.scale * a  # carry A_k through the post-hook

    def post(opt, args, kwargs):
        for i, saved in run._stock.items():
            opt.param_groups[i].update(saved)
        run._stock = {}
        run.scale = run.sigma[run.invariant_groups[0]]

    run.remove()
    for i in run.invariant_groups:
        run.optimizer.param_groups[i]["decoupled_weight_decay"] = False  # the hooks zero λ
    run.rescale_log2 = None
    run._handles = [
        run.optimizer.register_step_pre_hook(pre),
        run.optimizer.register_step_post_hook(post),
    ]


@pytest.mark.parametrize("sched", ["constant", "multistep", "cosine"])
def test_adamw_equals_converted_adam(sched: str) -> None:
    steps = 1000
    err, floor, out_err, out_floor, run, _ = run_pair(3, sched, steps)
    print(
        f"\n{sched}: param err {err:.3g} floor {floor:.3g}; eval out err {out_err:.3g} "
        f"floor {out_floor:.3g}; scale {run.current_scale():.4g}"
    )
    assert run.current_scale() > 1.5  # the decay really acted (m = 1/A_k)
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


@settings(max_examples=examples(6))
@given(
    seed=st.integers(0, 10**6),
    width=st.integers(3, 10),
    depth=st.integers(1, 3),
    lr=st.sampled_from([1e-3, 5e-3, 2e-2]),
    wd=st.sampled_from([0.05, 0.3, 1.0]),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
    betas=st.sampled_from([(0.9, 0.999), (0.8, 0.99), (0.0, 0.9)]),
    sched=st.sampled_from(["constant", "multistep", "cosine"]),
    amsgrad=st.booleans(),
)
def test_property_random_bn_networks(seed, width, depth, lr, wd, eps, betas, sched, amsgrad):
    """Random BN networks and recipes, 150 steps: the converted Adam within the project's one
    error model (max(K·u·(t+1), 3× floor) at every step; in a contracting run the one-ulp
    twin's divergence can stay below the rounding the converted run accumulates linearly; see
    test_known_contracting_run_within_the_error_model for a network that still fails it)."""
    err, floor, out_err, out_floor, run, worst = run_pair(
        seed,
        sched,
        150,
        lr=lr,
        wd=wd,
        eps=eps,
        betas=betas,
        amsgrad=amsgrad,
        net_kw={"width": width, "depth": depth, "d_in": 4},
    )
    assert worst <= 1.0, (err, floor, worst)
    # eval outputs at the end: the same model at t = 150
    assert out_err <= max(K * U * 151, FLOOR_FACTOR * max(out_floor, floor)), (out_err, out_floor)


@pytest.mark.xfail(
    strict=True,
    reason="open defect: on this contracting run the converted Adam's eval outputs drift 1.7x "
    "past K·u·(t+1) and its parameters reach 13x the floor twin's divergence (0.86 of the "
    "linear term); the source of the systematic per-step error is not yet found",
)
def test_known_contracting_run_within_the_error_model() -> None:
    """A network found by the property test (width 5, depth 2, η = 0.02, λ = 0.05, ε = 1e-8)."""
    err, floor, out_err, out_floor, run, worst = run_pair(
        0,
        "constant",
        150,
        lr=0.02,
        wd=0.05,
        eps=1e-8,
        betas=(0.9, 0.999),
        net_kw={"width": 5, "depth": 2, "d_in": 4},
    )
    assert worst <= 1.0, (err, floor, worst)
    assert out_err <= max(K * U * 151, FLOOR_FACTOR * max(out_floor, floor)), (out_err, out_floor)


def test_default_batchnorm_eps_is_exact() -> None:
    """BatchNorm with its default eps = 1e-5: the converter feeds it eps·m² (exact)."""
    err, floor, out_err, out_floor, run, _ = run_pair(
        6, "multistep", 400, wd=1.0, net_kw={"bn_eps": 1e-5}
    )
    print(
        f"\nBN eps 1e-5: param err {err:.3g} floor {floor:.3g}; eval {out_err:.3g} "
        f"floor {out_floor:.3g}; scale {run.current_scale():.4g}"
    )
    assert run.current_scale() > 4  # eps would be off by m² > 16 without the correction
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


def test_default_batchnorm_eps_without_correction_fails(monkeypatch) -> None:
    """Negative control: the same run with BatchNorm's eps left at 1e-5."""
    monkeypatch.setattr(AdamWEquivalence, "_set_norm_eps", lambda self: None)
    err, floor, out_err, out_floor, _, _ = run_pair(
        6, "multistep", 400, wd=1.0, net_kw={"bn_eps": 1e-5}
    )
    print(f"\nBN eps 1e-5 uncorrected: param err {err:.3g} = {err / floor:.3g} x floor")
    assert err > 1e3 * floor


def test_one_cycle_with_cycling_beta1() -> None:
    """OneCycleLR moves LR and β1 every step (stock Adam's bias correction uses the live β1)."""
    err, floor, out_err, out_floor, run, _ = run_pair(4, "onecycle", 400)
    print(f"\nonecycle: param err {err:.3g} floor {floor:.3g}; eval {out_err:.3g}")
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


def test_lr_only_map_fails_by_orders_of_magnitude() -> None:
    """Negative control: scheduling the LR alone (the SGD theorem's η_k/(A_{k-1}A_k)) is wrong."""
    err, floor, out_err, out_floor, _, _ = run_pair(3, "multistep", 300, lr_only=True)
    print(
        f"\nLR-only map: param err {err:.3g} = {err / floor:.3g} x floor; eval out err "
        f"{out_err:.3g}"
    )
    assert err > 1e6 * floor
    assert out_err > 1e6 * max(out_floor, floor)


@pytest.mark.parametrize(
    "variant",
    [
        {"amsgrad": True},
        {"maximize": True, "lr": 1e-3},
        {"foreach": True},
        {"fused": True},
        {"eps": 1e-3, "betas": (0.5, 0.9)},
        {"betas": (0.0, 0.99)},
    ],
    ids=["amsgrad", "maximize", "foreach", "fused", "eps1e-3", "beta1_0"],
)
def test_variants_exact(variant: dict) -> None:
    """amsgrad (one state rewrite per step), maximize, foreach, fused, other ε and betas."""
    err, floor, out_err, out_floor, run, _ = run_pair(5, "cosine", 400, **variant)
    print(f"\n{variant}: param err {err:.3g} floor {floor:.3g}; eval {out_err:.3g}")
    assert run.current_scale() > 1.1
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)


def test_amsgrad_without_rewrite_fails() -> None:
    """Negative control: amsgrad with the hyper-parameter map but without the max-buffer rewrite."""
    err, floor, *_ = _run_without_rewrite()
    print(f"\namsgrad, no rewrite: err {err:.3g} = {err / floor:.3g} x floor")
    assert err > 1e6 * floor


def _run_without_rewrite():
    import equivalence.torch_adamw as mod

    real = mod.AdamWEquivalence._pre_hook

    def pre(self, opt, args, kwargs):
        for i in self.invariant_groups:
            opt.param_groups[i]["amsgrad"] = False  # skip the rewrite branch...
        real(self, opt, args, kwargs)
        for i in self.invariant_groups:
            opt.param_groups[i]["amsgrad"] = True  # ...but step with amsgrad

    mod.AdamWEquivalence._pre_hook = pre
    try:
        return run_pair(5, "cosine", 400, amsgrad=True)
    finally:
        mod.AdamWEquivalence._pre_hook = real


def test_rescaling_is_bitwise_invisible() -> None:
    """Power-of-two rescaling changes no mantissa: rescaled run × 2^j == unrescaled, bitwise."""
    outs = []
    for resc in (None, 1.0):
        net, inv, norms = make_net(7)
        opt = torch.optim.AdamW(
            [p for p in net.parameters() if p.requires_grad], lr=5e-2, weight_decay=1.0
        )
        run = convert_adamw(opt, invariant=inv, norm_layers=norms, rescale_log2=resc)
        sched = MultiStepLR(run.optimizer, [100], 0.3)
        x, y = batches(200, 8)
        for k in range(200):
            step(net, run.optimizer, x[k], y[k])
            sched.step()
        outs.append((flat(inv), run, [m.running_var.clone() for m in norms]))
    (w0, r0, v0), (w1, r1, v1) = outs
    assert r0.log2_pow == 0 and r1.log2_pow <= -8  # the second run did rescale, often
    s = math.ldexp(1.0, -r1.log2_pow)
    assert torch.equal(w1 * s, w0)
    assert all(torch.equal(a * s * s, b) for a, b in zip(v1, v0))
    assert r1.current_scale() * s == r0.current_scale()


def test_resume_is_bitwise() -> None:
    """A plain {model, optimizer, scheduler} checkpoint (the converter's state rides in the
    optimizer's state_dict): a resumed run continues bit-identically."""

    def build(seed: int):
        net, inv, norms = make_net(seed, bn_eps=1e-5)
        opt = torch.optim.AdamW(
            [p for p in net.parameters() if p.requires_grad], lr=2e-2, weight_decay=1.0
        )
        run = convert_adamw(opt, invariant=inv, norm_layers=norms, rescale_log2=1.0)
        return net, run, CosineAnnealingLR(run.optimizer, 200)

    x, y = batches(200, 9)
    net, run, sched = build(11)
    for k in range(200):
        step(net, run.optimizer, x[k], y[k])
        sched.step()
        if k == 99:
            ckpt = copy.deepcopy((net.state_dict(), run.optimizer.state_dict(), sched.state_dict()))
    assert "equivalence_adamw" in ckpt[1]
    net2, run2, sched2 = build(11)
    net2.load_state_dict(ckpt[0])
    run2.optimizer.load_state_dict(ckpt[1])
    sched2.load_state_dict(ckpt[2])
    assert run2.k == 100 and run2.log2_pow < 0  # the scale and the rescalings came back
    for k in range(100, 200):
        step(net2, run2.optimizer, x[k], y[k])
        sched2.step()
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)
    assert run.state_dict() == run2.state_dict()
    assert [m.eps for m in net.modules() if isinstance(m, nn.BatchNorm1d)] == [
        m.eps for m in net2.modules() if isinstance(m, nn.BatchNorm1d)
    ]
    stock = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad]).state_dict()
    with pytest.raises(ValueError, match="no 'equivalence_adamw' entry"):
        run2.optimizer.load_state_dict(stock)


def test_refusals() -> None:
    net, inv, norms = make_net(0)
    params = [p for p in net.parameters() if p.requires_grad]
    with pytest.raises(ValueError, match=r"coupled L2 .*proofs/adam_l2.py"):
        convert_adamw(torch.optim.Adam(params, weight_decay=1e-2), invariant=inv)
    with pytest.raises(TypeError, match="optimizer must be torch.optim.AdamW"):
        convert_adamw(torch.optim.SGD(params, lr=0.1), invariant=inv)
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        convert_adamw(torch.optim.AdamW(params, capturable=True), invariant=inv)
    with pytest.raises(ValueError, match="not among"):
        convert_adamw(torch.optim.AdamW(params[:1]), invariant=inv)
    with pytest.raises(ValueError, match=r"lr \* weight_decay = 1.0 at step 1 is outside"):
        adamw_step_params(1, 1.0, 1.0, 0.9, 0.999, 1e-8, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"betas\[1\] = 1.0 is outside"):
        adamw_equivalent_schedule([1e-3], 0.1, betas=(0.9, 1.0))
    # different decay factors across invariant groups: refused at the first step
    opt = torch.optim.AdamW(
        [{"params": [inv[0]], "weight_decay": 0.1}, {"params": inv[1:]}], lr=1e-2
    )
    run = convert_adamw(opt, invariant=inv)
    x, y = batches(1, 0)
    with pytest.raises(ValueError, match="different lr \\* weight_decay"):
        step(net, run.optimizer, x[0], y[0])


# ---------------------------------------------------------------------------------------
# schedule mathematics against exact / 50-digit oracles
# ---------------------------------------------------------------------------------------


def test_scale_factor_and_nu_sigma_exact_oracle() -> None:
    """A_k, ν_k, σ_k, β̃ against a fractions.Fraction oracle of the same recursion.

    Error model: each float operation rounds by ≤ u = 2^-53 relative; A_k is a product of k
    factors (≤ k u), ν and σ sums of positive terms (≤ ~3 k u): rtol = 8 k u.
    """
    lrs = [1e-2 * (0.5 ** (k // 100)) for k in range(300)]
    wd, b1, b2 = 0.7, 0.9, 0.999
    got = adamw_equivalent_schedule(lrs, wd, betas=(b1, b2), eps=1e-8)
    A, nu, sig = Fraction(1), Fraction(1), Fraction(1)
    F = Fraction
    u = 2.0**-53
    for k, (lr, p) in enumerate(zip(lrs, got), 1):
        a = 1 - F(lr) * F(wd)
        nu_n = F(b1) * nu + (1 - F(b1)) / A
        sig_n = F(b2) * sig + (1 - F(b2)) / (A * A)
        tb1, tb2 = F(b1) * nu / nu_n, F(b2) * sig / sig_n
        A, nu, sig = A * a, nu_n, sig_n
        if k % 50 == 0 or k < 5:
            for name, exact, val in (
                ("A", A, p.scale),
                ("nu", nu, p.nu),
                ("sigma", sig, p.sigma),
                ("beta1", tb1, p.beta1),
                ("beta2", tb2, p.beta2),
            ):
                assert abs(val - float(exact)) <= 8 * k * u * abs(float(exact)), (k, name)
        if k > 5:  # keep the Fractions small: re-round the oracle's state (the check above
            # already pinned it); the recursion is contracting in ν, σ relative error
            A, nu, sig = F(float(A)), F(float(nu)), F(float(sig))


def _mp_adam_run(lrs, wd, b1, b2, eps, theta0, convert: bool, dps: int = 50):
    """50-digit run of AdamW (convert=False) or of the converted Adam on a scale-invariant loss.

    L(θ) = (θ₁² + 3θ₁θ₂ − 2θ₂θ₃ + θ₃²/2)/‖θ‖² (a ratio of quadratics, exactly scale
    invariant). The converted run's hyper-parameters are recomputed at 50 digits from the
    module's formulas; returns the final θ (AdamW) or A_K θ̃_K (converted).
    """
    mp = mpmath.mp
    with mpmath.workdps(dps):

        def grad(t):
            x, y, z = t
            n = x * x + y * y + z * z
            p = x * x + 3 * x * y - 2 * y * z + z * z / 2
            dp = (2 * x + 3 * y, 3 * x - 2 * z, -2 * y + z)
            return [(d * n - p * 2 * ti) / (n * n) for d, ti in zip(dp, t)]

        th = [mp.mpf(v) for v in theta0]
        m = [mp.mpf(0)] * 3
        v = [mp.mpf(0)] * 3
        A, nu, sig = mp.mpf(1), mp.mpf(1), mp.mpf(1)
        B1, B2, E, W = mp.mpf(b1), mp.mpf(b2), mp.mpf(eps), mp.mpf(wd)
        for k, lr in enumerate(lrs, 1):
            lr = mp.mpf(lr)
            g = grad(th)
            if convert:
                a = 1 - lr * W
                nu_n = B1 * nu + (1 - B1) / A
                sig_n = B2 * sig + (1 - B2) / A**2
                tb1, tb2 = B1 * nu / nu_n, B2 * sig / sig_n
                bc2 = mpmath.sqrt((1 - B2**k) / (sig_n * (1 - tb2**k)))
                e = E * bc2
                eta = lr * (nu_n / (A * a)) * bc2 * (1 - tb1**k) / (1 - B1**k)
                A, nu, sig = A * a, nu_n, sig_n
                beta1, beta2 = tb1, tb2
            else:
                th = [(1 - lr * W) * t for t in th]
                eta, e, beta1, beta2 = lr, E, B1, B2
            m = [beta1 * mi + (1 - beta1) * gi for mi, gi in zip(m, g)]
            v = [beta2 * vi + (1 - beta2) * gi * gi for vi, gi in zip(v, g)]
            step_size = eta / (1 - beta1**k)
            d2 = mpmath.sqrt(1 - beta2**k)
            th = [t - step_size * mi / (mpmath.sqrt(vi) / d2 + e) for t, mi, vi in zip(th, m, v)]
        return [A * t for t in th] if convert else th


@pytest.mark.parametrize("eps", [0.0, 1e-8, 1e-3])
def test_map_exact_at_50_digits(eps: float) -> None:
    """The map itself, independent of floats: 200 steps at 50 digits agree to 1e-40."""
    lrs = [0.05 * (0.1 if k >= 100 else 1.0) for k in range(200)]
    ref = _mp_adam_run(lrs, 0.9, 0.9, 0.999, eps, (1.0, -0.5, 0.25), convert=False)
    got = _mp_adam_run(lrs, 0.9, 0.9, 0.999, eps, (1.0, -0.5, 0.25), convert=True)
    err = max(abs(a - b) for a, b in zip(ref, got)) / max(abs(a) for a in ref)
    assert err < 1e-40, err


def test_float_schedule_against_50_digit_oracle() -> None:
    """η̃_k, ε̃_k in float64 against the same formulas at 50 digits (rtol 1e-12: ≤ ~10 k u
    for k ≤ 400 plus the bias-correction cancellation 1 − β̃^k at small k)."""
    lrs = [0.05 * 0.5 * (1 + math.cos(math.pi * k / 400)) for k in range(400)]
    got = adamw_equivalent_schedule(lrs, 0.9, betas=(0.9, 0.999), eps=1e-8)
    with mpmath.workdps(50):
        mp = mpmath.mp
        A, nu, sig = mp.mpf(1), mp.mpf(1), mp.mpf(1)
        B1, B2, W = mp.mpf(0.9), mp.mpf(0.999), mp.mpf(0.9)
        for k, (lr, p) in enumerate(zip(lrs, got), 1):
            lr = mp.mpf(lr)
            a = 1 - lr * W
            nu_n = B1 * nu + (1 - B1) / A
            sig_n = B2 * sig + (1 - B2) / A**2
            tb1, tb2 = B1 * nu / nu_n, B2 * sig / sig_n
            bc2 = mpmath.sqrt((1 - B2**k) / (sig_n * (1 - tb2**k)))
            eta = lr * (nu_n / (A * a)) * bc2 * (1 - tb1**k) / (1 - B1**k)
            A, nu, sig = A * a, nu_n, sig_n
            assert abs(p.lr - float(eta)) <= 1e-12 * float(eta), k
            assert abs(p.eps - float(mp.mpf(1e-8) * bc2)) <= 1e-12 * float(mp.mpf(1e-8) * bc2), k
