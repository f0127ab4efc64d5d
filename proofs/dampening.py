"""SGD with dampening τ > 0 and weight decay ≡ SGD with dampening τ, no weight decay, η̃_t alone.

Paper result: none; a project result extending the main theorem (optimizer table: ``torch.optim.SGD(dampening=τ)``).

Statement. PyTorch's dampened SGD (v_1 = d_0 undampened, then v_{t+1} = γ v_t + (1 − τ) d_t,
θ_{t+1} = θ_t − η_t v_{t+1}, d_t = ∇L(θ_t) + λ_t θ_t) on a scale-invariant loss equals the
same optimizer without weight decay and LR η̃_t = η_t/(c_t c_{t+1}), with the scale
sequence *modified* by the dampening:

    c_0 = 1, κ_0 = 0, c_1 = 1 − η_0 λ_0, κ_1 = −λ_0                        (first step, undampened)
    c_{t+1} = (1 − (1 − τ) η_t λ_t) c_t + γ η_t κ_t,  κ_{t+1} = γ κ_t − (1 − τ) λ_t c_t   (t ≥ 1)

and then θ̃_t = θ_t/c_t, ṽ_t = c_t v_t + κ_t θ_t: hyper-parameters only, no state rewrite
(while c_t > 0). Derived by matching coefficients (unique solution); negative control:
the undampened scale sequence of the general theorem is wrong when τ > 0.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym
from proofs._table import coefficient_equations, sgd_step

NAME = "dampening"
RESULT = "optimizer table: SGD with dampening (exact, hyper-parameters only)"
STATEMENT = (
    r"PyTorch SGD with dampening $\tau$, momentum $\gamma$, LR $\eta_t$ and WD $\lambda_t$ on a "
    r"scale-invariant loss equals the same SGD without WD with $\tilde\eta_t=\eta_t/(c_tc_{t+1})$, "
    r"$c_1=1-\eta_0\lambda_0$, $\kappa_1=-\lambda_0$, $c_{t+1}=(1-(1-\tau)\eta_t\lambda_t)c_t+"
    r"\gamma\eta_t\kappa_t$, $\kappa_{t+1}=\gamma\kappa_t-(1-\tau)\lambda_tc_t$: "
    r"$\tilde\theta_t=\theta_t/c_t$, $\tilde v_t=c_tv_t+\kappa_t\theta_t$."
)
ASSUMPTIONS = (
    r"Scale invariance: the gradient at $\theta/c$ is $c$ times the gradient at $\theta$ ($c>0$).",
    r"$0\le\tau<1$, $\gamma>0$, $\eta_t,\lambda_t>0$, $c_t>0$; PyTorch's first step stores the "
    r"undampened $d_0$ in the buffer.",
    r"Vectors $\theta_t,v_t,g_t$ are independent atoms (commutative stand-ins for the "
    r"coefficients; every expression is linear in them).",
)

eta = sym("eta_t", r"\eta_t", positive=True)
lam = sym("lambda_t", r"\lambda_t", positive=True)
gam = sym("gamma", r"\gamma", positive=True)
tau = sym("tau", r"\tau", positive=True)
c = sym("c_t", r"c_t", positive=True)
kap = sym("kappa_t", r"\kappa_t", real=True)
p = sym("p_t", r"p_t", real=True)
et = sym("etatilde", r"\tilde\eta_t", positive=True)
cn = sym("c_next", r"c_{t+1}", positive=True)
pn = sym("p_next", r"p_{t+1}", real=True)
kn = sym("kappa_next", r"\kappa_{t+1}", real=True)
th = sym("theta_t", r"\theta_t")
v = sym("v_t", r"v_t")
g = sym("g_t", r"g_t")

C_NEXT = (1 - (1 - tau) * eta * lam) * c + gam * eta * kap
K_NEXT = gam * kap - (1 - tau) * lam * c


def _solve(first: bool, c_val, kap_val, p_val=None):
    T1, V1 = sgd_step("damp", th, v, g, eta, lam, gam, tau, first=first)
    pv = p if p_val is None else p_val
    Tt, Vt = sgd_step(
        "damp", th / c_val, pv * v + kap_val * th, c_val * g, et, 0, gam, tau, first=first
    )
    eqs = coefficient_equations(Tt - T1 / cn, [th, v, g])
    eqs += coefficient_equations(Vt - (pn * V1 + kn * T1), [th, v, g])
    unknowns = [et, cn, pn, kn] + ([p] if p_val is None else [])
    return sp.solve(eqs, unknowns, dict=True)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """First step, general step (coefficient matching), positivity of the LR."""
    s0 = _solve(True, sp.S.One, sp.S.Zero, p_val=sp.S.One)
    s1 = _solve(False, c, kap)
    return (
        Step(
            "first step",
            sp.Tuple(cn, kn, et),
            sp.Tuple(1 - eta * lam, -lam, eta / (1 - eta * lam)),
            r"From $\tilde\theta_0=\theta_0$, $v_0=\tilde v_0=0$, the undampened first step gives "
            r"(uniquely) $c_1=1-\eta_0\lambda_0$, $\kappa_1=-\lambda_0$, "
            r"$\tilde\eta_0=\eta_0/c_1$ ($p_1=c_1$).",
            check=lambda: (
                len(s0) == 1
                and equal(s0[0][cn], 1 - eta * lam)
                and equal(s0[0][kn], -lam)
                and equal(s0[0][et], eta / (1 - eta * lam))
                and equal(s0[0][pn], 1 - eta * lam)
            ),
        ),
        Step(
            "general step",
            sp.Tuple(p, pn, cn, kn, et),
            sp.Tuple(c, C_NEXT, C_NEXT, K_NEXT, eta / (c * C_NEXT)),
            r"With $\tilde\theta_t=\theta_t/c_t$, $\tilde v_t=p_tv_t+\kappa_t\theta_t$, matching the "
            r"coefficients of $\theta_t,v_t,g_t$ in $\tilde\theta_{t+1}=\theta_{t+1}/c_{t+1}$ and "
            r"$\tilde v_{t+1}=p_{t+1}v_{t+1}+\kappa_{t+1}\theta_{t+1}$ forces $p_t=c_t$ and gives "
            r"(uniquely) $p_{t+1}=c_{t+1}$, so the induction closes with the LR alone.",
            check=lambda: (
                len(s1) == 1
                and all(
                    equal(s1[0][k], val)
                    for k, val in (
                        (p, c),
                        (pn, C_NEXT),
                        (cn, C_NEXT),
                        (kn, K_NEXT),
                        (et, eta / (c * C_NEXT)),
                    )
                )
            ),
        ),
        Step(
            "no dampening",
            sp.Tuple(C_NEXT.subs(tau, 0), K_NEXT.subs(tau, 0)),
            sp.Tuple((1 - eta * lam) * c + gam * eta * kap, gam * kap - lam * c),
            r"At $\tau=0$ the sequence is the general theorem's (proofs.general\_schedule, with "
            r"$\kappa_t=(c_t-c_{t-1})/\eta_{t-1}$): the dampening enters only through the decay "
            r"term $(1-\tau)\eta_t\lambda_t$.",
        ),
    )


NEGATIVE_WITNESS = {
    eta: sp.Rational(1, 10),
    lam: sp.Rational(1, 2),
    tau: sp.Rational(1, 3),
    gam: sp.Rational(9, 10),
    c: sp.Rational(4, 5),
    kap: sp.Rational(-1, 2),
}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the undampened scale sequence c_{t+1} = (1 − η_t λ_t) c_t + γ η_t κ_t also works."""
    return Step(
        "undampened scale sequence",
        C_NEXT,
        (1 - eta * lam) * c + gam * eta * kap,
        r"The general theorem's sequence (no $(1-\tau)$ on the decay term) is not the one the "
        r"coefficient matching forces when $\tau>0$.",
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
