r"""The equilibrium predictions of ``proofs/equilibrium.py`` for PyTorch's SGD on a scale-invariant weight.

:func:`predict_equilibrium` gives the steady state of SGD(lr=η, weight_decay=λ, momentum=γ):
the angular update Δ*, the weight norm ‖w*‖ (given σ² = E[‖g‖²‖w‖²]), the slowest rate ρ
and the relaxation time τ; :func:`steps_to_equilibrium` the steps until ‖w‖ is near ‖w*‖;
:class:`EquilibriumTracker` estimates σ² along a run and predicts with it, step by step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Equilibrium", "EquilibriumTracker", "predict_equilibrium", "steps_to_equilibrium"]


@dataclass(frozen=True)
class Equilibrium:
    """The steady state of PyTorch's SGD on a scale-invariant weight (``proofs/equilibrium.py``).

    ``angular_update`` Δ* = arccos(1 − ηλ/(1+γ)) (rad); ``norm`` ‖w*‖ =
    (ησ²(1+γ)/(λ(1−γ)(2(1+γ)−ηλ)))^{1/4} (NaN without σ²); ``rho`` the slowest eigenvalue
    ρ = (b + √(b²−4γ))/2, b = (1+γ) − 4ηλ + 2η²λ²/(1+γ), of the linearised moment map;
    ``relaxation_steps`` τ = −1/ln ρ ≈ (1−γ)/(4ηλ).
    """

    angular_update: float
    norm: float
    rho: float
    relaxation_steps: float


def _check_recipe(lr: float, weight_decay: float, momentum: float) -> None:
    for name, val in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise TypeError(f"{name} must be a finite real number, got {val!r}")
    if lr <= 0:
        raise ValueError(f"lr = {lr!r} is outside the valid range 0 < lr < inf")
    if weight_decay < 0:
        raise ValueError(f"weight_decay = {weight_decay!r} is outside the valid range [0, inf)")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum = {momentum!r} is outside the valid range [0, 1)")
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


def steps_to_equilibrium(norm: float, eq: Equilibrium, rel_tol: float = 0.01) -> float:
    """Predicted steps until ‖w‖ is within ``rel_tol`` of ‖w*‖: τ ln(D/ε), 0 when already there.

    D = |‖w‖⁴/‖w*‖⁴ − 1| decays as ρ^t near the steady state (``proofs/equilibrium.py``,
    linearisation; exact for ‖w‖⁴ in the γ = 0, small-ηλ limit); ε = (1 ± rel_tol)⁴ − 1 on the
    side where ‖w‖ lies.
    """
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol = {rel_tol!r} is outside the valid range (0, 1)")
    if not (math.isfinite(eq.norm) and eq.norm > 0 and math.isfinite(norm)):
        return math.nan
    r4 = (norm / eq.norm) ** 4
    d = abs(r4 - 1.0)
    eps = (1 + rel_tol) ** 4 - 1 if r4 >= 1 else 1 - (1 - rel_tol) ** 4
    if d <= eps:
        return 0.0
    return eq.relaxation_steps * math.log(d / eps)


class EquilibriumTracker:
    """Per group: σ² = E[‖g‖²‖w‖²] as a running mean over about one relaxation time (the
    norm's memory), and the equilibrium it predicts with the recipe of each recorded step.

    ``every``: the monitor records every ``every``-th step (the relaxation time is in steps).
    """

    def __init__(self, n_groups: int, every: int = 1) -> None:
        self.every = every
        self.sigma2 = [math.nan] * n_groups
        self.count = [0] * n_groups

    def update(
        self, k: int, lr: float, weight_decay: float, momentum: float, sigma2: float
    ) -> Equilibrium:
        """Add group ``k``'s σ² of one recorded step; the prediction for that step's recipe
        (without σ² where the recipe has none; NaN fields where it has no equilibrium)."""
        try:
            eq0 = predict_equilibrium(lr, weight_decay, momentum)
        except ValueError:
            eq0 = Equilibrium(math.nan, math.nan, math.nan, math.nan)
        n = self.count[k] + 1
        horizon = eq0.relaxation_steps / self.every if math.isfinite(eq0.relaxation_steps) else n
        alpha = 1.0 / min(n, max(horizon, 1.0))
        prev = self.sigma2[k]
        self.sigma2[k] = sigma2 if not math.isfinite(prev) else prev + alpha * (sigma2 - prev)
        self.count[k] = n
        try:
            return predict_equilibrium(lr, weight_decay, momentum, self.sigma2[k])
        except ValueError:
            return eq0
