"""Main theorem without momentum: η̃_t = η(1 − ηλ)^(−2t−1), θ̃_t = (1 − ηλ)^(−t) θ_t.

Paper result: the main theorem, case without momentum (constant LR and WD).

Statement. For plain GD/SGD θ_{t+1} = θ_t − η(∇L(θ_t) + λθ_t) on a scale-invariant
loss with 0 < ηλ < 1, SGD without WD and LR η̃_t = η(1 − ηλ)^(−2t−1) from the same
θ_0 satisfies θ̃_t = (1 − ηλ)^(−t) θ_t for every t ≥ 0.

Derivation: seek θ̃_t = θ_t/c_t with c_0 = 1; matching the coefficients of θ_t and
∇L(θ_t) in θ̃_{t+1} = θ_{t+1}/c_{t+1} gives c_{t+1} = (1 − ηλ)c_t (solved by
``rsolve``) and η̃_t = η/(c_t c_{t+1}); then induction on a symbolic t.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym, vec, vector_coefficients
from proofs._sgd import torch_step

NAME = "no_momentum"
RESULT = "main theorem, case without momentum"
STATEMENT = (
    r"For GD with constant $\eta,\lambda>0$, $\eta\lambda<1$, on a scale-invariant loss, "
    r"GD without WD with $\tilde\eta_t=\eta(1-\eta\lambda)^{-2t-1}$ from the same $\theta_0$ "
    r"gives $\tilde\theta_t=(1-\eta\lambda)^{-t}\theta_t$ for all $t\ge0$."
)
ASSUMPTIONS = (
    r"Scale invariance: $G(\theta/c)=c\,G(\theta)$ for $c>0$ (proofs.scale\_invariance).",
    r"$\eta,\lambda>0$ and $q=1-\eta\lambda>0$ (so every $c_t=q^t>0$).",
    r"$\theta_{t+1}=\theta_t-\eta(G(\theta_t)+\lambda\theta_t)$ (momentum $0$).",
)

eta = sym("eta", r"\eta", positive=True)
lam = sym("lambda", r"\lambda", positive=True)
q = sym("q", r"q", positive=True)  # q = 1 − ηλ
c = sym("c_t", r"c_t", positive=True)
c_next = sym("c_next", r"c_{t+1}", positive=True)
eta_tilde = sym("etatilde_t", r"\tilde\eta_t", positive=True)
t = sym("t", "t", integer=True, nonnegative=True)
Q = sym("Q", r"q^{t}", positive=True)
theta = vec("theta_t", r"\theta_t")
theta0 = vec("theta_0", r"\theta_0")

#: The proved equivalent LR (with q = 1 − ηλ).
ETA_TILDE = eta * (1 - eta * lam) ** (-2 * t - 1)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Coefficient matching, rsolve, induction."""
    steps: list[Step] = []
    th_e, _ = torch_step(theta / c, sp.S.Zero, eta_tilde, 0, 0)
    th_w, _ = torch_step(theta, sp.S.Zero, eta, lam, 0)
    eqs = [sp.numer(sp.together(e)) for e in vector_coefficients(th_e - th_w / c_next).values()]
    sols = sp.solve(eqs, [eta_tilde, c_next], dict=True)
    steps.append(
        Step(
            "match coefficients",
            sp.Tuple(c_next, eta_tilde),
            sp.Tuple(sols[0][c_next], sols[0][eta_tilde]),
            r"$\tilde\theta_{t+1}=\theta_{t+1}/c_{t+1}$ from $\tilde\theta_t=\theta_t/c_t$: the "
            r"coefficients of $\theta_t$ and $G(\theta_t)$ give (uniquely) "
            r"$c_{t+1}=(1-\eta\lambda)c_t$ and $\tilde\eta_t=\eta/(c_tc_{t+1})$.",
            check=lambda: (
                len(sols) == 1
                and equal(sols[0][c_next], (1 - eta * lam) * c)
                and equal(sols[0][eta_tilde], eta / (c**2 * (1 - eta * lam)))
            ),
        )
    )
    cf = sp.Function("c")
    sol = sp.rsolve(cf(t + 1) - (1 - eta * lam) * cf(t), cf(t), {cf(0): 1})
    steps.append(
        Step(
            "rsolve",
            sol,
            (1 - eta * lam) ** t,
            r"$c_{t+1}=(1-\eta\lambda)c_t$, $c_0=1$ solved by \texttt{rsolve}.",
            check=lambda: (
                equal(sp.powsimp(sol.subs(eta * lam, 1 - q)), q**t)
                or equal(sol, (1 - eta * lam) ** t)
            ),
        )
    )
    steps.append(
        Step(
            "equivalent LR",
            eta / ((1 - eta * lam) ** t * (1 - eta * lam) ** (t + 1)),
            ETA_TILDE,
            r"$\tilde\eta_t=\eta/(c_tc_{t+1})=\eta(1-\eta\lambda)^{-2t-1}$.",
            check=lambda: (
                sp.powsimp(eta / ((1 - eta * lam) ** t * (1 - eta * lam) ** (t + 1)))
                == sp.powsimp(ETA_TILDE)
            ),
        )
    )
    # Induction with symbolic t, writing q = 1 − ηλ and Q = q^t.
    th_e, _ = torch_step(theta * q ** (-t), sp.S.Zero, eta * q ** (-2 * t - 1), 0, 0)
    th_w, _ = torch_step(theta, sp.S.Zero, eta, (1 - q) / eta, 0)

    def pw(e):
        return sp.expand_power_exp(sp.expand(e)).subs(q**t, Q)

    steps.append(
        Step(
            "base case",
            theta0 * q**0,
            theta0,
            r"$\tilde\theta_0=\theta_0=q^0\theta_0$.",
        )
    )
    steps.append(
        Step(
            "induction step",
            th_e,
            q ** (-t - 1) * th_w,
            r"If $\tilde\theta_t=q^{-t}\theta_t$, one step with $\tilde\eta_t=\eta q^{-2t-1}$ and "
            r"$G(q^{-t}\theta_t)=q^tG(\theta_t)$ gives $\tilde\theta_{t+1}=q^{-t-1}\theta_{t+1}$, "
            r"$q=1-\eta\lambda$.",
            check=lambda: equal(pw(th_e), pw(q ** (-t - 1) * th_w)),
        )
    )
    return tuple(steps)


NEGATIVE_WITNESS = {eta: sp.Rational(1, 10), lam: sp.Rational(1, 2)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the exponent −2t (forgetting the −1) also works."""
    wrong = eta * (1 - eta * lam) ** (-2 * t)
    th_e, _ = torch_step(theta0, sp.S.Zero, wrong.subs(t, 0), 0, 0)
    th_w, _ = torch_step(theta0, sp.S.Zero, eta, lam, 0)
    return Step(
        "exponent -2t instead of -2t-1",
        th_e,
        th_w / (1 - eta * lam),
        r"With $\tilde\eta_t=\eta(1-\eta\lambda)^{-2t}$ (a plausible off-by-one) the claim "
        r"$\tilde\theta_1=\theta_1/(1-\eta\lambda)$ is false.",
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
