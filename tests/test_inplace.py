"""The converted run is the stock run wherever the user's code touches it (in place, exported,
averaged, removed, checked).

Each test runs a float64 Conv-BatchNorm network with BatchNorm's default eps through stock
``torch.optim.SGD``/``AdamW`` with stock schedulers (the reference, as a user writes it) and
through the same optimizer converted in place by ``equivalence.convert_optimizer``. Error model
(``equivalence.noise_floor``): the converted run must stay within 3× the running maximum of
the floor, measured by a stock rerun from weights one ulp away and two jitter twins (every
weight moved JITTER_ULPS ulps after every step), never below 64 u. Each claim has a negative
control that must fail it or a refusal whose message names the parameter, module or value.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LinearLR, MultiStepLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import equivalence as eq
from equivalence.optim.inplace import InvarianceCheckError
from equivalence.verify.noise_floor import JITTER_ULPS
from tests._integration import Net

U = float(np.finfo(np.float64).eps)
FLOOR_MIN = 64 * U
STEPS = 60


def data(steps: int = STEPS, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, 16, 3, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (steps, 16), generator=g)
    return x, y


Build = Callable[[Net], tuple[torch.optim.Optimizer, Any]]


def train(
    net: Net, opt: torch.optim.Optimizer, sched: Any, x: torch.Tensor, y: torch.Tensor, **kw: Any
) -> list[torch.Tensor]:
    """Plain loop; returns the network's outputs per step (the network function)."""
    outs = []
    after_backward = kw.get("after_backward")
    for t in range(len(x)):
        opt.zero_grad()
        out = net(x[t])
        nn.functional.cross_entropy(out, y[t]).backward()
        if after_backward is not None:
            after_backward()
        opt.step()
        if sched is not None:
            sched.step()
        outs.append(out.detach().clone())
    return outs


def jitter(net: Net, opt: torch.optim.Optimizer, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def post(o: Any, a: Any, k: Any) -> None:
        with torch.no_grad():
            for p in net.parameters():
                sign = torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1
                ulp = torch.nextafter(p.abs(), torch.full_like(p, math.inf)) - p.abs()
                p.add_(sign * JITTER_ULPS * ulp)

    opt.register_step_post_hook(post)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def floor(build: Build, x: torch.Tensor, y: torch.Tensor, ref: list[torch.Tensor]) -> np.ndarray:
    """Running max of the floor twins' output divergence from ``ref``."""
    worst = np.zeros(len(ref))
    for j in range(3):
        net = Net()
        if j == 0:
            with torch.no_grad():
                for p in net.parameters():
                    p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
        opt, sched = build(net)
        if j > 0:
            jitter(net, opt, 100 + j)
        outs = train(net, opt, sched, x, y)
        worst = np.maximum(worst, [rel(o, r) for o, r in zip(outs, ref)])
    return np.maximum.accumulate(np.maximum(worst, FLOOR_MIN))


def ratio(outs: list[torch.Tensor], ref: list[torch.Tensor], fl: np.ndarray) -> float:
    """Worst err / (3 × floor) over the run."""
    return float(max(rel(o, r) / (3 * f) for o, r, f in zip(outs, ref, fl)))


def sgd_mixed(net: Net) -> tuple[torch.optim.Optimizer, Any]:
    """One group of invariant weights *and* the head, one of the BN affines, MultiStepLR."""
    opt = torch.optim.SGD(
        [
            {"params": [net.c1.weight, net.c2.weight, *net.head.parameters()]},
            {"params": [*net.b1.parameters(), *net.b2.parameters()], "weight_decay": 0.0},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-3,
    )
    return opt, MultiStepLR(opt, [20, 40], 0.3)


def invariant(net: Net) -> list[torch.Tensor]:
    return [net.c1.weight, net.c2.weight]


# -- in place, schedulers attached before conversion --------------------------------------------


class Judged(NamedTuple):
    ratio: float  # worst err / (3 × floor)
    run: Any  # the ConvertedRun
    net: Net
    opt: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    ref: list[torch.Tensor]
    floor: np.ndarray


def judged(build: Build, convert: Callable[[Net, torch.optim.Optimizer], Any], what: str) -> Judged:
    """The recipe ``build`` makes, run stock and converted by ``convert`` (after the optimizer
    and its scheduler are built), judged against the floor."""
    x, y = data()
    ref_net = Net()
    ref = train(ref_net, *build(ref_net), x, y)
    fl = floor(build, x, y, ref)
    net = Net()
    opt, sched = build(net)
    run = convert(net, opt)
    r = ratio(train(net, opt, sched, x, y), ref, fl)
    print(f"\n{what}: worst {r:.3g} of 3x floor")
    return Judged(r, run, net, opt, x, y, ref, fl)


def with_model(net: Net, opt: torch.optim.Optimizer) -> Any:
    """The recommended call: the model given, normalisers found and sets checked."""
    return eq.convert_optimizer(opt, invariant=invariant(net), model=net)


def test_sgd_in_place_with_scheduler_built_before_conversion() -> None:
    """run.optimizer is the user's SGD; its MultiStepLR (built before) drives the converted run
    exactly; the user's two groups stay two. Negative control: the same run with the head
    wrongly declared invariant (check=False) leaves the floor."""
    j = judged(sgd_mixed, with_model, "SGD in place")
    assert j.run.optimizer is j.opt and len(j.opt.param_groups) == 2
    assert j.ratio <= 1.0 and j.run.current_scale() > 1.05
    bad = Net()
    opt, sched = sgd_mixed(bad)
    eq.convert_optimizer(
        opt, invariant=[*invariant(bad), bad.head.weight], norm_layers=[bad.b1, bad.b2], check=False
    )
    assert ratio(train(bad, opt, sched, j.x, j.y), j.ref, j.floor) > 100


def adamw(net: Net) -> tuple[torch.optim.Optimizer, Any]:
    """The Trainer's pattern: no decay on biases and norms, linear warm-up from lr = 0."""
    opt = torch.optim.AdamW(
        [
            {"params": [net.c1.weight, net.c2.weight, net.head.weight], "weight_decay": 0.5},
            {
                "params": [net.head.bias, *net.b1.parameters(), *net.b2.parameters()],
                "weight_decay": 0.0,
            },
        ],
        lr=1e-2,
    )
    warm = LambdaLR(opt, lambda t: min(1.0, t / 10))
    return opt, warm


def test_adamw_in_place_with_warmup_from_zero() -> None:
    """AdamW converted in place under a LambdaLR warm-up that starts at lr = 0."""
    j = judged(adamw, with_model, "AdamW in place, warm-up from 0")
    assert j.run.optimizer is j.opt and j.ratio <= 1.0


def test_lr_zero_steps_and_cosine_to_zero_sgd() -> None:
    """SGD: three steps at lr = 0, then cosine down to 0: the κ form steps through lr = 0."""

    def build(net: Net) -> tuple[torch.optim.Optimizer, Any]:
        opt, _ = sgd_mixed(net)
        return opt, LambdaLR(
            opt, lambda t: 0.0 if t < 3 else 0.5 * (1 + math.cos(math.pi * t / STEPS))
        )

    assert judged(build, with_model, "lr = 0 steps and cosine to 0").ratio <= 1.0


def test_linear_warmup_scheduler_attached_before() -> None:
    def build(net: Net) -> tuple[torch.optim.Optimizer, Any]:
        opt, _ = sgd_mixed(net)
        return opt, LinearLR(opt, start_factor=1e-3, total_iters=10)

    assert judged(build, with_model, "LinearLR warm-up").ratio <= 1.0


# -- layer-wise LR: one set per group, or one set over groups whose recurrences agree ---------


def layerwise(net: Net) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.SGD(
        [
            {"params": [net.c1.weight], "lr": 0.01, "weight_decay": 5e-2},
            {"params": [net.c2.weight, *net.head.parameters()], "lr": 0.1, "weight_decay": 5e-3},
            {"params": [*net.b1.parameters(), *net.b2.parameters()], "weight_decay": 0.0},
        ],
        lr=0.05,
        momentum=0.9,
    )
    return opt, MultiStepLR(opt, [30], 0.1)


def test_layerwise_lr_with_equal_lr_times_wd_is_one_set() -> None:
    """Backbone 0.01, head 0.1, equal η·λ: one scale sequence serves both groups exactly."""
    assert judged(layerwise, with_model, "layer-wise LR, one set").ratio <= 1.0


def test_layerwise_lr_with_different_decay_needs_separate_sets() -> None:
    """η·λ differ across groups: one set is refused at conversion naming the groups; two sets,
    each invariant on its own (each conv feeds its own BN), are exact."""

    def build(net: Net) -> tuple[torch.optim.Optimizer, Any]:
        opt, sched = layerwise(net)
        opt.param_groups[0]["weight_decay"] = 1e-2
        return opt, sched

    net = Net()
    opt, _ = build(net)
    with pytest.raises(
        ValueError, match=r"invariant set 0 spans param groups 0 and 1.*separate sets"
    ):
        eq.convert_optimizer(opt, invariant=invariant(net), norm_layers=())

    def two_sets(net: Net, opt: torch.optim.Optimizer) -> Any:
        return eq.convert_optimizer(opt, invariant=[[net.c1.weight], [net.c2.weight]], model=net)

    j = judged(build, two_sets, "layer-wise LR, two sets")
    assert j.ratio <= 1.0 and j.run.current_scale(0) != j.run.current_scale(1)
    assert j.run.converter.sets[0].norms.modules == [j.net.b1]  # found by the probe
    assert j.run.converter.sets[1].norms.modules == [j.net.b2]


# -- stock units on the way out ---------------------------------------------------------------


def test_export_remove_and_train_on_equal_the_stock_run() -> None:
    """export() equals the stock model (its state_dict loads into a fresh Net with default
    eps); remove() leaves the live model and optimizer in stock units and 20 more stock steps
    stay within the floor. Negative control: loading the converted state_dict as it is."""
    x, y = data(STEPS + 20)
    ref_net = Net()
    ref_opt, ref_sched = sgd_mixed(ref_net)
    train(ref_net, ref_opt, ref_sched, x[:STEPS], y[:STEPS])
    net = Net()
    opt, sched = sgd_mixed(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    train(net, opt, sched, x[:STEPS], y[:STEPS])
    fresh = Net(seed=5)
    fresh.load_state_dict(run.export(net).state_dict())
    assert all(m.eps == 1e-5 for m in (fresh.b1, fresh.b2))
    probe = x[0]
    ref_net.eval(), fresh.eval()
    err = rel(fresh(probe), ref_net(probe))
    naive = Net(seed=5)
    naive.load_state_dict(net.state_dict())
    naive.eval()
    bad = rel(naive(probe), ref_net(probe))
    print(f"\nexport: eval output err {err:.3g}; the raw converted state_dict: {bad:.3g}")
    assert err <= 1e-12 < bad
    ref_net.train()
    run.remove()  # the model was given at conversion
    assert all(m.eps == 1e-5 for m in (net.b1, net.b2))
    more_ref = train(ref_net, ref_opt, ref_sched, x[STEPS:], y[STEPS:])
    more = train(net, opt, sched, x[STEPS:], y[STEPS:])
    worst = max(rel(a, b) for a, b in zip(more, more_ref))
    print(f"after remove(), 20 stock steps: output err {worst:.3g}")
    assert worst <= 1e-10


def _kind(kind: str) -> Build:
    def build(net: Net) -> tuple[torch.optim.Optimizer, Any]:
        params = [
            {"params": [*invariant(net), *net.head.parameters()]},
            {"params": [*net.b1.parameters(), *net.b2.parameters()], "weight_decay": 0.0},
        ]
        opt: torch.optim.Optimizer
        if kind == "adamw":
            opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.5)
        else:
            extra = {"dampening": 0.3} if kind == "dampening" else {"nesterov": True}
            opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-3, **extra)
        return opt, MultiStepLR(opt, [20], 0.3)

    return build


@pytest.mark.parametrize("kind", ["dampening", "nesterov", "adamw"])
def test_remove_puts_each_maps_state_in_stock_units(kind: str) -> None:
    """remove() after 40 converted steps, then 20 stock steps: equal to the stock run all along
    (the buffer relations: dampening v = (ṽ − κθ)/c, Nesterov b = b̃/c_{t−1}, AdamW m = νm̃,
    v = σṽ). Negative control: the same with the optimizer state left as stored."""
    build = _kind(kind)
    x, y = data(60)
    ref_net = Net()
    ref = train(ref_net, *build(ref_net), x, y)

    def converted(fix_state: bool) -> list[torch.Tensor]:
        net = Net()
        opt, sched = build(net)
        run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
        outs = train(net, opt, sched, x[:40], y[:40])
        stored = {p: dict(st) for p, st in opt.state.items()}
        run.remove()
        if not fix_state:  # put the stored (converted-units) state back
            for p, st in stored.items():
                opt.state[p].update(st)
        return outs + train(net, opt, sched, x[40:], y[40:])

    good = max(rel(a, b) for a, b in zip(converted(True), ref))
    bad = max(rel(a, b) for a, b in zip(converted(False), ref))
    print(f"\n{kind}: remove() and train on: {good:.3g}; state left as stored: {bad:.3g}")
    assert good <= 1e-10 < 1e-6 < bad


def averages_against_stock(
    kw: dict[str, Any], start: int = 0, update_bn_batches: int = 0
) -> tuple[float, float]:
    """Stock and converted runs side by side, each step from ``start`` on updating three
    AveragedModels (``kw`` as for AveragedModel): the stock run's, ``run.averaged_model`` of
    the converted run, and an AveragedModel of the converted weights as they are; then
    ``update_bn`` over that many batches if asked. Returns the eval-output errors of the
    second and the third against the first."""
    from torch.optim.swa_utils import update_bn

    x, y = data()
    ref_net, net = Net(), Net()
    ref_opt, ref_sched = sgd_mixed(ref_net)
    opt, sched = sgd_mixed(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    ref_avg = AveragedModel(ref_net, **kw)
    avg = run.averaged_model(net, **kw)
    naive = AveragedModel(net, **kw)
    for t in range(len(x)):
        for m, o, s in ((ref_net, ref_opt, ref_sched), (net, opt, sched)):
            o.zero_grad()
            nn.functional.cross_entropy(m(x[t]), y[t]).backward()
            o.step()
            s.step()
        if t >= start:
            for a, m in ((ref_avg, ref_net), (avg, net), (naive, net)):
                a.update_parameters(m)
    for a in (ref_avg, avg, naive):
        if update_bn_batches:
            update_bn([(x[t],) for t in range(update_bn_batches)], a)
        a.eval()
    return rel(avg(x[0]), ref_avg(x[0])), rel(naive(x[0]), ref_avg(x[0]))


def test_ema_matches_stock_ema_step_by_step() -> None:
    """run.averaged_model (EMA with get_ema_multi_avg_fn, buffers averaged) equals the stock
    run's AveragedModel; an AveragedModel of the converted weights does not."""
    kw: dict[str, Any] = {"multi_avg_fn": get_ema_multi_avg_fn(0.9), "use_buffers": True}
    good, bad = averages_against_stock(kw)
    print(f"\nEMA of stock weights: output err {good:.3g}; EMA of converted weights: {bad:.3g}")
    assert good <= 1e-10 < 1e-4 < bad


# -- checked, never trusted ---------------------------------------------------------------------


def test_non_invariant_parameter_in_invariant_is_refused_naming_it() -> None:
    net = Net()
    opt, sched = sgd_mixed(net)
    eq.convert_optimizer(opt, invariant=[*invariant(net), net.head.weight], model=net)
    x, y = data(2)
    with pytest.raises(InvarianceCheckError, match=r"not scale invariant.*'head.weight'"):
        train(net, opt, sched, x, y)


def test_missing_and_extra_norm_layers_are_refused_naming_them() -> None:
    x, y = data(2)
    net = Net()
    opt, sched = sgd_mixed(net)
    eq.convert_optimizer(opt, invariant=invariant(net), norm_layers=[net.b1], model=net)
    with pytest.raises(InvarianceCheckError, match=r"missing 'b2' \(fed by the set\)"):
        train(net, opt, sched, x, y)
    net = Net()
    opt, sched = sgd_mixed(net)
    eq.convert_optimizer(opt, invariant=[net.c1.weight], norm_layers=[net.b1, net.b2], model=net)
    with pytest.raises(InvarianceCheckError, match=r"extra 'b2' \(not fed by the set\)"):
        train(net, opt, sched, x, y)


def test_swa_with_update_bn_equals_the_stock_swa() -> None:
    """SWA (AveragedModel's default equal-weight average) of the stock weights over the second
    half, then torch.optim.swa_utils.update_bn recomputing its BatchNorm statistics: equal to
    the stock run's; the SWA of the converted weights is not."""
    good, bad = averages_against_stock({}, start=STEPS // 2, update_bn_batches=8)
    print(f"\nSWA + update_bn of stock weights: {good:.3g}; of converted weights: {bad:.3g}")
    assert good <= 1e-10 < 1e-6 < bad


def test_omitted_norm_layers_without_model_are_refused() -> None:
    net = Net()
    opt, _ = sgd_mixed(net)
    with pytest.raises(ValueError, match=r"norm_layers is not given and neither is model="):
        eq.convert_optimizer(opt, invariant=invariant(net))


def test_forgotten_norm_layers_are_found_with_model() -> None:
    net = Net()
    opt, sched = sgd_mixed(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    x, y = data(2)
    train(net, opt, sched, x, y)
    assert run.converter.sets[0].norms.modules == [net.b1, net.b2]
    assert net.b1.eps == pytest.approx(1e-5 * run.current_scale() ** 2, rel=4 * U)


def test_model_without_checks_still_finds_the_normalisers() -> None:
    """check=False skips the judgements, not the discovery: with model= and no norm_layers the
    probe still finds the normalisers (else eps and running statistics would go uncorrected)."""
    net = Net()
    opt, sched = sgd_mixed(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net, check=False)
    x, y = data(2)
    train(net, opt, sched, x, y)
    assert run.converter.sets[0].norms.modules == [net.b1, net.b2]
    # model= given but never called in training before the first update: refused, not silent
    net = Net()
    opt, _ = sgd_mixed(net)
    eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    with pytest.raises(eq.ConversionError, match="its normalisers could not be found"):
        opt.step()


def test_not_correctable_normaliser_is_refused() -> None:
    """A BN fed by the set plus a non-invariant branch: its input neither doubles nor stays."""

    class Mixed(Net):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.b1(self.c1(x)))
            h = torch.relu(self.b2(self.c2(h) + x.mean(1, keepdim=True)))
            return self.head(h.mean(dim=(2, 3)))

    net = Mixed()
    opt, sched = sgd_mixed(net)
    eq.convert_optimizer(opt, invariant=[net.c2.weight], model=net)
    x, y = data(2)
    with pytest.raises(InvarianceCheckError, match=r"normaliser\(s\) 'b2' neither doubles"):
        train(net, opt, sched, x, y)


def test_euler_check_without_model_when_eps_is_negligible() -> None:
    net = Net()
    for m in (net.b1, net.b2):
        m.eps = 1e-300  # negligible: the Euler identity is exact up to rounding
    opt, sched = sgd_mixed(net)
    eq.convert_optimizer(
        opt, invariant=[*invariant(net), net.head.weight], norm_layers=[net.b1, net.b2]
    )
    x, y = data(2)
    with pytest.raises(InvarianceCheckError, match=r"Σ⟨∇L, θ⟩.*head.weight|of shape \(4, 8\)"):
        train(net, opt, sched, x, y)


def test_adjust_eps_off_is_refused_where_the_map_always_adjusts() -> None:
    net = Net()
    opt, _ = _kind("adamw")(net)
    with pytest.raises(ValueError, match=r"adjust_eps=False is supported for plain SGD only"):
        eq.convert_optimizer(opt, invariant=invariant(net), model=net, adjust_eps=False)


def test_bad_hyper_parameters_get_their_own_messages() -> None:
    p = [nn.Parameter(torch.ones(3, dtype=torch.float64))]
    with pytest.raises(
        ValueError, match=r"momentum = 1.0, outside the valid range 0 <= momentum < 1"
    ):
        eq.convert_optimizer(torch.optim.SGD(p, lr=0.1, momentum=1.0), invariant=p, norm_layers=())
    opt = torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)
    eq.convert_optimizer(opt, invariant=p, check=False, norm_layers=())
    p[0].grad = torch.zeros_like(p[0])
    opt.param_groups[0]["lr"] = float("nan")
    with pytest.raises(eq.ConversionError, match=r"\['lr'\] = nan at update 0 is not finite"):
        opt.step()
    opt = torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)
    eq.convert_optimizer(opt, invariant=p, check=False, norm_layers=())
    opt.param_groups[0]["weight_decay"] = float("inf")
    with pytest.raises(
        eq.ConversionError, match=r"\['weight_decay'\] = inf at update 0 is not finite"
    ):
        opt.step()


# -- gradients in stock units -------------------------------------------------------------------


def test_clip_grad_value_of_the_stock_run() -> None:
    """run.clip_grad_value_ equals torch's clip_grad_value_ on the stock run; torch's own on the
    converted gradients does not."""
    x, y = data()
    v = 0.02

    def build(net: Net) -> tuple[torch.optim.Optimizer, Any]:
        return sgd_mixed(net)

    ref_net = Net()
    ref_opt, ref_sched = build(ref_net)
    ref = train(
        ref_net,
        ref_opt,
        ref_sched,
        x,
        y,
        after_backward=lambda: nn.utils.clip_grad_value_(ref_net.parameters(), v),
    )
    net = Net()
    opt, sched = build(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    outs = train(net, opt, sched, x, y, after_backward=lambda: run.clip_grad_value_(v))
    wrong = Net()
    opt_w, sched_w = build(wrong)
    eq.convert_optimizer(opt_w, invariant=invariant(wrong), model=wrong)
    bad = train(
        wrong,
        opt_w,
        sched_w,
        x,
        y,
        after_backward=lambda: nn.utils.clip_grad_value_(wrong.parameters(), v),
    )
    good_err = max(rel(a, b) for a, b in zip(outs, ref))
    bad_err = max(rel(a, b) for a, b in zip(bad, ref))
    print(
        f"\nclip_grad_value_: stock-equivalent {good_err:.3g}; torch's on converted grads {bad_err:.3g}"
    )
    assert good_err <= 1e-10 < 1e-4 < bad_err


# -- the rest -----------------------------------------------------------------------------------


def test_add_param_group_stock_or_invariant() -> None:
    net = Net()
    opt, _ = sgd_mixed(net)
    run = eq.convert_optimizer(opt, invariant=[net.c1.weight], model=net, check=False)
    extra = nn.Parameter(torch.ones(3, dtype=torch.float64))
    run.add_param_group({"params": [extra], "lr": 0.05}, invariant=True)
    assert len(run.converter.sets) == 2 and len(opt.param_groups) == 3
    assert run.current_scale(1) == 1.0
    other = nn.Parameter(torch.ones(2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"invariant must be True or False.*got list"):
        run.add_param_group({"params": [other]}, invariant=[other])


def test_no_reference_cycle_keeps_a_dropped_optimizer_alive() -> None:
    p = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-3)
    run = eq.convert_optimizer(opt, invariant=[p], norm_layers=())
    del run
    assert len(gc.get_referrers(opt)) == 0, gc.get_referrers(opt)


def test_monitor_group_spanning_different_decay_is_refused() -> None:
    net = Net()
    opt, _ = sgd_mixed(net)
    with pytest.raises(
        ValueError, match=r"spans param groups \[0, 1\] with different weight decays"
    ):
        eq.Monitor(opt, {"all": [net.c1.weight, net.b1.weight]})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("foreach", [False, True])
def test_no_host_device_synchronisation_after_the_first_update(foreach: bool) -> None:
    """On CUDA the converted steps after the first (checks, probe) run under
    ``torch.cuda.set_sync_debug_mode("error")``: no synchronisation per step."""
    net = Net().cuda()
    opt = torch.optim.SGD(
        [
            {"params": [*invariant(net), *net.head.parameters()]},
            {"params": [*net.b1.parameters(), *net.b2.parameters()], "weight_decay": 0.0},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-3,
        foreach=foreach,
    )
    sched = MultiStepLR(opt, [5], 0.3)
    eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    x, y = (t.cuda() for t in data(12))
    train(net, opt, sched, x[:2], y[:2])  # the first update: the one synchronisation
    torch.cuda.synchronize()
    outs = [net(x[2])]  # forward and backward outside the sync check; only the step inside
    nn.functional.cross_entropy(outs[0], y[2]).backward()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            opt.step()
            sched.step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
