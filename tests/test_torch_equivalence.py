"""Stock ``torch.optim.SGD(weight_decay=λ)`` + stock LR schedulers against the converted run.

Reference side: PyTorch's own SGD and schedulers, as a user runs them. Converted side:
``equivalence.convert`` (a stock SGD whose step hooks apply η̃_t with no weight decay: the
online conversion; ``form="closed_form"``/``"texp"`` use the precomputed ``EquivalentLR``).

Error model (float64). The three 2,000-step recipes are judged by the project's lockstep
harness and its one error model (``equivalence.noise_floor``: K·u·(t+1), and where a recipe
amplifies rounding, 3× the running max of thirteen rounding twins up to the predictability
horizon). The shorter checks below (closed form, TEXP, eval-mode drift) keep a lighter form
of the same idea: a linear bound of 1e-11, or 3× the divergence of the baseline re-run with
the samples of each batch permuted (which changes nothing but the order of sums).
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, MultiStepLR, SequentialLR

import equivalence as eq
from equivalence import schedules
from equivalence.verify import lockstep
from equivalence.verify.noise_floor import Status

from ._nets import make_batches, make_pair, rel_diff, rel_param_error

T = 2000
TOL = 1e-11


def run_pair(seed, steps, baseline, convert_kwargs, permute=False, probe_every=100):
    """Train the stock baseline and the converted run side by side; return error traces."""
    a, b = make_pair(seed)
    x, y = make_batches(steps, seed + 1)
    opt_a, sched_a, hook_a = baseline(a)
    run = eq.convert(
        [p for p in b.parameters() if p.requires_grad],
        invariant=b.invariant(),
        norm_layers=b.norm_layers(),
        steps=steps,
        **convert_kwargs,
    )
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed + 2))
    probe = torch.randn(
        32, x.shape[2], generator=torch.Generator().manual_seed(seed + 3), dtype=x.dtype
    )
    errs, out_errs, eval_errs = [], [], []
    for t in range(steps):
        if hook_a is not None:
            hook_a(opt_a, t)
        xa, ya = (x[t][perm], y[t][perm]) if permute else (x[t], y[t])
        opt_a.zero_grad()
        out_a = a(xa)
        nn.functional.cross_entropy(out_a, ya).backward()
        opt_a.step()
        if sched_a is not None:
            sched_a.step()
        run.optimizer.zero_grad()
        out_b = b(x[t])
        nn.functional.cross_entropy(out_b, y[t]).backward()
        run.optimizer.step()
        run.scheduler.step()
        m = run.scheduler.current_scale()
        errs.append(rel_param_error(a.invariant(), b.invariant(), m))
        if permute:
            out_a = out_a[torch.argsort(perm)]
        out_errs.append(rel_diff(out_b.detach(), out_a.detach()))
        if (t + 1) % probe_every == 0:
            a.eval(), b.eval()
            with torch.no_grad():
                eval_errs.append(rel_diff(b(probe), a(probe)))
            a.train(), b.train()
    return np.array(errs), np.array(out_errs), np.array(eval_errs), a, b, run


def multistep_baseline(a):
    opt = torch.optim.SGD(
        [p for p in a.parameters() if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=5e-4
    )
    return opt, MultiStepLR(opt, [700, 1400], 0.1), None


def warm_cosine_baseline(a):
    opt = torch.optim.SGD(
        [p for p in a.parameters() if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=5e-4
    )
    warm = LinearLR(opt, start_factor=0.1, total_iters=300)
    cos = CosineAnnealingLR(opt, T_max=T - 300 + 1, eta_min=1e-3)
    return opt, SequentialLR(opt, [warm, cos], milestones=[300]), None


WD_SWITCH = 1000


def wd_change_baseline(a):
    opt = torch.optim.SGD(
        [p for p in a.parameters() if p.requires_grad], lr=0.05, momentum=0.5, weight_decay=5e-4
    )

    def hook(opt, t):  # a user changing the weight decay mid-run
        if t == WD_SWITCH:
            for g in opt.param_groups:
                g["weight_decay"] = 5e-3

    return opt, MultiStepLR(opt, [1500], 0.5), hook


RECIPES = {
    "multistep": (
        multistep_baseline,
        dict(
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            lr_scheduler=lambda o: MultiStepLR(o, [700, 1400], 0.1),
        ),
    ),
    "warmup_cosine": (
        warm_cosine_baseline,
        dict(
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            lr_scheduler=lambda o: SequentialLR(
                o,
                [
                    LinearLR(o, start_factor=0.1, total_iters=300),
                    CosineAnnealingLR(o, T_max=T - 300 + 1, eta_min=1e-3),
                ],
                milestones=[300],
            ),
        ),
    ),
    "wd_change": (
        wd_change_baseline,
        dict(
            lr=0.05,
            momentum=0.5,
            weight_decay=5e-4,
            lr_scheduler=lambda o: MultiStepLR(o, [1500], 0.5),
            weight_decay_schedule=np.where(np.arange(T) < WD_SWITCH, 5e-4, 5e-3),
        ),
    ),
}


HARNESS_RECIPES = {  # the same three recipes, for the lockstep harness
    "multistep": lockstep.SGDRecipe(
        0.1, 0.9, 5e-4, lr_scheduler=lambda o: MultiStepLR(o, [700, 1400], 0.1)
    ),
    "warmup_cosine": lockstep.SGDRecipe(
        0.1, 0.9, 5e-4, lr_scheduler=lambda o: warm_cosine_baseline_scheduler(o)
    ),
    "wd_change": lockstep.SGDRecipe(
        0.05,
        0.5,
        5e-4,
        lr_scheduler=lambda o: MultiStepLR(o, [1500], 0.5),
        weight_decays=np.where(np.arange(T) < WD_SWITCH, 5e-4, 5e-3),  # set by hand mid-run
    ),
}


def warm_cosine_baseline_scheduler(opt):
    warm = LinearLR(opt, start_factor=0.1, total_iters=300)
    return SequentialLR(
        opt, [warm, CosineAnnealingLR(opt, T_max=T - 300 + 1, eta_min=1e-3)], milestones=[300]
    )


@pytest.mark.parametrize("name", sorted(HARNESS_RECIPES))
def test_converted_run_equals_stock_sgd_with_weight_decay(name):
    """2,000 steps of stock SGD + weight decay + a stock scheduler against the converted run,
    judged by the project's one error model (``equivalence.noise_floor``: linear term, and
    where training amplifies rounding, 3× the floor of thirteen rounding twins up to the
    predictability horizon)."""
    model, _ = make_pair(0)
    x, y = make_batches(T, 1)
    probe = torch.randn(32, x.shape[2], generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    verdict = lockstep.verify(
        model,
        list(zip(x, y)),
        HARNESS_RECIPES[name],
        loss_fn=nn.functional.cross_entropy,
        invariant=model.invariant(),
        probe=probe,
        eval_every=100,
    )
    assert verdict.status is Status.VERIFIED, f"{name}: {verdict.reasons}"
    print(
        f"{name}: worst error {verdict.worst_error:.3g}, bound {verdict.bound:.3g}, "
        f"horizon {verdict.horizon}/{verdict.steps}"
    )


def test_without_running_stat_correction_eval_outputs_drift():
    """Negative control: the same run without the BN correction drifts in eval mode."""
    baseline, kwargs = RECIPES["multistep"]
    a, b = make_pair(5)
    x, y = make_batches(400, 6)
    opt_a, sched_a, _ = baseline(a)
    run = eq.convert(
        [p for p in b.parameters() if p.requires_grad],
        invariant=b.invariant(),
        steps=400,
        **kwargs,
        norm_layers=(),
    )  # no norm_layers
    for t in range(400):
        for m, o, s in ((a, opt_a, sched_a), (b, run.optimizer, run.scheduler)):
            o.zero_grad()
            nn.functional.cross_entropy(m(x[t]), y[t]).backward()
            o.step()
            s.step()
    a.eval(), b.eval()
    with torch.no_grad():
        d = rel_diff(b(x[0]), a(x[0]))
    assert d > 1e3 * TOL


def test_closed_form_with_initial_buffer_is_exact():
    def baseline(a):
        opt = torch.optim.SGD(
            [p for p in a.parameters() if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=5e-4
        )
        return opt, None, None

    kw = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, form="closed_form")
    errs, out_errs, eval_errs, *_ = run_pair(1, T, baseline, kw)
    floor, floor_out, floor_eval, *_ = run_pair(1, T, baseline, kw, permute=True)
    for what, e, f in (
        ("params", errs, floor),
        ("train-mode outputs", out_errs, floor_out),
        ("eval-mode outputs", eval_errs, floor_eval),
    ):
        bound = np.maximum(TOL, 3 * np.maximum.accumulate(f))
        assert np.all(e <= bound), (
            f"closed form: {what} differ by {e.max():.3g} (floor {f.max():.3g})"
        )


def test_texp_exact_with_buffer_shifts_and_off_without():
    base, kwargs = RECIPES["multistep"]
    kw = {**kwargs, "form": "texp"}
    errs, *_ = run_pair(2, 1000, base, kw)
    floor, *_ = run_pair(2, 1000, base, kw, permute=True)
    assert np.all(errs <= np.maximum(TOL, 3 * np.maximum.accumulate(floor)))
    # Without the shifts TEXP is the paper's first-order schedule: measurably different.
    a, b = make_pair(2)
    x, y = make_batches(1000, 3)
    opt_a, sched_a, _ = base(a)
    lrs = eq.lrs_from_scheduler(kwargs["lr_scheduler"], 1000, [0.1])[:, 0]
    sched = eq.ExpLRSchedule.texp(lrs, 5e-4, 0.9, correct_buffer=False)
    opt_b = torch.optim.SGD(b.invariant(), lr=0.1, momentum=0.9)
    eq_sched = eq.EquivalentLR(opt_b, [sched])
    for t in range(1000):
        for m, o, s in ((a, opt_a, sched_a), (b, opt_b, eq_sched)):
            o.zero_grad()
            nn.functional.cross_entropy(m(x[t]), y[t]).backward()
            o.step()
            s.step()
    err = rel_param_error(a.invariant(), b.invariant(), eq_sched.current_scale(0))
    assert err > 1e3 * TOL


def test_power_of_two_rescaling_changes_nothing():
    """Rescaled (every 2^2 of scale) vs never rescaled: bit-identical after the factor."""

    def baseline(_):
        raise AssertionError

    lam = 2e-2  # strong decay (ηλ = 2e-3 < (1 − √γ)²): c_t falls through ~17 powers of two in 600 steps
    results = []
    for rescale in (2.0, None):
        _, b = make_pair(3)
        x, y = make_batches(600, 4)
        run = eq.convert(
            [p for p in b.parameters() if p.requires_grad],
            invariant=b.invariant(),
            norm_layers=b.norm_layers(),
            steps=600,
            lr=0.1,
            momentum=0.9,
            weight_decay=lam,
            rescale_log2=rescale,
        )
        for t in range(600):
            run.optimizer.zero_grad()
            nn.functional.cross_entropy(b(x[t]), y[t]).backward()
            run.optimizer.step()
            run.scheduler.step()
        results.append((b, run))
    (b1, r1), (b2, r2) = results
    k = r1.scheduler.log2_scale[0]
    assert k < -10, "the rescaled run must actually have rescaled"
    assert r2.scheduler.log2_scale[0] == 0
    for p1, p2 in zip(b1.invariant(), b2.invariant()):
        assert torch.equal(p1, torch.ldexp(p2, torch.tensor(k)))
    for m1, m2 in zip(b1.norm_layers(), b2.norm_layers()):
        assert torch.equal(m1.running_var, torch.ldexp(m2.running_var, torch.tensor(2 * k)))
    b1.eval(), b2.eval()
    probe = make_batches(1, 9)[0][0]
    assert torch.equal(b1(probe), b2(probe))


def test_state_dict_resume_is_exact(tmp_path):
    kw = dict(
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-3,
        steps=400,
        lr_scheduler=lambda o: MultiStepLR(o, [150, 300], 0.1),
        rescale_log2=2.0,
    )
    x, y = make_batches(400, 11)

    def build():
        _, b = make_pair(10)
        run = eq.convert(
            [p for p in b.parameters() if p.requires_grad],
            invariant=b.invariant(),
            norm_layers=b.norm_layers(),
            **kw,
        )
        return b, run

    def train(b, run, ts):
        for t in ts:
            run.optimizer.zero_grad()
            nn.functional.cross_entropy(b(x[t]), y[t]).backward()
            run.optimizer.step()
            run.scheduler.step()

    b, run = build()
    train(b, run, range(200))
    buf = io.BytesIO()
    torch.save(
        {
            "model": b.state_dict(),
            "opt": run.optimizer.state_dict(),
            "sched": run.scheduler.state_dict(),
        },
        buf,
    )
    train(b, run, range(200, 400))

    b2, run2 = build()
    buf.seek(0)
    ck = torch.load(buf, weights_only=False)
    b2.load_state_dict(ck["model"])
    run2.optimizer.load_state_dict(ck["opt"])
    run2.scheduler.load_state_dict(ck["sched"])
    train(b2, run2, range(200, 400))
    for p1, p2 in zip(b.parameters(), b2.parameters()):
        assert torch.equal(p1, p2)
    assert run.scheduler.get_last_lr() == run2.scheduler.get_last_lr()
    assert run.scheduler.log2_scale == run2.scheduler.log2_scale

    # a checkpoint of a different conversion is refused, the difference named
    other = eq.convert(
        [torch.zeros(2, requires_grad=True)], invariant=[], lr=0.1, steps=400, norm_layers=()
    )
    with pytest.raises(
        ValueError, match="rescale_log2 2 .checkpoint. vs 16 .this run.; the invariant set sizes"
    ):
        other.optimizer.load_state_dict(ck["opt"])


def test_precomputed_resume_into_a_longer_run_and_mismatch_named_in_words():
    """EquivalentLR: a run built with more steps (same recipe so far) resumes; differences are named."""
    x, y = make_batches(60, 21)

    def build(steps, milestones=(20,), momentum=0.9):
        _, b = make_pair(20)
        run = eq.convert(
            [p for p in b.parameters() if p.requires_grad],
            invariant=b.invariant(),
            norm_layers=b.norm_layers(),
            lr=0.1,
            momentum=momentum,
            weight_decay=5e-3,
            steps=steps,
            online=False,
            lr_scheduler=lambda o: MultiStepLR(o, list(milestones)),
        )
        return b, run

    b, run = build(30)
    for t in range(30):
        run.optimizer.zero_grad()
        nn.functional.cross_entropy(b(x[t]), y[t]).backward()
        run.optimizer.step()
        run.scheduler.step()
    ck = run.scheduler.state_dict()
    _, longer = build(60)
    longer.scheduler.load_state_dict(ck)  # same recipe for the 30 steps taken: accepted
    assert longer.scheduler.last_epoch == 30
    _, other = build(60, milestones=(10,), momentum=0.5)
    with pytest.raises(
        ValueError,
        match=r"the momentum differ \(0.9 vs 0.5\); param group 0: the "
        r"learning rates of the steps taken differ",
    ):
        other.scheduler.load_state_dict(ck)


def test_lrs_from_stock_schedulers():
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.2)
    warm = LinearLR(opt, start_factor=0.1, total_iters=30)
    cos = CosineAnnealingLR(opt, T_max=71, eta_min=1e-3)
    sched = SequentialLR(opt, [warm, cos], milestones=[30])
    read = eq.lrs_from_scheduler(sched, 100)[:, 0]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02)  # the live scheduler is untouched
    stock = []
    for _ in range(100):
        stock.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # bitwise: both sides step the same PyTorch scheduler code on this machine
    assert np.array_equal(read, np.array(stock))
    # the pure schedule functions agree with PyTorch's to rounding
    pure = schedules.materialize(
        schedules.join(
            [schedules.linear_warmup(0.2, 30, 0.1), schedules.cosine(0.2, 71, 1e-3)], [30]
        ),
        100,
    )
    assert np.max(np.abs(pure / read - 1)) < 1e-12
    # Two code paths: MultiStepLR multiplies by γ once per milestone passed (k roundings, each
    # ≤ u = 2^-53 relative), schedules.multistep computes η·γ^k through numpy's power, whose
    # SIMD kernel differs between CPUs (≤ 1 ulp, then one rounding in the product). They agree
    # to (k + 2)·u; k ≤ 2 here, so 4·u, checked as 4 ulps of the values compared (rtol 8·u).
    ms = eq.lrs_from_scheduler(lambda o: MultiStepLR(o, [10, 20], 0.1), 30, [0.1])[:, 0]
    pure_ms = schedules.materialize(schedules.multistep(0.1, [10, 20]), 30)
    np.testing.assert_allclose(ms, pure_ms, rtol=4 * np.finfo(np.float64).eps, atol=0)
    assert not np.allclose(
        ms, schedules.materialize(schedules.multistep(0.1, [10, 21]), 30), rtol=1e-3, atol=0
    )  # the comparison sees a misplaced milestone


def test_non_invariant_parameters_keep_their_recipe():
    """A trainable head is outside S: it keeps lr and weight decay (and it stays exact)."""
    a, b = make_pair(7)
    for m in (a, b):
        m.head.requires_grad_(True)
    x, y = make_batches(300, 8)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    run = eq.convert(
        b.parameters(),
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-3,
        steps=300,
        invariant=b.invariant(),
        norm_layers=b.norm_layers(),
    )
    # the groups show the stock values (the invariant group gets no decay only inside each step)
    assert [g["weight_decay"] for g in run.optimizer.param_groups] == [1e-3]  # the user's one group
    for t in range(300):
        for m, o in ((a, opt_a), (b, run.optimizer)):
            o.zero_grad()
            nn.functional.cross_entropy(m(x[t]), y[t]).backward()
            o.step()
        run.scheduler.step()
    assert rel_diff(b.head.weight, a.head.weight) < 1e-11
    assert rel_param_error(a.invariant(), b.invariant(), run.scheduler.current_scale()) < 1e-11


def test_weight_decay_schedule_scales_each_group_by_its_own_ratio():
    """Two groups (invariant weights at λ, a trainable head at λ/2) and a WD switched mid-run.

    Reference: stock SGD with the two groups, the user changing each group's
    ``weight_decay`` at the switch in proportion (the head keeps half); ``convert`` is
    given the default group's schedule and must scale it per group by group_wd / weight_decay.
    """
    steps, switch, lam = 400, 200, 1e-3
    a, b = make_pair(12)
    for m in (a, b):
        m.head.requires_grad_(True)
    x, y = make_batches(steps, 13)

    def groups(m):
        return [
            {"params": m.invariant()},
            {"params": list(m.head.parameters()), "weight_decay": lam / 2},
        ]

    opt_a = torch.optim.SGD(groups(a), lr=0.05, momentum=0.9, weight_decay=lam)
    sched_a = MultiStepLR(opt_a, [300], 0.1)
    wds = np.where(np.arange(steps) < switch, lam, 10 * lam)
    run = eq.convert(
        groups(b),
        lr=0.05,
        momentum=0.9,
        weight_decay=lam,
        steps=steps,
        invariant=b.invariant(),
        norm_layers=b.norm_layers(),
        lr_scheduler=lambda o: MultiStepLR(o, [300], 0.1),
        weight_decay_schedule=wds,
    )
    for t in range(steps):
        if t == switch:
            for g in opt_a.param_groups:
                g["weight_decay"] *= 10
        for m, o in ((a, opt_a), (b, run.optimizer)):
            o.zero_grad()
            nn.functional.cross_entropy(m(x[t]), y[t]).backward()
            o.step()
        sched_a.step()
        run.scheduler.step()
    assert [g["weight_decay"] for g in run.optimizer.param_groups] == [10 * lam, 10 * lam / 2]
    assert rel_diff(b.head.weight, a.head.weight) < TOL
    assert rel_param_error(a.invariant(), b.invariant(), run.scheduler.current_scale()) < TOL
    a.eval(), b.eval()
    with torch.no_grad():
        assert rel_diff(b(x[0]), a(x[0])) < TOL
    # negative control: the head's decay taken from the schedule unscaled (λ, not λ/2)
    c, d = make_pair(12)
    for m in (c, d):
        m.head.requires_grad_(True)
    wrong = eq.convert(
        groups(d)[:1] + [{"params": list(d.head.parameters())}],
        lr=0.05,
        momentum=0.9,
        weight_decay=lam,
        steps=steps,
        invariant=d.invariant(),
        lr_scheduler=lambda o: MultiStepLR(o, [300], 0.1),
        weight_decay_schedule=wds,
        norm_layers=(),
    )
    for t in range(steps):
        wrong.optimizer.zero_grad()
        nn.functional.cross_entropy(d(x[t]), y[t]).backward()
        wrong.optimizer.step()
        wrong.scheduler.step()
    assert rel_diff(d.head.weight, a.head.weight) > 1e3 * TOL


def test_invariant_set_split_across_groups_with_different_scales_is_refused():
    """A conv weight and its bias in separate groups ("no WD on biases") would get different c_t."""
    _, b = make_pair(0)
    w, bias, w2 = b.invariant()
    groups = [{"params": [w, w2]}, {"params": [bias], "weight_decay": 0.0}]
    with pytest.raises(
        ValueError,
        match=r"invariant set 0 spans param groups 0 and 1, whose scale recurrences differ",
    ):
        eq.convert(
            groups,
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            steps=10,
            invariant=b.invariant(),
            norm_layers=(),
        )
    # the same split with the same recipe in both groups is fine (one scale sequence)
    same = [{"params": [w, w2]}, {"params": [bias]}]
    run = eq.convert(
        same,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        steps=10,
        invariant=b.invariant(),
        norm_layers=(),
    )
    assert len(run.optimizer.param_groups) == 2


def test_bad_configurations_are_rejected():
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="nesterov"):
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
        eq.EquivalentLR(opt, [eq.ExpLRSchedule.general([0.1] * 5, 1e-3, 0.9)])
    with pytest.raises(ValueError, match="dampening"):
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1)
        eq.EquivalentLR(opt, [eq.ExpLRSchedule.general([0.1] * 5, 1e-3, 0.9)])
    with pytest.raises(ValueError, match="weight_decay = 0.001"):
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-3)
        eq.EquivalentLR(opt, [eq.ExpLRSchedule.general([0.1] * 5, 1e-3, 0.9)])
    with pytest.raises(ValueError, match="momentum = 0.5"):
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.5)
        eq.EquivalentLR(opt, [eq.ExpLRSchedule.general([0.1] * 5, 1e-3, 0.9)])
    with pytest.raises(ValueError, match="form = 'adam'"):
        eq.convert([p], lr=0.1, steps=5, invariant=[p], form="adam", norm_layers=())
    with pytest.raises(ValueError, match="closed_form"):
        eq.convert(
            [p],
            lr=0.1,
            momentum=0.9,
            weight_decay=1e-3,
            steps=5,
            invariant=[p],
            form="closed_form",
            lr_scheduler=lambda o: MultiStepLR(o, [2]),
            norm_layers=(),
        )
    q = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="not among the optimizer's parameters"):
        eq.convert([p], lr=0.1, steps=5, invariant=[q], norm_layers=())
    with pytest.raises(ValueError, match="reaches zero or goes negative at update 1"):
        eq.convert([p], lr=2.0, weight_decay=0.6, invariant=[p], norm_layers=())
    with pytest.raises(ValueError, match="reaches zero or goes negative at step 1"):
        eq.convert([p], lr=2.0, weight_decay=0.6, steps=5, invariant=[p], online=False)
    run = eq.convert(
        [p], lr=0.1, momentum=0.9, weight_decay=1e-3, steps=2, invariant=[p], online=False
    )
    p.grad = torch.zeros_like(p)
    for _ in range(2):
        run.optimizer.step()
        run.scheduler.step()
    run.optimizer.step()
    with pytest.raises(IndexError, match="built for 2 steps"):
        run.scheduler.step()


def test_deepcopy_of_model_is_independent():
    a, b = make_pair(0)
    assert all(torch.equal(p, q) and p is not q for p, q in zip(a.parameters(), b.parameters()))
    assert copy.deepcopy(a) is not a
