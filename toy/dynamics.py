r"""Gradient descent in the three regimes, the convergence verdict and the threshold.

Update (full-batch GD with weight decay, PyTorch's ``SGD(lr, weight_decay)``
without momentum):

    w_{t+1} = w_t − η (∇L(w_t) + λ w_t)

followed, when ``jitter`` ε > 0, by w_{t+1} += ε ‖w_{t+1}‖ ξ_t/√m with
ξ_t ~ N(0, I_m) from a seeded generator. This models one float64 rounding
error per step. It matters for one thing only: in the population model the
ray through e_1 is invariant (by symmetry the gradient has no component
across it), so in exact arithmetic the angle to e_1 decays without floor,
reaches 1e-500 and underflows to 0 before the norm reaches the threshold,
and BN + WD would then sit on e_1 while ‖w‖ → 0. Any implementation with
rounding, or with a finite sample, keeps the angle near 1e-16 instead, and
from there the instability grows within about √(18/(ηλ)) steps of the
threshold. ``jitter=0`` gives the exact-arithmetic behaviour.

Instability threshold (derivation here; summary in docs/mathematics.md).
With BN, L(w) = F(w/‖w‖), so ∇L(w) = ∇F(u)/‖w‖ is tangent and of size
1/‖w‖. Write w = r(cos θ, sin θ) in the plane of e_1 and w. One step moves
the direction by tan Δθ = −η F'(θ) / ((1 − ηλ) r²), so near the minimum
(F'(θ) ≈ k θ)

    θ_{t+1} ≈ (1 − η k / ((1 − ηλ) r_t²)) θ_t,

stable while |1 − ηk/((1−ηλ)r²)| < 1, i.e. while

    ‖w‖² > η k / (2 (1 − ηλ))   (≈ η k / 2 for ηλ ≪ 1).

The norm obeys ‖w_{t+1}‖² = (1−ηλ)²‖w_t‖² + η²‖∇L(w_t)‖², so once the
direction has settled it decays by (1−ηλ)² per step, crosses the threshold,
the direction blows up, the gradient term pushes the norm back above the
threshold, and the cycle repeats for ever.

No-stationary-point lemma: with BN, ⟨∇L(w), w⟩ = 0 (scale invariance), so
⟨∇L(w) + λw, w⟩ = λ‖w‖² > 0 for w ≠ 0, and by Cauchy–Schwarz
‖∇L(w) + λw‖ ≥ λ‖w‖: the gradient of the regularised loss can vanish only at
w = 0, where L is undefined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize

from .config import DEFAULT_JITTER, ToyConfig
from .model import (
    POPULATION_CURVATURE,
    PopulationObjective,
    SampleObjective,
    draw_samples,
    make_objective,
    population_reduced,
)

__all__ = [
    "REGIMES",
    "SPIKE_ANGLE",
    "CONVERGENCE_CRITERION",
    "Optimum",
    "find_optimum",
    "tangent_hessian",
    "gradient_descent",
    "convergence_verdict",
    "oscillation_stats",
    "predicted_threshold",
    "map_threshold",
    "predicted_onset_step",
    "initial_point",
    "run_regimes",
]

Objective = PopulationObjective | SampleObjective

REGIMES: dict[str, tuple[bool, bool]] = {
    # name: (normalized, uses weight decay)
    "wd_only": (False, True),
    "bn_only": (True, False),
    "bn_wd": (True, True),
}

SPIKE_ANGLE = 0.05
"""An error spike: the angle to the optimum rises above 0.05 rad (≈ 1.6% error)."""

CONVERGENCE_CRITERION = (
    "converged <=> over the last `tail` fraction of the steps, max ||grad(L + lambda/2 ||w||^2)|| "
    "<= grad_tol and max angle(w, optimum) <= angle_tol"
)


@dataclass(frozen=True)
class Optimum:
    """A global minimiser: its direction, the point itself (WD only) and the curvature.

    ``value`` is the minimum (WD only: of L + (λ/2)‖w‖²; BN: of the
    direction loss, the infimum of L + (λ/2)‖w‖² as well when λ > 0).
    ``curvature`` is, with BN, the largest eigenvalue k of the Hessian of the
    direction loss at the minimum along the sphere's tangent (population:
    1/√(2π)); without BN it is the smallest Hessian eigenvalue of the
    regularised loss (the strong-convexity constant).
    """

    direction: np.ndarray
    point: np.ndarray | None
    curvature: float
    value: float = float("nan")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def tangent_hessian(objective: Objective, u: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Eigenvalues of the Hessian of L at the unit vector u, on the tangent space u^⊥.

    Central differences of the gradient (error O(h²) + O(1e-16/h) ≈ 1e-10),
    symmetrised and projected with P = I − uuᵀ; the m − 1 tangent eigenvalues
    are returned in increasing order.
    """
    m = u.shape[0]
    jac = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = h
        jac[:, j] = (objective.value_and_grad(u + e)[1] - objective.value_and_grad(u - e)[1]) / (
            2 * h
        )
    jac = 0.5 * (jac + jac.T)
    basis = _tangent_basis(u)
    return np.linalg.eigvalsh(basis.T @ jac @ basis)


def _tangent_basis(u: np.ndarray) -> np.ndarray:
    """An orthonormal basis (m × (m−1)) of u^⊥."""
    m = u.shape[0]
    q, _ = np.linalg.qr(np.column_stack([u, np.eye(m)]))
    return q[:, 1:m]


def find_optimum(objective: Objective, weight_decay: float, dim: int) -> Optimum:
    """The global minimiser the regime should converge to.

    - plain, λ > 0: the unique minimiser w* of the strongly convex L + (λ/2)‖w‖²
      (population: w* = a* e_1 with G_a(a*, 0) + λ a* = 0, by Brent's method on
      the same quadrature the run uses; sample: Newton's method);
    - BN: the minimising direction u* of L on the sphere (population: e_1 by
      symmetry; sample: BFGS polished by Newton steps on the tangent space).
    """
    e1 = np.zeros(dim)
    e1[0] = 1.0
    if not objective.normalized:
        if weight_decay <= 0:
            raise ValueError(
                "without BN the regularised loss needs weight_decay > 0 for a minimiser"
            )
        if isinstance(objective, PopulationObjective):

            def stationarity(a: float) -> float:
                return float(population_reduced(a, 0.0, objective.rule)[1]) + weight_decay * a

            a_star = brentq(stationarity, 1e-12, 1e3, xtol=1e-15, rtol=1e-15)
            point = a_star * e1
        else:
            point = np.zeros(dim)
            x, y = objective.x, objective.y
            n = x.shape[0]
            for _ in range(100):
                _, grad = objective.value_and_grad(point)
                grad = grad + weight_decay * point
                s = y * (x @ point)
                curv = np.exp(-np.logaddexp(0.0, s) - np.logaddexp(0.0, -s))  # σ(s)σ(−s)
                hess = (x.T * curv) @ x / n + weight_decay * np.eye(dim)
                step = np.linalg.solve(hess, grad)
                point = point - step
                if float(np.linalg.norm(step)) <= 1e-15 * max(1.0, float(np.linalg.norm(point))):
                    break
        hess_eigs = _plain_hessian_eigs(objective, point, weight_decay)
        value = float(objective.value_and_grad(point)[0]) + 0.5 * weight_decay * float(
            point @ point
        )
        return Optimum(
            direction=_unit(point), point=point, curvature=float(hess_eigs[0]), value=value
        )
    if isinstance(objective, PopulationObjective):
        value = float(objective.value_and_grad(e1)[0])
        return Optimum(direction=e1, point=None, curvature=POPULATION_CURVATURE, value=value)
    res = minimize(
        lambda v: float(objective.value_and_grad(v)[0]),
        e1,
        jac=lambda v: objective.value_and_grad(v)[1],
        method="BFGS",
        options={"gtol": 1e-12, "maxiter": 10_000},
    )
    u = _unit(res.x)
    for _ in range(5):
        basis = _tangent_basis(u)
        grad_t = basis.T @ objective.value_and_grad(u)[1]
        hess_t = _tangent_hessian_matrix(objective, u, basis)
        u = _unit(u - basis @ np.linalg.solve(hess_t, grad_t))
    k_max = float(tangent_hessian(objective, u)[-1])
    value = float(objective.value_and_grad(u)[0])
    return Optimum(direction=u, point=None, curvature=k_max, value=value)


def _tangent_hessian_matrix(objective: Objective, u: np.ndarray, basis: np.ndarray) -> np.ndarray:
    h = 1e-5
    cols = []
    for j in range(basis.shape[1]):
        v = basis[:, j] * h
        cols.append(
            basis.T
            @ (objective.value_and_grad(u + v)[1] - objective.value_and_grad(u - v)[1])
            / (2 * h)
        )
    mat = np.column_stack(cols)
    return 0.5 * (mat + mat.T)


def _plain_hessian_eigs(objective: Objective, w: np.ndarray, weight_decay: float) -> np.ndarray:
    m = w.shape[0]
    h = 1e-5
    jac = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = h
        jac[:, j] = (objective.value_and_grad(w + e)[1] - objective.value_and_grad(w - e)[1]) / (
            2 * h
        )
    return np.linalg.eigvalsh(0.5 * (jac + jac.T)) + weight_decay


def gradient_descent(
    objective: Objective,
    w0: np.ndarray,
    lr: float,
    weight_decay: float,
    steps: int,
    direction: np.ndarray,
    rng: np.random.Generator | None = None,
    jitter: float = 0.0,
) -> dict[str, np.ndarray]:
    """Run w ← w − η(∇L(w) + λw) for ``steps`` steps and record every iterate.

    Returns arrays of length steps + 1 (iterate t = 0 … steps):
    ``loss`` L(w), ``objective`` L + (λ/2)‖w‖², ``grad_norm`` ‖∇L + λw‖,
    ``norm`` ‖w‖, ``angle`` ∠(w, optimum direction) in rad, ``error`` the
    training error, ``eff_lr`` η/‖w‖², ``inner`` ⟨∇L + λw, w⟩ (the lemma's
    left side), ``radial`` ⟨∇L, w⟩ (0 with BN), and ``w`` the final iterate.
    """
    if jitter > 0 and rng is None:
        raise ValueError("jitter > 0 needs an rng")
    w = np.array(w0, dtype=np.float64)
    m = w.shape[0]
    n = steps + 1
    rec = {
        key: np.empty(n)
        for key in ("loss", "objective", "grad_norm", "norm", "angle", "error", "inner", "radial")
    }
    loss, objective_, grad_norm = rec["loss"], rec["objective"], rec["grad_norm"]
    norms, angle, error, inner, radial = (
        rec["norm"],
        rec["angle"],
        rec["error"],
        rec["inner"],
        rec["radial"],
    )
    noise = rng.standard_normal((steps, m)) if (jitter > 0 and rng is not None) else None
    for t in range(n):
        value, grad, err = objective.evaluate(w)
        norm_sq = float(w @ w)
        full = grad + weight_decay * w
        along = float(w @ direction)
        loss[t] = value
        objective_[t] = value + 0.5 * weight_decay * norm_sq
        grad_norm[t] = math.sqrt(float(full @ full))
        norms[t] = math.sqrt(norm_sq)
        perp = w - along * direction
        angle[t] = math.atan2(math.sqrt(float(perp @ perp)), along)
        error[t] = err
        inner[t] = float(full @ w)
        radial[t] = float(grad @ w)
        if t == steps:
            break
        # w_{t+1} = w_t − η (∇L(w_t) + λ w_t)
        w = w - lr * full
        if noise is not None:
            # one rounding error of relative size ε, in a random direction
            w += (jitter * math.sqrt(float(w @ w)) / math.sqrt(m)) * noise[t]
    rec["eff_lr"] = lr / rec["norm"] ** 2
    rec["w"] = w
    return rec


def _tail_start(steps: int, tail: float) -> int:
    return min(steps, int(math.floor((1.0 - tail) * steps)))


def _spikes(angle: np.ndarray) -> int:
    """Upcrossings of SPIKE_ANGLE (a rise from below to above 0.05 rad)."""
    above = angle > SPIKE_ANGLE
    return int(np.count_nonzero(above[1:] & ~above[:-1]))


def convergence_verdict(traj: dict[str, np.ndarray], config: ToyConfig) -> dict[str, object]:
    """Apply CONVERGENCE_CRITERION to a trajectory; also report what the tail looks like."""
    steps = traj["norm"].shape[0] - 1
    start = _tail_start(steps, config.tail)
    grad_max = float(np.max(traj["grad_norm"][start:]))
    angle_max = float(np.max(traj["angle"][start:]))
    return {
        "converged": bool(grad_max <= config.grad_tol and angle_max <= config.angle_tol),
        "tail_start": start,
        "tail_max_grad_norm": grad_max,
        "tail_max_angle": angle_max,
        "final_grad_norm": float(traj["grad_norm"][-1]),
        "final_angle": float(traj["angle"][-1]),
        "final_norm": float(traj["norm"][-1]),
        "final_loss": float(traj["loss"][-1]),
        "final_error": float(traj["error"][-1]),
        "tail_spikes": _spikes(traj["angle"][start:]),
        "tail_norm_min": float(np.min(traj["norm"][start:])),
        "tail_norm_max": float(np.max(traj["norm"][start:])),
        "tail_loss_min": float(np.min(traj["loss"][start:])),
        "tail_loss_max": float(np.max(traj["loss"][start:])),
    }


def oscillation_stats(traj: dict[str, np.ndarray], start: int) -> dict[str, float | int]:
    """Cycle statistics of a trajectory from step ``start`` on."""
    norm = traj["norm"][start:]
    angle = traj["angle"][start:]
    return {
        "from_step": int(start),
        "spikes": _spikes(angle),
        "norm_min": float(norm.min()),
        "norm_max": float(norm.max()),
        "mean_norm_sq": float(np.mean(norm**2)),
        "angle_max": float(angle.max()),
        "loss_min": float(traj["loss"][start:].min()),
        "loss_max": float(traj["loss"][start:].max()),
        "error_max": float(traj["error"][start:].max()),
    }


def predicted_threshold(
    lr: float, curvature: float = POPULATION_CURVATURE, weight_decay: float = 0.0
) -> dict[str, float]:
    """The norm below which the minimum of the direction loss is linearly unstable.

    Module docstring: unstable once η k / ‖w‖² > 2, i.e. ‖w‖² < η k / 2
    (``norm_sq``); counting the factor (1 − ηλ) of the same step,
    ‖w‖² < η k / (2(1 − ηλ)) (``norm_sq_exact_step``). Worked number: η = 0.1,
    k = 1/√(2π) gives ‖w‖² < 0.019947, ‖w‖ < 0.14123.
    """
    if not lr > 0:
        raise ValueError(f"lr must be > 0 (valid range (0, inf)), got {lr!r}")
    if not curvature > 0:
        raise ValueError(f"curvature must be > 0 (valid range (0, inf)), got {curvature!r}")
    if not 0 <= weight_decay < 1 / lr:
        raise ValueError(f"weight_decay must be in [0, 1/lr), got {weight_decay!r}")
    norm_sq = lr * curvature / 2.0
    exact = norm_sq / (1.0 - lr * weight_decay)
    return {
        "curvature": float(curvature),
        "norm_sq": norm_sq,
        "norm": math.sqrt(norm_sq),
        "norm_sq_exact_step": exact,
        "norm_exact_step": math.sqrt(exact),
        "critical_eff_lr": 2.0 / curvature,
    }


def _direction_map_radius(
    objective: Objective, u: np.ndarray, norm_sq: float, lr: float, weight_decay: float
) -> float:
    """Spectral radius of the linearised GD map of the direction at w = r u, r² = norm_sq."""
    basis = _tangent_basis(u)
    h = 1e-6
    r = math.sqrt(norm_sq)

    def coords(w: np.ndarray) -> np.ndarray:
        return basis.T @ w / float(u @ w)

    cols = []
    for j in range(basis.shape[1]):
        out = []
        for sign in (1.0, -1.0):
            w = r * (u + sign * h * basis[:, j])
            w = w - lr * (objective.value_and_grad(w)[1] + weight_decay * w)
            out.append(coords(w))
        cols.append((out[0] - out[1]) / (2 * h))
    return float(np.max(np.abs(np.linalg.eigvals(np.column_stack(cols)))))


def map_threshold(objective: Objective, optimum: Optimum, lr: float, weight_decay: float) -> float:
    """Measured threshold: the ‖w‖² at which the actual GD step stops contracting the angle.

    Finite differences (h = 1e-6) of one GD step (the same code path as the
    run) about w = r u* give the linearised direction map; its spectral
    radius crosses 1 at the returned ‖w‖² (Brent's method).
    """
    k = optimum.curvature
    lo, hi = lr * k / 8.0, 2.0 * lr * k
    return float(
        brentq(
            lambda s: (
                _direction_map_radius(objective, optimum.direction, s, lr, weight_decay) - 1.0
            ),
            lo,
            hi,
            xtol=1e-14,
            rtol=1e-12,
        )
    )


def predicted_onset_step(
    lr: np.ndarray | float,
    weight_decay: np.ndarray | float,
    init_norm: float = 1.0,
    curvature: float = POPULATION_CURVATURE,
    jitter: float = DEFAULT_JITTER,
) -> tuple[np.ndarray, np.ndarray]:
    """(t*, t* + s): steps to reach the threshold, and to the first spike.

    The project's derivation (see :mod:`toy.sweep`): after the direction
    settles, ‖w_t‖² ≈ ‖w_0‖²(1 − ηλ)^{2t} reaches ηk/(2(1 − ηλ)) at
    t* = ln(ηk/(2(1−ηλ)‖w_0‖²)) / (2 ln(1−ηλ)); the angle then grows from the
    rounding floor ε = max(jitter, 2^-52) by ≈ exp(2ηλ s²) in s steps, so a
    spike (angle > SPIKE_ANGLE) comes s = √(ln(SPIKE_ANGLE/ε)/(2ηλ)) later.
    Worked number: η = 0.1, λ = 1e-2, ‖w_0‖ = 1: t* = 1956, s = 131.
    """
    lr = np.asarray(lr, dtype=np.float64)
    wd = np.asarray(weight_decay, dtype=np.float64)
    decay = lr * wd
    threshold = lr * curvature / (2.0 * (1.0 - decay))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cross = np.where(
            decay > 0,
            np.maximum(np.log(threshold / init_norm**2) / (2.0 * np.log1p(-decay)), 0.0),
            np.where(threshold >= init_norm**2, 0.0, np.inf),
        )
        floor = max(jitter, DEFAULT_JITTER)
        delay = np.where(decay > 0, np.sqrt(math.log(SPIKE_ANGLE / floor) / (2.0 * decay)), np.inf)
    return t_cross, t_cross + delay


def _first_spike(traj: dict[str, np.ndarray]) -> tuple[int | None, int | None]:
    """(first step with angle < 1e-3, first later step with angle > SPIKE_ANGLE)."""
    angle = traj["angle"]
    settled = np.flatnonzero(angle < 1e-3)
    if settled.size == 0:
        return None, None
    t0 = int(settled[0])
    later = np.flatnonzero(angle[t0:] > SPIKE_ANGLE)
    return t0, (t0 + int(later[0]) if later.size else None)


def _seeds(config: ToyConfig) -> list[np.random.SeedSequence]:
    """Independent streams: [data, w_0, jitter of each regime]."""
    return np.random.SeedSequence(config.seed).spawn(2 + len(REGIMES))


def initial_point(config: ToyConfig) -> np.ndarray:
    """w_0: a uniformly random direction (seeded) scaled to ``init_norm``."""
    w0 = np.random.default_rng(_seeds(config)[1]).standard_normal(config.dim)
    return w0 * (config.init_norm / np.linalg.norm(w0))


def run_regimes(config: ToyConfig | None = None) -> dict[str, object]:
    """Run WD only, BN only and BN + WD from one initial point; verdicts and thresholds.

    Implements the toy counterexample (docs/mathematics.md; the claim: WD
    or BN alone reach a global minimum, both together never converge). The
    three runs start at the same w_0 (uniform direction, norm ``init_norm``),
    drawn with ``numpy.random.default_rng(SeedSequence(seed))`` children.
    Returns a dict with ``config``, per-regime ``trajectories``, ``verdicts``
    and ``optima``, ``predicted_threshold``, ``measured_threshold`` and
    ``lemma``.
    """
    config = config or ToyConfig()
    seeds = _seeds(config)
    data = None
    if config.mode == "sample":
        data = draw_samples(config.n_samples, config.dim, np.random.default_rng(seeds[0]))
    w0 = initial_point(config)

    trajectories: dict[str, dict[str, np.ndarray]] = {}
    verdicts: dict[str, dict[str, object]] = {}
    optima: dict[str, Optimum] = {}
    objectives: dict[str, Objective] = {}
    for i, (name, (normalized, uses_wd)) in enumerate(REGIMES.items()):
        wd = config.weight_decay if uses_wd else 0.0
        objective = make_objective(config.mode, normalized, data)
        if not normalized and wd == 0:
            raise ValueError("the wd_only regime needs weight_decay > 0")
        optimum = find_optimum(objective, wd, config.dim)
        traj = gradient_descent(
            objective,
            w0,
            config.lr,
            wd,
            config.steps,
            optimum.direction,
            rng=np.random.default_rng(seeds[2 + i]),
            jitter=config.jitter,
        )
        objectives[name], optima[name], trajectories[name] = objective, optimum, traj
        verdicts[name] = convergence_verdict(traj, config)
        if optimum.point is not None:
            verdicts[name]["final_distance_to_optimum"] = float(
                np.linalg.norm(traj["w"] - optimum.point)
            )

    k = optima["bn_wd"].curvature
    predicted = predicted_threshold(config.lr, k, config.weight_decay)
    bn_wd = trajectories["bn_wd"]
    half = config.steps // 2
    settled_at, first_spike = _first_spike(bn_wd)
    map_norm_sq = map_threshold(
        objectives["bn_wd"], optima["bn_wd"], config.lr, config.weight_decay
    )
    last_half = oscillation_stats(bn_wd, half)
    measured: dict[str, object] = {
        "map_norm_sq": map_norm_sq,
        "last_half": last_half,
        "settled_step": settled_at,
        "first_spike_step": first_spike,
        "first_spike_norm": None if first_spike is None else float(bn_wd["norm"][first_spike]),
    }
    t_cross, t_onset = predicted_onset_step(
        config.lr, config.weight_decay, config.init_norm, k, config.jitter
    )
    measured["predicted_crossing_step"] = float(t_cross)
    measured["predicted_first_spike_step"] = float(t_onset)
    measured["mean_norm_sq_ratio"] = last_half["mean_norm_sq"] / predicted["norm_sq"]
    measured["map_norm_sq_ratio"] = map_norm_sq / predicted["norm_sq_exact_step"]

    lemma: dict[str, dict[str, float]] = {}
    for name, traj in trajectories.items():
        normalized, uses_wd = REGIMES[name]
        wd = config.weight_decay if uses_wd else 0.0
        lam_norm_sq = wd * traj["norm"] ** 2
        entry = {
            "final_inner": float(traj["inner"][-1]),
            "final_lambda_norm_sq": float(lam_norm_sq[-1]),
        }
        if normalized:
            # scale invariance: ⟨∇L(w), w⟩ = 0, in gradient units ⟨∇L, w⟩/‖w‖
            entry["max_abs_radial_over_norm"] = float(np.max(np.abs(traj["radial"]) / traj["norm"]))
        if normalized and wd > 0:
            entry["min_inner"] = float(np.min(traj["inner"]))
            entry["max_rel_dev_inner_vs_lambda_norm_sq"] = float(
                np.max(np.abs(traj["inner"] - lam_norm_sq) / lam_norm_sq)
            )
            entry["min_grad_norm_over_lambda_norm"] = float(
                np.min(traj["grad_norm"] / (wd * traj["norm"]))
            )
        lemma[name] = entry

    return {
        "config": config,
        "trajectories": trajectories,
        "verdicts": verdicts,
        "optima": optima,
        "predicted_threshold": predicted,
        "measured_threshold": measured,
        "lemma": lemma,
        "criterion": CONVERGENCE_CRITERION,
    }
