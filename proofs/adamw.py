"""AdamW on a scale-invariant loss ≡ Adam without weight decay with per-step η̃, ε̃, β̃1, β̃2.

Paper result: none; a project result extending the paper's main theorem to PyTorch's AdamW.

Statement. PyTorch's AdamW step k ≥ 1 with the live η_k, λ_k, β1_k, β2_k, ε_k and
g_k = ∇L(θ_{k-1}) (``amsgrad=False``): θ ← a_k θ_{k-1} with a_k = 1 − η_k λ_k;
m_k = β1_k m_{k-1} + (1 − β1_k) g_k; v_k = β2_k v_{k-1} + (1 − β2_k) g_k²;
θ_k = θ − η_k/(1 − β1_k^k) · m_k / (√v_k/√(1 − β2_k^k) + ε_k). Let A_0 = ν_0 = σ_0 = 1,

    A_k = a_k A_{k-1},  ν_k = β1_k ν_{k-1} + (1 − β1_k)/A_{k-1},  σ_k = β2_k σ_{k-1} + (1 − β2_k)/A_{k-1}²,
    β̃1_k = β1_k ν_{k-1}/ν_k,  β̃2_k = β2_k σ_{k-1}/σ_k,
    ε̃_k = ε_k √(1 − β2_k^k)/√(σ_k(1 − β̃2_k^k)),
    η̃_k = η_k ν_k √(1 − β2_k^k)(1 − β̃1_k^k) / (A_k (1 − β1_k^k) √(σ_k(1 − β̃2_k^k))).

Then stock Adam without weight decay and these hyper-parameters, from θ̃_0 = θ_0 and
zero buffers, satisfies θ̃_k = θ_k/A_k, m̃_k = m_k/ν_k, ṽ_k = v_k/σ_k for every k:
no state is rewritten. Adam's bias corrections, computed with the *current* β̃ and
the step count k, are arbitrary positive numbers absorbed into η̃_k and ε̃_k.

Adam acts coordinate by coordinate, so the proof is over one coordinate (scalars),
with the one consequence of scale invariance it needs: the gradient at θ/A is A
times the gradient at θ. β̃ and ν, σ are *derived* (the unique solution of the
coefficient matching of the moment recursions), η̃ and ε̃ likewise (the unique
solution of matching the update as a function of m_k and √v_k). Also: the
amsgrad rewrite (max buffer × σ_{k-1}/σ_k), exact power-of-two rescaling, and the
β̃ ∈ [0, 1) side condition (z3). Negative control: the LR-only map (stock betas
and ε, η̃_k = η_k/A_k, exact at k = 1) fails at k = 2.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym, z3_prove

NAME = "adamw"
RESULT = "AdamW's exact no-weight-decay equivalent (project result)"
STATEMENT = (
    r"For a scale-invariant loss and PyTorch's AdamW (decoupled decay $\theta\leftarrow"
    r"(1-\eta_k\lambda_k)\theta$ first, bias corrections $1-\beta^k$ with the current $\beta$, "
    r"$\epsilon$ added after $\sqrt{\hat v}$, amsgrad off), stock Adam without weight decay with "
    r"$\tilde\beta_{1,k}=\beta_1\nu_{k-1}/\nu_k$, $\tilde\beta_{2,k}=\beta_2\sigma_{k-1}/\sigma_k$, "
    r"$\tilde\epsilon_k=\epsilon\sqrt{P_2}/\sqrt{\sigma_kQ_2}$ and "
    r"$\tilde\eta_k=\eta_k\nu_k\sqrt{P_2}\,Q_1/(A_kP_1\sqrt{\sigma_kQ_2})$ ($P_i=1-\beta_i^k$, "
    r"$Q_i=1-\tilde\beta_{i,k}^k$, $A_k=\prod_{j\le k}(1-\eta_j\lambda_j)$, "
    r"$\nu_k=\beta_1\nu_{k-1}+(1-\beta_1)/A_{k-1}$, $\sigma_k=\beta_2\sigma_{k-1}+(1-\beta_2)/"
    r"A_{k-1}^2$, $A_0=\nu_0=\sigma_0=1$) gives $\tilde\theta_k=\theta_k/A_k$, "
    r"$\tilde m_k=m_k/\nu_k$, $\tilde v_k=v_k/\sigma_k$ for all $k$."
)
ASSUMPTIONS = (
    r"Scale invariance: the gradient at $\theta/A$ is $A$ times the gradient at $\theta$ "
    r"($A>0$; proofs.scale\_invariance); Adam acts per coordinate, so one coordinate suffices.",
    r"$0<\eta_k\lambda_k<1$ (so $A_k>0$), $0<\beta_1,\beta_2<1$, $\epsilon\ge0$; the betas, "
    r"$\epsilon$ and $\eta$ may change at every step.",
    r"\texttt{amsgrad=False}; with amsgrad the maximum buffer is rescaled by "
    r"$\sigma_{k-1}/\sigma_k$ before each step (step \emph{amsgrad rewrite}).",
)

# One coordinate at step k (state after step k-1 on the right of '=').
eta = sym("eta_k", r"\eta_k", positive=True)
lam = sym("lambda_k", r"\lambda_k", positive=True)
b1 = sym("beta_1", r"\beta_1", positive=True)
b2 = sym("beta_2", r"\beta_2", positive=True)
eps = sym("epsilon", r"\epsilon", positive=True)
A = sym("A", r"A_{k-1}", positive=True)
nu = sym("nu", r"\nu_{k-1}", positive=True)
sigma = sym("sigma", r"\sigma_{k-1}", positive=True)
P1 = sym("P_1", r"P_1", positive=True)  # 1 − β1^k
P2 = sym("P_2", r"P_2", positive=True)  # 1 − β2^k
Q1 = sym("Q_1", r"Q_1", positive=True)  # 1 − β̃1^k
Q2 = sym("Q_2", r"Q_2", positive=True)  # 1 − β̃2^k
theta = sym("theta", r"\theta", real=True)
m = sym("m", r"m", real=True)
v = sym("v", r"v", nonnegative=True)
g = sym("g", r"g", real=True)
r_new = sym("r", r"\sqrt{v_k}", positive=True)  # √v_k (v_k > 0)
mn = sym("m_k", r"m_k", real=True)  # m_k as an atom of the update
tb1 = sym("tbeta_1", r"\tilde\beta_1", positive=True)
tb2 = sym("tbeta_2", r"\tilde\beta_2", positive=True)
nu_n = sym("nu_k", r"\nu_k", positive=True)
sigma_n = sym("sigma_k", r"\sigma_k", positive=True)
teta = sym("teta", r"\tilde\eta_k", positive=True)
teps = sym("teps", r"\tilde\epsilon_k", positive=True)
s = sym("s", "s", positive=True)

a = 1 - eta * lam
NU = b1 * nu + (1 - b1) / A
SIGMA = b2 * sigma + (1 - b2) / A**2
TB1 = b1 * nu / NU
TB2 = b2 * sigma / SIGMA
EPS_T = eps * sp.sqrt(P2) / sp.sqrt(SIGMA * Q2)
ETA_T = eta * NU * sp.sqrt(P2) * Q1 / (A * a * P1 * sp.sqrt(SIGMA * Q2))


def _pos(e: sp.Expr) -> sp.Expr:
    """``e > 0`` kept as a relation (SymPy would fold it to True from the symbols' assumptions)."""
    return sp.StrictGreaterThan(e, 0, evaluate=False)


def _update(lr, bc1, bc2, e, mom, root):
    """Adam's parameter update η/(1−β1^k) · m/(√v/√(1−β2^k) + ε) with bc_i = 1 − β_i^k."""
    return lr / bc1 * mom / (root / sp.sqrt(bc2) + e)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Moment matching (β̃, ν, σ), update matching (η̃, ε̃), induction, amsgrad, rescaling."""
    steps: list[Step] = []
    g_t = A * g  # gradient of the converted run at θ/A
    # (1) first moment: m̃_k = β̃1 m̃ + (1−β̃1) A g must equal m_k/ν_k with m̃ = m/ν.
    m_new = b1 * m + (1 - b1) * g
    lhs1 = tb1 * m / nu + (1 - tb1) * g_t - m_new / nu_n
    eqs1 = [sp.numer(sp.together(c)) for c in sp.Poly(sp.expand(lhs1), m, g).coeffs()]
    sol1 = sp.solve(eqs1, [tb1, nu_n], dict=True)
    steps.append(
        Step(
            "first moment",
            sp.Tuple(tb1, nu_n),
            sp.Tuple(TB1, NU),
            r"$\tilde m_{k-1}=m_{k-1}/\nu_{k-1}$ and the gradient $A_{k-1}g_k$: matching the "
            r"coefficients of $m_{k-1}$ and $g_k$ in $\tilde m_k=m_k/\nu_k$ gives (uniquely) "
            r"$\nu_k=\beta_1\nu_{k-1}+(1-\beta_1)/A_{k-1}$ and $\tilde\beta_1=\beta_1\nu_{k-1}/\nu_k$.",
            check=lambda: len(sol1) == 1 and equal(sol1[0][tb1], TB1) and equal(sol1[0][nu_n], NU),
        )
    )
    # (2) second moment, with the squared gradient A² g².
    v_new = b2 * v + (1 - b2) * g**2
    lhs2 = tb2 * v / sigma + (1 - tb2) * g_t**2 - v_new / sigma_n
    eqs2 = [sp.numer(sp.together(c)) for c in sp.Poly(sp.expand(lhs2), v, g).coeffs()]
    sol2 = sp.solve(eqs2, [tb2, sigma_n], dict=True)
    steps.append(
        Step(
            "second moment",
            sp.Tuple(tb2, sigma_n),
            sp.Tuple(TB2, SIGMA),
            r"Likewise with $\tilde v_{k-1}=v_{k-1}/\sigma_{k-1}$ and $(A_{k-1}g_k)^2$: "
            r"$\sigma_k=\beta_2\sigma_{k-1}+(1-\beta_2)/A_{k-1}^2$, "
            r"$\tilde\beta_2=\beta_2\sigma_{k-1}/\sigma_k$.",
            check=lambda: (
                len(sol2) == 1 and equal(sol2[0][tb2], TB2) and equal(sol2[0][sigma_n], SIGMA)
            ),
        )
    )
    # (3) betas stay in [0, 1): 0 < β̃ < 1 (z3 over the reals).
    ok_b1 = lambda: z3_prove(  # noqa: E731
        [_pos(b1), b1 < 1, _pos(nu), _pos(A)], sp.And(b1 * nu < NU, _pos(b1 * nu))
    )
    ok_b2 = lambda: z3_prove(  # noqa: E731
        [_pos(b2), b2 < 1, _pos(sigma), _pos(A)], sp.And(b2 * sigma < SIGMA, _pos(b2 * sigma))
    )
    steps.append(
        Step(
            "betas in (0,1)",
            sp.Tuple(b1 * nu, b2 * sigma),
            sp.Tuple(NU, SIGMA),
            r"$0<\beta_1\nu_{k-1}<\nu_k$ and $0<\beta_2\sigma_{k-1}<\sigma_k$, so "
            r"$0<\tilde\beta_{1,k},\tilde\beta_{2,k}<1$ (stock Adam's valid range) and "
            r"$Q_1,Q_2>0$.",
            rel="<",
            method="z3",
            check=lambda: ok_b1() and ok_b2(),
        )
    )
    # (4) the update: θ̃_k = θ/A − U(η̃, ε̃; m_k/ν_k, √v_k/√σ_k) must equal θ_k/A_k.
    target = (a * theta - _update(eta, P1, P2, eps, mn, r_new)) / (A * a)
    conv = theta / A - _update(teta, Q1, Q2, teps, mn / NU, r_new / sp.sqrt(SIGMA))
    num = sp.numer(sp.together(sp.expand(conv - target)))
    eqs3 = sp.Poly(sp.expand(num), mn, r_new).coeffs()
    sol3 = sp.solve(eqs3, [teta, teps], dict=True)
    steps.append(
        Step(
            "update",
            sp.Tuple(teta, teps),
            sp.Tuple(ETA_T, EPS_T),
            r"With $\tilde m_k=m_k/\nu_k$, $\sqrt{\tilde v_k}=\sqrt{v_k}/\sqrt{\sigma_k}$, matching "
            r"$\tilde\theta_k=\theta_k/A_k$ as a function of $m_k$ and $\sqrt{v_k}$ gives (uniquely) "
            r"$\tilde\epsilon_k$ and $\tilde\eta_k$; the bias corrections $P_i, Q_i$ are any positive "
            r"numbers, so Adam's use of the current $\tilde\beta$ and of $k$ is absorbed.",
            check=lambda: (
                len(sol3) == 1 and equal(sol3[0][teta], ETA_T) and equal(sol3[0][teps], EPS_T)
            ),
        )
    )
    # (5) induction step: the whole step with the derived hyper-parameters.
    m_k, v_k = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
    mt_k = TB1 * (m / nu) + (1 - TB1) * g_t
    vt_k = TB2 * (v / sigma) + (1 - TB2) * g_t**2
    theta_k = a * theta - _update(eta, P1, P2, eps, m_k, r_new)
    # √ṽ_k is √(v_k/σ_k): ṽ_k = v_k/σ_k is the identity checked in the tuple.
    thetat_k = theta / A - _update(ETA_T, Q1, Q2, EPS_T, mt_k, r_new / sp.sqrt(SIGMA))
    steps.append(
        Step(
            "induction step",
            sp.Tuple(thetat_k, mt_k, vt_k),
            sp.Tuple(theta_k / (A * a), m_k / NU, v_k / SIGMA),
            r"If $\tilde\theta_{k-1}=\theta_{k-1}/A_{k-1}$, $\tilde m_{k-1}=m_{k-1}/\nu_{k-1}$, "
            r"$\tilde v_{k-1}=v_{k-1}/\sigma_{k-1}$, one stock Adam step with "
            r"$(\tilde\eta_k,\tilde\beta_{1,k},\tilde\beta_{2,k},\tilde\epsilon_k)$ gives the same "
            r"relations at $k$, $A_k=(1-\eta_k\lambda_k)A_{k-1}$ ($\sqrt{v_k}$ written $r$).",
        )
    )
    steps.append(
        Step(
            "base case",
            sp.Tuple(sp.S.One, sp.S.One, sp.S.One),
            sp.Tuple(
                NU.subs({A: 1, nu: 1}), SIGMA.subs({A: 1, sigma: 1}), TB1.subs({A: 1, nu: 1}) / b1
            ),
            r"$\tilde\theta_0=\theta_0$, $m_0=\tilde m_0=v_0=\tilde v_0=0$ hold with "
            r"$A_0=\nu_0=\sigma_0=1$; then $\nu_1=\sigma_1=1$ and $\tilde\beta_{i,1}=\beta_i$: "
            r"the first step is stock Adam's with $\tilde\eta_1=\eta_1/A_1$.",
        )
    )
    # (6) amsgrad: max(v^max/σ_k, v_k/σ_k) = max(v^max, v_k)/σ_k; the stored max is v^max/σ_{k-1}.
    x, y = sym("x", "x", real=True), sym("y", "y", real=True)
    amsgrad_ok = lambda: (  # noqa: E731
        z3_prove([_pos(sigma_n), x >= y], x / sigma_n >= y / sigma_n)
        and z3_prove([_pos(sigma_n), y >= x], y / sigma_n >= x / sigma_n)
        and equal((x / sigma) * (sigma / sigma_n), x / sigma_n)
    )
    steps.append(
        Step(
            "amsgrad rewrite",
            sp.Tuple(x / sigma * (sigma / sigma_n)),
            sp.Tuple(x / sigma_n),
            r"With amsgrad the stored maximum $\tilde v^{\max}_{k-1}=v^{\max}_{k-1}/\sigma_{k-1}$ is "
            r"multiplied by $\sigma_{k-1}/\sigma_k$ before step $k$; as $x\mapsto x/\sigma_k$ is "
            r"increasing, $\max(\cdot,\tilde v_k)=\max(v^{\max}_{k-1},v_k)/\sigma_k$ (z3, both orders). "
            r"Without the rewrite the maximum mixes different $\sigma$'s: not exact.",
            method="sympy+z3",
            check=amsgrad_ok,
        )
    )
    # (7) rescaling (θ̃, m̃, ṽ, A, ν, σ) → (sθ̃, m̃/s, ṽ/s², A/s, sν, s²σ).
    sub = {A: A / s, nu: s * nu, sigma: s**2 * sigma}
    steps.append(
        Step(
            "rescaling",
            sp.Tuple(TB1.subs(sub), TB2.subs(sub), ETA_T.subs(sub), EPS_T.subs(sub)),
            sp.Tuple(TB1, TB2, s * ETA_T, EPS_T / s),
            r"Rescaling $(\tilde\theta,\tilde m,\tilde v,A,\nu,\sigma)\to(s\tilde\theta,\tilde m/s,"
            r"\tilde v/s^2,A/s,s\nu,s^2\sigma)$ keeps every relation and gives the betas unchanged, "
            r"$s\tilde\eta_k$ and $\tilde\epsilon_k/s$: the next step of the rescaled run is $s$ times "
            r"the original's (for $s$ a power of two, without rounding).",
            check=lambda: all(
                equal(
                    sp.powsimp(sp.powdenest(lhs_, force=True), force=True),
                    sp.powsimp(sp.powdenest(rhs_, force=True), force=True),
                )
                for lhs_, rhs_ in zip(
                    (TB1.subs(sub), TB2.subs(sub), ETA_T.subs(sub), EPS_T.subs(sub)),
                    (TB1, TB2, s * ETA_T, EPS_T / s),
                )
            ),
        )
    )
    return tuple(steps)


# Negative control: two steps from zero buffers (A_0 = 1), one coordinate, ε = 0.
g1 = sym("g_1", r"g_1", real=True)
g2 = sym("g_2", r"g_2", real=True)
a1 = sym("a_1", r"a_1", positive=True)
a2 = sym("a_2", r"a_2", positive=True)
eta2 = sym("eta_2", r"\eta_2", positive=True)
theta1 = sym("theta_1", r"\theta_1", real=True)

NEGATIVE_WITNESS = {
    g1: sp.Integer(3),
    g2: sp.Integer(-1),
    a1: sp.Rational(1, 2),
    a2: sp.Rational(1, 2),
    eta2: sp.Rational(1, 10),
    b1: sp.Rational(9, 10),
    b2: sp.Rational(99, 100),
    theta1: sp.Integer(1),
}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: stock betas and ε with η̃_k = η_k/A_k alone (exact at k = 1) also works at k = 2."""
    # AdamW at step 2 (ε = 0): gradients g1 (step 1) and g2 at θ_1.
    m2 = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v2 = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    upd = eta2 / (1 - b1**2) * m2 / (sp.sqrt(v2) / sp.sqrt(1 - b2**2))
    theta2 = a2 * theta1 - upd
    # LR-only converted run: θ̃_1 = θ_1/a_1, gradient a_1 g2 at step 2, stock betas, ε = 0.
    mt2 = b1 * (1 - b1) * g1 + (1 - b1) * a1 * g2
    vt2 = b2 * (1 - b2) * g1**2 + (1 - b2) * (a1 * g2) ** 2
    thetat2 = theta1 / a1 - eta2 / (a1 * a2) / (1 - b1**2) * mt2 / (
        sp.sqrt(vt2) / sp.sqrt(1 - b2**2)
    )
    return Step(
        "LR-only map",
        thetat2,
        theta2 / (a1 * a2),
        r"Keeping stock $\beta_1,\beta_2,\epsilon$ and scheduling only $\tilde\eta_k=\eta_k/A_k$ "
        r"(exact at $k=1$) fails at $k=2$: the buffers mix gradients of different scales "
        r"$A_0g_1$ and $A_1g_2$, which only the modified betas undo ($\epsilon=0$ here).",
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
