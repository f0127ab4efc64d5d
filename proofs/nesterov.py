"""SGD with Nesterov momentum and weight decay: no hyper-parameter-only map; exact with a state rewrite.

Paper result: none; a project result extending the main theorem (optimizer table: ``torch.optim.SGD(nesterov=True)``).

Statement. For PyTorch's Nesterov SGD (v_{t+1} = γ v_t + d_t, θ_{t+1} = θ_t − η_t (d_t + γ v_{t+1}),
d_t = ∇L(θ_t) + λ_t θ_t) on a scale-invariant loss:

(a) no schedule of the LR *and* the momentum makes the same optimizer without weight
    decay follow θ_t/c_t for any scale sequence: already over three steps the
    coefficient equations have no solution (Gröbner basis {1} at an exact witness);
(b) with one state rewrite per step it is exact: with c_{t+1} = (1 − η_t λ_t) c_t (c_0 = 1)
    and η̃_t = η_t/(c_t c_{t+1}), rewrite the buffer before step t as
    ṽ ← (c_t/c_{t−1}) ṽ + (c_t² λ_t/γ) θ̃_t (ṽ = (λ_0/γ) θ̃_0 at t = 0); the step then
    leaves ṽ_{t+1} = c_t v_{t+1}, and θ̃_t = θ_t/c_t for all t.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym
from proofs._table import coefficient_equations, no_solution, sgd_step, unrolled_equations

NAME = "nesterov"
RESULT = "optimizer table: SGD with Nesterov momentum (exact only with a state rewrite)"
STATEMENT = (
    r"For PyTorch's Nesterov SGD with WD on a scale-invariant loss, no LR and momentum "
    r"schedules give an exact map onto Nesterov SGD without WD; with the buffer rewritten "
    r"before step $t$ as $\tilde v\leftarrow(c_t/c_{t-1})\tilde v+(c_t^2\lambda_t/\gamma)"
    r"\tilde\theta_t$, $c_{t+1}=(1-\eta_t\lambda_t)c_t$ and $\tilde\eta_t=\eta_t/(c_tc_{t+1})$ "
    r"give $\tilde\theta_t=\theta_t/c_t$."
)
ASSUMPTIONS = (
    r"Scale invariance: the gradient at $\theta/c$ is $c$ times the gradient at $\theta$ ($c>0$).",
    r"$\gamma>0$, $\eta_t,\lambda_t>0$, $\eta_t\lambda_t<1$, dampening $0$ (PyTorch requires it).",
    r"For (a): the gradients at the iterates are independent vectors (a scale-invariant loss "
    r"can take any gradients $\perp\theta_t$ at finitely many points, in enough dimensions).",
)

eta = sym("eta_t", r"\eta_t", positive=True)
lam = sym("lambda_t", r"\lambda_t", positive=True)
gam = sym("gamma", r"\gamma", positive=True)
c = sym("c_t", r"c_t", positive=True)
p = sym("p_t", r"p_t", real=True)
kap = sym("kappa_t", r"\kappa_t", real=True)
et = sym("etatilde", r"\tilde\eta_t", positive=True)
cn = sym("c_next", r"c_{t+1}", positive=True)
pn = sym("p_next", r"p_{t+1}", real=True)
kn = sym("kappa_next", r"\kappa_{t+1}", real=True)
th = sym("theta_t", r"\theta_t")
cn2 = sym("c_next2", r"c_{t+1}", positive=True)
lam2 = sym("lambda_next", r"\lambda_{t+1}", positive=True)
v = sym("v_t", r"v_t")
g = sym("g_t", r"g_t")

R = sp.Rational
WITNESS_LRS = [R(1, 10), R(1, 5), R(1, 10)]
WITNESS_WDS = [R(1, 2)] * 3
WITNESS_GAMMA = R(9, 10)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """(a) the over-determined unrolled system; (b) the rewrite, derived by coefficient matching."""
    eqs, unknowns = unrolled_equations(
        "nest", 3, WITNESS_LRS, WITNESS_WDS, WITNESS_GAMMA, free_momentum=True
    )
    T1, V1 = sgd_step("nest", th, v, g, eta, lam, gam)
    Tt, Vt = sgd_step("nest", th / c, p * v + kap * th, c * g, et, 0, gam)
    sys_b = coefficient_equations(Tt - T1 / cn, [th, v, g])
    sys_b += coefficient_equations(Vt - (pn * V1 + kn * T1), [th, v, g])
    sol = sp.solve(sys_b, [et, cn, pn, kn, p, kap], dict=True)
    expected = {
        p: c,
        kap: c * lam / gam,
        cn: (1 - eta * lam) * c,
        pn: c,
        kn: sp.S.Zero,
        et: eta / (c**2 * (1 - eta * lam)),
    }
    return (
        Step(
            "no hyper-parameter map",
            sp.Tuple(*eqs[:3]),
            sp.Tuple(0, 0, 0),
            r"Three steps from $v_0=0$ with unknown $\tilde\eta_t$, $\tilde\gamma_t$ and "
            r"$c_{t+1}$ ($t<3$) and $\eta=(1/10,1/5,1/10)$, $\lambda=1/2$, $\gamma=9/10$: the "
            r"coefficients of $\theta_0,g_0,g_1,g_2$ give 9 polynomial equations in 9 unknowns "
            r"whose Gr\"obner basis is $\{1\}$: no solution, so no schedule of LR and momentum "
            r"is exact (shown: the first equations).",
            method="sympy (Groebner)",
            check=lambda: no_solution(eqs, unknowns),
        ),
        Step(
            "state rewrite",
            sp.Tuple(*(k for k in expected)),
            sp.Tuple(*expected.values()),
            r"Letting the incoming buffer $\tilde v_t=p_tv_t+\kappa_t\theta_t$ be chosen freely "
            r"(a rewrite), coefficient matching has the unique solution $p_t=c_t$, "
            r"$\kappa_t=c_t\lambda_t/\gamma$, $c_{t+1}=(1-\eta_t\lambda_t)c_t$, "
            r"$\tilde\eta_t=\eta_t/(c_tc_{t+1})$, and leaves $\tilde v_{t+1}=c_tv_{t+1}$: the "
            r"rewrite $\tilde v\leftarrow(c_t/c_{t-1})\tilde v+(c_t^2\lambda_t/\gamma)\tilde\theta_t$ "
            r"restores the required form before every step.",
            check=lambda: (
                len(sol) == 1 and all(equal(sol[0][k], val) for k, val in expected.items())
            ),
        ),
        Step(
            "rewrite closes the induction",
            (cn2 / c) * (c * v) + (cn2**2 * lam2 / gam) * (th / cn2),
            cn2 * v + (cn2 * lam2 / gam) * th,
            r"After step $t$ the buffer is $c_tv_{t+1}$; with $\tilde\theta_{t+1}=\theta_{t+1}/"
            r"c_{t+1}$ the rewrite $\tilde v\leftarrow(c_{t+1}/c_t)\tilde v+(c_{t+1}^2\lambda_{t+1}"
            r"/\gamma)\tilde\theta_{t+1}$ gives $c_{t+1}v_{t+1}+(c_{t+1}\lambda_{t+1}/\gamma)"
            r"\theta_{t+1}$, the form step $t+1$ needs (here $v,\theta$ stand for $v_{t+1},"
            r"\theta_{t+1}$).",
        ),
    )


NEGATIVE_WITNESS = {eta: R(1, 10), lam: R(1, 2), gam: R(9, 10), c: R(4, 5), th: 1, v: 1, g: 1}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: rescaling the buffer alone (κ_t = 0, no θ̃ term) is enough."""
    T1, _ = sgd_step("nest", th, v, g, eta, lam, gam)
    cnext = (1 - eta * lam) * c
    Tt, _ = sgd_step("nest", th / c, c * v, c * g, eta / (c * cnext), 0, gam)
    return Step(
        "buffer rescaled only",
        Tt,
        T1 / cnext,
        r"Without the $\tilde\theta$ term of the rewrite ($\tilde v_t=c_tv_t$) the step is not "
        r"$\theta_{t+1}/c_{t+1}$: the decay seen through the look-ahead $\gamma v_{t+1}$ is missing.",
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
