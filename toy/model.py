r"""Losses and gradients of the toy: population (exact quadrature) and sample.

The model is a linear classifier w ∈ R^m on x ~ N(0, I_m) with labels
y = sign(x_1) and the logistic loss ℓ(s) = log(1 + e^{-s}) of the margin s.

**Plain** (no normalisation): L(w) = E ℓ(y ⟨w, x⟩).
**BN** (scale and bias fixed at 1 and 0): the output is
(⟨w, x⟩ − μ) / σ with μ, σ the mean and standard deviation of ⟨w, x⟩; with
population statistics μ = 0 and σ = ‖w‖, so L_BN(w) = L(w / ‖w‖) depends on
the direction of w only (scale invariance).

Population reduction. Write a = w_1, b = ‖w_{2:}‖ and z for the projection of
x_{2:} on w_{2:}/b. Then y⟨w, x⟩ = a|x_1| + b·sign(x_1)z, and sign(x_1)z is a
standard normal independent of |x_1|, so

    L(w) = G(a, b) = E ℓ(a t + b z),   t = |x_1| (half-normal), z ~ N(0, 1),

    ∇L(w) = G_a(a, b) e_1 + G_b(a, b) w_{2:}/b,
    G_a = E ℓ'(a t + b z) t,   G_b = E ℓ'(a t + b z) z.

The 2-D integral is done with a tensor Gauss rule: Gauss–Legendre on
t ∈ [0, 8.5] (the half-normal mass beyond 8.5 is 2e-17) and Gauss–Hermite
(probabilists') in z. ℓ is analytic in the strip |Im s| < π, so both rules
converge geometrically; with the default 40 × 36 nodes the error is below 1e-13
for |a| ≤ 4, |b| ≤ 1.5 (checked in the tests against a finer rule, finite
differences and Monte Carlo).

Curvature of the direction loss (the project's derivation; docs/mathematics.md, "The toy
counterexample"): on the unit circle u = (cos θ, sin θ), F(θ) = G(cos θ, sin θ)
has its minimum at θ = 0 with

    k = F''(0) = G_bb(1, 0) − G_a(1, 0) = E ℓ''(t) − E t ℓ'(t) = −2 φ(0) ℓ'(0)
      = 1/√(2π) ≈ 0.398942

(integrate E t ℓ'(t) = ∫_0^∞ 2tφ(t) ℓ'(t) dt by parts: it equals
2φ(0)ℓ'(0) + E ℓ''(t), and ℓ'(0) = −1/2). The "k ≈ 0.4" of the threshold ηk/2 is this
number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from numpy.typing import ArrayLike
from scipy.special import expit

__all__ = [
    "POPULATION_CURVATURE",
    "Quadrature",
    "gauss_rule",
    "population_reduced",
    "PopulationObjective",
    "SampleObjective",
    "make_objective",
    "draw_samples",
]

POPULATION_CURVATURE = 1.0 / math.sqrt(2.0 * math.pi)
"""k = 1/√(2π): curvature of the population direction loss at its minimum e_1."""

T_MAX = 8.5


@dataclass(frozen=True)
class Quadrature:
    """A 2-D product rule for E f(t, z), t half-normal, z standard normal."""

    t: np.ndarray
    z: np.ndarray
    weight: np.ndarray


def gauss_rule(n_t: int = 40, n_z: int = 36, t_max: float = T_MAX) -> Quadrature:
    """Tensor Gauss–Legendre (t ∈ [0, t_max]) × Gauss–Hermite (z) rule.

    Weights include the densities 2φ(t) and φ(z), so Σ weight ≈ 1.
    """
    if n_t < 2 or n_z < 2:
        raise ValueError(f"n_t and n_z must be >= 2, got n_t={n_t}, n_z={n_z}")
    x, wl = leggauss(n_t)
    t = 0.5 * t_max * (x + 1.0)
    wt = 0.5 * t_max * wl * 2.0 * np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    z, wz = hermegauss(n_z)
    wz = wz / math.sqrt(2.0 * math.pi)
    tt, zz = np.meshgrid(t, z, indexing="ij")
    return Quadrature(t=tt.ravel(), z=zz.ravel(), weight=np.outer(wt, wz).ravel())


_DEFAULT_RULE = gauss_rule()


def logistic_loss(s: np.ndarray) -> np.ndarray:
    """ℓ(s) = log(1 + e^{-s}), computed without overflow."""
    return np.logaddexp(0.0, -s)


def logistic_dloss(s: np.ndarray) -> np.ndarray:
    """ℓ'(s) = −σ(−s)."""
    return -expit(-s)


def logistic_loss_and_dloss(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ℓ(s), ℓ'(s)) from one exponential e = exp(−|s|), without overflow.

    ℓ(s) = max(−s, 0) + log1p(e);  σ(−s) = e/(1+e) for s ≥ 0, 1/(1+e) otherwise.
    """
    e = np.exp(-np.abs(s))
    inv = 1.0 / (1.0 + e)
    loss = np.log1p(e) + np.maximum(-s, 0.0)
    dloss = -np.where(s >= 0, e * inv, inv)
    return loss, dloss


def population_reduced(
    a: ArrayLike, b: ArrayLike, rule: Quadrature = _DEFAULT_RULE, with_value: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, G_a, G_b) at arrays a, b of one shape: the reduced population loss.

    G(a, b) = E ℓ(a t + b z) (module docstring), by the product Gauss rule.
    With ``with_value=False`` G is not computed (returned as NaN), which
    saves the logarithms.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s = a[..., None] * rule.t + b[..., None] * rule.z
    if with_value:
        loss, dloss = logistic_loss_and_dloss(s)
        value = loss @ rule.weight
    else:
        e = np.exp(-np.abs(s))
        inv = 1.0 / (1.0 + e)
        dloss = -np.where(s >= 0, e * inv, inv)
        value = np.full(a.shape, np.nan)
    p = dloss * rule.weight
    return value, p @ rule.t, p @ rule.z


def _lift(w: np.ndarray, ga: np.ndarray, gb: np.ndarray, b: np.ndarray) -> np.ndarray:
    """∇L(w) = G_a e_1 + G_b w_{2:}/b (the orthogonal part vanishes at b = 0 by symmetry)."""
    grad = np.empty_like(w)
    grad[..., 0] = ga
    safe = np.where(b > 0, b, 1.0)
    grad[..., 1:] = np.where(b[..., None] > 0, (gb / safe)[..., None] * w[..., 1:], 0.0)
    return grad


@dataclass
class PopulationObjective:
    """Exact population loss of the toy, plain or BN (module docstring).

    ``value_and_grad`` accepts w of shape (m,) or a batch (B, m).
    """

    normalized: bool
    rule: Quadrature = field(default_factory=lambda: _DEFAULT_RULE)

    def value_and_grad(
        self, w: np.ndarray, with_value: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(L(w), ∇L(w)); for BN, ∇L(w) = (I − uuᵀ)∇G(u)/‖w‖ with u = w/‖w‖."""
        w = np.asarray(w, dtype=np.float64)
        if self.normalized:
            r = np.linalg.norm(w, axis=-1)
            u = w / r[..., None]
        else:
            u = w
        b = np.linalg.norm(u[..., 1:], axis=-1)
        value, ga, gb = population_reduced(u[..., 0], b, self.rule, with_value)
        grad = _lift(u, ga, gb, b)
        if self.normalized:
            radial = np.sum(grad * u, axis=-1)
            grad = (grad - radial[..., None] * u) / r[..., None]
        return value, grad

    def evaluate(self, w: np.ndarray) -> tuple[float, np.ndarray, float]:
        """(L(w), ∇L(w), error(w)) for one vector w, with few array operations.

        Same formulas as ``value_and_grad``; written out for the GD loop.
        """
        a = float(w[0])
        rest = w[1:]
        b = math.sqrt(float(rest @ rest))
        if self.normalized:
            r = math.hypot(a, b)
            a, b = a / r, b / r
        reduced = population_reduced(a, b, self.rule)
        value, ga, gb = float(reduced[0]), float(reduced[1]), float(reduced[2])
        grad = np.empty_like(w)
        grad[0] = ga
        grad[1:] = (gb / b) * rest if b > 0 else 0.0
        if self.normalized:
            # u = w/r; ∇G(u)·u = ga·a + gb·b; project and divide by r
            radial = ga * a + gb * b
            grad[0] = (ga - radial * a) / r
            grad[1:] = ((gb / b - radial) / (r * r)) * rest if b > 0 else 0.0
        return value, grad, math.atan2(b, a) / math.pi

    def error(self, w: np.ndarray) -> np.ndarray:
        """Population 0-1 error of sign(⟨w, x⟩): arccos(w_1/‖w‖)/π (the same with BN)."""
        w = np.asarray(w, dtype=np.float64)
        return np.arctan2(np.linalg.norm(w[..., 1:], axis=-1), w[..., 0]) / math.pi


def draw_samples(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n i.i.d. inputs x ~ N(0, I_m) with labels y = sign(x_1) (ties to +1)."""
    x = rng.standard_normal((n, dim))
    y = np.where(x[:, 0] >= 0, 1.0, -1.0)
    return x, y


@dataclass
class SampleObjective:
    """Empirical loss on a fixed batch; BN uses the batch mean and (biased) variance.

    BN: h = Xw, f = (h − mean h)/std h, L = mean ℓ(y f). Its backward pass is
    the usual one, ∂L/∂h = (g − mean g − f·mean(g f))/std h with g = ∂L/∂f.
    No ε is added to the variance, so L is exactly scale invariant.
    """

    x: np.ndarray
    y: np.ndarray
    normalized: bool

    def _outputs(self, w: np.ndarray) -> tuple[np.ndarray, float]:
        h = self.x @ w
        if not self.normalized:
            return h, 1.0
        c = h - h.mean()
        sd = float(np.sqrt(np.mean(c * c)))
        return c / sd, sd

    def value_and_grad(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(L(w), ∇L(w)) of the empirical loss (one vector w of shape (m,))."""
        w = np.asarray(w, dtype=np.float64)
        f, sd = self._outputs(w)
        s = self.y * f
        n = s.shape[0]
        value = np.mean(logistic_loss(s))
        g = logistic_dloss(s) * self.y / n
        if self.normalized:
            g = (g - g.mean() - f * np.mean(g * f)) / sd
        return np.asarray(value), self.x.T @ g

    def evaluate(self, w: np.ndarray) -> tuple[float, np.ndarray, float]:
        """(L(w), ∇L(w), training error) in one pass over the batch."""
        w = np.asarray(w, dtype=np.float64)
        f, sd = self._outputs(w)
        s = self.y * f
        loss, dloss = logistic_loss_and_dloss(s)
        g = dloss * self.y / s.shape[0]
        if self.normalized:
            g = (g - g.mean() - f * np.mean(g * f)) / sd
        return float(loss.mean()), self.x.T @ g, float(np.mean(s <= 0))

    def error(self, w: np.ndarray) -> np.ndarray:
        """Training 0-1 error: the fraction of samples with y·f(x) ≤ 0."""
        f, _ = self._outputs(np.asarray(w, dtype=np.float64))
        return np.asarray(np.mean(self.y * f <= 0))


def make_objective(
    mode: str, normalized: bool, data: tuple[np.ndarray, np.ndarray] | None = None
) -> PopulationObjective | SampleObjective:
    """The population objective, or the sample one on ``data = (x, y)``."""
    if mode == "population":
        return PopulationObjective(normalized=normalized)
    if mode == "sample":
        if data is None:
            raise ValueError("mode='sample' needs data=(x, y)")
        return SampleObjective(x=data[0], y=data[1], normalized=normalized)
    raise ValueError(f"mode must be 'population' or 'sample', got {mode!r}")
