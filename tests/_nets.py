"""Drivers and measures shared by the PyTorch equivalence tests (the networks: equivalence.testing_nets)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from equivalence.verify.testing_nets import EPS_BN, InvariantMLP, make_batches, make_pair

torch.set_num_threads(1)  # tiny networks: threads cost more than they give

__all__ = ["EPS_BN", "InvariantMLP", "make_batches", "make_pair", "rel_diff", "rel_param_error"]


def train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    after: Callable[[], None] | None = None,
) -> None:
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
