"""What a checkpoint of the precomputed path says about its recipe, and the resume check.

:class:`~equivalence.optim.torch_sgd.EquivalentLR` saves, per param group, digests of the
recipe over the steps taken (:meth:`RecipeRecord.describe`); on ``load_state_dict`` a run
resumes only if those steps agree (:meth:`RecipeRecord.differences` names what differs).
A run built with more steps, same recipe so far, resumes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..schedule.recipe import ExpLRSchedule

__all__ = ["RecipeRecord"]

#: the recorded keys and how a difference in each is named
_NAMES = {
    "prefix": "the number of steps recorded",
    "kind": "the kind of schedule",
    "form": "the form",
    "momentum": "the momentum",
    "lrs": "the learning rates of the steps taken",
    "weight_decay": "the weight decays of the steps taken",
    "buffer_shifts": "the momentum-buffer shifts",
}


class _Schedule(Protocol):
    """A param group's recipe: an ``ExpLRSchedule`` or a ``PlainSchedule``."""

    @property
    def lrs(self) -> np.ndarray: ...

    @property
    def weight_decay(self) -> np.ndarray: ...

    @property
    def steps(self) -> int: ...


class RecipeRecord:
    """The recipes of a run's param groups, as a checkpoint records and compares them."""

    def __init__(self, schedules: Sequence[_Schedule]) -> None:
        self.schedules = schedules  # the run's own list, read when a checkpoint is made

    def describe(self, upto: int) -> list[dict[str, Any]]:
        """Per group: what a resume must agree on, over steps 0..upto−1 (a longer run may resume)."""
        out = []
        for s in self.schedules:
            k = min(upto, s.steps)
            d: dict[str, Any] = {
                "kind": "exponential" if isinstance(s, ExpLRSchedule) else "plain",
                "prefix": k,
                "lrs": _digest(s.lrs[:k]),
                "weight_decay": _digest(s.weight_decay[:k]),
            }
            if isinstance(s, ExpLRSchedule):
                d["form"] = s.form
                d["momentum"] = s.momentum
                d["buffer_shifts"] = sorted((t, v) for t, v in s.buffer_shifts.items() if t < k)
            out.append(d)
        return out

    def differences(self, theirs: list[dict[str, Any]], t: int, total_steps: int) -> list[str]:
        """What differs between a checkpoint's record ``theirs`` (at step ``t``) and this run."""
        diffs: list[str] = []
        if len(theirs) != len(self.schedules):
            diffs.append(
                f"{len(theirs)} param groups (checkpoint) vs {len(self.schedules)} (this run)"
            )
        if t > total_steps:
            diffs.append(f"the checkpoint is at step {t}, past this run's {total_steps} steps")
        prefix = min([d.get("prefix", t + 1) for d in theirs] or [t + 1])
        for g, (a, b) in enumerate(zip(theirs, self.describe(prefix))):
            for key, name in _NAMES.items():
                if a.get(key) != b.get(key):
                    shown = (
                        ""
                        if key in ("lrs", "weight_decay")
                        else f" ({a.get(key)!r} vs {b.get(key)!r})"
                    )
                    diffs.append(f"param group {g}: {name} differ{shown}")
        return diffs


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.float64).tobytes()).hexdigest()[:16]
