"""Scale-invariant ResNets with BatchNorm's real eps = 1e-5, converted, against stock SGD.

Model: a ResNet in torchvision's layout (``tests/benchmarks/bench_audit.py``) made scale invariant the paper's way
(``equivalence.make_scale_invariant``: BatchNorm affine and the last layer frozen), so every
conv weight is invariant and every BatchNorm is fed by one. The converted run keeps each
BatchNorm's eps at ε m_t² (``proofs/normaliser_eps.py``); with ε left alone it is a
different network function from the first rescaled step on (negative control).

Reference: stock ``SGD(lr=0.1, momentum=0.9, weight_decay=5e-4)`` + ``MultiStepLR``, float64.
Verdict: parameters (divided by m_t) and train-mode outputs within 3× the noise floor (the
stock run against itself from weights nudged by one ulp, running maximum), eval-mode outputs
at the end likewise; 64 ulps of float64 cover the first steps (see ``test_training_loops``).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from benchmarks.bench_audit import BasicBlock, ResNet18
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

import equivalence as eq

torch.set_num_threads(1)
U = float(np.finfo(np.float64).eps)
FLOOR_MIN = 64 * U


class MiniResNet(nn.Module):
    """ResNet-18's blocks in two narrow stages (widths 8 and 16) for 8x8 images: fast, same structure."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = BasicBlock(8, 8, 1, affine=True)
        self.layer2 = BasicBlock(8, 16, 2, affine=True)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def mini_resnet() -> nn.Module:
    return MiniResNet()


def resnet18() -> nn.Module:
    return ResNet18(num_classes=10)  # torchvision's ResNet-18 layout, written out in the benchmark


def build(make, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = make().double()
    eq.make_scale_invariant(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.eps == 1e-5  # PyTorch's default: the case that used to break the equivalence
    return model


def invariant(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def trajectory(model, x, y, convert: bool, adjust_eps: bool = True):
    params = [p for p in model.parameters() if p.requires_grad]
    if convert:
        run = eq.convert(
            params,
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-4,
            invariant=invariant(model),
            norm_layers=norms(model),
            adjust_eps=adjust_eps,
        )
        opt, scale = run.optimizer, run.current_scale
    else:
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
        scale = lambda: 1.0  # noqa: E731
    sched = MultiStepLR(opt, [len(x) // 2], 0.1)
    ws, outs = [], []
    for t in range(len(x)):
        opt.zero_grad()
        out = model(x[t])
        nn.functional.cross_entropy(out, y[t]).backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            ws.append(torch.cat([p.reshape(-1) for p in invariant(model)]) / scale())
            outs.append(out.detach())
    model.eval()
    with torch.no_grad():
        outs.append(model(x[0]))
    return ws, outs, scale()


def check(make, steps: int, batch: int, size: int, seed: int = 0) -> dict[str, float]:
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(steps, batch, 3, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (steps, batch), generator=g)
    base = build(make, seed)
    ref_w, ref_o, _ = trajectory(copy.deepcopy(base), x, y, convert=False)
    twin = copy.deepcopy(base)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    fl_w, fl_o, _ = trajectory(twin, x, y, convert=False)

    def rel(a, b):
        return np.array([float((p - q).norm() / q.norm()) for p, q in zip(a, b)])

    floor_w, floor_o = rel(fl_w, ref_w), rel(fl_o, ref_o)
    out: dict[str, float] = {
        "floor_params": float(floor_w.max()),
        "floor_outputs": float(floor_o.max()),
    }
    for name, kw in (("converted", {}), ("eps_left_alone", {"adjust_eps": False})):
        w, o, m = trajectory(copy.deepcopy(base), x, y, convert=True, **kw)
        ratio = max(
            float(
                np.max(rel(w, ref_w) / (3 * np.maximum(FLOOR_MIN, np.maximum.accumulate(floor_w))))
            ),
            float(
                np.max(rel(o, ref_o) / (3 * np.maximum(FLOOR_MIN, np.maximum.accumulate(floor_o))))
            ),
        )
        out[f"{name}_ratio"] = ratio
        out[f"{name}_params"] = float(rel(w, ref_w).max())
        out["scale"] = m
    print(out)
    return out


def test_mini_resnet_eps_1e5_converted_equals_stock():
    r = check(mini_resnet, steps=40, batch=8, size=8)
    assert r["converted_ratio"] <= 1.0
    assert r["eps_left_alone_ratio"] > 100  # negative control
    assert r["scale"] > 1.001


@pytest.mark.slow  # ResNet-18 in float64 on CPU, 4 runs of 30 steps: 10 min on the shared 2-core machine
def test_resnet18_eps_1e5_converted_equals_stock():
    r = check(resnet18, steps=30, batch=8, size=32)
    assert r["converted_ratio"] <= 1.0
    assert r["eps_left_alone_ratio"] > 100  # negative control
