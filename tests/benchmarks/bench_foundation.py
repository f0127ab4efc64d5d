"""Benchmarks of the foundation's two performance targets, each a ratio measured in one run.

1. ``python -m equivalence schedule`` for 10^6 steps (the paper's recipe stretched to 2558
   epochs of 391 steps, per-epoch output): wall time, target < 2 s; reported with the ratio
   to a bare ``python -c "import numpy"`` start-up measured in the same run.
2. One optimizer step of the converted run (the online conversion: stock SGD whose step hooks
   check the hyper-parameters and gradients, set η̃_t, keep the BatchNorm eps at ε m² and
   correct its running statistics; the user's MultiStepLR.step) against the original (stock
   SGD with weight decay + MultiStepLR.step) on the same model and gradients: target ratio
   ≤ 1.05. Also the precomputed path (EquivalentLR), and the hooks' own cost: the converted
   step against stock SGD without weight decay (the same arithmetic, no hooks).

Run: ``python tests/benchmarks/bench_foundation.py [--json OUT]`` (not part of the default
pytest run; timings depend on the machine, the ratios much less).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from steptime import seconds_per_step  # this folder: the scripts run by path
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence as eq


def time_command(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_cli(repeats: int = 5) -> dict[str, float]:
    cli = [
        sys.executable,
        "-m",
        "equivalence",
        "schedule",
        "--epochs",
        "2558",
        "--steps-per-epoch",
        "391",
    ]
    base = [sys.executable, "-c", "import numpy"]
    t_cli = time_command(cli, repeats)
    t_base = time_command(base, repeats)
    return {
        "cli_seconds_1e6_steps": t_cli,
        "python_numpy_startup_seconds": t_base,
        "ratio_to_startup": t_cli / t_base,
    }


def _model(width: int = 256) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(6):
        layers += [
            nn.Linear(width, width, bias=False),
            nn.BatchNorm1d(width, affine=False),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers)


def bench_step(steps: int = 400, repeats: int = 9) -> dict[str, float]:
    torch.manual_seed(0)
    model = _model()
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    total = steps * (repeats + 1)

    def original():
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
        sched = MultiStepLR(opt, [total // 2], 0.1)
        return opt, sched

    def converted():
        # the online conversion: step hooks (count and hyper-parameter checks, η̃_t, eps at ε m²,
        # running statistics, rescaling) on a stock SGD driven by the user's own MultiStepLR
        run = eq.convert(
            params,
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            invariant=params,
            norm_layers=[m for m in model.modules() if isinstance(m, nn.BatchNorm1d)],
        )
        return run.optimizer, MultiStepLR(run.optimizer, [total // 2], 0.1)

    def no_decay():
        # stock SGD without weight decay: the converted step's arithmetic without its hooks
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        return opt, MultiStepLR(opt, [total // 2], 0.1)

    def precomputed():
        run = eq.convert(
            params,
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            steps=total,
            invariant=params,
            lr_scheduler=lambda o: MultiStepLR(o, [total // 2], 0.1),
            online=False,
            norm_layers=[m for m in model.modules() if isinstance(m, nn.BatchNorm1d)],
        )
        return run.optimizer, run.scheduler

    def timeit(make) -> float:
        return seconds_per_step(make, steps)

    with torch.no_grad():
        a, b, c, d = [], [], [], []
        for _ in range(repeats):  # interleaved so that drifts in machine load hit all alike
            a.append(timeit(original))
            b.append(timeit(converted))
            c.append(timeit(precomputed))
            d.append(timeit(no_decay))
    # the minimum over repeats: the run least disturbed by other processes on the machine
    t_a, t_b, t_c, t_d = min(a), min(b), min(c), min(d)
    return {
        "original_step_ms": 1e3 * t_a,
        "converted_step_ms": 1e3 * t_b,
        "step_ratio": t_b / t_a,
        "precomputed_step_ms": 1e3 * t_c,
        "precomputed_step_ratio": t_c / t_a,
        "no_decay_step_ms": 1e3 * t_d,
        "hook_overhead_ratio": t_b / t_d,
        "parameters": float(sum(p.numel() for p in params)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument(
        "--step-only", action="store_true", help="only the optimizer-step benchmark"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    res = {**({} if args.step_only else bench_cli()), **bench_step(), "torch": torch.__version__}
    for k, v in res.items():
        print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
