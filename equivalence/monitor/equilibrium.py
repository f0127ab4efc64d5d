r"""The equilibrium predictions of ``proofs/equilibrium.py`` for PyTorch's SGD and AdamW on a scale-invariant weight.

:func:`predict_equilibrium` gives the steady state of SGD(lr=η, weight_decay=λ, momentum=γ):
the angular update Δ*, the weight norm ‖w*‖ (given σ² = E[‖g‖²‖w‖²]), the slowest rate ρ
and the relaxation time τ; :func:`predict_adamw_equilibrium` the same for
AdamW(lr=η, betas=(β1, ·), weight_decay=λ) (given G = E‖g/(√v̂ + ε)‖², G = C for isotropic
noise in C coordinates); :func:`steps_to_equilibrium` the steps until ‖w‖ is near ‖w*‖;
:class:`EquilibriumTracker` estimates σ² (SGD) or G (AdamW) along a run and predicts with
it, step by step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OPTIMIZERS",
    "Equilibrium",
    "EquilibriumTracker",
    "adamw_lag_jacobian",
    "predict_adamw_equilibrium",
    "predict_equilibrium",
    "steps_to_equilibrium",
]

#: The optimizers with a derived equilibrium: PyTorch's SGD and AdamW (decoupled decay).
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class Equilibrium:
    """The steady state of a scale-invariant weight under weight decay (``proofs/equilibrium.py``).

    SGD (:func:`predict_equilibrium`): ``angular_update`` Δ* = arccos(1 − ηλ/(1+γ)) (rad);
    ``norm`` ‖w*‖ = (ησ²(1+γ)/(λ(1−γ)(2(1+γ)−ηλ)))^{1/4} (NaN without σ²); ``rho`` the
    slowest eigenvalue ρ = (b + √(b²−4γ))/2, b = (1+γ) − 4ηλ + 2η²λ²/(1+γ), of the linearised
    moment map; ``relaxation_steps`` τ = −1/ln ρ ≈ (1−γ)/(4ηλ).

    AdamW (:func:`predict_adamw_equilibrium`): Δ* = arccos((e+β1)/(1+β1e)), e = 1 − ηλ;
    ‖w*‖ = (ηG(1−β1)(1+β1e)/(λ(1+β1)(2−ηλ)(1−β1e)))^{1/2}; ρ the largest eigenvalue of the
    moment map linearised with v̂'s lag (β2), ρ = max(e, β1)² without it; τ = −1/ln ρ
    ≈ (1 + 2c)/(2ηλ), c = ηλ/(1 − β2) ≪ 1.

    ``norm_power`` p: the power of the norm whose relative deviation |‖w‖^p/‖w*‖^p − 1|
    decays as ρ^t (4 for SGD, whose moment map closes in ‖w‖⁴; 2 for AdamW, whose moment
    map is affine in ‖w‖²).
    """

    angular_update: float
    norm: float
    rho: float
    relaxation_steps: float
    norm_power: int = 4


def _check_reals(lr: float, weight_decay: float, name: str, momentum: float) -> None:
    """lr > 0, weight_decay ≥ 0 and the momentum coefficient ``name`` in [0, 1), all finite
    reals (SGD's momentum, AdamW's beta1)."""
    for key, val in (("lr", lr), ("weight_decay", weight_decay), (name, momentum)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise TypeError(f"{key} must be a finite real number, got {val!r}")
    if lr <= 0:
        raise ValueError(f"lr = {lr!r} is outside the valid range 0 < lr < inf")
    if weight_decay < 0:
        raise ValueError(f"weight_decay = {weight_decay!r} is outside the valid range [0, inf)")
    if not 0 <= momentum < 1:
        raise ValueError(f"{name} = {momentum!r} is outside the valid range [0, 1)")


def _check_recipe(lr: float, weight_decay: float, momentum: float) -> None:
    _check_reals(lr, weight_decay, "momentum", momentum)
    if lr * weight_decay >= 2 * (1 + momentum):
        raise ValueError(
            f"lr * weight_decay = {lr * weight_decay!r} is outside the valid range "
            f"[0, 2 (1 + momentum)) = [0, {2 * (1 + momentum)!r}) (no steady state)"
        )


def predict_equilibrium(
    lr: float, weight_decay: float, momentum: float, sigma2: float | None = None
) -> Equilibrium:
    """Δ*, ‖w*‖, ρ and τ of ``proofs/equilibrium.py`` for SGD(lr=η, weight_decay=λ, momentum=γ).

    ``sigma2`` = E[‖g‖² ‖w‖²] (the gradient's squared norm at unit weight norm); without it
    the norm is NaN. With ``weight_decay = 0`` there is no equilibrium: Δ* = 0, ‖w*‖ = inf,
    ρ = 1, τ = inf.
    """
    _check_recipe(lr, weight_decay, momentum)
    if sigma2 is not None and (not math.isfinite(sigma2) or sigma2 < 0):
        raise ValueError(f"sigma2 = {sigma2!r} is outside the valid range [0, inf)")
    eta, lam, g = float(lr), float(weight_decay), float(momentum)
    e = eta * lam
    if e == 0:
        return Equilibrium(0.0, math.inf if sigma2 else math.nan, 1.0, math.inf)
    delta = math.acos(1.0 - e / (1.0 + g))
    norm = (
        math.nan
        if sigma2 is None
        else (eta * sigma2 * (1 + g) / (lam * (1 - g) * (2 * (1 + g) - e))) ** 0.25
    )
    b = (1 + g) - 4 * e + 2 * e * e / (1 + g)
    disc = b * b - 4 * g
    # complex roots (large ηλ) have modulus √γ; otherwise the larger real root
    rho = (b + math.sqrt(disc)) / 2 if disc >= 0 else math.sqrt(g)
    rho = max(rho, g * g)  # the other eigenvalue of the moment map
    tau = -1.0 / math.log(rho) if 0 < rho < 1 else math.inf
    return Equilibrium(delta, norm, rho, tau)


def _check_adamw_recipe(lr: float, weight_decay: float, beta1: float) -> None:
    _check_reals(lr, weight_decay, "beta1", beta1)
    if lr * weight_decay >= 1:
        raise ValueError(
            f"lr * weight_decay = {lr * weight_decay!r} is outside the valid range [0, 1) "
            "(AdamW's decay factor 1 - lr * weight_decay must be positive)"
        )


def adamw_lag_jacobian(lr: float, weight_decay: float, beta1: float, beta2: float) -> np.ndarray:
    """The Jacobian of AdamW's moment map with v̂'s lag at the steady state, in the scaled
    variables (‖w‖²/‖w*‖², ⟨w, m̃⟩/(ηG), ‖m̃‖²/G, v̂ relative to its steady level)
    (``proofs/equilibrium.py``, step "AdamW: linearisation with the second moment's lag")."""
    e = 1.0 - lr * weight_decay
    r = (1 - beta1) / (1 + beta1)
    k = (1 - e * e) * (1 - beta1 * e) / (r * (1 + beta1 * e))
    q = (1 - beta1) ** 2
    return np.array(
        [
            [e * e - beta2 * k * q, -2 * beta1 * e * k, beta1 * beta1 * k, -beta2 * k * q],
            [beta2 * q, beta1 * e, -beta1 * beta1, beta2 * q],
            [-beta2 * q, 0.0, beta1 * beta1, -beta2 * q],
            [beta2 - 1, 0.0, 0.0, beta2],
        ]
    )


def predict_adamw_equilibrium(
    lr: float,
    weight_decay: float,
    beta1: float,
    g2: float | None = None,
    beta2: float | None = None,
) -> Equilibrium:
    """Δ*, ‖w*‖, ρ and τ of ``proofs/equilibrium.py`` (steps "AdamW: ...") for PyTorch's
    AdamW(lr=η, betas=(β1, β2), weight_decay=λ) on a scale-invariant weight.

    ``g2`` = G = E‖g/(√v̂ + ε)‖², the squared norm of the per-coordinate normalised gradient
    (G = C, the number of coordinates, for isotropic noise with ε ≪ √v̂ and β2 → 1); without
    it the norm is NaN. ``beta2``: v̂'s lag slows the relaxation (ρ the largest eigenvalue of
    :func:`adamw_lag_jacobian`); without it ρ = max(1 − ηλ, β1)², v̂ in equilibrium with the
    norm (right for ηλ ≪ 1 − β2). Assumes t ≫ 1/(1 − β2) (bias corrections 1) and
    noise-dominated gradients. With ``weight_decay = 0`` there is no equilibrium: Δ* = 0,
    ‖w*‖ = inf, ρ = 1, τ = inf.
    """
    _check_adamw_recipe(lr, weight_decay, beta1)
    if g2 is not None and (not math.isfinite(g2) or g2 < 0):
        raise ValueError(f"g2 = {g2!r} is outside the valid range [0, inf)")
    if beta2 is not None and (
        isinstance(beta2, bool) or not isinstance(beta2, (int, float)) or not 0 <= beta2 < 1
    ):
        raise ValueError(f"beta2 = {beta2!r} is outside the valid range [0, 1)")
    eta, lam, b1 = float(lr), float(weight_decay), float(beta1)
    if eta * lam == 0:
        return Equilibrium(0.0, math.inf if g2 else math.nan, 1.0, math.inf, 2)
    e = 1.0 - eta * lam
    # 1 − cos Δ* = ηλ(1−β1)/(1+β1e), without cancellation: Δ* = 2 asin(√((1 − cos Δ*)/2))
    one_minus_cos = eta * lam * (1 - b1) / (1 + b1 * e)
    delta = 2.0 * math.asin(math.sqrt(one_minus_cos / 2))
    r = (1 - b1) / (1 + b1)
    norm = (
        math.nan
        if g2 is None
        else math.sqrt(eta * g2 * r * (1 + b1 * e) / (lam * (2 - eta * lam) * (1 - b1 * e)))
    )
    rho = max(e, b1) ** 2
    if beta2 is not None:
        jac = adamw_lag_jacobian(eta, lam, b1, float(beta2))
        rho = max(rho, float(np.max(np.abs(np.linalg.eigvals(jac)))))
    tau = -1.0 / math.log(rho) if 0 < rho < 1 else math.inf
    return Equilibrium(delta, norm, rho, tau, 2)


def steps_to_equilibrium(norm: float, eq: Equilibrium, rel_tol: float = 0.01) -> float:
    """Predicted steps until ‖w‖ is within ``rel_tol`` of ‖w*‖: τ ln(D/ε), 0 when already there.

    D = |‖w‖^p/‖w*‖^p − 1|, p = ``eq.norm_power``, decays as ρ^t near the steady state
    (``proofs/equilibrium.py``, linearisation; for SGD p = 4, exact for ‖w‖⁴ in the γ = 0,
    small-ηλ limit; for AdamW p = 2, exact for ‖w‖² with β1 = 0 and v̂ in equilibrium);
    ε = (1 ± rel_tol)^p − 1 on the side where ‖w‖ lies.
    """
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol = {rel_tol!r} is outside the valid range (0, 1)")
    if not (math.isfinite(eq.norm) and eq.norm > 0 and math.isfinite(norm)):
        return math.nan
    p = eq.norm_power
    rp = (norm / eq.norm) ** p
    d = abs(rp - 1.0)
    eps = (1 + rel_tol) ** p - 1 if rp >= 1 else 1 - (1 - rel_tol) ** p
    if d <= eps:
        return 0.0
    return eq.relaxation_steps * math.log(d / eps)


class EquilibriumTracker:
    """Per group: the noise statistic as a running mean over about one relaxation time (the
    norm's memory), and the equilibrium it predicts with the recipe of each recorded step.

    The statistic is σ² = E[‖g‖²‖w‖²] for SGD and G = E‖g/(√v̂ + ε)‖² for AdamW
    (``optimizer`` in :data:`OPTIMIZERS`); a group keeps one optimizer.
    ``every``: the monitor records every ``every``-th step (the relaxation time is in steps).
    """

    def __init__(self, n_groups: int, every: int = 1) -> None:
        self.every = every
        self.sigma2 = [math.nan] * n_groups
        self.count = [0] * n_groups

    @staticmethod
    def predict(
        optimizer: str,
        lr: float,
        weight_decay: float,
        momentum: float,
        stat: float | None,
        beta2: float | None = None,
    ) -> Equilibrium:
        """:func:`predict_equilibrium` (``"sgd"``, ``momentum`` = γ, ``stat`` = σ²) or
        :func:`predict_adamw_equilibrium` (``"adamw"``, ``momentum`` = β1, ``stat`` = G,
        ``beta2`` = β2)."""
        if optimizer == "sgd":
            return predict_equilibrium(lr, weight_decay, momentum, stat)
        if optimizer == "adamw":
            return predict_adamw_equilibrium(lr, weight_decay, momentum, stat, beta2)
        raise ValueError(f"optimizer = {optimizer!r} is not one of {OPTIMIZERS}")

    def update(
        self,
        k: int,
        lr: float,
        weight_decay: float,
        momentum: float,
        sigma2: float,
        optimizer: str = "sgd",
        beta2: float | None = None,
    ) -> Equilibrium:
        """Add group ``k``'s statistic (σ² for SGD, G for AdamW) of one recorded step; the
        prediction for that step's recipe (without the statistic where the recipe has none;
        NaN fields where it has no equilibrium). ``momentum`` is γ for SGD, β1 for AdamW;
        ``beta2`` AdamW's β2 (its lag slows the relaxation; the running mean's horizon is the
        norm's memory without it, ≈ 1/(2ηλ) steps for AdamW)."""
        nan = Equilibrium(math.nan, math.nan, math.nan, math.nan)
        try:
            eq0 = self.predict(optimizer, lr, weight_decay, momentum, None, beta2)
            # the norm's memory of the statistic: for AdamW ‖w‖² averages G with weight
            # (1 − ηλ)² per step, whatever v̂'s lag does to the relaxation
            memory = self.predict(optimizer, lr, weight_decay, momentum, None).relaxation_steps
        except ValueError:
            eq0, memory = nan, math.nan
        n = self.count[k] + 1
        horizon = memory / self.every if math.isfinite(memory) else n
        alpha = 1.0 / min(n, max(horizon, 1.0))
        prev = self.sigma2[k]
        self.sigma2[k] = sigma2 if not math.isfinite(prev) else prev + alpha * (sigma2 - prev)
        self.count[k] = n
        if not math.isfinite(self.sigma2[k]):
            return eq0
        try:
            return self.predict(optimizer, lr, weight_decay, momentum, self.sigma2[k], beta2)
        except ValueError:
            return eq0
