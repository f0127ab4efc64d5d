"""Benchmark: one step of the converted run (stock Adam + the AdamW map's hooks) against stock AdamW.

Same model and gradients (a 393k-parameter MLP with six BatchNorm layers, float32, one
thread), each optimizer with a stock MultiStepLR; the step includes the scheduler's step
and, for the converted run, the pre/post hooks (hyper-parameters, normaliser statistics,
power-of-two rescaling checks). Target: ratio ≤ 1.10, measured in one run, interleaved,
minimum over repeats. Also reported with amsgrad=True (one extra buffer multiply).

    python tests/benchmarks/bench_adamw.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from steptime import seconds_per_step  # this folder: the scripts run by path
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

from equivalence.optim.torch_adamw import convert_adamw


def _model(width: int = 256) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(6):
        layers += [
            nn.Linear(width, width, bias=False),
            nn.BatchNorm1d(width, affine=False),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers)


def bench_step(steps: int = 300, repeats: int = 9, amsgrad: bool = False) -> dict[str, float]:
    torch.manual_seed(0)
    model = _model()
    params = list(model.parameters())
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    total = steps + 20

    def original():
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, amsgrad=amsgrad)
        return opt, MultiStepLR(opt, [total // 2], 0.1)

    def converted():
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, amsgrad=amsgrad)
        run = convert_adamw(opt, invariant=params, norm_layers=norms)
        return run.optimizer, MultiStepLR(run.optimizer, [total // 2], 0.1)

    def timeit(make) -> float:
        return seconds_per_step(make, steps)

    with torch.no_grad():
        a, b = [], []
        for _ in range(repeats):  # interleaved: load drifts hit both alike
            a.append(timeit(original))
            b.append(timeit(converted))
    t_a, t_b = min(a), min(b)
    tag = "_amsgrad" if amsgrad else ""
    return {
        f"adamw_step_ms{tag}": 1e3 * t_a,
        f"converted_step_ms{tag}": 1e3 * t_b,
        f"step_ratio{tag}": t_b / t_a,
    }


def bench_hooks(calls: int = 2000) -> dict[str, float]:
    """The converter's own cost per step (pre- and post-hook, no optimizer step), and a stock
    AdamW step on the same model: a load-robust upper bound of the ratio is
    (hooks + AdamW step)/AdamW step, since stock Adam without decay does less than AdamW."""
    torch.manual_seed(0)
    model = _model()
    params = list(model.parameters())
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    run = convert_adamw(
        torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2), invariant=params, norm_layers=norms
    )
    ref = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
    with torch.no_grad():
        best_h = best_s = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                run._pre_hook(run.optimizer, (), {})
                run._post_hook(run.optimizer, (), {})
            best_h = min(best_h, (time.perf_counter() - t0) / calls)
            t0 = time.perf_counter()
            for _ in range(calls // 10):
                ref.step()
            best_s = min(best_s, (time.perf_counter() - t0) / (calls // 10))
    return {
        "hooks_ms": 1e3 * best_h,
        "adamw_step_ms_again": 1e3 * best_s,
        "hook_bound_ratio": (best_h + best_s) / best_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    res: dict[str, float | str] = {
        **bench_step(),
        **bench_step(amsgrad=True),
        **bench_hooks(),
        "parameters": float(sum(p.numel() for p in _model().parameters())),
        "torch": torch.__version__,
    }
    for k, v in res.items():
        print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
