"""The equivalent exponential-LR recipe as one object (pure numpy).

:class:`ExpLRSchedule` bundles what a run needs to follow θ̃_t = θ_t / c_t:
log η̃_t, log c_t and the momentum-buffer shifts (if any) of its form:

- ``general``: the general theorem, zero buffers, any schedule (exact);
- ``closed_form``: the paper's η α^(−2t−1) with the initial buffer (exact,
  constant hyper-parameters only);
- ``texp``: the paper's tapered exponential for piecewise-constant recipes,
  exact with ``correct_buffer=True`` (closed-form buffer at step 0 and a shift
  at each phase boundary), first-order otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .closed_form import (
    _texp_log_scales,
    _texp_shifts,
    closed_form_initial_buffer,
    log_closed_form_lrs,
)
from .exact import _exp_or_overflow, _log_scales_from_ratios, _ratio_sequence
from .validation import as_lr_array, as_weight_decay_array, check_momentum, check_steps

__all__ = ["ExpLRSchedule", "FORMS"]

FORMS = ("general", "closed_form", "texp")


@dataclass(frozen=True, eq=False)
class ExpLRSchedule:
    """An exponential-LR recipe equivalent to SGD(lr=η_t, weight_decay=λ_t, momentum=γ).

    Attributes: ``lrs`` (η_t, T), ``weight_decay`` (λ_t, T), ``momentum`` (γ),
    ``log_scales`` (log c_t, T+1), ``log_lrs`` (log η̃_t, T), ``buffer_shifts``
    ({t: δ_t}: at the start of step t add δ_t c_t² θ̃_t to the momentum buffer,
    θ̃ unrescaled) and ``form``.
    """

    form: str
    lrs: np.ndarray
    weight_decay: np.ndarray
    momentum: float
    log_scales: np.ndarray
    log_lrs: np.ndarray
    buffer_shifts: dict[int, float] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.lrs.size)

    @classmethod
    def general(cls, lrs: Any, weight_decay: Any, momentum: Any) -> ExpLRSchedule:
        """General theorem: η̃_t = η_t/(c_t c_{t+1}) with zero buffers (exact for any schedule)."""
        lr = as_lr_array(lrs)
        wd = as_weight_decay_array(weight_decay, lr.size)
        g = check_momentum(momentum)
        logc = _log_scales_from_ratios(_ratio_sequence(lr, wd, g))
        return cls("general", lr, wd, g, logc, np.log(lr) - logc[:-1] - logc[1:])

    @classmethod
    def closed_form(cls, lr: Any, weight_decay: Any, momentum: Any, steps: Any) -> ExpLRSchedule:
        """The paper's closed form η̃_t = η α^(−2t−1) with ṽ_0 = −(1−α)θ_0/(αη) (main theorem)."""
        n = check_steps(steps)
        log_lrs = log_closed_form_lrs(lr, weight_decay, momentum, n)
        lr_arr = np.full(n, float(lr))
        wd = np.full(n, float(weight_decay))
        log_a = np.log(lr_arr[0]) - log_lrs[0]  # log η − log η̃_0 = log α
        logc = log_a * np.arange(n + 1, dtype=np.float64)
        shifts = {0: closed_form_initial_buffer(lr, weight_decay, momentum)}
        return cls("closed_form", lr_arr, wd, float(momentum), logc, log_lrs, shifts)

    @classmethod
    def texp(
        cls, lrs: Any, weight_decay: Any, momentum: Any, *, correct_buffer: bool = True
    ) -> ExpLRSchedule:
        """TEXP for a piecewise-constant recipe; exact with ``correct_buffer`` (see closed_form)."""
        lr = as_lr_array(lrs)
        wd = as_weight_decay_array(weight_decay, lr.size)
        g = check_momentum(momentum)
        logc = _texp_log_scales(lr, wd, g)  # validated once above; the kernels assume it
        shifts = _texp_shifts(lr, wd, g) if correct_buffer else {}
        return cls("texp", lr, wd, g, logc, np.log(lr) - logc[:-1] - logc[1:], shifts)

    @classmethod
    def build(cls, form: str, lrs: Any, weight_decay: Any, momentum: Any) -> ExpLRSchedule:
        """Dispatch on ``form`` (one of :data:`FORMS`) for a per-step recipe."""
        if form == "general":
            return cls.general(lrs, weight_decay, momentum)
        if form == "texp":
            return cls.texp(lrs, weight_decay, momentum)
        if form == "closed_form":
            lr = as_lr_array(lrs)
            wd = as_weight_decay_array(weight_decay, lr.size)
            if np.ptp(lr) != 0 or np.ptp(wd) != 0:
                raise ValueError(
                    "form = 'closed_form' needs a constant lr and weight_decay; this recipe varies "
                    "(use form = 'general', exact for any schedule, or 'texp')"
                )
            return cls.closed_form(lr[0], wd[0], momentum, lr.size)
        raise ValueError(f"form = {form!r} is not one of {FORMS}")

    def equivalent_lrs(self) -> np.ndarray:
        """η̃_t as float64 (``OverflowError`` past 1.8e308: use ``log_lrs``)."""
        return _exp_or_overflow(self.log_lrs, "ExpLRSchedule.log_lrs")

    def scale_factors(self) -> np.ndarray:
        """c_t for t = 0..T (θ̃_t = θ_t / c_t)."""
        return np.exp(self.log_scales)

    def fingerprint(self) -> str:
        """A short hash identifying the schedule (checked on ``load_state_dict``)."""
        h = hashlib.sha256()
        h.update(self.form.encode())
        for arr in (self.lrs, self.weight_decay, self.log_lrs):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(repr((self.momentum, sorted(self.buffer_shifts.items()))).encode())
        return h.hexdigest()[:16]
