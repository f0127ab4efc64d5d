"""The general theorem from any state: converting part-way through a run, buffer copied as is.

Paper result: the main theorem's general form (any LR and WD schedule,
proofs.general_schedule), started from an arbitrary optimizer state instead of a
zero momentum buffer: the project's extension for converting a run that has
already stepped.

Statement. Let the WD run (PyTorch SGD, momentum γ, LR η_t, WD λ_t, scale-invariant
loss) be at (θ_0, v_0) with v_0 *arbitrary*, and start the converted run at
θ̃_0 = θ_0, ṽ_0 = v_0 (the buffer copied as is). With

    c_0 = 1,  c_1 = 1 − η_0 λ_0,
    c_{t+1} = (1 + γ r_t − η_t λ_t) c_t − γ r_t c_{t−1}   (t ≥ 1, r_t = η_t/η_{t−1}),

and η̃_t = η_t/(c_t c_{t+1}), SGD without WD satisfies, while c_t > 0,

    θ̃_t = θ_t / c_t,     ṽ_t = c_t v_t + ((c_t − c_{t−1})/η_{t−1}) θ_t   (t ≥ 1).

Proof. At t = 0 the induction hypothesis of proofs.general_schedule,
θ̃_t = θ_t/c_t and ṽ_t = c_t v_t + κ_t θ_t, holds with c_0 = 1 and κ_0 = 0 for *any*
v_0, since ṽ_0 = v_0. The base case t = 0 → 1 is checked with v_0 ≠ 0 (and c_1,
η̃_0 are derived from it, not assumed); the induction step is the one of
proofs.general_schedule (it holds for any v_t and κ_t) and is checked again here. An
exact unrolled run with a nonzero initial buffer confirms it. Negative control:
zeroing the buffer at conversion is not equivalent (exact witness).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import sympy as sp

from proofs import general_schedule as gs
from proofs._core import Proof, Step, equal, sym, vec, vector_coefficients
from proofs._sgd import torch_step, unroll

NAME = "mid_run"
RESULT = "general theorem from any state (conversion part-way through a run)"
STATEMENT = (
    r"For a scale-invariant loss and PyTorch SGD with momentum $\gamma$, LR $\eta_t$ and WD "
    r"$\lambda_t$ started at $(\theta_0,v_0)$ with any buffer $v_0$: the run without WD from "
    r"$\tilde\theta_0=\theta_0$, $\tilde v_0=v_0$ (copied as is) with $c_0=1$, "
    r"$c_1=1-\eta_0\lambda_0$, $c_{t+1}=(1+\gamma r_t-\eta_t\lambda_t)c_t-\gamma r_tc_{t-1}$ and "
    r"$\tilde\eta_t=\eta_t/(c_tc_{t+1})$ gives $\tilde\theta_t=\theta_t/c_t$ and "
    r"$\tilde v_t=c_tv_t+\frac{c_t-c_{t-1}}{\eta_{t-1}}\theta_t$ ($t\ge1$) while $c_t>0$."
)
ASSUMPTIONS = (
    r"$L$ is scale invariant: $G(\theta/c)=c\,G(\theta)$ for $c>0$ (proofs.scale\_invariance).",
    r"$\eta_t,\lambda_t,\gamma>0$; $\theta_t,v_t$ abstract vectors; $v_0$ arbitrary (the state "
    r"of a run that has already stepped).",
    r"$c_t>0$ for all $t\le T$.",
    r"PyTorch's convention: $v_{t+1}=\gamma v_t+G(\theta_t)+\lambda_t\theta_t$, "
    r"$\theta_{t+1}=\theta_t-\eta_tv_{t+1}$.",
)

v0 = vec("v_0", r"v_0")
c1 = sym("c_1", "c_1", positive=True)
eta_tilde0 = sym("etatilde_0", r"\tilde\eta_0", positive=True)

#: The exact unrolled run: general_schedule's schedule and θ_0, with a nonzero buffer.
UNROLL_BUF0 = (Fraction(3, 10), Fraction(-1, 5), Fraction(7, 10))


def _solved_base():
    """Solve θ̃_1 = θ_1/c_1 for (c_1, η̃_0) from (θ_0, v_0), both runs with buffer v_0."""
    th_e, _ = torch_step(gs.theta0, v0, eta_tilde0, 0, gs.gamma)
    th_w, _ = torch_step(gs.theta0, v0, gs.eta0, gs.lam0, gs.gamma)
    eqs = [sp.numer(sp.together(e)) for e in vector_coefficients(th_e - th_w / c1).values()]
    return sp.solve(eqs, [c1, eta_tilde0], dict=True)


def unrolled_runs(buf0_converted) -> tuple[sp.Matrix, sp.Matrix]:
    """(θ̃_t, θ_t/c_t) for t = 0..6, exact, WD run from buffer UNROLL_BUF0.

    ``buf0_converted`` is the converted run's initial buffer.
    """
    cs = gs.scale_factors_exact(gs.UNROLL_LRS, gs.UNROLL_WDS, gs.UNROLL_MOMENTUM)
    lrs_e = gs.equivalent_lrs_exact(gs.UNROLL_LRS, gs.UNROLL_WDS, gs.UNROLL_MOMENTUM)
    n = len(gs.UNROLL_LRS)
    wd_run = unroll(
        gs.UNROLL_LRS, gs.UNROLL_WDS, gs.UNROLL_MOMENTUM, gs.UNROLL_THETA0, buf0=UNROLL_BUF0
    )
    exp_run = unroll(
        lrs_e, [Fraction(0)] * n, gs.UNROLL_MOMENTUM, gs.UNROLL_THETA0, buf0=buf0_converted
    )
    lhs = sp.Matrix([[sp.Rational(x.numerator, x.denominator) for x in th] for th in exp_run])
    rhs = sp.Matrix([[sp.Rational(x / cs[i]) for x in th] for i, th in enumerate(wd_run)])
    return lhs, rhs


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Hypothesis at t = 0, derived and checked base case with v_0 ≠ 0, induction, unrolled run."""
    steps: list[Step] = [
        Step(
            "hypothesis at t = 0, any buffer",
            v0,
            1 * v0 + 0 * gs.theta0,
            r"$\tilde v_0=v_0=c_0v_0+\kappa_0\theta_0$ with $c_0=1$, $\kappa_0=0$ and "
            r"$\tilde\theta_0=\theta_0=\theta_0/c_0$: the induction hypothesis of "
            r"proofs.general\_schedule holds at $t=0$ whatever $v_0$ is.",
        )
    ]
    sols = _solved_base()
    want = {c1: 1 - gs.eta0 * gs.lam0, eta_tilde0: gs.eta0 / (1 - gs.eta0 * gs.lam0)}
    steps.append(
        Step(
            "solve the base case for c_1 and the LR",
            sp.Tuple(c1, eta_tilde0),
            sp.Tuple(want[c1], want[eta_tilde0]),
            r"Match the coefficients of $\theta_0$, $v_0$ and $G(\theta_0)$ in "
            r"$\tilde\theta_1=\theta_1/c_1$, both runs starting from the buffer $v_0$: the unique "
            r"solution is $c_1=1-\eta_0\lambda_0$, $\tilde\eta_0=\eta_0/c_1$, the same as from a "
            r"zero buffer.",
            check=lambda: len(sols) == 1 and all(equal(sols[0][k], val) for k, val in want.items()),
        )
    )
    steps += gs.base_case_steps(v0, r"the same buffer $v_0\neq0$")
    steps += gs.induction_steps()
    lhs, rhs = unrolled_runs(UNROLL_BUF0)
    steps.append(
        Step(
            "exact unrolled check, buffer copied",
            r"\tilde\theta_t\ (t=0..6)",
            r"\theta_t/c_t\ (t=0..6)",
            r"Independent of the induction: the schedule, loss and $\theta_0$ of "
            r"proofs.general\_schedule's unrolled check, both runs starting from the buffer "
            r"$v_0=(3/10,-1/5,7/10)$, in exact rationals: every $\tilde\theta_t$ equals "
            r"$\theta_t/c_t$.",
            method="exact",
            check=lambda: lhs == rhs,
        )
    )
    return tuple(steps)


NEGATIVE_WITNESS = {
    gs.eta0: sp.Rational(1, 10),
    gs.lam0: sp.Rational(1, 2),
    gs.gamma: sp.Rational(9, 10),
}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: zeroing the buffer at conversion keeps θ̃_1 = θ_1/c_1."""
    c_1 = 1 - gs.eta0 * gs.lam0
    th_e, _ = torch_step(gs.theta0, sp.S.Zero, gs.eta0 / c_1, 0, gs.gamma)
    th_w, _ = torch_step(gs.theta0, v0, gs.eta0, gs.lam0, gs.gamma)
    return Step(
        "buffer zeroed at conversion",
        th_e,
        th_w / c_1,
        r"With $\tilde v_0=0$ instead of $v_0$ (and the same $c_t$, $\tilde\eta_t$) the claim "
        r"$\tilde\theta_1=\theta_1/c_1$ is false: the coefficient of $v_0$ is "
        r"$\gamma\eta_0/c_1\neq0$ (exact counterexample).",
    )


PROOF = Proof(
    name=NAME,
    result=RESULT,
    statement=STATEMENT,
    assumptions=ASSUMPTIONS,
    derive=derive,
    negative_control=negative_control,
    witness=NEGATIVE_WITNESS,
)
