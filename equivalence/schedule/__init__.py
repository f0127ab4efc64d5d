"""The schedule mathematics (pure numpy, no torch): scale factors c_t, equivalent learning rates η̃_t = η_t/(c_t c_{t+1}), the closed form and TEXP, pure LR schedules and :class:`ExpLRSchedule`.

:mod:`equivalence.schedule.exact` (the general recurrence), :mod:`equivalence.schedule.closed_form`
(constant hyper-parameters, TEXP), :mod:`equivalence.schedule.recipe` (a whole run's schedule in
log space), :mod:`equivalence.schedule.schedules` (pure ``step -> lr`` schedules) and
:mod:`equivalence.schedule.validation` (the argument checks they share).
"""

from __future__ import annotations

from . import schedules
from .closed_form import (
    alpha_root,
    closed_form_initial_buffer,
    closed_form_lrs,
    log_closed_form_lrs,
    log_texp_lrs,
    log_texp_scale_factors,
    one_minus_alpha,
    per_epoch_growth,
    texp_buffer_shifts,
    texp_deviation,
    texp_lrs,
)
from .exact import (
    ScaleSequenceError,
    equivalent_lrs,
    log_equivalent_lrs,
    log_original_lrs,
    log_scale_factors,
    original_lrs,
    scale_factors,
    scale_ratios,
)
from .recipe import FORMS, ExpLRSchedule

__all__ = [
    "FORMS",
    "ExpLRSchedule",
    "ScaleSequenceError",
    "alpha_root",
    "closed_form_initial_buffer",
    "closed_form_lrs",
    "equivalent_lrs",
    "log_closed_form_lrs",
    "log_equivalent_lrs",
    "log_original_lrs",
    "log_scale_factors",
    "log_texp_lrs",
    "log_texp_scale_factors",
    "one_minus_alpha",
    "original_lrs",
    "per_epoch_growth",
    "scale_factors",
    "scale_ratios",
    "schedules",
    "texp_buffer_shifts",
    "texp_deviation",
    "texp_lrs",
]
