"""Small scale-invariant networks and drivers shared by the PyTorch equivalence tests."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

torch.set_num_threads(1)  # tiny networks: threads cost more than they give

EPS_BN = 1e-300  # BatchNorm's eps breaks invariance; at 1e-300 it is below float64 rounding


class InvariantMLP(nn.Module):
    """Linear → BN(affine off) → ReLU, twice, then a frozen output layer.

    The loss is jointly scale invariant in (fc1.weight, fc1.bias, fc2.weight): scaling them
    by c > 0 scales each BN input by c, which BN removes. ``fc2`` has no bias (a bias there
    would not scale with c).
    """

    def __init__(self, d_in: int = 6, width: int = 12, d_out: int = 3, eps: float = EPS_BN):
        super().__init__()
        self.fc1 = nn.Linear(d_in, width)
        self.bn1 = nn.BatchNorm1d(width, affine=False, eps=eps)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.bn2 = nn.BatchNorm1d(width, affine=False, eps=eps)
        self.head = nn.Linear(width, d_out)
        self.head.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.fc1(x)))
        return self.head(torch.relu(self.bn2(self.fc2(h))))

    def invariant(self) -> list[nn.Parameter]:
        return [self.fc1.weight, self.fc1.bias, self.fc2.weight]

    def norm_layers(self) -> list[nn.Module]:
        return [self.bn1, self.bn2]


def make_pair(seed: int, dtype=torch.float64, **kw) -> tuple[InvariantMLP, InvariantMLP]:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        a = InvariantMLP(**kw).to(dtype)
    return a, copy.deepcopy(a)


def make_batches(steps: int, seed: int, batch: int = 16, d_in: int = 6, d_out: int = 3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, d_in, generator=g, dtype=dtype)
    y = torch.randint(0, d_out, (steps, batch), generator=g)
    return x, y


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               after: Callable[[], None] | None = None) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    if after is not None:
        after()


def rel_param_error(params_wd, params_exp, scale: float) -> float:
    """‖θ̃/m − θ‖ / ‖θ‖ over the concatenated invariant parameters (m: current scale)."""
    with torch.no_grad():
        w = torch.cat([p.reshape(-1) for p in params_wd])
        e = torch.cat([p.reshape(-1) for p in params_exp])
        return float((e / scale - w).norm() / w.norm())


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    with torch.no_grad():
        return float((a - b).norm() / b.norm())
