"""Argument validation shared by the schedule mathematics (pure numpy, no torch).

Every check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object)
with a message that names the argument, the offending value and the valid
range, so that bad input never turns into a NaN, a silent clamp or a crash
deep inside a recurrence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_lr_array",
    "as_weight_decay_array",
    "check_momentum",
    "check_positive_float",
    "check_nonnegative_float",
    "check_steps",
]


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> tuple[int, float]:
    idx = int(np.flatnonzero(bad)[0])
    return idx, float(arr[idx])


def as_lr_array(lrs: Any, name: str = "lrs", *, min_len: int = 1) -> np.ndarray:
    """Return ``lrs`` as a 1-D float64 array of finite, strictly positive values."""
    try:
        arr = np.asarray(lrs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a 1-D sequence of floats, got {type(lrs).__name__}"
        ) from exc
    if arr.ndim == 0:
        raise ValueError(
            f"{name} must be a 1-D sequence of per-step learning rates, got the scalar {float(arr)!r}"
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < min_len:
        raise ValueError(f"{name} must hold at least {min_len} step(s), got {arr.size}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, v = _first_bad(arr, bad)
        raise ValueError(f"{name}[{i}] = {v!r} is not finite; valid range: 0 < lr < inf")
    bad = arr <= 0
    if bad.any():
        i, v = _first_bad(arr, bad)
        raise ValueError(f"{name}[{i}] = {v!r} is not positive; valid range: 0 < lr < inf")
    return arr


def as_weight_decay_array(weight_decay: Any, steps: int, name: str = "weight_decay") -> np.ndarray:
    """Broadcast a float or a per-step sequence of weight decays to shape ``(steps,)``."""
    try:
        arr = np.asarray(weight_decay, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a float or a 1-D sequence of floats, got {type(weight_decay).__name__}"
        ) from exc
    if arr.ndim == 0:
        arr = np.full(steps, float(arr))
    elif arr.ndim != 1:
        raise ValueError(f"{name} must be a float or 1-D, got shape {arr.shape}")
    elif arr.size < steps:
        raise ValueError(
            f"{name} has {arr.size} per-step values but the learning-rate schedule has {steps} steps; "
            f"give at least {steps} values or a single float"
        )
    else:
        arr = arr[:steps]
    bad = ~np.isfinite(arr)
    if bad.any():
        i, v = _first_bad(arr, bad)
        raise ValueError(f"{name}[{i}] = {v!r} is not finite; valid range: 0 <= weight_decay < inf")
    bad = arr < 0
    if bad.any():
        i, v = _first_bad(arr, bad)
        raise ValueError(f"{name}[{i}] = {v!r} is negative; valid range: 0 <= weight_decay < inf")
    return arr


def check_momentum(momentum: Any, name: str = "momentum") -> float:
    """Momentum γ must be a finite float in [0, 1)."""
    try:
        m = float(momentum)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a float, got {type(momentum).__name__}") from exc
    if not (0.0 <= m < 1.0) or math.isnan(m):
        raise ValueError(f"{name} = {momentum!r} is outside the valid range 0 <= momentum < 1")
    return m


def check_positive_float(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a float, got {type(value).__name__}") from exc
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} = {value!r} is outside the valid range 0 < {name} < inf")
    return v


def check_nonnegative_float(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a float, got {type(value).__name__}") from exc
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} = {value!r} is outside the valid range 0 <= {name} < inf")
    return v


def check_steps(steps: Any, name: str = "steps", minimum: int = 1) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(steps).__name__}")
    if steps < minimum:
        raise ValueError(f"{name} = {steps} is outside the valid range {name} >= {minimum}")
    return int(steps)


def check_int_sequence(values: Sequence[Any], name: str) -> list[int]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}[{i}] must be an int, got {v!r}")
        out.append(int(v))
    return out
