"""Everyday training loops, converted, against the same loops on stock ``torch.optim.SGD``.

Each test runs one loop body twice: on a stock ``SGD(weight_decay=λ)`` with PyTorch's own
schedulers (the reference) and on ``equivalence.convert``'s optimizer, the loop code
unchanged. Verdict (float64): the converted run's invariant weights divided by m_t =
``current_scale()`` and its outputs must stay within 3× the **noise floor**, measured in the
same test as the stock run against itself started from weights nudged by one ulp (running
maximum over the steps so far). Error model: both sides do the same arithmetic up to the
factor m_t, so their difference is rounding (a few ulps per step) propagated by the same
dynamics that propagate the one-ulp nudge. ``FLOOR_MIN`` covers the first steps, where the
nudge has not yet spread: 64 ulps of float64 relative, the rounding of a handful of steps.

Every claim has a negative control that must fail the same verdict: the normalisers' eps
left alone, the momentum buffers dropped, PyTorch's own ``clip_grad_norm_`` on the
converted gradients, a one-step-late scale sequence.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import (
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
)

import equivalence as eq
from equivalence import schedules
from equivalence.verify.noise_floor import JITTER_ULPS

torch.set_num_threads(1)

U = float(np.finfo(np.float64).eps)
FLOOR_MIN = 64 * U
STEPS = 120
LR, MOM, WD = 0.1, 0.9, 5e-3


class NormNet(nn.Module):
    """Linear → BatchNorm1d → ReLU → Linear → LayerNorm → ReLU → Linear → GroupNorm → frozen head.

    Every normaliser has the real ``eps`` (1e-5 unless told); the loss is jointly scale
    invariant in (fc1.weight, fc1.bias, fc2.weight, fc3.weight) only as eps → 0, and
    exactly with eps scaled by m² in the converted run.
    """

    def __init__(self, d_in: int = 6, width: int = 12, d_out: int = 3, eps: float = 1e-5) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, width)
        self.bn = nn.BatchNorm1d(width, affine=False, eps=eps)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.ln = nn.LayerNorm(width, elementwise_affine=False, eps=eps)
        self.fc3 = nn.Linear(width, width, bias=False)
        self.gn = nn.GroupNorm(3, width, affine=False, eps=eps)
        self.head = nn.Linear(width, d_out)
        self.head.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.fc1(x)))
        h = torch.relu(self.ln(self.fc2(h)))
        return self.head(torch.relu(self.gn(self.fc3(h))))

    def invariant(self) -> list[nn.Parameter]:
        return [self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc3.weight]

    def norm_layers(self) -> list[nn.Module]:
        return [self.bn, self.ln, self.gn]


def make_net(seed: int = 0, **kw: Any) -> NormNet:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return NormNet(**kw).double()


def batches(steps: int, seed: int, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(steps, batch, 6, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (steps, batch), generator=g),
    )


def nudge(model: nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))


@dataclass
class Side:
    model: NormNet
    opt: torch.optim.SGD
    scale: Callable[[], float]
    clip: Callable[[float], Any]
    run: Any = None


def stock_side(model: NormNet, **sgd: Any) -> Side:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, **{"lr": LR, "momentum": MOM, "weight_decay": WD, **sgd})
    return Side(model, opt, lambda: 1.0, lambda mx: torch.nn.utils.clip_grad_norm_(params, mx))


def converted_side(model: NormNet, **kw: Any) -> Side:
    params = [p for p in model.parameters() if p.requires_grad]
    args = {"lr": LR, "momentum": MOM, "weight_decay": WD, **kw}
    run = eq.convert(params, invariant=model.invariant(), norm_layers=model.norm_layers(), **args)
    return Side(model, run.optimizer, run.current_scale, run.clip_grad_norm_, run)


Loop = Callable[[Side, torch.Tensor, torch.Tensor, list], None]


def record(side: Side, out: torch.Tensor, trace: list) -> None:
    with torch.no_grad():
        w = torch.cat([p.reshape(-1) for p in side.model.invariant()]) / side.scale()
        trace.append((w.clone(), out.detach().clone()))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def compare(ref: list, other: list) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([rel(o[0], r[0]) for r, o in zip(ref, other)]),
        np.array([rel(o[1], r[1]) for r, o in zip(ref, other)]),
    )


def run_loop(loop: Loop, side: Side, x: torch.Tensor, y: torch.Tensor) -> list:
    trace: list = []
    loop(side, x, y, trace)
    side.model.eval()
    with torch.no_grad():
        trace.append((trace[-1][0], side.model(x[0])))  # eval-mode outputs at the end
    side.model.train()
    return trace


def verdict(
    loop: Loop,
    *,
    seed: int = 0,
    steps: int = STEPS,
    stock_kw: dict | None = None,
    conv_kw: dict | None = None,
    make_conv: Callable[[NormNet], Side] | None = None,
) -> tuple[float, float]:
    """(worst err / bound, worst floor) of the converted loop against the stock loop."""
    x, y = batches(steps, seed + 1)
    base = make_net(seed)
    ref = run_loop(loop, stock_side(copy.deepcopy(base), **(stock_kw or {})), x, y)
    # the floor: the one-ulp twin and JITTER_TWINS_HERE jitter twins (the project's error model,
    # equivalence.noise_floor: every weight moved JITTER_ULPS ulps in a random direction after
    # every step, a fresh rounding-sized change per update as the converted run receives); the
    # single one-ulp twin under-samples the floor's spread (2.3× under it on one CPU)
    twin = copy.deepcopy(base)
    nudge(twin)
    floor_p, floor_o = compare(ref, run_loop(loop, stock_side(twin, **(stock_kw or {})), x, y))
    for j in range(JITTER_TWINS_HERE):
        side = stock_side(copy.deepcopy(base), **(stock_kw or {}))
        jitter_after_steps(side, seed=1000 + j)
        jp, jo = compare(ref, run_loop(loop, side, x, y))
        floor_p, floor_o = np.maximum(floor_p, jp), np.maximum(floor_o, jo)
    conv = (
        make_conv(copy.deepcopy(base))
        if make_conv
        else converted_side(copy.deepcopy(base), **(conv_kw or {}))
    )
    err_p, err_o = compare(ref, run_loop(loop, conv, x, y))
    worst = 0.0
    for err, floor in ((err_p, floor_p), (err_o, floor_o)):
        bound = 3 * np.maximum(FLOOR_MIN, np.maximum.accumulate(floor))
        worst = max(worst, float(np.max(err / bound)))
    return worst, float(max(floor_p.max(), floor_o.max()))


#: jitter twins per verdict (fewer than the harness's JITTER_TWINS: these loops are short)
JITTER_TWINS_HERE = 3


def jitter_after_steps(side: Side, seed: int) -> None:
    """After each step, move every trainable weight JITTER_ULPS ulps in a seeded random direction."""
    gen = torch.Generator().manual_seed(seed)

    def post(opt: Any, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for p in side.model.parameters():
                if p.requires_grad:
                    sign = torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1
                    ulp = torch.nextafter(p.abs(), torch.full_like(p, math.inf)) - p.abs()
                    p.add_(sign * JITTER_ULPS * ulp)

    side.opt.register_step_post_hook(post)


def step(side: Side, x: torch.Tensor, y: torch.Tensor, trace: list) -> torch.Tensor:
    side.opt.zero_grad()
    out = side.model(x)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    side.opt.step()
    record(side, out, trace)
    return loss


# -- the loops ------------------------------------------------------------------------------------


def loop_multistep(side, x, y, trace):
    sched = MultiStepLR(side.opt, [40, 80], 0.1)
    for t in range(len(x)):
        step(side, x[t], y[t], trace)
        sched.step()


def loop_per_epoch(side, x, y, trace):
    """kuangliu-style: scheduler.step() once per epoch of 10 batches."""
    sched = MultiStepLR(side.opt, [4, 8], 0.1)
    for t in range(len(x)):
        step(side, x[t], y[t], trace)
        if (t + 1) % 10 == 0:
            sched.step()


def loop_scheduler_first(side, x, y, trace):
    """scheduler.step() before optimizer.step() (stock PyTorch warns; the LR is then one step early)."""
    sched = MultiStepLR(side.opt, [40, 80], 0.1)
    with pytest.warns(UserWarning, match="lr_scheduler.step"):
        for t in range(len(x)):
            sched.step()
            step(side, x[t], y[t], trace)


def loop_two_schedulers(side, x, y, trace):
    warm = LinearLR(side.opt, start_factor=0.1, total_iters=30)
    decay = MultiStepLR(side.opt, [60, 90], 0.2)
    for t in range(len(x)):
        step(side, x[t], y[t], trace)
        warm.step()
        decay.step()


def loop_sequential(side, x, y, trace):
    sched = SequentialLR(
        side.opt,
        [LinearLR(side.opt, 0.2, total_iters=20), MultiStepLR(side.opt, [50], 0.1)],
        milestones=[20],
    )
    for t in range(len(x)):
        step(side, x[t], y[t], trace)
        sched.step()


def loop_one_cycle(side, x, y, trace):
    """OneCycleLR also cycles the momentum (γ_t varies per step)."""
    sched = OneCycleLR(side.opt, max_lr=0.2, total_steps=len(x))
    for t in range(len(x)):
        step(side, x[t], y[t], trace)
        sched.step()


def loop_lambda(side, x, y, trace):
    sched = LambdaLR(side.opt, lambda e: 0.97**e)
    for t in range(len(x)):
        step(side, x[t], y[t], trace)
        sched.step()


def loop_plateau(side, x, y, trace):
    sched = ReduceLROnPlateau(side.opt, factor=0.5, patience=2, threshold=1e-2)
    for t in range(len(x)):
        loss = step(side, x[t], y[t], trace)
        sched.step(float(loss.detach()))


def loop_hand_edits(side, x, y, trace):
    """The user changes lr, weight decay and momentum by hand."""
    for t in range(len(x)):
        if t == 30:
            for g in side.opt.param_groups:
                g["lr"] = 0.03
        if t == 60:
            for g in side.opt.param_groups:
                g["weight_decay"] = 2e-2
                g["momentum"] = 0.5
        step(side, x[t], y[t], trace)


def loop_grad_scaler(side, x, y, trace):
    """AMP's GradScaler: an inf loss at two steps skips optimizer.step(); the scheduler still steps."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    sched = MultiStepLR(side.opt, [40, 80], 0.1)
    skipped = 0
    for t in range(len(x)):
        side.opt.zero_grad()
        out = side.model(x[t])
        loss = nn.functional.cross_entropy(out, y[t])
        if t in (17, 55):
            loss = loss * math.inf
        scaler.scale(loss).backward()
        before = scaler.get_scale()
        scaler.step(side.opt)
        scaler.update()
        skipped += scaler.get_scale() < before
        sched.step()
        record(side, out, trace)
    assert skipped == 2


def loop_clip(side, x, y, trace):
    sched = MultiStepLR(side.opt, [60], 0.1)
    clipped = 0
    for t in range(len(x)):
        side.opt.zero_grad()
        out = side.model(x[t])
        nn.functional.cross_entropy(out, y[t]).backward()
        total = side.clip(0.3)
        clipped += float(total) > 0.3
        side.opt.step()
        sched.step()
        record(side, out, trace)
    if side.run is None:
        assert clipped > 10, "max_norm must actually clip"


def loop_closure(side, x, y, trace):
    """optimizer.step(closure): the gradients are made inside step()."""
    sched = MultiStepLR(side.opt, [40, 80], 0.1)
    for t in range(len(x)):
        outs = []

        def closure(t=t, outs=outs):
            side.opt.zero_grad(set_to_none=True)
            out = side.model(x[t])
            outs.append(out)
            loss = nn.functional.cross_entropy(out, y[t])
            loss.backward()
            return loss

        side.opt.step(closure)
        sched.step()
        record(side, outs[0], trace)


LOOPS = {
    "closure": loop_closure,
    "multistep": loop_multistep,
    "scheduler_per_epoch": loop_per_epoch,
    "scheduler_before_optimizer": loop_scheduler_first,
    "two_schedulers_chained": loop_two_schedulers,
    "sequential": loop_sequential,
    "one_cycle_with_momentum": loop_one_cycle,
    "lambda": loop_lambda,
    "reduce_on_plateau": loop_plateau,
    "hand_edits": loop_hand_edits,
    "grad_scaler_skips": loop_grad_scaler,
    "clip_grad_norm": loop_clip,
}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loop_converted_equals_stock(name):
    worst, floor = verdict(LOOPS[name])
    print(f"{name}: worst err/bound {worst:.3g}, floor {floor:.3g}")
    assert worst <= 1.0, f"{name}: converted run left the stock run ({worst:.3g}× the bound)"


def test_eps_left_alone_fails():
    """Negative control: the normalisers keep the user's eps (adjust_eps=False)."""
    worst, _ = verdict(loop_multistep, conv_kw={"adjust_eps": False})
    assert worst > 100


def test_torch_clip_grad_norm_on_converted_run_fails():
    """Negative control: PyTorch's clip_grad_norm_ measures g̃ = g/m, not the stock gradient."""

    def make(model):
        side = converted_side(model)
        params = [p for p in model.parameters() if p.requires_grad]
        side.clip = lambda mx: torch.nn.utils.clip_grad_norm_(params, mx)
        return side

    worst, _ = verdict(loop_clip, make_conv=make)
    assert worst > 100


@pytest.mark.parametrize(
    "spec_name", ["pure_schedule", "plain_callable", "array", "factory", "live"]
)
def test_lr_scheduler_forms_equal_stock_multistep(spec_name):
    """Every accepted ``lr_scheduler=`` form, stepped via run.scheduler, against stock MultiStepLR."""
    ms = [40, 80]
    live_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    specs = {
        "pure_schedule": schedules.multistep(LR, ms, 0.1),
        "plain_callable": lambda t: LR * 0.1 ** sum(t >= m for m in ms),
        "array": [LR * 0.1 ** sum(t >= m for m in ms) for t in range(STEPS)],
        "factory": lambda o: MultiStepLR(o, ms, 0.1),
        "live": MultiStepLR(live_opt, ms, 0.1),
    }

    def stock_loop(side, x, y, trace):
        sched = getattr(side, "sched", None) or MultiStepLR(side.opt, ms, 0.1)
        for t in range(len(x)):
            step(side, x[t], y[t], trace)
            sched.step()

    def make(model):
        side = converted_side(model, lr_scheduler=specs[spec_name])
        side.sched = side.run.scheduler  # type: ignore[attr-defined]
        return side

    worst, _ = verdict(stock_loop, make_conv=make)
    # the pure forms compute 0.1**k·lr, MultiStepLR multiplies by 0.1 k times: a few ulps apart
    assert worst <= 1.0


@pytest.mark.parametrize(
    "bad, words",
    [
        (42, "lr_scheduler = 42 (int) is not accepted"),
        ("cosine", "lr_scheduler = 'cosine' (str) is not accepted"),
        (lambda o: o, "returned SGD"),
        (lambda o: None, "returned NoneType"),
    ],
)
def test_bad_lr_scheduler_is_a_type_error_naming_it(bad, words):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="a factory optimizer -> scheduler") as exc:
        eq.convert([p], lr=0.1, invariant=[p], lr_scheduler=bad, norm_layers=())
    assert words in str(exc.value)


def test_live_scheduler_of_a_mixed_group_keeps_driving_the_converted_optimizer():
    """One group of invariant and other parameters: converted in place, the user's one group
    and its scheduler stay as they are (the split exists only inside step())."""
    model = make_net()
    model.head.requires_grad_(True)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
    sched = MultiStepLR(opt, [10])
    run = eq.convert_optimizer(opt, invariant=model.invariant(), lr_scheduler=sched, norm_layers=())
    assert run.optimizer is opt and run.scheduler.inner is sched
    assert len(opt.param_groups) == 1


def test_run_goes_past_any_planned_length():
    model = make_net()
    x, y = batches(30, 3)
    side = converted_side(model, steps=10)
    trace: list = []
    for t in range(30):
        step(side, x[t], y[t], trace)
    assert side.run.converter.updates == 30
    # a per-step array that runs out is refused at the update that would need it
    arr = converted_side(make_net(), lr_scheduler=[0.1, 0.1])
    for t in range(2):
        step(arr, x[t], y[t], trace)
        arr.run.scheduler.step()
    with pytest.raises(eq.ConversionError, match=r"\['lr'\] = nan at update 2 is not finite"):
        step(arr, x[2], y[2], trace)


def test_weight_decay_schedule_with_weight_decay_zero_is_the_decay():
    wds = np.where(np.arange(STEPS) < 50, 5e-3, 2e-2)

    def stock_loop(side, x, y, trace):
        for t in range(len(x)):
            if side.run is None:  # the stock user sets the decay by hand
                for g in side.opt.param_groups:
                    g["weight_decay"] = float(wds[t])
            step(side, x[t], y[t], trace)

    worst, _ = verdict(stock_loop, conv_kw={"weight_decay": 0.0, "weight_decay_schedule": wds})
    assert worst <= 1.0
    # a group with its own decay is ambiguous with weight_decay = 0: refused, naming the group
    model = make_net()
    groups = [
        {"params": model.invariant()},
        {"params": list(model.head.parameters()), "weight_decay": 1e-3},
    ]
    with pytest.raises(ValueError, match="param group 1 sets its own weight_decay = 0.001"):
        eq.convert(
            groups,
            lr=LR,
            weight_decay=0.0,
            weight_decay_schedule=wds,
            invariant=model.invariant(),
            norm_layers=(),
        )


def test_precomputed_and_online_paths_agree():
    """The log-space ExpLRSchedule (precomputed) and the online converter: same c_t, η̃_t, run."""
    x, y = batches(STEPS, 5)
    base = make_net(5)
    factory = lambda o: SequentialLR(  # noqa: E731
        o,
        [
            LinearLR(o, 0.2, total_iters=20),
            MultiStepLR(o, [50], 0.1),
        ],
        milestones=[20],
    )
    kw = {"lr_scheduler": factory, "rescale_log2": 2, "weight_decay": 2e-2}
    on = converted_side(copy.deepcopy(base), **kw)
    pre = converted_side(copy.deepcopy(base), steps=STEPS, online=False, **kw)
    sched = pre.run.schedules[0]
    t_on: list = []
    t_pre: list = []
    for t in range(STEPS):
        for side, trace in ((on, t_on), (pre, t_pre)):
            side.opt.zero_grad()
            out = side.model(x[t])
            nn.functional.cross_entropy(out, y[t]).backward()
            side.opt.step()
            side.run.scheduler.step()  # the precomputed scale advances here
            record(side, out, trace)
        # error model: the online product of (1 + d_t) and the precomputed sum of log1p(d_t) each
        # round about 2 ulps per step; the block sums add 512 ulps of |log c_t|
        log_c = on.run.converter.log_scale_factor()
        tol = 4 * U * (t + 1) + 512 * U * abs(sched.log_scales[t + 1])
        assert abs(log_c - sched.log_scales[t + 1]) <= tol
        assert abs(on.run.converter.last_log_equivalent_lr - sched.log_lrs[t]) <= 2 * tol + 4 * U
    assert on.run.converter.E == pre.run.scheduler.log2_scale[0] < 0
    err_p, err_o = compare(t_pre, t_on)
    assert err_p.max() < 1e-12 and err_o.max() < 1e-12  # rounding-level (non-chaotic at this LR)


def test_checkpoint_resume_is_bit_identical_and_restores_eps():
    x, y = batches(80, 7)
    kw = {
        "lr_scheduler": lambda o: MultiStepLR(o, [60], 0.1),
        "rescale_log2": 1,
        "weight_decay": 2e-2,
    }

    def train(side, ts):
        trace: list = []
        for t in ts:
            step(side, x[t], y[t], trace)
            side.run.scheduler.step()

    base = make_net(7)
    a = converted_side(copy.deepcopy(base), **kw)
    train(a, range(40))
    buf = io.BytesIO()
    torch.save(
        {
            "model": a.model.state_dict(),
            "opt": a.opt.state_dict(),
            "sched": a.run.scheduler.state_dict(),
        },
        buf,
    )
    train(a, range(40, 80))

    b = converted_side(copy.deepcopy(base), **kw)
    buf.seek(0)
    ck = torch.load(buf, weights_only=False)
    b.model.load_state_dict(ck["model"])
    b.opt.load_state_dict(ck["opt"])
    b.run.scheduler.load_state_dict(ck["sched"])
    assert b.model.bn.eps == pytest.approx(1e-5 * b.run.current_scale() ** 2, rel=4 * U)
    train(b, range(40, 80))
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    assert [m.eps for m in a.model.norm_layers()] == [m.eps for m in b.model.norm_layers()]
    assert a.run.converter.E < 0, "the run must have rescaled"
    assert (
        ck["opt"]["param_groups"][0]["lr"] == 0.1
        and ck["opt"]["param_groups"][0]["weight_decay"] == 2e-2
    )
    b.run.remove(b.model)
    assert [m.eps for m in b.model.norm_layers()] == [1e-5] * 3

    # a checkpoint of another conversion is refused, the differences named in words
    c = converted_side(make_net(7, eps=1e-3), **{**kw, "rescale_log2": 8})
    with pytest.raises(
        ValueError,
        match=r"rescale_log2 1 \(checkpoint\) vs 8 \(this run\); the "
        r"normalisers' eps \[\[1e-05, 1e-05, 1e-05\]\] \(checkpoint\)",
    ):
        c.opt.load_state_dict(ck["opt"])
    stock = torch.optim.SGD(make_net().invariant(), lr=0.1)
    with pytest.raises(ValueError, match="saved by a stock optimizer"):
        c.opt.load_state_dict(stock.state_dict())


def test_mid_run_conversion_keeps_momentum_buffers():
    """convert_optimizer after 40 stock steps continues the stock run; buffers dropped: it does not."""
    x, y = batches(STEPS, 9)

    def make_loop(convert_at: int | None, drop: bool = False):
        def loop(side, xs, ys, trace):
            sched = MultiStepLR(side.opt, [70], 0.1)
            for t in range(len(xs)):
                if convert_at is not None and t == convert_at:
                    run = eq.convert_optimizer(
                        side.opt,
                        invariant=side.model.invariant(),
                        norm_layers=side.model.norm_layers(),
                        lr_scheduler=sched,
                    )
                    if drop:
                        run.optimizer.state.clear()
                    side.opt, side.scale, sched = run.optimizer, run.current_scale, run.scheduler
                step(side, xs[t], ys[t], trace)
                sched.step()

        return loop

    base = make_net(9)
    ref = run_loop(make_loop(None), stock_side(copy.deepcopy(base)), x, y)
    twin = copy.deepcopy(base)
    nudge(twin)
    floor = compare(ref, run_loop(make_loop(None), stock_side(twin), x, y))[0]
    bound = 3 * np.maximum(FLOOR_MIN, np.maximum.accumulate(floor))
    ok = compare(ref, run_loop(make_loop(40), stock_side(copy.deepcopy(base)), x, y))[0]
    assert np.all(ok <= bound), f"mid-run conversion: {np.max(ok / bound):.3g}× the bound"
    bad = compare(ref, run_loop(make_loop(40, drop=True), stock_side(copy.deepcopy(base)), x, y))[0]
    assert np.max(bad / bound) > 100


def test_departures_raise_at_the_step():
    model = make_net()
    x, y = batches(5, 11)
    side = converted_side(model)
    trace: list = []
    step(side, x[0], y[0], trace)
    side.opt.param_groups[0]["lr"] = float("inf")
    with pytest.raises(eq.ConversionError, match=r"\['lr'\] = inf at update 1 is not finite"):
        step(side, x[1], y[1], trace)
    side.opt.param_groups[0]["lr"] = LR
    side.opt.param_groups[0]["nesterov"] = True
    with pytest.raises(ValueError, match="nesterov=True at update 1"):
        step(side, x[1], y[1], trace)
    side.opt.param_groups[0]["nesterov"] = False
    # no gradient on any invariant tensor: stock SGD skips them all, and so does the set
    side.opt.zero_grad(set_to_none=True)
    before = [p.detach().clone() for p in side.model.invariant()]
    side.opt.step()
    assert all(torch.equal(a, p) for a, p in zip(before, side.model.invariant()))
    assert side.run.converter.updates == 2  # an optimizer step, no scale change
    # a gradient on part of the set only: refused, naming the parameter
    first = side.model.invariant()[0]
    first.grad = torch.zeros_like(first)
    with pytest.raises(eq.ConversionError, match="no gradient for the invariant parameter"):
        side.opt.step()
    side.opt.zero_grad(set_to_none=True)
    step(side, x[1], y[1], trace)  # recovers
    assert side.run.converter.updates == 3
    # a group added later is stock (here without a gradient, so SGD skips it); the run goes on
    extra = torch.ones(2, dtype=torch.float64, requires_grad=True)
    side.opt.add_param_group({"params": [extra]})
    step(side, x[2], y[2], trace)
    assert side.run.converter.updates == 4 and torch.equal(extra.detach(), torch.ones(2).double())


def test_precomputed_schedule_refuses_what_it_cannot_follow():
    """The precomputed EquivalentLR raises at the first departing step (never a silent difference)."""
    x, y = batches(12, 13)

    def make():
        return converted_side(
            make_net(), steps=12, online=False, lr_scheduler=lambda o: MultiStepLR(o, [6], 0.1)
        )

    side = make()
    trace: list = []
    step(side, x[0], y[0], trace)
    with pytest.raises(eq.ConversionError, match="optimizer.step\\(\\) called twice at step 0"):
        step(side, x[1], y[1], trace)  # no scheduler.step() in between: a per-epoch loop
    side = make()
    with pytest.raises(eq.ConversionError, match="follows 0 optimizer updates"):
        side.run.scheduler.step()  # GradScaler skipped optimizer.step(), the scheduler stepped anyway
    side = make()
    LinearLR(side.opt, 0.5, total_iters=3)  # a second scheduler on the precomputed run
    with pytest.raises(eq.ConversionError, match="something else"):
        step(side, x[0], y[0], trace)


def test_lrs_from_scheduler_reads_every_accepted_form():
    """The precomputed path reads pure schedules and plain callables (they used to crash)."""
    ms = eq.lrs_from_scheduler(lambda o: MultiStepLR(o, [10, 20], 0.1), 30, [0.1])[:, 0]
    pure = eq.lrs_from_scheduler(schedules.multistep(0.1, [10, 20]), 30, [0.1])[:, 0]
    plain = eq.lrs_from_scheduler(lambda t: 0.1 * 0.1 ** ((t >= 10) + (t >= 20)), 30, [0.1])[:, 0]
    # 0.1·0.1^k against k successive multiplications by 0.1: a few ulps apart
    assert np.max(np.abs(pure / ms - 1)) <= 4 * U and np.max(np.abs(plain / ms - 1)) <= 4 * U
    with pytest.raises(TypeError, match="lr_scheduler = 42 .int. is not accepted"):
        eq.lrs_from_scheduler(42, 30, [0.1])
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="ReduceLROnPlateau sets its LRs from the run's metrics"):
        eq.lrs_from_scheduler(ReduceLROnPlateau(opt), 30)


def test_precomputed_closed_form_or_texp_mid_run_is_refused():
    model = make_net()
    x, y = batches(2, 17)
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=LR, momentum=MOM, weight_decay=WD
    )
    opt.zero_grad()
    nn.functional.cross_entropy(model(x[0]), y[0]).backward()
    opt.step()
    for form in ("closed_form", "texp"):
        with pytest.raises(ValueError, match=f"form = '{form}' assumes zero momentum buffers"):
            eq.convert_optimizer(
                opt, invariant=model.invariant(), steps=10, form=form, norm_layers=()
            )


def test_eps_and_running_stats_exact_across_power_of_two_rescalings():
    """Strong decay and rescale_log2=1: the run rescales often; train and eval outputs stay exact."""
    sides: list = []

    def make(model):
        side = converted_side(model, weight_decay=2e-2, rescale_log2=1)
        sides.append(side)
        return side

    def loop_constant(side, x, y, trace):
        for t in range(len(x)):
            step(side, x[t], y[t], trace)

    worst, _ = verdict(loop_constant, stock_kw={"weight_decay": 2e-2}, make_conv=make)
    assert worst <= 1.0
    assert sides[0].run.converter.E <= -3, "the run must have rescaled several times"


@torch.no_grad()
def test_every_normaliser_kind_gets_eps_m2_and_exact_outputs():
    """BatchNorm, InstanceNorm (with running stats), GroupNorm, LayerNorm, RMSNorm fed m·x with
    ε m² give the output of x with ε, in train and eval mode (proofs/normaliser_eps.py);
    a normaliser with eps=None (RMSNorm's default) is refused, naming it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 5, generator=g, dtype=torch.float64) * 1e-3  # small: eps matters
    kinds = [
        nn.BatchNorm1d(6, eps=1e-5),
        nn.InstanceNorm1d(6, eps=1e-5, track_running_stats=True),
        nn.GroupNorm(2, 6, eps=1e-5),
        nn.LayerNorm(5, eps=1e-5),
    ]
    if hasattr(nn, "RMSNorm"):
        kinds.append(nn.RMSNorm(5, eps=1e-5))
    m = 2.0**10 / 3.0  # not a power of two: the eps rescaling is what makes it exact
    for ref in kinds:
        ref = ref.double()
        conv = copy.deepcopy(ref)
        layers = eq.NormLayers([conv])
        layers.set_scale(1.0 / m)
        layers.correct(m)  # the converted run's running stats: m·mean, m²·var of the stock ones
        assert conv.eps == pytest.approx(1e-5 * m * m, rel=2 * U)
        for mode in ("train", "eval"):
            getattr(ref, mode)(), getattr(conv, mode)()
            a, b = ref(x), conv(m * x)  # train mode also updates the running stats, alike
            assert rel(b, a) <= 16 * U, f"{type(ref).__name__} {mode}: {rel(b, a):.3g}"
        # negative control: eps left alone
        plain = copy.deepcopy(ref).train()
        assert rel(plain(m * x), ref.train()(x)) > 1e-6
    if hasattr(nn, "RMSNorm"):
        with pytest.raises(ValueError, match="RMSNorm with eps = None"):
            eq.NormLayers([nn.RMSNorm(5)])
    with pytest.raises(TypeError, match="Linear, which is not a normaliser"):
        eq.NormLayers([nn.Linear(2, 2)])
