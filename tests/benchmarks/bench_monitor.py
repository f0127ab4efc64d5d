"""Overhead of the effective-LR monitor per training step, a ratio measured in one run.

A training step (forward, backward, stock ``SGD(momentum=0.9, weight_decay=5e-4)`` step) with
and without an attached :class:`equivalence.Monitor` (every step recorded, every conv or
linear weight monitored, groups from the audit), on the same model and batch, in alternating
blocks so that a change of machine load hits both sides alike; the figure is the median of
the per-block ratios. Target: ≤ 1.05.

Workloads: (1) the full-data mode's PreResNet8 of width 8, float32, batch 128, 32×32 inputs
(the CPU run); (2) the foundation benchmark's MLP (6 × Linear(256, 256) + BN, batch 64), where
the optimizer's share of a step is large (a pessimistic case).

Run: ``python tests/benchmarks/bench_monitor.py [--json OUT] [--threads N]`` (not part of the
default pytest run; timings depend on the machine, the ratios much less).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import equivalence as eq
from equivalence.monitor import Monitor, groups_from_audit


def _preresnet(depth: int = 8, width: int = 8) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from gpu_validation.model import PreResNet, init_weights

    m = PreResNet(depth, width)
    init_weights(m, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    return m, torch.randn(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g)


def _mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(6):
        layers += [nn.Linear(256, 256, bias=False), nn.BatchNorm1d(256, affine=False), nn.ReLU()]
    head = nn.Linear(256, 10)
    head.requires_grad_(False)
    m = nn.Sequential(*layers, head)
    g = torch.Generator().manual_seed(1)
    return m, torch.randn(64, 256, generator=g), torch.randint(0, 10, (64,), generator=g)


def bench(
    make: Callable[[], tuple[nn.Module, torch.Tensor, torch.Tensor]],
    steps: int,
    blocks: int,
    device: str = "cpu",
) -> dict[str, float]:
    model, x, y = make()
    model, x, y = model.to(device), x.to(device), y.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    report = eq.audit(model, x[:8], loss_fn=lambda o: F.cross_entropy(o, y[:8]))
    groups = groups_from_audit(report)

    def block(monitored: bool) -> float:
        mon = Monitor(opt, groups, flush_every=steps) if monitored else None
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        if mon is not None:
            mon.close()  # the host read of the block's figures is part of the cost
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps

    block(False), block(True)  # warm-up
    ratios, plain, mon = [], [], []
    for i in range(blocks):
        order = (False, True) if i % 2 == 0 else (True, False)
        t = {m: block(m) for m in order}
        plain.append(t[False])
        mon.append(t[True])
        ratios.append(t[True] / t[False])
    return {
        "plain_step_ms": 1e3 * statistics.median(plain),
        "monitored_step_ms": 1e3 * statistics.median(mon),
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(mon) / statistics.median(plain),
        "monitored_tensors": float(sum(len(v) for v in groups.values())),
        "groups": float(len(groups)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: PreResNet32 (the GPU run's network) instead of PreResNet8",
    )
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.device == "cuda":
        out: dict[str, object] = {
            "preresnet32_w16_batch128_cuda": bench(
                lambda: _preresnet(32, 16), steps=50, blocks=a.blocks, device="cuda"
            ),
            "mlp_6x256_batch64_cuda": bench(_mlp, steps=200, blocks=a.blocks, device="cuda"),
            "gpu": torch.cuda.get_device_name(0),
        }
        print(json.dumps(out, indent=1))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
        return 0
    out = {
        "preresnet8_w8_batch128": bench(_preresnet, steps=10, blocks=a.blocks),
        "mlp_6x256_batch64": bench(_mlp, steps=100, blocks=a.blocks),
        "threads": a.threads,
        "target_ratio": 1.05,
    }
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    ok = out["preresnet8_w8_batch128"]["ratio_median"] <= 1.05  # type: ignore[index]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
