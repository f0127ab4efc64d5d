r"""Learning-rate schedules as pure functions of the step (numpy, no torch).

A schedule is any callable ``step -> value`` that also accepts an integer array of steps; :func:`materialize` evaluates one
on ``range(steps)`` into the per-step float64 array that the mapping functions
take. The constructors mirror PyTorch's schedulers (same arguments, same
per-step values, checked against them in the tests):

- :func:`constant`            η_t = η
- :func:`multistep`           η_t = η · gamma^{#(milestones ≤ t)}         (``MultiStepLR``)
- :func:`cosine`              η_t = η_min + (η − η_min)(1 + cos(π t / T_max))/2   (``CosineAnnealingLR``)
- :func:`linear_warmup`       η_t = η (s + (e − s) min(t, n)/n)           (``LinearLR``)
- :func:`join`                one schedule after another at given steps   (``SequentialLR``)

Steps here are optimizer steps; for epoch-based milestones multiply by the
number of steps per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .validation import (
    check_int_sequence,
    check_nonnegative_float,
    check_positive_float,
    check_steps,
)

__all__ = [
    "Schedule",
    "constant",
    "multistep",
    "cosine",
    "linear_warmup",
    "join",
    "materialize",
    "epochs_to_steps",
]

Schedule = Callable[[Any], Any]
"""A schedule maps a step (an int, or an integer array of steps) to its value(s)."""


def _tag(schedule: Schedule) -> Schedule:
    """Mark a schedule as a pure function of the step (``lr_scheduler=`` tells it from a factory)."""
    schedule.__equivalence_schedule__ = True  # type: ignore[attr-defined]
    return schedule


def constant(lr: float) -> Schedule:
    """η_t = lr for every step."""
    value = check_positive_float(lr, "lr")

    def schedule(step: Any) -> Any:
        return value + 0.0 * np.asarray(step, dtype=np.float64)

    return _tag(schedule)


def multistep(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """η_t = lr · gamma^k, k the number of milestones ≤ t (PyTorch's ``MultiStepLR``).

    Example: ``multistep(0.1, [80*391, 120*391])`` is the paper's step decay
    0.1 → 0.01 → 0.001 at epochs 80 and 120 with batch 128.
    """
    base = check_positive_float(lr, "lr")
    g = check_positive_float(gamma, "gamma")
    ms = sorted(check_int_sequence(milestones, "milestones"))
    if any(m < 0 for m in ms):
        raise ValueError(f"milestones = {list(milestones)} must be >= 0")

    def schedule(step: Any) -> Any:
        k = np.searchsorted(ms, step, side="right")
        return base * g ** np.asarray(k, dtype=np.float64)

    return _tag(schedule)


def cosine(lr: float, t_max: int, eta_min: float = 0.0) -> Schedule:
    """η_t = η_min + (lr − η_min)(1 + cos(π t / t_max))/2 for t ≤ t_max (``CosineAnnealingLR``).

    Past ``t_max`` the value stays at ``eta_min``. With ``eta_min = 0`` the
    last step's LR is 0, which the equivalence cannot use; keep ``t_max``
    beyond the final step or ``eta_min > 0``.
    """
    base = check_positive_float(lr, "lr")
    n = check_steps(t_max, "t_max")
    lo = check_nonnegative_float(eta_min, "eta_min")
    if lo > base:
        raise ValueError(
            f"eta_min = {eta_min!r} exceeds lr = {lr!r}; valid range: 0 <= eta_min <= lr"
        )

    def schedule(step: Any) -> Any:
        s = np.minimum(step, n)
        return lo + (base - lo) * (1.0 + np.cos(math.pi * s / n)) / 2.0

    return _tag(schedule)


def linear_warmup(
    lr: float, warmup_steps: int, start_factor: float = 1.0 / 3.0, end_factor: float = 1.0
) -> Schedule:
    """η_t = lr (s + (e − s) min(t, n)/n): PyTorch's ``LinearLR`` (n = warmup_steps)."""
    base = check_positive_float(lr, "lr")
    n = check_steps(warmup_steps, "warmup_steps")
    s = check_positive_float(start_factor, "start_factor")
    e = check_positive_float(end_factor, "end_factor")
    if s > 1.0 or e > 1.0:
        raise ValueError(
            f"start_factor = {start_factor!r}, end_factor = {end_factor!r}: valid range 0 < factor <= 1"
        )

    def schedule(step: Any) -> Any:
        return base * (s + (e - s) * np.minimum(step, n) / n)

    return _tag(schedule)


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at its own step 0.

    The semantics of PyTorch's ``SequentialLR``: ``join([warm, cos], [500])``
    is 500 warm-up steps followed by the cosine schedule counted from 0.
    """
    scheds = list(schedules)
    bounds = check_int_sequence(boundaries, "boundaries")
    if len(scheds) != len(bounds) + 1:
        raise ValueError(
            f"join needs len(boundaries) == len(schedules) - 1, got {len(bounds)} boundaries "
            f"for {len(scheds)} schedules"
        )
    if any(b <= 0 for b in bounds) or any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:])):
        raise ValueError(f"boundaries = {bounds} must be positive and strictly increasing")

    starts = np.array([0, *bounds])

    def schedule(step: Any) -> Any:
        steps = np.asarray(step)
        k = np.searchsorted(bounds, steps, side="right")
        out = np.zeros(steps.shape, dtype=np.float64)
        for i, sched in enumerate(scheds):
            mask = k == i
            if mask.any():
                out[mask] = sched(steps[mask] - starts[i])
        return out if out.ndim else float(out)

    return _tag(schedule)


def materialize(schedule: Schedule | Sequence[float] | np.ndarray, steps: int) -> np.ndarray:
    """Evaluate a schedule on steps 0..steps−1 as a float64 array (arrays pass through, cut to ``steps``)."""
    n = check_steps(steps)
    if callable(schedule):
        return np.broadcast_to(np.asarray(schedule(np.arange(n)), dtype=np.float64), (n,)).copy()
    arr = np.asarray(schedule, dtype=np.float64)
    if arr.ndim != 1 or arr.size < n:
        raise ValueError(f"schedule has shape {arr.shape}; need a 1-D array of at least {n} values")
    return arr[:n]


def epochs_to_steps(epochs: Sequence[Any], steps_per_epoch: int) -> list[int]:
    """Convert epoch milestones to optimizer-step milestones."""
    spe = check_steps(steps_per_epoch, "steps_per_epoch")
    return [e * spe for e in check_int_sequence(epochs, "milestones")]
