"""Run configuration for the toy counterexample (a frozen dataclass).

Glossary (code name -> symbol in the docs):

- ``lr``            η, the learning rate of full-batch gradient descent
- ``weight_decay``  λ, the weight-decay coefficient (L2 penalty (λ/2)‖w‖²)
- ``dim``           m, the input dimension
- ``steps``         the number of gradient-descent steps of each run
- ``init_norm``     ‖w_0‖
- ``jitter``        ε, the relative size of the per-step rounding perturbation

The defaults (η = 0.1, λ = 1e-2, m = 5) are the setting of the reconstruction
(docs/paper.md, "toy example"); ``steps = 10_000`` is ten times the time scale 1/(ηλ) of
the norm's decay, enough for every regime to settle and for BN + WD to cycle
about thirty times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ToyConfig", "MODES", "DEFAULT_JITTER"]

MODES = ("population", "sample")

DEFAULT_JITTER = 2.0**-52
"""Float64's machine epsilon: one rounding error per step, relative to ‖w‖."""


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class ToyConfig:
    """Settings of one toy run (all three regimes share them).

    Implements the setting reconstructed in docs/mathematics.md, "The toy counterexample":
    a linear classifier w ∈ R^m on x ~ N(0, I_m), y = sign(x_1), logistic
    loss, trained by full-batch gradient descent with step η and weight decay
    λ, with or without a normalisation of its output.

    Raises ``ValueError`` (``TypeError`` for a wrong type) naming the argument,
    its value and the valid range.
    """

    lr: float = 0.1
    weight_decay: float = 1e-2
    dim: int = 5
    steps: int = 10_000
    mode: str = "population"
    n_samples: int = 20_000
    seed: int = 0
    init_norm: float = 1.0
    jitter: float = DEFAULT_JITTER
    grad_tol: float = 1e-8
    angle_tol: float = 1e-6
    tail: float = 0.25

    def __post_init__(self) -> None:
        lr = _check_real("lr", self.lr)
        if not lr > 0:
            raise ValueError(f"lr must be > 0 (valid range (0, inf)), got {self.lr!r}")
        wd = _check_real("weight_decay", self.weight_decay)
        if wd < 0:
            raise ValueError(
                f"weight_decay must be >= 0 (valid range [0, inf)), got {self.weight_decay!r}"
            )
        if lr * wd >= 1:
            raise ValueError(
                f"lr * weight_decay must be < 1 (else w -> (1 - lr*weight_decay) w flips or "
                f"zeroes w), got lr={self.lr!r}, weight_decay={self.weight_decay!r}"
            )
        if _check_int("dim", self.dim) < 2:
            raise ValueError(f"dim must be >= 2 (valid range [2, inf)), got {self.dim!r}")
        if _check_int("steps", self.steps) < 1:
            raise ValueError(f"steps must be >= 1 (valid range [1, inf)), got {self.steps!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if _check_int("n_samples", self.n_samples) < 2:
            raise ValueError(
                f"n_samples must be >= 2 (valid range [2, inf)), got {self.n_samples!r}"
            )
        if _check_int("seed", self.seed) < 0:
            raise ValueError(f"seed must be >= 0 (valid range [0, inf)), got {self.seed!r}")
        if not _check_real("init_norm", self.init_norm) > 0:
            raise ValueError(
                f"init_norm must be > 0 (valid range (0, inf)), got {self.init_norm!r}"
            )
        jit = _check_real("jitter", self.jitter)
        if not 0 <= jit < 1e-3:
            raise ValueError(f"jitter must be in [0, 1e-3), got {self.jitter!r}")
        if not _check_real("grad_tol", self.grad_tol) > 0:
            raise ValueError(f"grad_tol must be > 0 (valid range (0, inf)), got {self.grad_tol!r}")
        if not _check_real("angle_tol", self.angle_tol) > 0:
            raise ValueError(
                f"angle_tol must be > 0 (valid range (0, inf)), got {self.angle_tol!r}"
            )
        tail = _check_real("tail", self.tail)
        if not 0 < tail <= 0.5:
            raise ValueError(f"tail must be in (0, 0.5], got {self.tail!r}")
