"""SGD with the LR inside the velocity (Keras/TensorFlow) and weight decay: exact with LR and momentum schedules.

Paper result: none; a project result extending the main theorem (optimizer table: ``v ← γv − η(∇L + λθ); θ ← θ + v``).

Statement. On a scale-invariant loss, the Keras convention with momentum γ, LR η_t and
coupled decay λ_t equals the same convention without weight decay when *both* the LR
and the momentum are scheduled:

    c_0 = c_{−1} = 1,  c_1 = 1 − η_0 λ_0,  c_{t+1} = (1 + γ − η_t λ_t) c_t − γ c_{t−1},
    η̃_t = η_t/(c_t c_{t+1}),  γ̃_t = γ c_{t−1}/c_{t+1},

giving θ̃_t = θ_t/c_t and ṽ_t = p_t v_t + κ_t θ_t with p_t = 1/c_{t−1},
c_{t−1}κ_t = c_{t−1}/c_t − 1 (while c_t > 0): the scale sequence of PyTorch's constant-LR
recursion, whatever the LR schedule. With the momentum fixed (the LR alone) there is no map: over three steps
the coefficient equations have no solution (Gröbner basis {1} at an exact witness).
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym
from proofs._table import coefficient_equations, no_solution, sgd_step, unrolled_equations

NAME = "lr_in_velocity"
RESULT = "optimizer table: LR inside the velocity (exact with LR and momentum schedules)"
STATEMENT = (
    r"For $v\leftarrow\gamma v-\eta_t(\nabla L+\lambda_t\theta)$, $\theta\leftarrow\theta+v$ on a "
    r"scale-invariant loss, the same update without WD with $\tilde\eta_t=\eta_t/(c_tc_{t+1})$ "
    r"and $\tilde\gamma_t=\gamma c_{t-1}/c_{t+1}$, $c_{t+1}=(1+\gamma-\eta_t\lambda_t)c_t-\gamma "
    r"c_{t-1}$, $c_1=1-\eta_0\lambda_0$, $c_0=c_{-1}=1$, gives $\tilde\theta_t=\theta_t/c_t$; "
    r"with $\gamma$ fixed no LR schedule does."
)
ASSUMPTIONS = (
    r"Scale invariance: the gradient at $\theta/c$ is $c$ times the gradient at $\theta$ ($c>0$).",
    r"$\gamma>0$, $\eta_t,\lambda_t>0$, $c_t>0$.",
    r"For the refutation: the gradients at the iterates are independent vectors.",
)

eta = sym("eta_t", r"\eta_t", positive=True)
lam = sym("lambda_t", r"\lambda_t", positive=True)
gam = sym("gamma", r"\gamma", positive=True)
c = sym("c_t", r"c_t", positive=True)
cp = sym("c_prev", r"c_{t-1}", positive=True)
p = sym("p_t", r"p_t", positive=True)
kap = sym("kappa_t", r"\kappa_t", real=True)
et = sym("etatilde", r"\tilde\eta_t", positive=True)
gt = sym("gammatilde", r"\tilde\gamma_t", positive=True)
cn = sym("c_next", r"c_{t+1}", positive=True)
pn = sym("p_next", r"p_{t+1}", real=True)
kn = sym("kappa_next", r"\kappa_{t+1}", real=True)
th = sym("theta_t", r"\theta_t")
v = sym("v_t", r"v_t")
g = sym("g_t", r"g_t")

R = sp.Rational
WITNESS_LRS = [R(1, 10), R(1, 5), R(1, 10)]
WITNESS_WDS = [R(1, 2)] * 3
WITNESS_GAMMA = R(9, 10)

C_NEXT = (1 + gam - eta * lam) * c - gam * cp
# the incoming buffer coefficients along the run: p_t = 1/c_{t-1}, κ_t = (c_{t-1}/c_t − 1)/c_{t-1}
P_T = 1 / cp
K_T = (cp / c - 1) / cp


def _step_system(p_val, kap_val):
    T1, V1 = sgd_step("keras", th, v, g, eta, lam, gam)
    Tt, Vt = sgd_step("keras", th / c, p_val * v + kap_val * th, c * g, et, 0, gt)
    eqs = coefficient_equations(Tt - T1 / cn, [th, v, g])
    eqs += coefficient_equations(Vt - (pn * V1 + kn * T1), [th, v, g])
    return sp.solve(eqs, [et, gt, cn, pn, kn], dict=True)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """General step (LR and momentum derived), the run's buffer form, the LR-only refutation."""
    sol = _step_system(p, kap)
    c_next = c * (1 - eta * lam - gam * kap / p)
    gen = {
        cn: c_next,
        et: eta / (c * c_next),
        gt: gam / (p * c_next),
        pn: 1 / c,
        kn: (eta * lam + gam * kap / p) / c_next,
    }
    run = _step_system(P_T, K_T)
    run_expected = {
        cn: C_NEXT,
        et: eta / (c * C_NEXT),
        gt: gam * cp / C_NEXT,
        pn: 1 / c,
        kn: (c / C_NEXT - 1) / c,
    }
    eqs, unknowns = unrolled_equations(
        "keras", 3, WITNESS_LRS, WITNESS_WDS, WITNESS_GAMMA, free_momentum=False
    )
    return (
        Step(
            "general step",
            sp.Tuple(*gen),
            sp.Tuple(*gen.values()),
            r"With $\tilde\theta_t=\theta_t/c_t$, $\tilde v_t=p_tv_t+\kappa_t\theta_t$ and unknown "
            r"$\tilde\eta_t,\tilde\gamma_t$: matching the coefficients of $\theta_t,v_t,g_t$ has a "
            r"unique solution for \emph{every} incoming $(p_t,\kappa_t)$, with $p_{t+1}=1/c_t$: "
            r"no rewrite is needed.",
            check=lambda: len(sol) == 1 and all(equal(sol[0][k], val) for k, val in gen.items()),
        ),
        Step(
            "along the run",
            sp.Tuple(*run_expected),
            sp.Tuple(*run_expected.values()),
            r"With $p_t=1/c_{t-1}$ and $c_{t-1}\kappa_t=c_{t-1}/c_t-1$ (true at $t=1$ from "
            r"$v_0=0$, $c_0=1$) the step gives $c_{t+1}=(1+\gamma-\eta_t\lambda_t)c_t-\gamma c_{t-1}$, "
            r"$\tilde\eta_t=\eta_t/(c_tc_{t+1})$, $\tilde\gamma_t=\gamma c_{t-1}/c_{t+1}$ and "
            r"the same form at $t+1$: induction.",
            check=lambda: (
                len(run) == 1 and all(equal(run[0][k], val) for k, val in run_expected.items())
            ),
        ),
        Step(
            "LR alone: no map",
            sp.Tuple(*eqs[:3]),
            sp.Tuple(0, 0, 0),
            r"With $\tilde\gamma=\gamma$ fixed, three steps ($\eta=(1/10,1/5,1/10)$, $\lambda=1/2$, "
            r"$\gamma=9/10$) give 9 equations in the 6 unknowns $\tilde\eta_t,c_{t+1}$ whose "
            r"Gr\"obner basis is $\{1\}$.",
            method="sympy (Groebner)",
            check=lambda: no_solution(eqs, unknowns),
        ),
    )


NEGATIVE_WITNESS = {eta: R(1, 10), lam: R(1, 2), gam: R(9, 10), c: R(4, 5), cp: R(9, 10)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the momentum can stay γ (γ̃_t = γ c_{t−1}/c_{t+1} equals γ)."""
    return Step(
        "momentum unchanged",
        gam * cp / C_NEXT,
        gam,
        r"The derived momentum $\gamma c_{t-1}/c_{t+1}$ is not $\gamma$ while the weights decay.",
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
