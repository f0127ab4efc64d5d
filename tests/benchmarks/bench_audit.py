"""Benchmark of the scale-invariance audit on a torchvision-style ResNet-18, as a ratio.

The audit of a ResNet-18 (BasicBlocks [2, 2, 2, 2], 7×7 stride-2 stem and max-pool,
BatchNorm after every convolution, affine on, a linear head; the layout of
``torchvision.models.resnet18``) on a batch of 8 images of 3×32×32, float64, CPU, one thread,
is timed against one forward + backward pass of the same model on the same batch in the same
run. Target: ratio ≤ 30.

Run from the repository root (so that this checkout's ``equivalence`` is imported):
``python3 -m tests.benchmarks.bench_audit [--affine off] [--json OUT]`` (not part of the
default pytest run; timings depend on the machine, the ratio much less).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

import equivalence


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); shortcut: 1×1 conv + BN if reshaped."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, affine=affine)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, affine=affine)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out, affine=affine)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout (parameter names included), ``num_classes`` outputs."""

    def __init__(self, num_classes: int = 10, affine: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, affine=affine)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, c_in = (64, 128, 256, 512), 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(c_in, w, stride, affine), BasicBlock(w, w, 1, affine))
            self.add_module(f"layer{i + 1}", layer)
            c_in = w
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet18_and_batch(
    affine: bool, seed: int = 0, batch: int = 8, size: int = 32
) -> tuple[nn.Module, torch.Tensor]:
    """A float64 ResNet-18, random BN affine parameters (when on), a batch of 3×size×size images."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResNet18(affine=affine).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                # away from the initial (1, 0), so that no audit decision rests on a special value
                m.weight.copy_(
                    1.0 + 0.2 * torch.randn(m.weight.shape, generator=g, dtype=torch.float64)
                )
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return model, torch.randn(batch, 3, size, size, generator=g, dtype=torch.float64)


def forward_backward_seconds(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median time of one forward + backward pass (training mode, the audit's default loss)."""
    target = torch.randn(x.shape[0], 10, dtype=x.dtype)
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        (0.5 * (model(x) - target).pow(2).mean()).backward()
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--affine", choices=("on", "off"), default="on")
    ap.add_argument("--repeats", type=int, default=7, help="forward+backward passes timed (median)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, x = resnet18_and_batch(args.affine == "on")
    model.train()
    forward_backward_seconds(model, x, 2)  # warm-up
    fb = forward_backward_seconds(model, x, args.repeats)
    t0 = time.perf_counter()
    report = equivalence.audit(model, x)
    audit_s = time.perf_counter() - t0
    fb_after = forward_backward_seconds(model, x, args.repeats)
    base = min(fb, fb_after)  # the faster of the two baselines: the stricter ratio
    result = {
        "affine": args.affine,
        "forward_backward_s": base,
        "forward_backward_s_before_after": [fb, fb_after],
        "audit_s": audit_s,
        "ratio": audit_s / base,
        "target": 30.0,
        "invariant": len(report.invariant_names),
        "not_invariant": len(report.not_invariant_names),
    }
    print(
        f"ResNet-18 (affine {args.affine}, batch 8x3x32x32, float64, 1 thread): "
        f"audit {audit_s:.2f} s, "
        f"forward+backward {base * 1e3:.1f} ms, ratio {result['ratio']:.1f} (target <= 30); "
        f"{result['invariant']} invariant, {result['not_invariant']} not ({equivalence.__file__})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["ratio"] <= 30.0 else 1


if __name__ == "__main__":
    sys.exit(main())
