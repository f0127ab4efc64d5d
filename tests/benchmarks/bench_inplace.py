"""Benchmark of the in-place conversion: the converted step against the stock step, measured as
ratios in one run.

The model has the usual layout: one param group holding the scale-invariant weights *and* the
non-invariant head (so every converted step builds the step view that splits the group), and
one group of BatchNorm affines without decay; MultiStepLR attached before conversion.

1. ``step_ratio``: converted ``optimizer.step(); sched.step()`` (hooks, step view, κ-form
   recurrence, eps at ε m², running statistics) / the stock SGD + weight decay step;
   target ≤ 1.05.
2. ``checks_ratio``: the converted step with the first-update checks on (``model=``: the probe
   ran at the first, untimed, update) / the same with ``check=False``: after the first update
   the checks cost nothing, so ≈ 1.

Run: ``python tests/benchmarks/bench_inplace.py [--json OUT]`` (one thread; not part of the
default pytest run).
"""

from __future__ import annotations

import argparse
import json

import torch
from steptime import seconds_per_step  # this folder: the scripts run by path
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence as eq


def _model(width: int = 256, depth: int = 6) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def bench(steps: int = 400, repeats: int = 7) -> dict[str, float]:
    torch.manual_seed(0)
    model = _model()
    x = torch.randn(64, 256)
    y = torch.randint(0, 10, (64,))
    inv = [m.weight for m in model if isinstance(m, nn.Linear) and m.out_features == 256]
    norms = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    head = list(model[-1].parameters())
    affine = [p for m in norms for p in m.parameters()]
    total = steps * 2 * (repeats + 1)

    def grads() -> None:
        with torch.enable_grad():
            model.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()

    def sgd() -> torch.optim.SGD:
        return torch.optim.SGD(
            [{"params": [*inv, *head]}, {"params": affine, "weight_decay": 0.0}],
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
        )

    def stock():
        opt = sgd()
        return opt, MultiStepLR(opt, [total], 0.1)

    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def converted(check: bool):
        def make():
            model.load_state_dict(initial)  # the timing loops before moved the weights
            opt = sgd()
            sched = MultiStepLR(opt, [total], 0.1)  # built before conversion
            if check:  # normalisers found and sets judged by the probe at the first update
                eq.convert_optimizer(opt, invariant=inv, model=model)
            else:
                eq.convert_optimizer(opt, invariant=inv, norm_layers=norms, check=False)
            grads()  # the forward the probe reads, and real gradients for its Euler check
            with torch.no_grad():
                saved = [p.clone() for p in model.parameters()]
                buffers = [b.clone() for b in model.buffers()]
            opt.step()  # the first update (checks) is not timed
            with torch.no_grad():  # same weights for every variant
                for p, s in zip(model.parameters(), saved):
                    p.copy_(s)
                for b, s in zip(model.buffers(), buffers):
                    b.copy_(s)
            return opt, sched

        return make

    grads()
    a, b, c = [], [], []
    with torch.no_grad():
        for _ in range(repeats):  # interleaved: load drifts hit all alike
            a.append(seconds_per_step(stock, steps))
            b.append(seconds_per_step(converted(True), steps))
            c.append(seconds_per_step(converted(False), steps))
    t_a, t_b, t_c = min(a), min(b), min(c)
    return {
        "stock_step_ms": 1e3 * t_a,
        "converted_step_ms": 1e3 * t_b,
        "step_ratio": t_b / t_a,
        "unchecked_step_ms": 1e3 * t_c,
        "checks_ratio": t_b / t_c,
        "parameters": float(sum(p.numel() for p in model.parameters())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    res = {**bench(), "torch": torch.__version__}
    for k, v in res.items():
        print(f"{k:24s} {v:.4g}" if isinstance(v, float) else f"{k:24s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
