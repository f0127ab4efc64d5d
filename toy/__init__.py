r"""The BN + WD non-convergence counterexample of Li & Arora (ICLR 2020), reproduced.

Claim (the paper's toy example, docs/paper.md): with weight decay alone, or with
normalisation alone, gradient descent reaches a global minimum; with both it
never converges.

Setting. This follows the reconstruction in docs/mathematics.md ("The toy
counterexample"), which has **not been checked against the paper's text**: a
linear classifier w ∈ R^m on x ~ N(0, I_m) with labels y = sign(x_1), the
logistic loss, trained by full-batch gradient descent, with or without a
normalisation of its output (BN with its scale and bias fixed; with
population statistics the output is ⟨w, x⟩/‖w‖). Two modes:

- ``population`` (default): the exact population loss; it depends on w only
  through (w_1, ‖w_{2:}‖), so the expectation is a 2-D integral done by Gauss
  quadrature (:mod:`toy.model`), and what one sees is the dynamics, not
  sampling noise;
- ``sample``: n samples from a seeded ``numpy.random.Generator``, BN with
  batch statistics.

Regimes (``REGIMES``): ``wd_only`` (no BN, λ > 0: the regularised loss is
strongly convex), ``bn_only`` (BN, λ = 0), ``bn_wd`` (BN, λ > 0).

Explanation, made measurable (:mod:`toy.dynamics`): with BN,
⟨∇L(w) + λw, w⟩ = λ‖w‖² > 0, so there is no stationary point; the norm
decays until the effective learning rate η/‖w‖² exceeds 2/k (k = 1/√(2π), the
curvature of the direction loss at its minimum), i.e. ‖w‖² < ηk/2, where the
minimum is linearly unstable; the direction blows up, the norm is pushed back,
and this cycles for ever.

API: :func:`run_regimes`, :func:`predicted_threshold`, :func:`sweep`,
:class:`ToyConfig`; CLI: ``python -m toy --out DIR [--sweep] [--mode ...]``.
"""

from .config import ToyConfig
from .dynamics import (
    CONVERGENCE_CRITERION,
    REGIMES,
    SPIKE_ANGLE,
    convergence_verdict,
    find_optimum,
    gradient_descent,
    initial_point,
    map_threshold,
    predicted_onset_step,
    predicted_threshold,
    run_regimes,
    tangent_hessian,
)
from .model import (
    POPULATION_CURVATURE,
    PopulationObjective,
    SampleObjective,
    draw_samples,
    gauss_rule,
    make_objective,
    population_reduced,
)
from .sweep import predicted_boundary, sweep

__all__ = [
    "CONVERGENCE_CRITERION",
    "POPULATION_CURVATURE",
    "REGIMES",
    "SPIKE_ANGLE",
    "PopulationObjective",
    "SampleObjective",
    "ToyConfig",
    "convergence_verdict",
    "draw_samples",
    "find_optimum",
    "gauss_rule",
    "gradient_descent",
    "initial_point",
    "make_objective",
    "map_threshold",
    "population_reduced",
    "predicted_boundary",
    "predicted_onset_step",
    "predicted_threshold",
    "run_regimes",
    "sweep",
    "tangent_hessian",
]
