"""The stock hyper-parameter drivers of a run: what ``lr_scheduler=`` and ``weight_decay_schedule=`` become.

:func:`make_scheduler` turns any accepted ``lr_scheduler`` form (a live PyTorch scheduler, a
factory, a pure schedule of :mod:`equivalence.schedule.schedules`, a per-step array, a callable
``step -> lr``) into a stock scheduler driving the optimizer; :class:`ScheduleLR` is the
scheduler of a pure schedule or array. :class:`WeightDecaySchedule` sets the stock per-update
weight decay λ_t on the param groups. Both act on the stock values only; the conversions read
them from the groups at every step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, LRScheduler

from ..schedule.validation import as_weight_decay_array
from .inplace import ConversionError

__all__ = ["ScheduleLR", "WeightDecaySchedule", "make_scheduler"]

_ACCEPTED = (
    "a live scheduler (torch.optim.lr_scheduler.LRScheduler or ReduceLROnPlateau), a factory "
    "optimizer -> scheduler (e.g. lambda opt: MultiStepLR(opt, [100, 150])), a pure schedule from "
    "equivalence.schedules, a per-step array of learning rates, a plain callable step -> lr, or None"
)


class ScheduleLR(LRScheduler):
    """A stock-style scheduler from a pure schedule ``step -> lr`` or a per-step array.

    Group g gets ``schedule(t) · base_lr_g / base_lr_0`` (exactly ``schedule(t)`` for
    groups with the first group's base LR); ``t`` counts ``step()`` calls, as for every
    PyTorch scheduler.
    """

    def __init__(self, optimizer: Optimizer, schedule: Any, last_epoch: int = -1) -> None:
        if callable(schedule):
            self._fn: Callable[[int], Any] | None = schedule
            self._table: np.ndarray | None = None
        else:
            self._fn = None
            table = np.asarray(schedule, dtype=np.float64)
            if table.ndim != 1 or table.size == 0:
                raise ValueError(
                    f"lr_scheduler as a per-step array must be 1-D and non-empty, got shape {table.shape}"
                )
            self._table = table
        base = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        self._ratios = [1.0 if b == base[0] else b / base[0] for b in base]
        super().__init__(optimizer, last_epoch)

    def value(self, t: int) -> float:
        if self._table is not None:
            if t >= self._table.size:
                # past the end: nan, refused by the converter if an update would use it (the
                # customary scheduler.step() after the last update is fine)
                return math.nan
            v = float(self._table[t])
        else:
            assert self._fn is not None
            v = float(self._fn(t))
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(
                f"lr_scheduler gives lr = {v!r} at step {t}; valid range: 0 < lr < inf"
            )
        return v

    def get_lr(self) -> list[float]:  # type: ignore[override]
        v = self.value(self.last_epoch)
        return [v * r for r in self._ratios]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_fn", "_table")}


def _is_scheduler(obj: Any) -> bool:
    return isinstance(obj, LRScheduler)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return isinstance(v, np.ndarray) and v.ndim == 0 and np.issubdtype(v.dtype, np.number)


def _retarget(sched: Any, optimizer: Optimizer) -> Any:
    old = sched.optimizer
    if old is optimizer:
        return sched
    n_old, n_new = len(old.param_groups), len(optimizer.param_groups)
    if n_old != n_new:
        raise ValueError(
            f"lr_scheduler drives an optimizer with {n_old} param group(s) but the converted optimizer "
            f"has {n_new} (each group holding both invariant and other parameters is split in two); "
            "pass a factory (lambda opt: MultiStepLR(opt, ...)) or attach the scheduler to run.optimizer"
        )
    memo: dict[int, Any] = {id(old): optimizer}
    moved = copy.deepcopy(sched, memo)
    # let PyTorch's scheduler track optimizer.step() calls on the new optimizer as on the old
    # one (its order warning): a scheduler built on it does that; ConstantLR with factor 1 and
    # no iterations sets every lr to lr * 1.0, the same float
    ConstantLR(optimizer, factor=1.0, total_iters=0)
    return moved


def make_scheduler(spec: Any, optimizer: Optimizer) -> Any:
    """The stock scheduler that ``lr_scheduler=spec`` stands for, driving ``optimizer``.

    Accepted: a live scheduler (re-targeted to ``optimizer`` with its state; its param
    group count must match), a factory ``optimizer -> scheduler``, a pure schedule from
    :mod:`equivalence.schedules`, a per-step array, a plain callable ``step -> lr``, or
    ``None``. Anything else: ``TypeError`` naming it and listing the accepted forms.
    """
    if spec is None:
        return None
    if _is_scheduler(spec):
        return _retarget(spec, optimizer)
    if isinstance(spec, (str, bytes)) or not (
        callable(spec) or isinstance(spec, (Sequence, np.ndarray))
    ):
        raise TypeError(
            f"lr_scheduler = {spec!r} ({type(spec).__name__}) is not accepted; give {_ACCEPTED}"
        )
    if not callable(spec):
        return ScheduleLR(optimizer, spec)
    if getattr(spec, "__equivalence_schedule__", False):
        return ScheduleLR(optimizer, spec)
    factory_error: BaseException | None = None
    made: Any = None
    try:
        made = spec(optimizer)
    except Exception as exc:  # noqa: BLE001 - not a factory; tried as step -> lr below
        factory_error = exc
    if _is_scheduler(made):
        return made
    if factory_error is None and not _is_number(made):
        raise TypeError(
            f"lr_scheduler = {spec!r} was called with the optimizer as a factory and returned "
            f"{type(made).__name__}, not a scheduler; give {_ACCEPTED}"
        )
    if _is_number(made):  # a constant schedule step -> lr ignores its argument
        return ScheduleLR(optimizer, spec)
    try:
        v0 = spec(0)
    except Exception:  # noqa: BLE001
        v0 = None
    if _is_number(v0):
        return ScheduleLR(optimizer, spec)
    got = (
        f"calling it with the optimizer raised {type(factory_error).__name__}: {factory_error}"
        if factory_error is not None
        else f"calling it with the optimizer returned {type(made).__name__}"
    )
    raise TypeError(
        f"lr_scheduler = {spec!r} is neither a scheduler factory nor a schedule step -> lr ({got}; "
        f"calling it with step 0 returned {type(v0).__name__}); give {_ACCEPTED}"
    )


class WeightDecaySchedule:
    """The stock per-update weight decay: λ_t of the default group times each group's factor.

    ``table[t]`` is λ_t of the default group (``weight_decay=`` of :func:`equivalence.convert`);
    param group i gets ``table[t] · factors[i]`` (its own weight decay relative to the default;
    every factor 1 when the default is 0 and the table is the decay itself).
    """

    def __init__(self, table: np.ndarray, factors: Sequence[float]) -> None:
        self.table = table
        self.factors = [float(f) for f in factors]

    @classmethod
    def for_groups(
        cls,
        schedule: Any,
        groups: Sequence[dict[str, Any]],
        default_weight_decay: float,
        steps: int | None = None,
    ) -> WeightDecaySchedule:
        """The schedule of ``weight_decay_schedule=schedule`` over ``groups`` (``steps`` values)."""
        n = steps if steps is not None else len(schedule)
        table = as_weight_decay_array(schedule, n, "weight_decay_schedule")
        if default_weight_decay != 0:
            factors = [float(g["weight_decay"]) / default_weight_decay for g in groups]
        else:
            own = [(i, g["weight_decay"]) for i, g in enumerate(groups) if g["weight_decay"] != 0]
            if own:
                raise ValueError(
                    f"weight_decay_schedule is given with weight_decay = 0 (so the schedule is the decay "
                    f"itself), but param group {own[0][0]} sets its own weight_decay = {own[0][1]!r}; set "
                    "weight_decay to the default decay the schedule scales, or drop the group's own value"
                )
            factors = [1.0] * len(groups)
        return cls(table, factors)

    def apply(self, groups: Sequence[dict[str, Any]], t: int) -> None:
        """Set each group's ``weight_decay`` to its value at update ``t``."""
        if t >= self.table.size:
            raise ConversionError(
                f"weight_decay_schedule has {self.table.size} per-update values and update {t} needs "
                f"value {t + 1}; give a longer schedule"
            )
        lam = float(self.table[t])
        for g, f in zip(groups, self.factors):
            g["weight_decay"] = lam * f
