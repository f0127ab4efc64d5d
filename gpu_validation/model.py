"""A scale-invariant pre-activation ResNet for CIFAR-10 (PreResNet-depth).

The network of the paper's CIFAR-10 experiments (docs/paper.md): He et al.'s pre-activation ResNet with BatchNorm's scale and
bias frozen (``affine=False``, i.e. weight 1 and bias 0) and the last linear
layer frozen at its random initialisation. Every conv has no bias. With both
frozen the training loss is *jointly* scale invariant in all the conv weights
(docs/mathematics.md, "Scale invariance"): scaling every conv by c > 0 scales the stem's
output and each residual branch by c, so every BN input is homogeneous of
degree 1 and the final BN removes the factor. No single conv is invariant on
its own. BN's ``eps`` makes the invariance approximate; the CPU smoke mode
uses a tiny ``eps`` so that it is exact up to rounding.

Depth 6n + 2 with n blocks per stage (depth 32: n = 5; widths 16, 32, 64).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PreResNet", "conv_weights", "norm_layers", "init_weights"]


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the identity (or a 1x1 strided conv)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, bn_eps: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch, eps=bn_eps, affine=False)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=bn_eps, affine=False)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreResNet(nn.Module):
    """PreResNet-``depth`` with frozen BN affine parameters and a frozen last layer.

    ``depth`` = 6n + 2 (32 for the paper), ``width`` the first stage's channels
    (16 for the paper; the stages use width, 2·width, 4·width). The only
    trainable parameters are the conv weights, which form the scale-invariant
    set S of the theorem.
    """

    def __init__(
        self, depth: int = 32, width: int = 16, num_classes: int = 10, bn_eps: float = 1e-5
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(
                f"depth = {depth!r} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 56, ...)"
            )
        if width < 1:
            raise ValueError(f"width = {width!r} must be >= 1")
        if not bn_eps > 0:
            raise ValueError(f"bn_eps = {bn_eps!r} must be > 0")
        n = (depth - 2) // 6
        self.depth, self.width = depth, width
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        in_ch = width
        for stage, out_ch in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(PreActBlock(in_ch, out_ch, stride, bn_eps))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(in_ch, eps=bn_eps, affine=False)
        self.fc = nn.Linear(in_ch, num_classes)
        self.fc.weight.requires_grad_(False)
        self.fc.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Initialise every conv (Kaiming normal, fan_out) and linear layer from ``generator``.

    A local generator (no global seeding) gives every recipe the same θ_0.
    The frozen linear layer gets PyTorch's default uniform(±1/√fan_in).
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    """The conv weights: the parameters in which the loss is jointly scale invariant."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm module (their running statistics follow the conv scale)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
