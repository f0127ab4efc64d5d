"""Stock-unit gradients (``stock_grads=True``): PyTorch's own clipping equals the stock run's.

A converted run stores θ̃ = m θ on each invariant set, so backward gives g̃ = g/m and any
third-party code that reads ``.grad`` (``torch.nn.utils.clip_grad_norm_`` in the Hugging Face
Trainer, Accelerate and Lightning; gradient logging) measures the wrong gradient. With
``stock_grads=True`` the invariant tensors' ``.grad`` holds the stock gradient between backward
and step, and the step converts it back. Each test runs a float64 Conv-BatchNorm network
(BatchNorm's default eps) stock and converted and judges the converted run against the noise
floor (``tests/_integration.py``: 3 × the running maximum of an ulp twin and two jitter twins).
Negative controls: the same loops without the mode leave the floor by orders of magnitude.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence as eq
from tests._integration import Net, batches, floor, jitter_hook, ratio, snapshot, ulp_up

STEPS = 40
ACCUM = 2
CLIP = 0.3
torch.set_num_threads(1)


def invariant(net: Net) -> list[torch.Tensor]:
    return [net.c1.weight, net.c2.weight]


X, Y, PROBE = batches(STEPS, ACCUM, 8)


def sgd(net: Net) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.SGD(
        [
            {"params": [net.c1.weight, net.c2.weight, *net.head.parameters()]},
            {"params": [*net.b1.parameters(), *net.b2.parameters()], "weight_decay": 0.0},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-3,
    )
    return opt, MultiStepLR(opt, [25], 0.3)


def adamw(net: Net) -> tuple[torch.optim.Optimizer, Any]:
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
    return opt, MultiStepLR(opt, [25], 0.3)


BUILDS = {"sgd": sgd, "adamw": adamw}


def record(net: Net, run: Any) -> list[torch.Tensor]:
    """Stock-unit parameters and buffers, and the eval-mode output on the probe batch."""
    conv = run.converter if run is not None else None
    params = conv.stock_parameters(net) if conv is not None else net.parameters()
    bufs = conv.stock_buffers(net) if conv is not None else net.buffers()
    net.eval()
    with torch.no_grad():
        out = net(PROBE)
    net.train()
    return [*snapshot(params), *snapshot(b for b in bufs if b.is_floating_point()), out]


def loop(
    net: Net,
    opt: torch.optim.Optimizer,
    sched: Any,
    *,
    run: Any = None,
    clip: float | None = None,
    closure: bool = False,
    skip: tuple[int, ...] = (),
    at: dict[int, Callable[[], None]] | None = None,
    norms: list[float] | None = None,
) -> list[list[torch.Tensor]]:
    """ACCUM backwards per step (gradient accumulation), PyTorch's clip_grad_norm_ on every
    parameter, a step skipped after its backwards at the steps in ``skip`` (as GradScaler
    skips), ``at[t]()`` called after the first backward of step t."""
    rows = []
    for t in range(STEPS):

        def grads(t: int = t) -> torch.Tensor:
            opt.zero_grad()
            for a in range(ACCUM):
                loss = nn.functional.cross_entropy(net(X[t, a]), Y[t, a]) / ACCUM
                loss.backward()
                if a == 0 and at and t in at:
                    at[t]()
            if clip is not None:
                total = torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
                if norms is not None:
                    norms.append(float(total))
            return loss

        if closure:
            opt.step(grads)
        else:
            grads()
            if t not in skip:
                opt.step()
        sched.step()
        rows.append(record(net, run))
    return rows


def floor_of(build: Callable[[Net], Any], ref: list[list[torch.Tensor]], **kw: Any) -> Any:
    twins = []
    for j in range(3):
        net = Net()
        if j == 0:
            ulp_up(net)
        opt, sched = build(net)
        if j > 0:
            opt.register_step_post_hook(jitter_hook(net.parameters(), 100 + j))
        twins.append(loop(net, opt, sched, **kw))
    return floor(twins, ref)


def converted(build: Callable[[Net], Any], stock_grads: bool, **kw: Any) -> tuple[Any, Any]:
    net = Net()
    opt, sched = build(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net, stock_grads=stock_grads)
    return loop(net, opt, sched, run=run, **kw), run


@pytest.mark.parametrize("kind", sorted(BUILDS))
def test_torch_clip_grad_norm_with_stock_grads_is_the_stock_clip(kind: str) -> None:
    """Gradient accumulation (2 backwards per step) and PyTorch's clip_grad_norm_ on every
    parameter, active at most steps: the converted run with stock_grads=True equals the stock
    run within the floor, and the norms clip_grad_norm_ returns are the stock ones. Negative
    control: the same without stock_grads (PyTorch measures g/m)."""
    build = BUILDS[kind]
    norms: list[float] = []
    net = Net()
    ref = loop(net, *build(net), clip=CLIP, norms=norms)
    assert sum(n > CLIP for n in norms) > STEPS // 2, "max_norm must actually clip"
    fl = floor_of(build, ref, clip=CLIP)
    got_norms: list[float] = []
    rows, run = converted(build, True, clip=CLIP, norms=got_norms)
    good = ratio(rows, ref, fl)
    bad_rows, _ = converted(build, False, clip=CLIP)
    bad = ratio(bad_rows, ref, fl)
    worst_norm = max(abs(a - b) / b for a, b in zip(got_norms, norms))
    print(
        f"\n{kind} clip: stock_grads {good:.3g} of 3x floor (scale {run.current_scale():.4g}, "
        f"norms {worst_norm:.2g} rel); without {bad:.3g}"
    )
    assert run.current_scale() > 1.1
    assert good <= 1.0 and worst_norm < 1e-12
    assert bad > 100


@pytest.mark.parametrize("kind", sorted(BUILDS))
def test_round_trip_cost_without_clipping(kind: str) -> None:
    """The mode's own rounding (× m at backward, ÷ m at the step), measured where nothing
    clips: the run with it and the run without it both within the floor."""
    build = BUILDS[kind]
    net = Net()
    ref = loop(net, *build(net))
    fl = floor_of(build, ref)
    with_mode = ratio(converted(build, True)[0], ref, fl)
    without = ratio(converted(build, False)[0], ref, fl)
    print(f"\n{kind} no clip: stock_grads {with_mode:.3g}, without {without:.3g} of 3x floor")
    assert with_mode <= 1.0 and without <= 1.0


def test_closure_clipping_inside_and_monitor_see_stock_gradients() -> None:
    """Lightning's pattern: optimizer.step(closure) with backward and clipping inside the
    closure. The closure is evaluated before every step hook: the clipping sees stock
    gradients and a Monitor attached after the conversion reads this step's gradient (in
    stored units: its scale-invariant figures equal the stock monitor's)."""
    net = Net()
    opt, sched = sgd(net)
    stock_mon = eq.Monitor(opt, {"inv": invariant(net)})
    ref = loop(net, opt, sched, clip=CLIP)
    fl = floor_of(sgd, ref, clip=CLIP)
    net = Net()
    opt, sched = sgd(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net, stock_grads=True)
    mon = eq.Monitor.for_run(run, {"inv": invariant(net)})
    r = ratio(loop(net, opt, sched, run=run, clip=CLIP, closure=True), ref, fl)
    worst = _monitor_gap(mon, stock_mon)
    net = Net()
    opt, sched = sgd(net)
    bad_run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    bad_mon = eq.Monitor.for_run(bad_run, {"inv": invariant(net)})
    bad = ratio(loop(net, opt, sched, run=bad_run, clip=CLIP, closure=True), ref, fl)
    bad_gap = _monitor_gap(bad_mon, stock_mon)
    print(
        f"\nclosure + clip: {r:.3g} of 3x floor, monitor figures {worst:.2g} rel; without "
        f"stock_grads {bad:.3g} of 3x floor, monitor {bad_gap:.2g} rel (last step's gradient)"
    )
    assert r <= 1.0 and worst < 1e-10
    assert bad > 100 and bad_gap > 1e-2


def _monitor_gap(mon: Any, ref: Any) -> float:
    worst = 0.0
    for a, b in zip(mon.records, ref.records, strict=True):
        for f in ("grad_norm_unit", "angular_update", "weight_norm_stock", "effective_lr"):
            worst = max(worst, abs(a[f] - b[f]) / abs(b[f]))
    return worst


def test_skipped_steps_and_switching_on_mid_accumulation() -> None:
    """Steps skipped after their backwards (GradScaler's inf skip: no step, gradients dropped)
    and stock_grads switched on at step 10 between the two backwards of an accumulation (the
    gradients present are converted), PyTorch's clipping on from then on, as in the stock
    run."""
    skip = (4, 17, 18)
    clip_from = 10
    net = Net()
    opt, sched = sgd(net)

    def stock_clip_on() -> None:
        pass

    ref_rows = _switch_loop(net, opt, sched, None, skip, clip_from)
    twins = []
    for j in range(3):
        tw = Net()
        if j == 0:
            ulp_up(tw)
        o, s = sgd(tw)
        if j > 0:
            o.register_step_post_hook(jitter_hook(tw.parameters(), 200 + j))
        twins.append(_switch_loop(tw, o, s, None, skip, clip_from))
    fl = floor(twins, ref_rows)
    net = Net()
    opt, sched = sgd(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    r = ratio(_switch_loop(net, opt, sched, run, skip, clip_from), ref_rows, fl)
    print(f"\nskips + switch on mid-accumulation: {r:.3g} of 3x floor")
    assert run.stock_grads and r <= 1.0


def _switch_loop(
    net: Net, opt: Any, sched: Any, run: Any, skip: tuple[int, ...], clip_from: int
) -> list[list[torch.Tensor]]:
    rows = []
    for t in range(STEPS):
        opt.zero_grad()
        for a in range(ACCUM):
            (nn.functional.cross_entropy(net(X[t, a]), Y[t, a]) / ACCUM).backward()
            if a == 0 and t == clip_from and run is not None:
                run.set_stock_grads(True)
        if t >= clip_from:
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        if t not in skip:
            opt.step()
        sched.step()
        rows.append(record(net, run))
    return rows


def test_state_dict_round_trip_before_the_first_step_keeps_the_checks() -> None:
    """Accelerate's prepare saves and reloads the optimizer's state before training: the
    first-update checks still run (the probe finds the normalisers), as they must with
    model= and no norm_layers."""
    net = Net()
    opt, _ = sgd(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net, stock_grads=True)
    opt.load_state_dict(opt.state_dict())
    assert not run.converter.sets[0].checked
    opt.zero_grad()
    nn.functional.cross_entropy(net(X[0, 0]), Y[0, 0]).backward()
    opt.step()
    assert run.converter.sets[0].checked and len(run.converter.sets[0].norms) == 2


def test_remove_leaves_stock_gradients_and_no_hook() -> None:
    net = Net()
    opt, _ = sgd(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net, stock_grads=True)
    for t in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[t, 0]), Y[t, 0]).backward()
        opt.step()
    opt.zero_grad()
    nn.functional.cross_entropy(net(X[3, 0]), Y[3, 0]).backward()
    stock = [p.grad.clone() for p in invariant(net)]
    total = torch.nn.utils.get_total_norm([p.grad for p in net.parameters()])
    assert float(run.clip_grad_norm_(float("inf"))) == float(total)  # already stock: no × m
    run.remove(net)
    assert not run.stock_grads
    assert all(torch.equal(p.grad, g) for p, g in zip(invariant(net), stock))
    opt.zero_grad()
    nn.functional.cross_entropy(net(X[3, 0]), Y[3, 0]).backward()  # stock weights now, no hook
    assert (
        max(float((p.grad - g).abs().max() / g.abs().max()) for p, g in zip(invariant(net), stock))
        < 1e-12
    )


def test_refusals() -> None:
    net = Net()
    opt, _ = sgd(net)
    with pytest.raises(ValueError, match="online conversion"):
        eq.convert_optimizer(
            opt, invariant=invariant(net), form="closed_form", steps=10, stock_grads=True
        )
    with pytest.raises(TypeError, match="stock_grads must be True or False"):
        eq.convert_optimizer(opt, invariant=invariant(net), model=net, stock_grads=1)  # type: ignore[arg-type]
    net = Net()
    opt, _ = sgd(net)
    net.c1.weight.requires_grad_(False)
    with pytest.raises(ValueError, match=r"'c1.weight' \(set 0\) does not require grad"):
        eq.convert_optimizer(opt, invariant=invariant(net), model=net, stock_grads=True)
    assert not opt._optimizer_step_pre_hooks  # refused: the optimizer is left unconverted
    net = Net()
    opt, _ = sgd(net)
    run = eq.convert_optimizer(opt, invariant=invariant(net), model=net)
    with pytest.raises(TypeError, match="enabled must be True or False"):
        run.set_stock_grads("yes")  # type: ignore[arg-type]
    opt.register_step_pre_hook(lambda o, a, k: run.set_stock_grads(True))
    nn.functional.cross_entropy(net(X[0, 0]), Y[0, 0]).backward()
    with pytest.raises(RuntimeError, match="inside optimizer.step"):
        opt.step()


def test_no_reference_keeps_a_dropped_optimizer_alive() -> None:
    """The registry of stock-gradient runs holds the optimizer weakly; the tensor hooks hold
    the conversion weakly. While the optimizer lives, so does its conversion (its hooks keep
    working without the user holding ``run``); dropping the optimizer frees it."""
    net = Net()
    opt = torch.optim.SGD(invariant(net), lr=0.1, momentum=0.9, weight_decay=1e-3)
    run = eq.convert_optimizer(opt, invariant=invariant(net), norm_layers=[], stock_grads=True)
    conv = weakref.ref(run.converter)
    del run
    gc.collect()
    assert conv() is not None and conv().stock_grads
    assert len(gc.get_referrers(opt)) == 0, gc.get_referrers(opt)
    dropped = weakref.ref(opt)
    del opt
    gc.collect()
    assert dropped() is None and conv() is None
