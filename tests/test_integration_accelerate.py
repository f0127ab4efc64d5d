"""Accelerate: a converted optimizer through ``accelerator.prepare`` equals the stock loop.

The standard Accelerate loop, ``accelerator.prepare(model, optimizer, dataloader, scheduler)``,
gradient accumulation by ``accelerator.accumulate`` (2 micro-batches per step) and
``accelerator.clip_grad_norm_`` (PyTorch's function, active at most steps), on a float64
Conv-BatchNorm network (default eps) with SGD (momentum, weight decay) and a MultiStepLR. The
converted run converts the optimizer before ``prepare`` with ``stock_grads=True``; nothing else
changes. Accelerate wraps it in an ``AcceleratedOptimizer`` (whose ``param_groups`` are the
user's, and whose ``prepare`` saves and reloads its state): the conversion's step hooks fire
once per accumulated step, and the first-update checks still run. Judged per step on the
stock-unit parameters and buffers and the eval-mode output on a probe batch, against the floor
of ``tests/_integration.py``. Negative control: the same without stock-unit gradients.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

accelerate = pytest.importorskip("accelerate")

import equivalence as eq  # noqa: E402
from tests._integration import Net, batches, floor, jitter_hook, ratio, snapshot, ulp_up  # noqa: E402

STEPS = 30
ACCUM = 2
CLIP = 0.3
torch.set_num_threads(1)

X, Y, PROBE = batches(STEPS * ACCUM * 8)


def build(net: Net) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.SGD(
        [
            {"params": [net.c1.weight, net.c2.weight, *net.head.parameters()]},
            {"params": [*net.b1.parameters(), *net.b2.parameters()], "weight_decay": 0.0},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-3,
    )
    return opt, MultiStepLR(opt, [20], 0.3)


def accelerated_loop(
    *, ulp: bool = False, jitter: int | None = None, stock_grads: bool | None = None
) -> tuple[list[list[torch.Tensor]], dict[str, Any]]:
    """The user's Accelerate loop; ``stock_grads``: None = stock, else converted with it."""
    accelerator = accelerate.Accelerator(cpu=True, gradient_accumulation_steps=ACCUM)
    net = Net()
    if ulp:
        ulp_up(net)
    opt, sched = build(net)
    run = None
    if stock_grads is not None:
        run = eq.convert_optimizer(
            opt, invariant=[net.c1.weight, net.c2.weight], model=net, stock_grads=stock_grads
        )
    if jitter is not None:
        opt.register_step_post_hook(jitter_hook(net.parameters(), jitter))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8)
    model, popt, loader, psched = accelerator.prepare(net, opt, loader, sched)
    info: dict[str, Any] = {"run": run, "wrapped": popt, "norms": [], "lrs": []}
    rows = []
    for x, y in loader:
        with accelerator.accumulate(model):
            loss = nn.functional.cross_entropy(model(x), y)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                info["norms"].append(float(accelerator.clip_grad_norm_(model.parameters(), CLIP)))
            popt.step()
            psched.step()
            popt.zero_grad()
        if accelerator.sync_gradients:
            info["lrs"].append([g["lr"] for g in popt.param_groups])
            rows.append(record(net, run))
    return rows, info


def record(net: Net, run: Any) -> list[torch.Tensor]:
    conv = run.converter if run is not None else None
    params = conv.stock_parameters(net) if conv else net.parameters()
    bufs = conv.stock_buffers(net) if conv else net.buffers()
    net.eval()
    with torch.no_grad():
        out = net(PROBE)
    net.train()
    return [*snapshot(params), *snapshot(b for b in bufs if b.is_floating_point()), out]


def test_accelerate_loop_with_accumulation_and_clipping_equals_the_stock_loop() -> None:
    ref, ref_info = accelerated_loop()
    assert len(ref) == STEPS
    assert sum(n > CLIP for n in ref_info["norms"]) > STEPS // 2, "max_norm must actually clip"
    fl = floor(
        [accelerated_loop(ulp=True)[0], *(accelerated_loop(jitter=100 + j)[0] for j in (1, 2))],
        ref,
    )
    rows, info = accelerated_loop(stock_grads=True)
    good = ratio(rows, ref, fl)
    run = info["run"]
    norm_gap = max(abs(a - b) / b for a, b in zip(info["norms"], ref_info["norms"], strict=True))
    bad = ratio(accelerated_loop(stock_grads=False)[0], ref, fl)
    print(
        f"\nAccelerate: {good:.3g} of 3x floor (scale {run.current_scale():.4g}), clip norms "
        f"{norm_gap:.2g} rel; without stock-unit gradients {bad:.3g}"
    )
    # the hooks fired once per accumulated step, through the AcceleratedOptimizer
    assert run.converter.updates == STEPS and run.optimizer is info["wrapped"].optimizer
    # its param_groups are the user's, with the stock schedule's lr between steps
    assert info["lrs"] == ref_info["lrs"] and len(info["wrapped"].param_groups) == 2
    assert run.converter.sets[0].checked and len(run.converter.sets[0].norms) == 2
    assert run.current_scale() > 1.05
    assert good <= 1.0 and norm_gap <= 3 * fl[-1]
    assert bad > 100
