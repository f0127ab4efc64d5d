"""The README's worked example, run as written: audit a model, convert its MultiStepLR recipe.

Also ``convert_optimizer`` on a live optimizer + scheduler. Reference side: stock SGD with
weight decay and stock MultiStepLR; the converted run must equal θ_t / c_t (1e-11 relative
over 600 steps at a non-chaotic LR, where the float64 error model of
``test_torch_equivalence`` gives about 1e-13).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence

from ._nets import make_batches, rel_param_error

STEPS = 600
MILESTONES = [200, 400]


def small_cnn_like_model() -> nn.Module:
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16, eps=1e-300), nn.ReLU(),
        nn.Linear(16, 16, bias=False), nn.BatchNorm1d(16, eps=1e-300), nn.ReLU(),
        nn.Linear(16, 3),
    ).double()
    equivalence.make_scale_invariant(model)  # freeze BN affine and the last layer, as the paper
    return model


def test_readme_worked_example():
    model = small_cnn_like_model()
    twin = copy.deepcopy(model)
    x, y = make_batches(STEPS, 0)
    loss_fn = nn.functional.cross_entropy

    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = MultiStepLR(opt, milestones=MILESTONES, gamma=0.1)

    report = equivalence.audit(twin, x[0])
    inv = report.invariant_parameters()
    assert {id(p) for p in inv} == {id(twin[0].weight), id(twin[0].bias), id(twin[3].weight)}
    assert report.norm_layers() == [twin[1], twin[4]]
    run = equivalence.convert(
        twin.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4,
        lr_scheduler=lambda o: MultiStepLR(o, milestones=MILESTONES, gamma=0.1),
        steps=STEPS, invariant=inv, norm_layers=report.norm_layers(),
    )
    worst = 0.0
    for t in range(STEPS):
        for m, o, s in ((model, opt, sched), (twin, run.optimizer, run.scheduler)):
            o.zero_grad()
            loss_fn(m(x[t]), y[t]).backward()
            o.step()
            s.step()
        worst = max(worst, rel_param_error([model[0].weight, model[0].bias, model[3].weight], inv,
                                           run.scheduler.current_scale()))
    assert worst < 1e-11
    model.eval(), twin.eval()
    with torch.no_grad():
        d = float((twin(x[0]) - model(x[0])).norm() / model(x[0]).norm())
    assert d < 1e-11


def test_convert_optimizer_reads_live_scheduler_without_touching_it():
    model = small_cnn_like_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = MultiStepLR(opt, milestones=MILESTONES, gamma=0.1)
    inv = [model[0].weight, model[0].bias, model[3].weight]
    run = equivalence.convert_optimizer(opt, invariant=inv, lr_scheduler=sched)
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == 0.05  # the original is untouched
    assert run.scheduler.inner is not sched and run.scheduler.inner.optimizer is run.optimizer
    assert run.optimizer.param_groups[0]["params"][0] is model[0].weight
    # the precomputed path reads the same live scheduler into the same schedule as a factory
    pre = equivalence.convert_optimizer(opt, steps=STEPS, invariant=inv, lr_scheduler=sched, online=False)
    ref = equivalence.convert(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, steps=STEPS,
                              invariant=inv, lr_scheduler=lambda o: MultiStepLR(o, MILESTONES, 0.1),
                              online=False)
    assert np.array_equal(pre.schedules[0].log_lrs, ref.schedules[0].log_lrs)
