"""The reverse map: from an exponential-type LR η̃_t (and λ_t, γ) back to the WD run's η_t.

Paper result: the converse direction of the general theorem (every schedule η̃ of
the no-WD run is the image of a WD run iff a positivity condition holds); the
project's own derivation, used by ``equivalence.original_lrs``.

Statement. Given η̃_t > 0, λ_t ≥ 0 and γ, define with c_0 = 1

    k_t = γ (c_t − c_{t−1})/η_{t−1} − λ_t c_t    (k_0 = −λ_0),
    η_t = η̃_t c_t² / (1 − η̃_t c_t k_t),          c_{t+1} = c_t + η_t k_t.

A WD run with η_t > 0 mapping to η̃_t exists at step t iff 1 − η̃_t c_t k_t > 0; then
c_{t+1} = c_t/(1 − η̃_t c_t k_t) > 0 as well. Forward∘reverse and reverse∘forward are
the identity.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import mpmath
import sympy as sp

from proofs._core import Proof, Step, equal, sym, z3_prove
from proofs.general_schedule import C_NEXT, equivalent_lrs_exact
from proofs.general_schedule import c as g_c
from proofs.general_schedule import c_prev as g_c_prev
from proofs.general_schedule import eta as g_eta
from proofs.general_schedule import eta_prev as g_eta_prev
from proofs.general_schedule import gamma as g_gamma
from proofs.general_schedule import lam as g_lam

NAME = "reverse_map"
RESULT = "converse of the general theorem (reverse map from the exponential LR)"
STATEMENT = (
    r"With $k_t=\gamma\frac{c_t-c_{t-1}}{\eta_{t-1}}-\lambda_tc_t$ ($k_0=-\lambda_0$), "
    r"$\eta_t=\frac{\tilde\eta_tc_t^2}{1-\tilde\eta_tc_tk_t}$ and $c_{t+1}=c_t+\eta_tk_t$ "
    r"invert $\tilde\eta_t=\eta_t/(c_tc_{t+1})$; $\eta_t>0$ exists iff "
    r"$1-\tilde\eta_tc_tk_t>0$; forward$\circ$reverse$=$identity."
)
ASSUMPTIONS = (
    r"$\tilde\eta_t>0$, $c_t>0$ (by induction), $\eta_{t-1}>0$, $\lambda_t\ge0$, $0\le\gamma<1$.",
    r"The forward map is the general theorem's (proofs.general\_schedule).",
)

eta_prev = g_eta_prev
eta = g_eta
lam = g_lam
gamma = g_gamma
c_prev, c = g_c_prev, g_c
eta_tilde = sym("etatilde_t", r"\tilde\eta_t", positive=True)
k = sym("k_t", r"k_t", real=True)
# z3 symbols (no sign assumptions: every hypothesis is explicit).
zE, zC, zK, zEta, zD = sp.symbols("etatilde c k eta D", real=True)

K_T = gamma * (c - c_prev) / eta_prev - lam * c
ETA_FROM_TILDE = eta_tilde * c**2 / (1 - eta_tilde * c * k)
C_NEXT_FROM_TILDE = c / (1 - eta_tilde * c * k)


def original_lrs_exact(equivalent_lrs, weight_decay, momentum) -> list[Fraction]:
    """The reverse map in exact arithmetic; raises ValueError where no η_t exists."""
    n = len(equivalent_lrs)
    wds = (
        [Fraction(weight_decay)] * n
        if not hasattr(weight_decay, "__len__")
        else [Fraction(x) for x in weight_decay]
    )
    g = Fraction(momentum)
    cs = [Fraction(1)]
    lrs: list[Fraction] = []
    for t, et in enumerate(equivalent_lrs):
        et = Fraction(et)
        kt = -wds[0] if t == 0 else g * (cs[t] - cs[t - 1]) / lrs[t - 1] - wds[t] * cs[t]
        den = 1 - et * cs[t] * kt
        if den <= 0:
            raise ValueError(f"step {t}: 1 - η̃ c k = {den} <= 0: no WD run maps to this η̃")
        lrs.append(et * cs[t] ** 2 / den)
        cs.append(cs[t] + lrs[t] * kt)
    return lrs


def original_lrs_mp(equivalent_lrs, weight_decay, momentum, dps: int = 50) -> list:
    """The reverse map at ``dps`` digits (mpmath), evaluating the proved expressions.

    Exact rationals are impractical here: the map is nonlinear, so the size of
    the fractions doubles every step.
    """
    n = len(equivalent_lrs)
    wds = list(weight_decay) if hasattr(weight_decay, "__len__") else [weight_decay] * n
    k_f = sp.lambdify((c_prev, c, eta_prev, lam, gamma), K_T, "mpmath")
    eta_f = sp.lambdify((eta_tilde, c, k), ETA_FROM_TILDE, "mpmath")
    cn_f = sp.lambdify((eta_tilde, c, k), C_NEXT_FROM_TILDE, "mpmath")
    with mpmath.workdps(dps):

        def mp(x):
            x = Fraction(x)
            return mpmath.mpf(x.numerator) / x.denominator

        g = mp(momentum)
        cs = [mpmath.mpf(1)]
        lrs: list = []
        for t, et in enumerate(equivalent_lrs):
            kt = -mp(wds[0]) if t == 0 else k_f(cs[t - 1], cs[t], lrs[t - 1], mp(wds[t]), g)
            if 1 - mp(et) * cs[t] * kt <= 0:
                raise ValueError(f"step {t}: 1 - η̃ c k <= 0: no WD run maps to this η̃")
            lrs.append(eta_f(mp(et), cs[t], kt))
            cs.append(cn_f(mp(et), cs[t], kt))
        return [+x for x in lrs]


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    steps: list[Step] = []
    steps.append(
        Step(
            "forward step through k",
            c + eta * K_T,
            C_NEXT,
            r"The general recurrence is $c_{t+1}=c_t+\eta_tk_t$ with $k_t$ depending only on "
            r"the past ($c_{t-1},c_t,\eta_{t-1}$) and $\lambda_t,\gamma$.",
        )
    )
    sol = sp.solve(sp.Eq(eta_tilde * c * (c + eta * k), eta), eta)
    steps.append(
        Step(
            "solve for eta_t",
            eta,
            sol[0] if sol else sp.nan,
            r"$\tilde\eta_t=\eta_t/(c_t(c_t+\eta_tk_t))$ is linear in $\eta_t$: unique solution "
            r"$\eta_t=\tilde\eta_tc_t^2/(1-\tilde\eta_tc_tk_t)$.",
            check=lambda: len(sol) == 1 and equal(sol[0], ETA_FROM_TILDE),
        )
    )
    steps.append(
        Step(
            "c_{t+1} from the reverse map",
            c + ETA_FROM_TILDE * k,
            C_NEXT_FROM_TILDE,
            r"$c_{t+1}=c_t+\eta_tk_t=c_t/(1-\tilde\eta_tc_tk_t)$.",
        )
    )
    hyps = [zE > 0, zC > 0, sp.Eq(zEta * zD, zE * zC**2)]
    steps.append(
        Step(
            "existence iff 1 - etatilde c k > 0 (z3)",
            sp.And(*hyps),
            sp.And(sp.Implies(zD > 0, zEta > 0), sp.Implies(zEta > 0, zD > 0)),
            r"With $D=1-\tilde\eta_tc_tk_t$ and $\eta_tD=\tilde\eta_tc_t^2>0$: $\eta_t>0\iff D>0$ "
            r"(and $D=0$ has no solution). Discharged by z3.",
            rel="=>",
            method="z3",
            check=lambda: (
                z3_prove(hyps, sp.And(sp.Implies(zD > 0, zEta > 0), sp.Implies(zEta > 0, zD > 0)))
                and z3_prove(hyps, sp.Ne(zD, 0))
            ),
        )
    )
    steps.append(
        Step(
            "c_{t+1} > 0 when it exists (z3)",
            sp.And(zC > 0, zD > 0),
            zC / zD > 0,
            r"$c_{t+1}=c_t/D>0$ whenever $D>0$: the induction hypothesis $c_{t+1}>0$ propagates.",
            rel="=>",
            method="z3",
            check=lambda: z3_prove([zC > 0, zD > 0], zC / zD > 0),
        )
    )
    et0 = sym("etatilde_0", r"\tilde\eta_0", positive=True)
    lam0 = sym("lambda_0", r"\lambda_0", positive=True)
    eta0 = ETA_FROM_TILDE.subs({eta_tilde: et0, c: 1, k: -lam0})
    steps.append(
        Step(
            "base step",
            eta0,
            et0 / (1 + et0 * lam0),
            r"$t=0$: $c_0=1$, $k_0=-\lambda_0$ so $\eta_0=\tilde\eta_0/(1+\tilde\eta_0\lambda_0)$ "
            r"always exists, and $c_1=1-\eta_0\lambda_0=1/(1+\tilde\eta_0\lambda_0)$.",
            check=lambda: (
                equal(eta0, et0 / (1 + et0 * lam0)) and equal(1 - eta0 * lam0, 1 / (1 + et0 * lam0))
            ),
        )
    )
    fwd_of_rev = ETA_FROM_TILDE / (c * (c + ETA_FROM_TILDE * k))
    steps.append(
        Step(
            "forward after reverse",
            fwd_of_rev,
            eta_tilde,
            r"Feeding $\eta_t$ back into $\tilde\eta_t=\eta_t/(c_tc_{t+1})$ returns $\tilde\eta_t$.",
        )
    )
    fwd = eta / (c * (c + eta * k))
    rev_of_fwd = ETA_FROM_TILDE.subs(eta_tilde, fwd)
    steps.append(
        Step(
            "reverse after forward",
            rev_of_fwd,
            eta,
            r"Conversely, the reverse map applied to the forward image of $\eta_t$ returns "
            r"$\eta_t$ (when $c_{t+1}=c_t+\eta_tk_t>0$).",
        )
    )
    steps.append(unrolled_check())
    return tuple(steps)


UNROLL_ETA_TILDE = [Fraction(1, 10) * Fraction(11, 10) ** i for i in range(12)]
UNROLL_WD = Fraction(1, 100)
UNROLL_MOMENTUM = Fraction(9, 10)


def unrolled_check() -> Step:
    """Exact round trip: reverse then forward (proofs.general_schedule) returns η̃."""
    lrs = original_lrs_exact(UNROLL_ETA_TILDE, UNROLL_WD, UNROLL_MOMENTUM)
    back = equivalent_lrs_exact(lrs, UNROLL_WD, UNROLL_MOMENTUM)
    return Step(
        "exact round trip",
        r"\tilde\eta_t\ (t=0..11)",
        r"\mathrm{forward}(\mathrm{reverse}(\tilde\eta))_t",
        r"12 steps in exact rationals ($\tilde\eta_t=0.1\cdot1.1^t$, $\lambda=1/100$, "
        r"$\gamma=9/10$): reverse then forward returns $\tilde\eta$ exactly, all $\eta_t>0$.",
        method="exact",
        check=lambda: back == UNROLL_ETA_TILDE and all(x > 0 for x in lrs),
    )


NEGATIVE_WITNESS = {eta_tilde: sp.Rational(1, 10), c: sp.Rational(1, 2), k: sp.Rational(-1, 3)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the naive inverse η_t = η̃_t c_t² (ignoring that c_{t+1} depends on η_t)."""
    naive = eta_tilde * c**2
    return Step(
        "naive inverse eta = etatilde c^2",
        naive / (c * (c + naive * k)),
        eta_tilde,
        r"Treating $c_{t+1}$ as $c_t$, i.e. $\eta_t=\tilde\eta_tc_t^2$, is not an inverse: "
        r"forward$\circ$naive$\neq$identity (exact counterexample).",
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
