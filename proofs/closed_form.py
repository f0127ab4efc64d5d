"""Main theorem, momentum case (constant η, λ, γ): η̃_t = η α^(−2t−1) with a buffer ṽ_0.

Paper result: the main theorem with momentum (constant LR, WD and momentum).

Statement. For PyTorch SGD with constant η, λ > 0 and 0 < γ < 1 on a scale-invariant
loss, let α be the larger root of the characteristic equation

    x² − (1 + γ − ηλ) x + γ = 0.

If ηλ < (1 − √γ)² the roots are real and √γ < α < 1. SGD without WD, LR
η̃_t = η α^(−2t−1), the same θ_0 and the initial buffer ṽ_0 = −(1 − α) θ_0/(α η)
gives θ̃_t = α^(−t) θ_t and ṽ_t = α^t v_t − α^(t−1)(1 − α)/η · θ_t for every t.

Why the larger root: at ηλ = 0 it is 1 (no WD: no rescaling), the smaller is γ;
α ≈ 1 − ηλ/(1 − γ); its buffer −(1−α)/(αη) → 0 with the WD; and with a zero
buffer the general schedule's scale c_t = A α^t + B β^t (proofs.general_schedule)
grows at the larger root's rate. The smaller root β = γ/α < √γ is exact only
with its own buffer; the negative control shows it fails with a zero buffer.

Bound side conditions (real roots, √γ < α < 1) are implications between
polynomial inequalities with a square root; they are discharged by z3's
nonlinear real arithmetic (nlsat), and SymPy checks the identities they rest on.
"""

from __future__ import annotations

import functools

import mpmath
import sympy as sp

from proofs._core import (
    Proof,
    Step,
    equal,
    sym,
    vec,
    vector_coefficients,
    z3_prove,
    zero_modulo,
)
from proofs._sgd import torch_step

NAME = "closed_form"
RESULT = "main theorem, momentum case (constant LR, WD and momentum)"
STATEMENT = (
    r"With constant $\eta,\lambda>0$, $0<\gamma<1$ and $\eta\lambda<(1-\sqrt\gamma)^2$, let "
    r"$\alpha$ be the larger root of $x^2-(1+\gamma-\eta\lambda)x+\gamma=0$; then "
    r"$\sqrt\gamma<\alpha<1$, and SGD without WD, LR $\tilde\eta_t=\eta\alpha^{-2t-1}$ and "
    r"initial buffer $\tilde v_0=-\frac{1-\alpha}{\alpha\eta}\theta_0$ gives "
    r"$\tilde\theta_t=\alpha^{-t}\theta_t$ for all $t$."
)
ASSUMPTIONS = (
    r"Scale invariance: $G(\theta/c)=c\,G(\theta)$ for $c>0$ (proofs.scale\_invariance).",
    r"$\eta,\lambda>0$, $0<\gamma<1$, $\eta\lambda<(1-\sqrt\gamma)^2$ (real roots).",
    r"PyTorch's SGD convention (LR outside the buffer, coupled WD), $v_0=0$.",
    r"$t$ is a symbolic non-negative integer; $\alpha^t$ is treated as an independent "
    r"positive symbol $P$ after \texttt{expand\_power\_exp}.",
)

eta = sym("eta", r"\eta", positive=True)
lam = sym("lambda", r"\lambda", positive=True)
gamma = sym("gamma", r"\gamma", positive=True)
# The bound proofs use symbols without sign assumptions, so that every
# hypothesis handed to z3 is explicit: s = √γ, ε = ηλ, d = √D.
s = sym("s", r"\sqrt{\gamma}", real=True)
eps = sym("epsilon", r"\varepsilon", real=True)
d = sym("d", r"\sqrt{D}", real=True)
alpha = sym("alpha", r"\alpha", positive=True)
x = sym("x", "x")
t = sym("t", "t", integer=True, nonnegative=True)
P = sym("P", r"\alpha^{t}", positive=True)
b = sym("b", "b", real=True)
theta = vec("theta_t", r"\theta_t")
v = vec("v_t", r"v_t")
theta0 = vec("theta_0", r"\theta_0")

B = 1 + gamma - eta * lam
#: The characteristic polynomial.
CHAR = x**2 - B * x + gamma
DISC = sp.expand(B**2 - 4 * gamma)
#: The larger root (the one the theorem uses) and the smaller.
ALPHA = (B + sp.sqrt(DISC)) / 2
BETA = (B - sp.sqrt(DISC)) / 2
#: η̃_t and the initial-buffer coefficient b (ṽ_0 = b θ_0), as functions of α.
ETA_TILDE = eta * alpha ** (-2 * t - 1)
BUFFER = -(1 - alpha) / (alpha * eta)
#: The relation α² = Bα − γ used to reduce polynomials in α.
ALPHA_REL = {alpha: B * alpha - gamma}


def _pw(expr):
    return sp.expand_power_exp(sp.expand(expr)).subs(alpha**t, P)


def _zero_mod_char(expr) -> bool:
    """Every vector coefficient of ``expr`` vanishes modulo α² = Bα − γ."""
    e = _pw(expr)
    if e.is_commutative:
        return zero_modulo(e, ALPHA_REL)
    return all(zero_modulo(cf, ALPHA_REL) for cf in vector_coefficients(e).values())


def _bound_hyps():
    e2 = (1 + s**2 - eps) ** 2 - 4 * s**2
    return [s > 0, s < 1, eps > 0, eps < (1 - s) ** 2, d >= 0, sp.Eq(d**2, e2)]


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Characteristic equation, root bounds, buffer, induction with symbolic t."""
    steps: list[Step] = []
    rec = alpha ** (t + 1) - B * alpha**t + gamma * alpha ** (t - 1)
    steps.append(
        Step(
            "characteristic equation",
            sp.expand(rec * alpha ** (1 - t)),
            CHAR.subs(x, alpha),
            r"$c_t=\alpha^t$ solves the general recurrence with constant rates "
            r"$c_{t+1}=(1+\gamma-\eta\lambda)c_t-\gamma c_{t-1}$ iff (divide by $\alpha^{t-1}>0$) "
            r"$\alpha$ is a root of the characteristic polynomial.",
            check=lambda: equal(sp.powsimp(sp.expand(rec * alpha ** (1 - t))), CHAR.subs(x, alpha)),
        )
    )
    steps.append(
        Step(
            "roots",
            sp.Tuple(*sorted(sp.solve(CHAR, x), key=sp.default_sort_key)),
            sp.Tuple(*sorted([ALPHA, BETA], key=sp.default_sort_key)),
            r"\texttt{solve}; $\alpha=\frac{B+\sqrt D}{2}$ is the larger, $\beta=\frac{B-\sqrt D}{2}$, "
            r"$B=1+\gamma-\eta\lambda$, $D=B^2-4\gamma$.",
            check=lambda: (
                {sp.expand(r) for r in sp.solve(CHAR, x)} == {sp.expand(ALPHA), sp.expand(BETA)}
                and sp.expand(CHAR.subs(x, ALPHA)) == 0
                and sp.expand(CHAR.subs(x, BETA)) == 0
            ),
        )
    )
    d_fact = ((1 - s) ** 2 - eps) * ((1 + s) ** 2 - eps)
    steps.append(
        Step(
            "discriminant factors",
            (1 + s**2 - eps) ** 2 - 4 * s**2,
            d_fact,
            r"With $s=\sqrt\gamma$, $\varepsilon=\eta\lambda$: "
            r"$D=((1-s)^2-\varepsilon)((1+s)^2-\varepsilon)$, positive iff $\varepsilon<(1-s)^2$ "
            r"(for $\varepsilon<(1+s)^2$).",
            check=lambda: equal(sp.expand((1 + s**2 - eps) ** 2 - 4 * s**2), d_fact),
        )
    )
    hyps = _bound_hyps()
    steps.append(
        Step(
            "real roots (z3)",
            sp.And(*hyps[:4]),
            (1 + s**2 - eps) ** 2 - 4 * s**2 > 0,
            r"$D>0$ under the hypotheses: discharged by z3 (nonlinear real arithmetic).",
            rel="=>",
            method="z3",
            check=lambda: z3_prove(hyps[:4], (1 + s**2 - eps) ** 2 - 4 * s**2 > 0),
        )
    )
    a_expr = (1 + s**2 - eps + d) / 2
    steps.append(
        Step(
            "B - 2 sqrt(gamma) > 0",
            (1 + s**2 - eps) - 2 * s,
            (1 - s) ** 2 - eps,
            r"Identity behind $\alpha>\sqrt\gamma$: $B/2-s=((1-s)^2-\varepsilon)/2>0$ and "
            r"$\sqrt D\ge0$.",
        )
    )
    steps.append(
        Step(
            "alpha > sqrt(gamma) (z3)",
            sp.And(*hyps),
            a_expr > s,
            r"With $d=\sqrt D$ ($d\ge0$, $d^2=D$), $\alpha=(B+d)/2>s$: discharged by z3.",
            rel="=>",
            method="z3",
            check=lambda: z3_prove(hyps, a_expr > s),
        )
    )
    steps.append(
        Step(
            "(2 - B)^2 - D = 4 eta lambda",
            (1 - s**2 + eps) ** 2 - ((1 + s**2 - eps) ** 2 - 4 * s**2),
            4 * eps,
            r"Identity behind $\alpha<1$: $\sqrt D<2-B=1-\gamma+\eta\lambda$ since "
            r"$(2-B)^2-D=4\eta\lambda>0$ and $2-B>0$.",
        )
    )
    steps.append(
        Step(
            "alpha < 1 (z3)",
            sp.And(*hyps),
            a_expr < 1,
            r"$\alpha=(B+d)/2<1$: discharged by z3.",
            rel="=>",
            method="z3",
            check=lambda: z3_prove(hyps, a_expr < 1),
        )
    )
    at_edge = {eps: (1 - s) ** 2}
    steps.append(
        Step(
            "boundary: double root at sqrt(gamma)",
            ((1 + s**2 - eps) / 2).subs(at_edge),
            s,
            r"At $\eta\lambda=(1-\sqrt\gamma)^2$ exactly, $D=0$ and both roots equal "
            r"$\sqrt\gamma$: the strict bound $\alpha>\sqrt\gamma$ needs the strict inequality.",
            check=lambda: (
                equal(((1 + s**2 - eps) ** 2 - 4 * s**2).subs(at_edge), 0)
                and equal(((1 + s**2 - eps) / 2).subs(at_edge), s)
            ),
        )
    )
    beta_expr = (1 + s**2 - eps - d) / 2
    steps.append(
        Step(
            "smaller root below sqrt(gamma) (z3)",
            sp.And(*hyps),
            sp.And(beta_expr > 0, beta_expr < s),
            r"$\beta=\gamma/\alpha$ (product of the roots) lies in $(0,\sqrt\gamma)$: z3.",
            rel="=>",
            method="z3",
            check=lambda: (
                z3_prove(hyps, sp.And(beta_expr > 0, beta_expr < s))
                and equal(sp.expand(ALPHA * BETA), gamma)
            ),
        )
    )
    # First order: implicit differentiation of the char. polynomial in ε = ηλ at (α, ε) = (1, 0).
    Pe = x**2 - (1 + gamma - eps) * x + gamma
    dalpha = -sp.diff(Pe, eps) / sp.diff(Pe, x)
    steps.append(
        Step(
            "first order in eta lambda",
            dalpha.subs({x: 1, eps: 0}),
            -1 / (1 - gamma),
            r"At $\eta\lambda=0$ the roots are $1$ and $\gamma$; the larger one moves as "
            r"$d\alpha/d(\eta\lambda)=-1/(1-\gamma)$, so $\alpha\approx1-\eta\lambda/(1-\gamma)$.",
            check=lambda: (
                Pe.subs({x: 1, eps: 0}) == 0
                and equal(dalpha.subs({x: 1, eps: 0}), -1 / (1 - gamma))
            ),
        )
    )
    # Initial buffer: one step from θ_0 with ṽ_0 = b θ_0 and η̃_0 = η/α must give θ_1/α.
    th_e, _ = torch_step(theta0, b * theta0, eta / alpha, 0, gamma)
    th_w, _ = torch_step(theta0, sp.S.Zero, eta, lam, gamma)
    b_sol = sp.solve(vector_coefficients(th_e - th_w / alpha)[theta0], b)
    steps.append(
        Step(
            "initial buffer",
            b_sol[0],
            BUFFER,
            r"Solve $\tilde\theta_1=\theta_1/\alpha$ for $b$ in $\tilde v_0=b\theta_0$: "
            r"$b=(\alpha-1+\eta\lambda)/(\gamma\eta)$, which equals $-(1-\alpha)/(\alpha\eta)$ "
            r"modulo the characteristic equation.",
            check=lambda: len(b_sol) == 1 and _zero_mod_char(b_sol[0] - BUFFER),
        )
    )
    # Induction with symbolic t.
    kap = alpha ** (t - 1) * (alpha - 1) / eta
    th_e, v_e = torch_step(theta / alpha**t, alpha**t * v + kap * theta, ETA_TILDE, 0, gamma)
    th_w, v_w = torch_step(theta, v, eta, lam, gamma)
    steps.append(
        Step(
            "base of induction",
            kap.subs(t, 0) * theta0,
            BUFFER * theta0,
            r"The hypothesis $\tilde v_t=\alpha^tv_t+\alpha^{t-1}\frac{\alpha-1}{\eta}\theta_t$ at "
            r"$t=0$ ($v_0=0$) is the initial buffer.",
        )
    )
    steps.append(
        Step(
            "induction: position",
            th_e,
            alpha ** (-t - 1) * th_w,
            r"From $\tilde\theta_t=\alpha^{-t}\theta_t$ and the buffer hypothesis, one step with "
            r"$\tilde\eta_t=\eta\alpha^{-2t-1}$ gives $\tilde\theta_{t+1}=\alpha^{-t-1}\theta_{t+1}$ "
            r"(zero modulo the characteristic equation).",
            check=lambda: _zero_mod_char(th_e - alpha ** (-t - 1) * th_w),
        )
    )
    inv = alpha ** (t + 1) * v_w + alpha**t * (alpha - 1) / eta * th_w
    steps.append(
        Step(
            "induction: buffer",
            v_e,
            inv,
            r"$\tilde v_{t+1}=\alpha^{t+1}v_{t+1}+\alpha^{t}\frac{\alpha-1}{\eta}\theta_{t+1}$.",
            check=lambda: _zero_mod_char(v_e - inv),
        )
    )
    steps.append(
        Step(
            "LR is the general eta/(c_t c_{t+1})",
            eta / (alpha**t * alpha ** (t + 1)),
            ETA_TILDE,
            r"With $c_t=\alpha^t$ this is the general theorem's $\eta_t/(c_tc_{t+1})$.",
            check=lambda: equal(sp.powsimp(eta / (alpha**t * alpha ** (t + 1))), ETA_TILDE),
        )
    )
    steps.append(
        Step(
            "no momentum",
            CHAR.subs(gamma, 0),
            sp.expand(x * (x - (1 - eta * lam))),
            r"At $\gamma=0$ the roots are $1-\eta\lambda$ and $0$: $\alpha=1-\eta\lambda$ and "
            r"$\tilde\eta_t=\eta(1-\eta\lambda)^{-2t-1}$ (proofs.no\_momentum); the buffer is unused.",
        )
    )
    steps.append(worked_number())
    return tuple(steps)


#: The paper's recipe.
RECIPE = {eta: sp.Rational(1, 10), lam: sp.Rational(5, 10000), gamma: sp.Rational(9, 10)}


def worked_number() -> Step:
    """η = 0.1, λ = 5e-4, γ = 0.9: α, per-step and per-epoch (391 steps) growth."""
    a = ALPHA.subs(RECIPE)

    def check() -> bool:
        with mpmath.workdps(50):
            av = mpmath.mpf(sp.N(a, 60))
            return (
                mpmath.nint(av * 10**8) == 99949773
                and mpmath.nint(av**-2 * 10**7) == 10010053
                and mpmath.nint(av ** (-2 * 391) * 10**5) == 148123
            )

    return Step(
        "worked number",
        r"\alpha|_{\eta=0.1,\,\lambda=5\cdot10^{-4},\,\gamma=0.9}",
        sp.Float("0.99949773", 8),
        r"Evaluated at 50 digits: $\alpha=0.99949773$, $\alpha^{-2}=1.0010053$ per step, "
        r"$\alpha^{-782}=1.48123$ per epoch of 391 steps (the paper's $0.1\times1.481^t$).",
        method="mpmath (50 digits)",
        check=check,
    )


def alpha_exact(lr, weight_decay, momentum) -> sp.Expr:
    """The larger root α as an exact SymPy number (rational inputs)."""
    return ALPHA.subs(
        {eta: sp.nsimplify(lr), lam: sp.nsimplify(weight_decay), gamma: sp.nsimplify(momentum)}
    )


# Negative control: the smaller root with a zero buffer. Witness: roots 9/10 and 1/2
# (γ = 9/20, ηλ = 1/20 < (1 − √γ)² ≈ 0.108).
NEGATIVE_WITNESS = {eta: sp.Rational(1, 10), lam: sp.Rational(1, 2), gamma: sp.Rational(9, 20)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: with the smaller root β and a zero buffer, θ̃_1 = θ_1/β."""
    th_e, _ = torch_step(theta0, sp.S.Zero, eta / BETA, 0, gamma)
    th_w, _ = torch_step(theta0, sp.S.Zero, eta, lam, gamma)
    return Step(
        "smaller root, zero buffer",
        th_e,
        th_w / BETA,
        r"Using the smaller root $\beta$ with $\tilde v_0=0$ and "
        r"$\tilde\eta_t=\eta\beta^{-2t-1}$, the claim $\tilde\theta_1=\theta_1/\beta$ is false "
        r"(exact counterexample at roots $9/10$, $1/2$).",
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
