r"""The general equivalence theorem, any LR and WD schedule (pure numpy).

Glossary (PyTorch name -> symbol): ``lr`` -> :math:`\eta_t`, ``weight_decay`` ->
:math:`\lambda_t`, ``momentum`` -> :math:`\gamma`.

PyTorch's SGD (``dampening=0``, ``nesterov=False``), step counter t = 0, 1, ...::

    v_{t+1} = γ v_t + ∇L_t(θ_t) + λ_t θ_t,      v_0 = 0
    θ_{t+1} = θ_t − η_t v_{t+1}

Theorem (general schedule, zero momentum buffers; the project's derivation,
``proofs/general_schedule.py``, extending the paper's main theorem). Let
``r_t = η_t / η_{t-1}`` and

    c_0 = 1,   c_1 = 1 − η_0 λ_0,
    c_{t+1} = (1 + γ r_t − η_t λ_t) c_t − γ r_t c_{t−1}        (t ≥ 1).

If c stays positive, SGD with the same γ, **no weight decay** and

    η̃_t = η_t / (c_t c_{t+1})

from the same θ_0 (zero buffer, same batches) gives θ̃_t = θ_t / c_t for every
t, hence the same network function when the loss is scale invariant in θ.
Its momentum buffer obeys ṽ_t = c_t v_t + ((c_t − c_{t−1}) / η_{t−1}) θ_t.

Numerics. c_t decays geometrically (≈ α^t) and η̃_t grows like α^{-2t}, past
float64's range after ~7·10^5 steps of the paper's recipe. Everything is
therefore computed in log space from the ratio q_t = c_{t+1}/c_t, written as
d_t = q_t − 1 to avoid cancellation:

    d_0 = −η_0 λ_0,    d_t = γ r_t d_{t−1} / (1 + d_{t−1}) − η_t λ_t,
    log c_{t+1} = log c_t + log1p(d_t),

summed with Neumaier's compensated summation. The map d ↦ γ d/(1+d) − ηλ is
a contraction near its fixed point (slope γ/α² < 1), so rounding does not
accumulate in d.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .validation import as_lr_array, as_weight_decay_array, check_momentum

__all__ = [
    "ScaleSequenceError",
    "log_scale_factors",
    "scale_factors",
    "scale_ratios",
    "log_equivalent_lrs",
    "equivalent_lrs",
    "original_lrs",
    "log_original_lrs",
]

_LOG_MAX = math.log(np.finfo(np.float64).max)
_LOG_TINY = math.log(np.finfo(np.float64).tiny)


class ScaleSequenceError(ValueError):
    """The scale sequence c_t of a recipe reaches zero or goes negative.

    Raised with the step at which it happens: no exponential-LR recipe is
    equivalent past that step (the weight-decay run shrinks θ_S through zero).
    """


def _ratio_sequence(lrs: np.ndarray, wd: np.ndarray, momentum: float) -> np.ndarray:
    """d_t = c_{t+1}/c_t − 1 for t = 0..T−1 (see the module docstring)."""
    n = lrs.size
    d = np.empty(n)
    lr_l = lrs.tolist()
    wd_l = wd.tolist()
    g = momentum
    prev_lr = lr_l[0]
    dt = -prev_lr * wd_l[0]
    if dt <= -1.0:
        _raise_nonpositive(0, lr_l[0], wd_l[0], 1.0 + dt)
    d[0] = dt
    for t in range(1, n):
        lr = lr_l[t]
        dt = g * (lr / prev_lr) * dt / (1.0 + dt) - lr * wd_l[t]
        if dt <= -1.0:
            _raise_nonpositive(t, lr, wd_l[t], 1.0 + dt)
        d[t] = dt
        prev_lr = lr
    return d


def _raise_nonpositive(t: int, lr: float, wd: float, q: float) -> None:
    raise ScaleSequenceError(
        f"the scale sequence reaches zero or goes negative at step {t + 1}: "
        f"c_{t + 1}/c_{t} = {q:.6g} <= 0 with lr[{t}] = {lr!r}, weight_decay[{t}] = {wd!r}. "
        "The weight-decay run shrinks the scale-invariant weights through zero there "
        "(for constant hyper-parameters the equivalence needs lr*weight_decay <= (1 - sqrt(momentum))**2), "
        "so no exponential-LR recipe is equivalent past that step"
    )


def _prepare(lrs: Any, weight_decay: Any, momentum: Any) -> tuple[np.ndarray, np.ndarray, float]:
    lr_arr = as_lr_array(lrs, "lrs")
    wd_arr = as_weight_decay_array(weight_decay, lr_arr.size)
    return lr_arr, wd_arr, check_momentum(momentum)


def _log_scales_from_ratios(d: np.ndarray, block: int = 512) -> np.ndarray:
    """log c_0..log c_T from d_t: a cumulative sum of log1p(d_t) with small error.

    Within blocks of ``block`` terms the sum is numpy's running sum (error about
    block·eps·|block sum|); the block offsets are accumulated with
    ``math.fsum``-exact block totals, so the error does not grow with T beyond
    one rounding of |log c_t|.
    """
    terms = np.log1p(d)
    n = terms.size
    nb = -(-n // block)
    padded = np.zeros(nb * block)
    padded[:n] = terms
    rows = padded.reshape(nb, block)
    within = np.cumsum(rows, axis=1)
    totals = [math.fsum(row) for row in rows.tolist()]
    offsets = np.empty(nb)
    s = comp = 0.0  # Neumaier-compensated running sum of the block totals
    for k in range(nb):
        offsets[k] = s + comp
        x = totals[k]
        t = s + x
        comp += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
        s = t
    out = np.empty(n + 1)
    out[0] = 0.0
    out[1:] = (offsets[:, None] + within).reshape(-1)[:n]
    return out


def scale_ratios(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """Return q_t = c_{t+1}/c_t for t = 0..T−1 (general theorem, zero buffers).

    These are the per-step factors by which the eval-mode BatchNorm statistics
    of the exponential-LR run are divided (multiply running_mean by 1/q_t).
    """
    lr_arr, wd_arr, m = _prepare(lrs, weight_decay, momentum)
    return 1.0 + _ratio_sequence(lr_arr, wd_arr, m)


def log_scale_factors(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """Return log c_t for t = 0..T (natural log), T = len(lrs).

    General theorem (zero momentum buffers): c_0 = 1, c_1 = 1 − η_0λ_0,
    c_{t+1} = (1 + γ r_t − η_tλ_t) c_t − γ r_t c_{t−1}. Worked number: the
    paper's recipe (η=0.1, λ=5e-4, γ=0.9) gives log c_1 = log(1 − 5e-5).

    Raises :class:`ScaleSequenceError` naming the step where c_t <= 0.
    """
    lr_arr, wd_arr, m = _prepare(lrs, weight_decay, momentum)
    return _log_scales_from_ratios(_ratio_sequence(lr_arr, wd_arr, m))


def scale_factors(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """Return c_t for t = 0..len(lrs), so that θ̃_t = θ_t / c_t (general theorem).

    ``lrs`` are the per-step learning rates η_0..η_{T−1} (all > 0),
    ``weight_decay`` a float or per-step λ_t, ``momentum`` γ in [0, 1).
    Raises ``OverflowError`` if some c_t underflows float64 (use
    :func:`log_scale_factors`).
    """
    logc = log_scale_factors(lrs, weight_decay, momentum)
    if logc.min() < _LOG_TINY:
        t = int(np.flatnonzero(logc < _LOG_TINY)[0])
        raise OverflowError(
            f"c_{t} = exp({logc[t]:.6g}) underflows float64; use log_scale_factors() instead"
        )
    return np.exp(logc)


def log_equivalent_lrs(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """Return log η̃_t = log η_t − log c_t − log c_{t+1} for t = 0..T−1.

    Use this instead of :func:`equivalent_lrs` when η̃ passes 1e308 (the
    paper's recipe does so after about 7·10^5 steps).
    """
    lr_arr, wd_arr, m = _prepare(lrs, weight_decay, momentum)
    logc = _log_scales_from_ratios(_ratio_sequence(lr_arr, wd_arr, m))
    return np.log(lr_arr) - logc[:-1] - logc[1:]


def equivalent_lrs(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """Return the exponential-LR schedule η̃_t = η_t / (c_t c_{t+1}) (general theorem).

    SGD with momentum γ, **no weight decay** and these learning rates follows
    θ̃_t = θ_t / c_t, where θ_t is the run with ``lrs`` and ``weight_decay``
    (PyTorch's coupled weight decay, zero initial buffers). Worked number: for
    η=0.1, λ=5e-4, γ=0.9 the schedule grows by ×1.0010053 per step once the
    transient has settled (×1.48123 per 391-step epoch).

    Returns a float64 array of length ``len(lrs)``; raises ``OverflowError``
    if a value exceeds float64 (use :func:`log_equivalent_lrs`).
    """
    log_lr = log_equivalent_lrs(lrs, weight_decay, momentum)
    return _exp_or_overflow(log_lr, "log_equivalent_lrs")


def _exp_or_overflow(log_values: np.ndarray, alternative: str) -> np.ndarray:
    if log_values.size and log_values.max() > _LOG_MAX:
        t = int(np.flatnonzero(log_values > _LOG_MAX)[0])
        raise OverflowError(
            f"the equivalent learning rate at step {t} is exp({log_values[t]:.6g}), beyond float64's "
            f"maximum 1.8e308; use {alternative}() for log-space values"
        )
    return np.exp(log_values)


def log_original_lrs(
    equivalent: Any, weight_decay: Any, momentum: Any, *, log: bool = False
) -> np.ndarray:
    r"""Reverse map, in log space: the WD recipe η_t that an exponential-LR schedule equals.

    Given η̃_t (or log η̃_t with ``log=True``), λ_t and γ, solve step by step
    (the project's derivation, ``proofs/reverse_map.py``)::

        κ_0 = −λ_0,   κ_t = γ (1 − c_{t−1}/c_t) / η_{t−1} − λ_t = γ e_{t−1} κ_{t−1} / η_{t−1} − λ_t
        e_t = η̃_t c_t²,   η_t = e_t / (1 − e_t κ_t),   c_{t+1}/c_t = 1 / (1 − e_t κ_t)

    A WD recipe exists iff 1 − e_t κ_t > 0 at every step. For λ_t ≥ 0 that
    always holds: κ_0 = −λ_0 ≤ 0, and κ_t ≤ 0 makes c_{t+1}/c_t ≤ 1 and so
    κ_{t+1} ≤ 0; every positive schedule therefore has a WD recipe (the check
    stays as a guard against rounding). ``forward ∘ reverse`` is the identity
    (tested).
    """
    if log:
        arr = np.asarray(equivalent, dtype=np.float64)
        if arr.ndim != 1 or arr.size < 1 or not np.all(np.isfinite(arr)):
            raise ValueError(
                "equivalent (log values) must be a non-empty 1-D array of finite floats"
            )
        log_eq = arr
    else:
        log_eq = np.log(as_lr_array(equivalent, "equivalent"))
    wd = as_weight_decay_array(weight_decay, log_eq.size).tolist()
    g = check_momentum(momentum)
    out = np.empty(log_eq.size)
    logc = 0.0
    prev_lr = 1.0
    prev_ek = 0.0  # e_{t−1} κ_{t−1} = 1 − c_{t−1}/c_t, kept exactly to avoid 1 − 1/q cancelling
    for t, le in enumerate(log_eq.tolist()):
        kappa = -wd[t] if t == 0 else g * prev_ek / prev_lr - wd[t]
        e = math.exp(le + 2.0 * logc)
        ek = e * kappa
        denom = 1.0 - ek
        if not denom > 0.0:
            raise ValueError(
                f"no weight-decay recipe reproduces this schedule at step {t}: it needs "
                f"1 - e_t*kappa_t > 0 but got {denom:.6g} (equivalent lr too large for "
                f"weight_decay[{t}] = {wd[t]!r}, momentum = {g!r})"
            )
        lr = e / denom
        out[t] = math.log(lr)
        logc -= math.log1p(-ek)
        prev_lr, prev_ek = lr, ek
    return out


def original_lrs(
    equivalent: Any, weight_decay: Any, momentum: Any, *, log: bool = False
) -> np.ndarray:
    """Reverse map: the per-step LRs η_t of the SGD + WD recipe equal to ``equivalent``.

    See :func:`log_original_lrs` for the formula. ``original_lrs(equivalent_lrs(lrs,
    λ, γ), λ, γ) == lrs`` to rounding.
    """
    return np.exp(log_original_lrs(equivalent, weight_decay, momentum, log=log))
