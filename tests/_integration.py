"""The floor twins and the judge shared by the stock-gradient and framework tests.

Error model (``equivalence.noise_floor``, judged as ``tests/test_inplace.py`` judges): per step
t, the divergence of a run from the stock run is the largest ``rel_err`` (‖a − b‖_∞ / ‖b‖_∞)
over the recorded tensors (stock-unit parameters, buffers, outputs). The floor E_t is the
running maximum of the divergences of the stock run's twins: one from weights one ulp away
and two jitter twins (every nonzero trainable weight moved ``JITTER_ULPS`` ulps in a random
direction after every step), never below 64 u. A run passes when err_t ≤ ``FLOOR_FACTOR`` · E_t at every
step (ratio ≤ 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from equivalence.verify.noise_floor import FLOOR_FACTOR, JITTER_ULPS, rel_err, running_max

U = float(np.finfo(np.float64).eps)
FLOOR_MIN = 64 * U

Rows = Sequence[Sequence[torch.Tensor]]


class Net(nn.Module):
    """conv → BN → ReLU → conv → BN → ReLU → pool → linear head (the head is not invariant),
    float64, initialised from ``seed``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b1(self.c1(x)))
        h = torch.relu(self.b2(self.c2(h)))
        return self.head(h.mean(dim=(2, 3)))


def batches(*lead: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 inputs of shape ``(*lead, 3, 6, 6)``, labels in 0..3 of shape ``lead`` and a
    probe batch of 8, drawn in that order from one generator."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, 3, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, lead, generator=g)
    return x, y, torch.randn(8, 3, 6, 6, generator=g, dtype=torch.float64)


def ulp_up(model: nn.Module) -> None:
    """Every nonzero parameter entry one ulp up (the floor's first twin; an exact zero, a
    zero-initialised bias, stays: one ulp of zero is no rounding of any computed value)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.where(p != 0, torch.nextafter(p, torch.full_like(p, math.inf)), p))


def jitter_hook(params: Iterable[torch.Tensor], seed: int) -> Callable[..., None]:
    """A step post-hook moving every nonzero trainable weight ``JITTER_ULPS`` ulps at random."""
    params = [p for p in params if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)

    def post(opt: Any, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for p in params:
                sign = torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1
                ulp = torch.nextafter(p.abs(), torch.full_like(p, math.inf)) - p.abs()
                p.add_(sign * JITTER_ULPS * ulp * (p != 0))  # exact zeros stay (see ulp_up)

    return post


def divergence(rows: Rows, ref: Rows) -> np.ndarray:
    """Per step: the largest rel_err over the recorded tensors."""
    assert len(rows) == len(ref), (len(rows), len(ref))
    return np.array([max(rel_err(a, b) for a, b in zip(r, q)) for r, q in zip(rows, ref)])


def floor(twins: Iterable[Rows], ref: Rows) -> np.ndarray:
    """E_t: the running maximum of the twins' divergences, never below 64 u."""
    worst = np.max([divergence(t, ref) for t in twins], axis=0)
    return np.array(running_max(list(np.maximum(worst, FLOOR_MIN))))


def ratio(rows: Rows, ref: Rows, fl: np.ndarray) -> float:
    """max_t err_t / (FLOOR_FACTOR · E_t)."""
    return float(np.max(divergence(rows, ref) / (FLOOR_FACTOR * fl)))


def snapshot(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]
