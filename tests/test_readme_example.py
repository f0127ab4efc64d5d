"""The README's example, run as written: a real training loop, converted.

``train`` below is the README's code (AMP with ``GradScaler``, gradient clipping, a
scheduler stepped per epoch, a checkpoint saved every epoch and resumed from), with the
constants the README hard-codes made arguments so that the test can run it small. The
reference is the same loop as a user writes it today: stock ``SGD(weight_decay=5e-4)``,
``torch.nn.utils.clip_grad_norm_``. Verdict: within 3× the noise floor (the stock loop
against itself from weights nudged by one ulp; error model as in ``test_training_loops``),
and an interrupted-and-resumed run bit-identical to the uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence

torch.set_num_threads(1)  # tiny networks: threads cost more than they give
U = float(np.finfo(np.float64).eps)
FLOOR_MIN = 64 * U


# fmt: off
# ---- the README's example (verbatim apart from the arguments) -----------------------------------
def train(model, loader, example_batch, loss_fn, ckpt, epochs=160, milestones=(80, 120),
          device="cpu", use_amp=False, max_norm=5.0, stop_after=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = MultiStepLR(opt, milestones=list(milestones), gamma=0.1)   # your scheduler, per epoch
    report = equivalence.audit(model, example_batch)   # which parameters are scale invariant
    run = equivalence.convert_optimizer(                 # converts opt in place: sched still drives it
        opt,
        invariant=report.invariant_parameters(),        # they get η̃_t and no weight decay
        norm_layers=report.norm_layers(),               # their eps and running stats stay exact
        model=model,                                     # checked at the first update
    )
    scaler = torch.amp.GradScaler(device)

    start = 0
    if os.path.exists(ckpt):                             # resume
        ck = torch.load(ckpt, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])                   # also restores the conversion's state
        sched.load_state_dict(ck["sched"])
        scaler.load_state_dict(ck["scaler"])
        start = ck["epoch"]
    for epoch in range(start, epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            run.clip_grad_norm_(max_norm)                # the stock run's norm: not torch's
            scaler.step(opt)                             # skipped on inf/NaN: exact too
            scaler.update()
        sched.step()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "scaler": scaler.state_dict(), "epoch": epoch + 1}, ckpt)
        if stop_after is not None and epoch + 1 == stop_after:
            break
    return run
# --------------------------------------------------------------------------------------------------
# fmt: on


def train_stock(model, loader, loss_fn, epochs, milestones, max_norm, device="cpu", use_amp=False):
    """The same loop as written today: stock SGD with weight decay, PyTorch's own clipping."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = MultiStepLR(opt, milestones=list(milestones), gamma=0.1)
    scaler = torch.amp.GradScaler(device)
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], max_norm
            )
            scaler.step(opt)
            scaler.update()
        sched.step()


def small_model(seed: int = 3) -> nn.Sequential:
    """Linear → BN → ReLU → Linear → BN → ReLU → Linear, BatchNorm's default eps = 1e-5."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(6, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, 16, bias=False),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, 3),
    ).double()
    equivalence.make_scale_invariant(model)  # freeze BN affine and the last layer, as the paper
    return model


def make_loader(epochs_batches: int = 8, seed: int = 0, bad: int | None = 5):
    g = torch.Generator().manual_seed(seed)
    data = [
        (
            torch.randn(16, 6, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (16,), generator=g),
        )
        for _ in range(epochs_batches)
    ]
    if bad is not None:  # one batch with an inf: GradScaler skips that update in both runs
        data[bad][0][0, 0] = math.inf
    return data


def invariant_of(model: nn.Sequential) -> list[torch.Tensor]:
    return [model[0].weight, model[0].bias, model[3].weight]


def rel_err(stock: nn.Sequential, conv: nn.Sequential, m: float) -> float:
    with torch.no_grad():
        a = torch.cat([p.reshape(-1) for p in invariant_of(stock)])
        b = torch.cat([p.reshape(-1) for p in invariant_of(conv)]) / m
        return float((a - b).norm() / a.norm())


EPOCHS, MILESTONES, MAX_NORM = 6, (3, 5), 0.5


def stock_and_floor(base, loader, use_amp=False):
    """The stock loop's trained model, and its noise floor: the same loop from weights one ulp
    away, its relative distance to the stock run at the end."""
    stock, twin = copy.deepcopy(base), copy.deepcopy(base)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    for m in (stock, twin):
        train_stock(
            m, loader, nn.functional.cross_entropy, EPOCHS, MILESTONES, MAX_NORM, use_amp=use_amp
        )
    return stock, rel_err(stock, twin, 1.0)


def readme_loop(model, loader, ckpt, **kwargs):
    """The README's ``train`` with this file's settings (EPOCHS, MILESTONES, MAX_NORM)."""
    return train(
        model,
        loader,
        loader[0][0],
        nn.functional.cross_entropy,
        str(ckpt),
        epochs=EPOCHS,
        milestones=MILESTONES,
        max_norm=MAX_NORM,
        **kwargs,
    )


def test_readme_loop_equals_the_stock_loop_and_resumes_bit_identically(tmp_path):
    loader = make_loader()
    base = small_model()
    stock, floor = stock_and_floor(base, loader)

    conv = copy.deepcopy(base)
    run = readme_loop(conv, loader, str(tmp_path / "a.pt"))
    assert run.converter.updates == EPOCHS * (len(loader) - 1)  # one skipped update per epoch
    err = rel_err(stock, conv, run.current_scale())
    print(f"README loop: err {err:.3g}, floor {floor:.3g}, scale {run.current_scale():.6g}")
    assert err <= 3 * max(floor, FLOOR_MIN)
    assert run.current_scale() > 1.001  # the runs really differ in scale

    # interrupted after 2 epochs, resumed from the checkpoint: bit-identical
    resumed = copy.deepcopy(base)
    ck = str(tmp_path / "b.pt")
    readme_loop(resumed, loader, ck, stop_after=2)
    fresh = small_model(
        seed=99
    )  # a new process: other initial weights, overwritten by the checkpoint
    run2 = readme_loop(fresh, loader, ck)
    for p, q in zip(conv.parameters(), fresh.parameters()):
        assert torch.equal(p, q)
    assert [m.eps for m in (conv[1], conv[4])] == [m.eps for m in (fresh[1], fresh[4])]
    assert run2.current_scale() == run.current_scale()


@pytest.mark.parametrize("use_amp", [False, True], ids=["float32", "float32_bf16_autocast"])
def test_readme_loop_in_float32_and_bf16_autocast_within_the_floor(tmp_path, use_amp):
    """float32 weights, with and without bfloat16 autocast (CPU): within 3× the measured floor.

    The floor here is the float32 (or bf16-autocast) stock run against itself from a
    one-ulp nudge, measured at the end of the run (6 epochs): the same loop, the same noise.
    """
    loader = [(x.float(), y) for x, y in make_loader(bad=None)]
    base = small_model().float()
    stock, floor = stock_and_floor(base, loader, use_amp=use_amp)
    conv = copy.deepcopy(base)
    run = readme_loop(conv, loader, str(tmp_path / "f.pt"), use_amp=use_amp)
    err = rel_err(stock, conv, run.current_scale())
    print(f"README loop, float32, autocast={use_amp}: err {err:.3g}, floor {floor:.3g}")
    assert 0 < err <= 3 * floor


def test_readme_loop_with_pytorch_clipping_is_not_the_stock_run(tmp_path):
    """Negative control: torch.nn.utils.clip_grad_norm_ on the converted run clips g̃ = g/m."""
    loader = make_loader(bad=None)
    base = small_model()
    stock = copy.deepcopy(base)
    train_stock(stock, loader, nn.functional.cross_entropy, EPOCHS, MILESTONES, MAX_NORM)
    conv = copy.deepcopy(base)
    orig = equivalence.ConvertedRun.clip_grad_norm_
    try:
        equivalence.ConvertedRun.clip_grad_norm_ = (  # type: ignore[method-assign]
            lambda self, mx: torch.nn.utils.clip_grad_norm_(list(self.invariant), mx)
        )
        run = readme_loop(conv, loader, tmp_path / "c.pt")
    finally:
        equivalence.ConvertedRun.clip_grad_norm_ = orig  # type: ignore[method-assign]
    assert rel_err(stock, conv, run.current_scale()) > 1e3 * FLOOR_MIN


def test_convert_optimizer_reads_live_scheduler_without_touching_it():
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = MultiStepLR(opt, milestones=[200, 400], gamma=0.1)
    inv = invariant_of(model)
    run = equivalence.convert_optimizer(opt, invariant=inv, lr_scheduler=sched, norm_layers=())
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == 0.05
    assert run.optimizer is opt and run.scheduler.inner is sched  # converted in place
    assert run.optimizer.param_groups[0]["params"][0] is model[0].weight
    # the precomputed path reads the same live scheduler into the same schedule as a factory
    pre = equivalence.convert_optimizer(
        opt, steps=600, invariant=inv, lr_scheduler=sched, online=False
    )
    ref = equivalence.convert(
        model.parameters(),
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        steps=600,
        invariant=inv,
        lr_scheduler=lambda o: MultiStepLR(o, [200, 400], 0.1),
        online=False,
    )
    assert np.array_equal(pre.schedules[0].log_lrs, ref.schedules[0].log_lrs)


def test_readme_adamw_snippet_converts_in_place_and_equals_stock_adamw():
    """The README's AdamW snippet, as written (a small model and a few steps around it),
    against the same AdamW and scheduler left stock; negative control: the snippet's run
    without norm_layers' eps correction (norm_layers=[], model=None) departs."""
    from torch.optim.lr_scheduler import CosineAnnealingLR

    def snippet(model, report, norm_layers=None, with_model=True):
        # ---- the README (verbatim apart from the keyword arguments of the negative control) ---
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-2)  # a fresh AdamW
        sched = CosineAnnealingLR(opt, T_max=10_000)  # stock schedulers, built before or after
        run = equivalence.convert_optimizer(
            opt,
            invariant=report.invariant_parameters(),
            norm_layers=report.norm_layers() if norm_layers is None else norm_layers,
            model=model if with_model else None,
        )
        # ----------------------------------------------------------------------------------
        assert run.optimizer is opt
        return opt, sched, run

    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 32, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (30, 32), generator=g)

    def train(model, opt, sched):
        outs = []
        for t in range(len(x)):
            opt.zero_grad()
            out = model(x[t])
            nn.functional.cross_entropy(out, y[t]).backward()
            opt.step()
            sched.step()
            outs.append(out.detach())
        return outs

    ref_model = small_model()
    ref_opt = torch.optim.AdamW(ref_model.parameters(), lr=1e-3, weight_decay=5e-2)
    ref = train(ref_model, ref_opt, CosineAnnealingLR(ref_opt, T_max=10_000))

    def err(**kw):
        model = small_model()
        report = equivalence.audit(model, x[0])
        opt, sched, _ = snippet(model, report, **kw)
        outs = train(model, opt, sched)
        return max(float((a - b).norm() / b.norm()) for a, b in zip(outs, ref))

    good, bad = err(), err(norm_layers=[], with_model=False)
    print(f"\nREADME AdamW snippet: {good:.3g}; without the normalisers' correction: {bad:.3g}")
    assert good <= 1e-10 < bad
