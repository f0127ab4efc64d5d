"""Adam with coupled L2 decay (``Adam(weight_decay=λ)``): no exact no-weight-decay equivalent.

Paper result: none; a project result (optimizer table: Adam with coupled L2, refuted).

Statement. Adam with coupled decay feeds x = g + λθ (g = ∇L(θ)) through its moments, so
its first step (zero buffers) moves each coordinate by η x/(|x| + ε) (the bias corrections
cancel at k = 1). On a scale-invariant loss:

(a) no choice of the converted Adam's η̃, ε̃ (any betas: they cancel at k = 1) and of
    scales c_0, c_1 makes Adam without decay from θ_0/c_0 land on θ_1/c_1: five coordinates
    (θ_i, g_i) at an exact witness give five polynomial equations in the four unknowns
    with no common solution with η̃ c_0 c_1 ≠ 0 (Gröbner basis {1});
(b) nor does a state rewrite of the linear kind (m̃ ← αm̃ + βθ̃, ṽ ← ρṽ + δθ̃²): the
    converted update (Aθ + Bg)/(√(Dθ² + Eg²) + ε̃) is smooth in g at g = −λθ ≠ 0,
    while the stock update has a jump of its second derivative there (a first-derivative
    jump when ε = 0): the decay term passes through Adam's per-coordinate normalisation.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, sym
from proofs._table import no_solution

NAME = "adam_l2"
RESULT = "optimizer table: Adam with coupled L2 decay (no exact map)"
STATEMENT = (
    r"For \texttt{Adam(weight\_decay=}$\lambda$\texttt{)} on a scale-invariant loss, neither "
    r"hyper-parameter schedules nor a linear rewrite of the moment buffers make Adam without "
    r"weight decay follow $\theta_k/c_k$: already the first step is over-determined."
)
ASSUMPTIONS = (
    r"Scale invariance: the gradient at $\theta/c$ is $c$ times the gradient at $\theta$; the "
    r"coordinates $(\theta_i,g_i)$ of a scale-invariant loss's iterate and gradient can take "
    r"the witness values (any $g\perp\theta$, in enough dimensions).",
    r"$\eta,\lambda,\epsilon>0$ for (a) (the case $\epsilon=0$ is the sign argument of (b)).",
)

eta = sym("eta", r"\eta", positive=True)
lam = sym("lambda", r"\lambda", positive=True)
eps = sym("epsilon", r"\epsilon", positive=True)
c0 = sym("c_0", r"c_0", positive=True)
c1 = sym("c_1", r"c_1", positive=True)
et = sym("etatilde", r"\tilde\eta", positive=True)
te = sym("epstilde", r"\tilde\epsilon", positive=True)
theta = sym("theta", r"\theta", real=True)
g = sym("g", "g", real=True)

R = sp.Rational
WITNESS = {eta: R(1, 10), lam: R(1, 2), eps: R(1, 100)}
#: (θ_i, g_i): signs of g and g + λθ agree, differ, and θ or g zero.
COORDS = ((R(1), R(1)), (R(1), R(-1, 4)), (R(0), R(1)), (R(2), R(0)), (R(-1), R(1, 3)))


def _stock_first_step(th, gr):
    x = gr + lam * th
    return th - eta * x / (sp.Abs(x) + eps)


def _converted_first_step(th, gr):
    gt = c0 * gr  # gradient at θ/c_0
    return th / c0 - et * gt / (sp.Abs(gt) + te)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """(a) five coordinates, Gröbner basis {1}; (b) the kink at g = −λθ."""
    eqs = []
    for th, gr in COORDS:
        e = (_converted_first_step(th, gr) - _stock_first_step(th, gr) / c1).subs(WITNESS)
        eqs.append(sp.numer(sp.together(sp.simplify(e))))
    unknowns = [et, te, c0, c1]
    # (b): second derivative in g of the stock update on both sides of x = g + λθ = 0 (θ = 1).
    xs = sym("x", "x", positive=True)
    right = sp.diff(-eta * xs / (xs + eps), xs, 2).subs(xs, 0)  # x > 0
    left = sp.diff(-eta * (-xs) / (xs + eps), xs, 2).subs(xs, 0)  # x = −xs < 0, d²/dx² = d²/dxs²
    jump = sp.simplify(right - left)
    first_jump = sp.Integer(2) * eta  # ε = 0: −η sign(x) jumps by 2η
    b1 = sym("beta_1", r"\beta_1", positive=True)
    b2 = sym("beta_2", r"\beta_2", positive=True)
    xx = sym("x_1", "x", real=True)
    m_hat = (1 - b1) * xx / (1 - b1)
    v_hat = (1 - b2) * xx**2 / (1 - b2)
    return (
        Step(
            "first step",
            m_hat / sp.sqrt(v_hat),
            xx / sp.Abs(xx),
            r"From zero buffers, $\hat m_1=(1-\beta_1)x/(1-\beta_1)=x$ and "
            r"$\hat v_1=(1-\beta_2)x^2/(1-\beta_2)=x^2$: the first step moves each coordinate by "
            r"$\eta x/(|x|+\epsilon)$ whatever the betas (of either run).",
            check=lambda: (
                sp.simplify(m_hat / sp.sqrt(v_hat) - xx / sp.Abs(xx)) == 0
                and sp.simplify(v_hat - xx**2) == 0
            ),
        ),
        Step(
            "hyper-parameters: over-determined",
            sp.Tuple(*eqs),
            sp.Tuple(*([0] * len(eqs))),
            r"Coordinates $(\theta_i,g_i)=(1,1),(1,-\tfrac14),(0,1),(2,0),(-1,\tfrac13)$ at "
            r"$\eta=\tfrac1{10}$, $\lambda=\tfrac12$, $\epsilon=\tfrac1{100}$: the first step "
            r"$\theta_i/c_0-\tilde\eta\,c_0g_i/(c_0|g_i|+\tilde\epsilon)=(\theta_i-\eta x_i/(|x_i|+"
            r"\epsilon))/c_1$, $x_i=g_i+\lambda\theta_i$, is 5 equations in "
            r"$(\tilde\eta,\tilde\epsilon,c_0,c_1)$; with $\tilde\eta c_0c_1\neq0$ imposed its "
            r"Gr\"obner basis is $\{1\}$: no solution (its only roots have $c_0=c_1=0$).",
            method="sympy (Groebner)",
            check=lambda: no_solution(eqs, unknowns, nonzero=(et, c0, c1)),
        ),
        Step(
            "state rewrite: the kink",
            jump,
            4 * eta / eps**2,
            r"The stock first-step update $-\eta x/(|x|+\epsilon)$ has second derivatives "
            r"$\mp2\eta/\epsilon^2$ on the two sides of $x=g+\lambda\theta=0$ (a jump of "
            r"$4\eta/\epsilon^2$; for $\epsilon=0$ the update $-\eta\,\mathrm{sign}(x)$ jumps by "
            r"$2\eta$). After any linear rewrite the converted update is $(A\theta+Bg)/(\sqrt{D"
            r"\theta^2+Eg^2}+\tilde\epsilon)$, real-analytic in $g$ wherever $D\theta^2+Eg^2>0$ "
            r"(or constant-denominator when $D=E=0$), hence at $g=-\lambda\theta\neq0$: no rewrite "
            r"of this kind reproduces the kink.",
            check=lambda: sp.simplify(jump - 4 * eta / eps**2) == 0 and first_jump != 0,
        ),
    )


NEGATIVE_WITNESS = {eta: R(1, 10), lam: R(1, 2), eps: R(1, 100), theta: R(1), g: R(0)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: AdamW's map (proofs.adamw; at k = 1: c_1 = 1 − ηλ, η̃ = η/c_1, ε̃ = ε) fits Adam + L2."""
    a = 1 - eta * lam
    conv = theta - (eta / a) * g / (sp.Abs(g) + eps)
    return Step(
        "AdamW map applied to L2",
        conv.subs(g, 0),
        (_stock_first_step(theta, g) / a).subs(g, 0),
        r"At a coordinate with $g=0$ the converted run does not move, while coupled L2 moves it "
        r"by $\eta\lambda\theta/(\lambda|\theta|+\epsilon)$ before the division by $c_1$.",
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
