"""Seconds per optimizer step, the timing loop the optimizer benchmarks share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def seconds_per_step(make: Callable[[], tuple[Any, Any]], steps: int, warmup: int = 20) -> float:
    """Mean seconds of ``opt.step(); sched.step()`` over ``steps``, after ``warmup`` untimed
    steps (buffers allocated); ``make()`` returns a fresh ``(optimizer, scheduler)``."""
    opt, sched = make()
    for _ in range(warmup):
        opt.step()
        sched.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
        sched.step()
    return (time.perf_counter() - t0) / steps
