r"""The paper's constant-rate closed form and TEXP, its tapered exponential (pure numpy).

Main theorem, momentum case (Li & Arora, ICLR 2020), in PyTorch's SGD
convention. For constant η, λ, γ let α be the larger root of

    x² − (1 + γ − ηλ) x + γ = 0,

real iff ηλ ≤ (1 − √γ)² (then √γ ≤ α < 1, with α = √γ only at equality, and α ≈ 1 − ηλ/(1 − γ)). SGD with
no weight decay, learning rate η̃_t = η α^{−2t−1} and initial momentum buffer
ṽ_0 = −(1 − α) θ_0 / (α η) gives θ̃_t = α^{−t} θ_t exactly.

Worked number: η = 0.1, λ = 5e-4, γ = 0.9 gives α = 0.99949773, a growth
×1.0010053 per step and ×1.48123 per 391-step epoch (the paper's
"0.1 × 1.481^t").

TEXP (the paper's tapered exponential schedule for step decay): with phases I
of constant (η_I, λ_I) and roots α_I, η̃ grows by α_I^{−2} per step inside a
phase and is multiplied by (η_I/η_{I−1}) / (α_{I−1} α_I) on entering phase I.
It is exact when the exponential-LR run's buffer starts at the closed-form
value and, at the first step T of each new phase, is shifted by

    ṽ_T ← ṽ_T + δ_I c_T² θ̃_T,   δ_I = (1−α_{I−1})/(α_{I−1} η_{I−1}) − (1−α_I)/(α_I η_I),

with c_T = Π_{s<T} α_{phase(s)} (derived in ``proofs/texp.py``; the project's
derivation, not the paper's). Without the shift it is a first-order
approximation of the general theorem; :func:`texp_deviation` measures how far.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .exact import _exp_or_overflow, log_equivalent_lrs
from .validation import (
    as_lr_array,
    as_weight_decay_array,
    check_momentum,
    check_nonnegative_float,
    check_positive_float,
    check_steps,
)

__all__ = [
    "alpha_root",
    "one_minus_alpha",
    "closed_form_lrs",
    "log_closed_form_lrs",
    "closed_form_initial_buffer",
    "texp_lrs",
    "log_texp_lrs",
    "log_texp_scale_factors",
    "texp_buffer_shifts",
    "texp_deviation",
    "per_epoch_growth",
]


def _roots_parts(lr: float, weight_decay: float, momentum: float) -> tuple[float, float]:
    """Return (1 − α, log α) for the larger root, without cancellation.

    y = 1 − α is the smaller root of y² − (1 − γ + ηλ) y + ηλ = 0, so
    y = 2ηλ / ((1 − γ + ηλ) + √D) with D = ((1−√γ)² − ηλ)((1+√γ)² − ηλ).
    """
    el = lr * weight_decay
    sg = math.sqrt(momentum)
    bound = (1.0 - sg) ** 2
    if el > bound:
        raise ValueError(
            f"lr * weight_decay = {lr!r} * {weight_decay!r} = {el:.6g} exceeds (1 - sqrt(momentum))**2 = "
            f"{bound:.6g} for momentum = {momentum!r}: the characteristic equation "
            "x**2 - (1 + momentum - lr*weight_decay) x + momentum = 0 has no real root, so the closed "
            "form does not exist; valid range: 0 <= lr*weight_decay <= (1 - sqrt(momentum))**2"
        )
    disc = max(bound - el, 0.0) * ((1.0 + sg) ** 2 - el)
    b = 1.0 - momentum + el
    y = 0.0 if el == 0.0 else 2.0 * el / (b + math.sqrt(disc))
    return y, math.log1p(-y)


def _check_triplet(lr: Any, weight_decay: Any, momentum: Any) -> tuple[float, float, float]:
    return (
        check_positive_float(lr, "lr"),
        check_nonnegative_float(weight_decay, "weight_decay"),
        check_momentum(momentum),
    )


def alpha_root(lr: Any, weight_decay: Any, momentum: Any) -> float:
    """α: the larger root of x² − (1 + γ − ηλ)x + γ = 0 (main theorem, momentum case).

    Requires ηλ ≤ (1 − √γ)²; a ``ValueError`` says so otherwise. For γ = 0,
    α = 1 − ηλ. Example: ``alpha_root(0.1, 5e-4, 0.9) = 0.99949773...``.
    """
    y, _ = _roots_parts(*_check_triplet(lr, weight_decay, momentum))
    return 1.0 - y


def one_minus_alpha(lr: Any, weight_decay: Any, momentum: Any) -> float:
    """1 − α computed without cancellation (see :func:`alpha_root`)."""
    return _roots_parts(*_check_triplet(lr, weight_decay, momentum))[0]


def log_closed_form_lrs(lr: Any, weight_decay: Any, momentum: Any, steps: Any) -> np.ndarray:
    """log η̃_t = log η − (2t + 1) log α for t = 0..steps−1 (closed form)."""
    eta, lam, g = _check_triplet(lr, weight_decay, momentum)
    n = check_steps(steps)
    _, log_a = _roots_parts(eta, lam, g)
    t = np.arange(n, dtype=np.float64)
    return math.log(eta) - (2.0 * t + 1.0) * log_a


def closed_form_lrs(lr: Any, weight_decay: Any, momentum: Any, steps: Any) -> np.ndarray:
    """η̃_t = η α^(−2t−1), t = 0..steps−1: the paper's exponential schedule (main theorem).

    Exact with the initial buffer of :func:`closed_form_initial_buffer`; for
    γ = 0 this is η (1 − ηλ)^(−2t−1) (main theorem without momentum).
    """
    return _exp_or_overflow(
        log_closed_form_lrs(lr, weight_decay, momentum, steps), "log_closed_form_lrs"
    )


def closed_form_initial_buffer(lr: Any, weight_decay: Any, momentum: Any) -> float:
    """b = −(1 − α)/(α η): the closed form needs the buffer ṽ_0 = b θ_0 (main theorem).

    With PyTorch's SGD, set ``optimizer.state[p]["momentum_buffer"] = b * p``
    before the first step. For γ = 0 the buffer is never read.
    """
    eta, lam, g = _check_triplet(lr, weight_decay, momentum)
    y, _ = _roots_parts(eta, lam, g)
    return -y / ((1.0 - y) * eta)


def _phase_alphas(
    lrs: np.ndarray, wd: np.ndarray, momentum: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step (1 − α_t, log α_t) for the (η_t, λ_t) in force at step t."""
    pairs = np.stack([lrs, wd], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    parts = np.array([_roots_parts(float(e), float(w), momentum) for e, w in uniq])
    inverse = inverse.reshape(-1)
    return parts[inverse, 0], parts[inverse, 1]


def _texp_log_scales(lrs: np.ndarray, wd: np.ndarray, momentum: float) -> np.ndarray:
    """Kernel of :func:`log_texp_scale_factors` on validated arrays."""
    _, log_a = _phase_alphas(lrs, wd, momentum)
    return np.concatenate([[0.0], np.cumsum(log_a)])


def log_texp_scale_factors(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """log c_t of TEXP: c_t = Π_{s<t} α_s, α_s the root for (η_s, λ_s), t = 0..T."""
    lr_arr = as_lr_array(lrs)
    return _texp_log_scales(
        lr_arr, as_weight_decay_array(weight_decay, lr_arr.size), check_momentum(momentum)
    )


def log_texp_lrs(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """log of TEXP's η̃_t = η_t / (c_t c_{t+1}) with TEXP's c (see :func:`texp_lrs`)."""
    lr_arr = as_lr_array(lrs)
    logc = _texp_log_scales(
        lr_arr, as_weight_decay_array(weight_decay, lr_arr.size), check_momentum(momentum)
    )
    return np.log(lr_arr) - logc[:-1] - logc[1:]


def texp_lrs(lrs: Any, weight_decay: Any, momentum: Any) -> np.ndarray:
    """TEXP, the paper's tapered exponential schedule, for per-step ``lrs``.

    Inside a phase of constant (η_I, λ_I) the schedule grows by α_I^(−2) per
    step; entering phase I it is multiplied by (η_I/η_{I−1})/(α_{I−1} α_I).
    For the paper's recipe (0.1 → 0.01 → 0.001 at epochs 80, 120; λ = 5e-4;
    391 steps/epoch), log10 η̃ is about 12.65 just before the cut at epoch 80
    and 11.65 just after.
    """
    return _exp_or_overflow(log_texp_lrs(lrs, weight_decay, momentum), "log_texp_lrs")


def texp_buffer_shifts(lrs: Any, weight_decay: Any, momentum: Any) -> dict[int, float]:
    """Buffer shifts δ_T that make TEXP exact: at the start of step T add δ_T c_T² θ̃_T.

    Step 0 carries the closed-form initial buffer, δ_0 = −(1 − α_0)/(α_0 η_0);
    the first step T of each new phase carries
    δ = (1−α_prev)/(α_prev η_prev) − (1−α_new)/(α_new η_new). c_T is TEXP's
    scale (:func:`log_texp_scale_factors`), and θ̃ is the unrescaled exp-LR
    iterate. Keys are steps, values δ_T.
    """
    lr_arr = as_lr_array(lrs)
    return _texp_shifts(
        lr_arr, as_weight_decay_array(weight_decay, lr_arr.size), check_momentum(momentum)
    )


def _texp_shifts(lrs: np.ndarray, wd: np.ndarray, momentum: float) -> dict[int, float]:
    """Kernel of :func:`texp_buffer_shifts` on validated arrays."""
    y, log_a = _phase_alphas(lrs, wd, momentum)
    coef = y / (np.exp(log_a) * lrs)  # (1 − α_t)/(α_t η_t)
    shifts = {0: -float(coef[0])}
    change = np.flatnonzero(coef[1:] != coef[:-1]) + 1
    for t in change.tolist():
        shifts[t] = float(coef[t - 1] - coef[t])
    return shifts


def texp_deviation(lrs: Any, weight_decay: Any, momentum: Any) -> dict[str, float]:
    """How far TEXP is from the exact general form (zero buffers).

    Returns the largest |log(η̃_TEXP / η̃_exact)| over all steps, where it
    happens, and the same for the scale c_t. Both recipes start from zero
    buffers in this comparison; the residual is what the momentum-buffer
    transients at the start and at each phase boundary contribute.
    """
    lr_arr = as_lr_array(lrs)
    exact = log_equivalent_lrs(lr_arr, weight_decay, momentum)
    texp = log_texp_lrs(lr_arr, weight_decay, momentum)
    diff = np.abs(texp - exact)
    t = int(np.argmax(diff))
    return {
        "max_abs_log_ratio": float(diff[t]),
        "step_of_max": float(t),
        "final_abs_log_ratio": float(diff[-1]),
        "max_relative_lr_error": float(math.expm1(diff[t])),
    }


def per_epoch_growth(lr: Any, weight_decay: Any, momentum: Any, steps_per_epoch: Any) -> float:
    """Growth of the closed-form η̃ per epoch: α^(−2·steps_per_epoch).

    ``per_epoch_growth(0.1, 5e-4, 0.9, 391) = 1.48123...`` (the paper's 1.481).
    """
    spe = check_steps(steps_per_epoch, "steps_per_epoch")
    _, log_a = _roots_parts(*_check_triplet(lr, weight_decay, momentum))
    return math.exp(-2.0 * spe * log_a)
