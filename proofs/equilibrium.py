"""Equilibrium of the weight norm and of the angular update under weight decay: SGD + momentum, AdamW.

Paper result: the equilibrium of a scale-invariant weight under weight decay (the project's own
derivation in PyTorch's conventions, behind the monitor's predictions).

Statement. Run PyTorch's SGD, v_{t+1} = γ v_t + g_t + λ w_t, w_{t+1} = w_t − η v_{t+1},
on a scale-invariant weight w with constant (η, λ, γ), and write A = E‖w_t‖²,
B = E⟨w_t, v_t⟩, C = E‖v_t‖², σ² = E[‖g_t‖² ‖w_t‖²]. Under the assumptions below the
second moments have exactly one steady state,

    B* = −λA*/(1+γ),   C* = 2λA*/(η(1+γ)),
    ‖w*‖⁴ = A*² = η σ² (1+γ) / (λ (1−γ) (2(1+γ) − ηλ)),

at which the angular update Δ = ∠(w_t, w_{t+1}) obeys cos Δ* = 1 − ηλ/(1+γ), so
Δ* = arccos(1 − ηλ/(1+γ)) = √(2ηλ/(1+γ)) (1 + O(ηλ)). Linearised around it, the
deviations evolve with the eigenvalues γ² and the roots of x² − b x + γ,
b = (1+γ) − 4ηλ + 2η²λ²/(1+γ), all inside the unit disk (they decay) exactly when
ηλ ≠ 1+γ in the range above; at ηλ = 1+γ, −1 is a root (marginal: Coq,
EquilibriumStability.v). The slowest is ρ = (b + √(b² − 4γ))/2 = 1 − 4ηλ/(1−γ)
+ O(η²λ²), so the relaxation time is τ = −1/ln ρ ≈ (1−γ)/(4ηλ) steps.

Without momentum (γ = 0) these read ‖w*‖⁴ = ησ²/(λ(2 − ηλ)) and cos Δ* = 1 − ηλ; used
for a run with momentum they are wrong (the negative control).

Derivation: expand ‖w_{t+1}‖², ⟨w_{t+1}, v_{t+1}⟩ and ‖v_{t+1}‖² with the bilinear inner
product (the only inner products needed are those of w_t, v_t and g_t), solve the
steady-state equations (linear in B, C and E‖g‖²), close them with E‖g‖² = σ²/A, take the
Jacobian of the moment map at the fixed point and factor its characteristic polynomial.

AdamW (PyTorch's ``torch.optim.AdamW``, the steps named "AdamW: ..."; derived in
``proofs/_adamw_equilibrium.py``): θ ← (1−ηλ)θ_t, then θ_{t+1} = θ − η m̂_t/(√v̂_t + ε).
At t ≫ 1/(1−β2), with ĝ_t = g_t/(√v̂_t + ε) odd in the noise and G = E‖ĝ_t‖² constant
(G = C, the number of coordinates, for isotropic noise, ε ≪ √v̂, β2 → 1), e = 1 − ηλ:

    E‖u‖² = r G,  r = (1−β1)/(1+β1),
    ‖w*‖² = η G r (1 + β1 e) / (λ (2 − ηλ) (1 − β1 e)),
    cos Δ* = (e + β1)/(1 + β1 e),  Δ* = √(2ηλ(1−β1)/(1+β1)) (1 + O(ηλ)),

and deviations decay as ρ^t, ρ = max(e, β1)², τ ≈ 1/(2ηλ), while v̂ follows the norm (v̂'s
lag, c = ηλ/(1−β2): τ ≈ (1 + 2c)/(2ηλ) for c ≪ 1). SGD's formulas used for AdamW
are wrong (the step "AdamW: SGD's formulas are off"; the false claim is
:func:`adamw_negative_control`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import sympy as sp

from proofs import _adamw_equilibrium as _adamw
from proofs._core import Proof, Step, equal, sym, vec, vector_coefficients
from proofs._sgd import G, torch_step

NAME = "equilibrium"
RESULT = "equilibrium of the weight norm and the angular update (SGD with momentum; AdamW)"
STATEMENT = (
    r"For PyTorch's SGD with constant $\eta,\lambda>0$, $0\le\gamma<1$, $\eta\lambda<2(1+\gamma)$ "
    r"on a scale-invariant weight driven by isotropic gradient noise, the second moments have the "
    r"unique steady state $\mathbb E\|w\|^4=\frac{\eta\sigma^2(1+\gamma)}"
    r"{\lambda(1-\gamma)(2(1+\gamma)-\eta\lambda)}$, the angular update satisfies "
    r"$\cos\Delta^*=1-\frac{\eta\lambda}{1+\gamma}$, i.e. "
    r"$\Delta^*\approx\sqrt{2\eta\lambda/(1+\gamma)}$, and deviations decay as $\rho^t$ with "
    r"$\rho=1-\frac{4\eta\lambda}{1-\gamma}+O(\eta^2\lambda^2)$. For PyTorch's AdamW "
    r"($e=1-\eta\lambda$, $G=\mathbb E\|g/(\sqrt{\hat v}+\epsilon)\|^2$, $G=C$ for isotropic "
    r"noise in $C$ coordinates) $\mathbb E\|u\|^2=\frac{1-\beta_1}{1+\beta_1}G$, "
    r"$\|w^*\|^2=\frac{\eta G(1-\beta_1)(1+\beta_1e)}{\lambda(1+\beta_1)(2-\eta\lambda)"
    r"(1-\beta_1e)}$ and $\cos\Delta^*=\frac{e+\beta_1}{1+\beta_1e}$, i.e. "
    r"$\Delta^*\approx\sqrt{2\eta\lambda(1-\beta_1)/(1+\beta_1)}$."
)
ASSUMPTIONS = (
    r"PyTorch's SGD: $v_{t+1}=\gamma v_t+g_t+\lambda w_t$, $w_{t+1}=w_t-\eta v_{t+1}$ "
    r"(dampening 0, no Nesterov), constant $\eta,\lambda>0$, $0\le\gamma<1$.",
    r"Scale invariance: $\langle g_t,w_t\rangle=0$ exactly and $\|g_t\|=\|\hat g_t\|/\|w_t\|$ "
    r"with $\hat g_t$ the gradient at $w_t/\|w_t\|$ (proofs.scale\_invariance).",
    r"Isotropic noise: $g_t$ has zero mean given the past, so "
    r"$\mathbb E\langle g_t,v_t\rangle=0$; $\sigma^2=\mathbb E\|\hat g_t\|^2$ is constant.",
    r"Concentration (high dimension $d$): $\mathbb E\|g_t\|^2=\sigma^2/\mathbb E\|w_t\|^2$ and "
    r"the angle is the ratio of expectations; the neglected fluctuations are $O(1/d)$ relative.",
    r"Steady state: $A=\mathbb E\|w_t\|^2$, $B=\mathbb E\langle w_t,v_t\rangle$, "
    r"$C=\mathbb E\|v_t\|^2$ do not depend on $t$.",
    *_adamw.ASSUMPTIONS,
)

eta = sym("eta", r"\eta", positive=True)
lam = sym("lambda", r"\lambda", positive=True)
gamma = sym("gamma", r"\gamma", nonnegative=True)
sigma2 = sym("sigma2", r"\sigma^2", positive=True)
A = sym("A", "A", positive=True)
B = sym("B", "B", real=True)
C = sym("C", "C", positive=True)
Gg = sym("Gg", r"\mathbb E\|g\|^2", positive=True)
x = sym("x", "x")
e = sym("e", r"\epsilon", positive=True)  # ηλ in the small-ηλ expansion
w = vec("w_t", r"w_t")
v = vec("v_t", r"v_t")

#: The steady state (the statement's formulas, checked in :func:`derive`).
B_STAR = -lam * A / (1 + gamma)
C_STAR = 2 * lam * A / (eta * (1 + gamma))
NORM4_STAR = eta * sigma2 * (1 + gamma) / (lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam))
COS_STAR = 1 - eta * lam / (1 + gamma)
B_QUAD = (1 + gamma) - 4 * eta * lam + 2 * eta**2 * lam**2 / (1 + gamma)
RHO = (B_QUAD + sp.sqrt(B_QUAD**2 - 4 * gamma)) / 2

#: The formulas without momentum (γ = 0), the negative control's claim for γ > 0.
NORM4_NO_MOMENTUM = eta * sigma2 / (lam * (2 - eta * lam))
COS_NO_MOMENTUM = 1 - eta * lam


def _gram() -> dict[tuple[Any, Any], Any]:
    g = G(w)
    table = {(w, w): A, (w, v): B, (v, v): C, (g, g): Gg, (g, w): sp.S.Zero, (g, v): sp.S.Zero}
    out: dict[tuple[Any, Any], Any] = {}
    for (a, b), val in table.items():
        out[(a, b)] = out[(b, a)] = val
    return out


def inner(p: Any, q: Any, gram: Mapping[tuple[Any, Any], Any] | None = None) -> sp.Expr:
    """E⟨p, q⟩ for p, q linear in w_t, v_t, g_t = G(w_t), expanded bilinearly over the Gram table."""
    table = _gram() if gram is None else gram
    cp, cq = vector_coefficients(p), vector_coefficients(q)
    if 1 in cp or 1 in cq:
        raise ValueError("inner() needs vector expressions (a scalar term was found)")
    return sp.expand(sum(a * b * table[(u, s)] for u, a in cp.items() for s, b in cq.items()))


def moment_map() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(A', B', C') after one PyTorch SGD step, as functions of A, B, C and E‖g‖²."""
    w1, v1 = torch_step(w, v, eta, lam, gamma)
    return inner(w1, w1), inner(w1, v1), inner(v1, v1)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Moment recursion, steady state, closure, angle, linearisation, relaxation rate."""
    steps: list[Step] = []
    a1, b1, c1 = moment_map()
    c_exp = gamma**2 * C + lam**2 * A + 2 * gamma * lam * B + Gg
    b_exp = gamma * B + lam * A - eta * c_exp
    a_exp = A - 2 * eta * (gamma * B + lam * A) + eta**2 * c_exp
    steps.append(
        Step(
            "moment recursion",
            sp.Tuple(a1, b1, c1),
            sp.Tuple(a_exp, b_exp, c_exp),
            r"Expanding $\|w_{t+1}\|^2$, $\langle w_{t+1},v_{t+1}\rangle$, $\|v_{t+1}\|^2$ with "
            r"$\langle g_t,w_t\rangle=0$ (scale invariance) and $\mathbb E\langle g_t,v_t\rangle=0$ "
            r"(noise): $C'=\gamma^2C+\lambda^2A+2\gamma\lambda B+\mathbb E\|g\|^2$, "
            r"$B'=\gamma B+\lambda A-\eta C'$, $A'=A-2\eta(\gamma B+\lambda A)+\eta^2C'$.",
        )
    )
    sols = sp.solve([a1 - A, b1 - B, c1 - C], [B, C, Gg], dict=True)
    g_star = lam * A * (1 - gamma) * (2 * (1 + gamma) - eta * lam) / (eta * (1 + gamma))
    steps.append(
        Step(
            "steady state",
            sp.Tuple(*(sols[0][s] for s in (B, C, Gg))) if len(sols) == 1 else sp.Tuple(),
            sp.Tuple(B_STAR, C_STAR, g_star),
            r"$A'=A$, $B'=B$, $C'=C$ is linear in $(B,C,\mathbb E\|g\|^2)$ with one solution: "
            r"$B=-\lambda A/(1+\gamma)$, $C=2\lambda A/(\eta(1+\gamma))$, "
            r"$\mathbb E\|g\|^2=\lambda A(1-\gamma)(2(1+\gamma)-\eta\lambda)/(\eta(1+\gamma))$.",
            check=lambda: (
                len(sols) == 1
                and equal(
                    sp.Tuple(sols[0][B], sols[0][C], sols[0][Gg]), sp.Tuple(B_STAR, C_STAR, g_star)
                )
            ),
        )
    )
    q = sym("Q", r"A^2", positive=True)
    a_sol = sp.solve(sp.Eq(sigma2, sp.expand(g_star * A).subs(A**2, q)), q)
    steps.append(
        Step(
            "equilibrium norm",
            a_sol[0] if len(a_sol) == 1 else sp.S.Zero,
            NORM4_STAR,
            r"Scale invariance closes the system: $\mathbb E\|g\|^2=\sigma^2/A$ is linear in "
            r"$A^2$ with one solution, $A^2=\|w^*\|^4=\eta\sigma^2(1+\gamma)/(\lambda(1-\gamma)"
            r"(2(1+\gamma)-\eta\lambda))$.",
            check=lambda: len(a_sol) == 1 and equal(a_sol[0], NORM4_STAR),
        )
    )
    # unevaluated: the symbols' own assumptions would turn `eta > 0` into True before z3 sees it
    gt, ge, lt = sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan
    hyps = [
        *(gt(s, 0, evaluate=False) for s in (eta, lam, sigma2, A)),
        ge(gamma, 0, evaluate=False),
        lt(gamma, 1, evaluate=False),
        lt(eta * lam, 2 * (1 + gamma), evaluate=False),
    ]
    steps.append(
        Step(
            "steady state admissible",
            sp.And(NORM4_STAR > 0, B_STAR**2 < A * C_STAR),
            sp.true,
            r"For $\eta\lambda<2(1+\gamma)$ the norm is positive and $B^2<AC$ (Cauchy--Schwarz "
            r"holds strictly, so the moments are those of real vectors).",
            rel="<=>",
            method="z3",
            check=lambda: _z3_all(hyps, [NORM4_STAR > 0, B_STAR**2 < A * C_STAR]),
        )
    )
    w1, _ = torch_step(w, v, eta, lam, gamma)
    cos_ratio = inner(w, w1) / A
    steps.append(
        Step(
            "angular update",
            cos_ratio.subs(B, B_STAR),
            COS_STAR,
            r"At the steady state $\mathbb E\|w_{t+1}\|^2=\mathbb E\|w_t\|^2=A$, so "
            r"$\cos\Delta^*=\mathbb E\langle w_t,w_{t+1}\rangle/A=1-\eta(\gamma B+\lambda A)/A"
            r"=1-\eta\lambda/(1+\gamma)$.",
        )
    )
    u = sym("u", "u", positive=True)  # u = ηλ/(1+γ)
    ratio = sp.acos(1 - u) ** 2 / (2 * u)
    steps.append(
        Step(
            "small-step limit",
            sp.limit(ratio, u, 0, "+"),
            sp.S.One,
            r"$\Delta^*=\arccos(1-u)$, $u=\eta\lambda/(1+\gamma)$: $\Delta^{*2}/(2u)\to1$ as "
            r"$u\to0$, i.e. $\Delta^*\approx\sqrt{2\eta\lambda/(1+\gamma)}$.",
        )
    )
    fmap = sp.Matrix([a_exp, b_exp, c_exp]).subs(Gg, sigma2 / A)
    # at the steady state σ² = A·E‖g‖² (the closure), which removes σ² from the Jacobian
    jac = fmap.jacobian([A, B, C]).subs({B: B_STAR, C: C_STAR}).subs(sigma2, g_star * A)
    charpoly = sp.factor((jac - x * sp.eye(3)).det())
    steps.append(
        Step(
            "linearisation",
            charpoly,
            -(x - gamma**2) * (x**2 - B_QUAD * x + gamma),
            r"The Jacobian of $(A,B,C)\mapsto(A',B',C')$ with $\mathbb E\|g\|^2=\sigma^2/A$ at the "
            r"steady state has characteristic polynomial $-(x-\gamma^2)(x^2-bx+\gamma)$, "
            r"$b=(1+\gamma)-4\eta\lambda+2\eta^2\lambda^2/(1+\gamma)$.",
            check=lambda: equal(
                sp.expand(sp.together(charpoly)),
                sp.expand(-(x - gamma**2) * (x**2 - B_QUAD * x + gamma)),
            ),
        )
    )
    h = sym("h", r"(1-\gamma)", positive=True)  # h = 1 − γ > 0, so that √((1−γ)²) = 1 − γ
    rho_e = RHO.subs(lam, e / eta).subs(gamma, 1 - h)
    rate = sp.limit((1 - rho_e) / e, e, 0, "+")
    steps.append(
        Step(
            "relaxation rate",
            rate,
            4 / h,
            r"The slowest root $\rho=(b+\sqrt{b^2-4\gamma})/2$ satisfies "
            r"$(1-\rho)/(\eta\lambda)\to4/(1-\gamma)$ as $\eta\lambda\to0$: relaxation time "
            r"$\tau=-1/\ln\rho\approx(1-\gamma)/(4\eta\lambda)$ steps.",
        )
    )
    steps.append(
        Step(
            "no momentum",
            sp.Tuple(NORM4_STAR.subs(gamma, 0), COS_STAR.subs(gamma, 0)),
            sp.Tuple(NORM4_NO_MOMENTUM, COS_NO_MOMENTUM),
            r"At $\gamma=0$: $\|w^*\|^4=\eta\sigma^2/(\lambda(2-\eta\lambda))$ and "
            r"$\cos\Delta^*=1-\eta\lambda$ (exactly the fixed point of "
            r"$\|w_{t+1}\|^2=(1-\eta\lambda)^2\|w_t\|^2+\eta^2\sigma^2/\|w_t\|^2$).",
        )
    )
    steps.extend(_adamw.adamw_steps())
    return tuple(steps)


def _z3_all(hyps: list[Any], goals: list[Any]) -> bool:
    from proofs._core import z3_prove

    # z3 sees 1/(...) as a division; multiply out the positive denominators first.
    den = (1 - gamma) * (2 * (1 + gamma) - eta * lam) * (1 + gamma) ** 2 * eta * lam
    cleared = []
    for g in goals:
        lhs = sp.cancel(sp.together((g.lhs - g.rhs) * den))
        cleared.append(
            sp.StrictGreaterThan(lhs, 0)
            if isinstance(g, sp.StrictGreaterThan)
            else sp.StrictLessThan(lhs, 0)
        )
    return all(z3_prove(hyps, c) for c in cleared)


#: AdamW's steady state (``proofs/_adamw_equilibrium.py``), for the monitor's tests
ADAMW_NORM2_STAR = _adamw.NORM2_STAR
ADAMW_COS_STAR = _adamw.COS_STAR
ADAMW_RHO = _adamw.RHO
adamw_negative_control = _adamw.adamw_negative_control
ADAMW_NEGATIVE_WITNESS = _adamw.NEGATIVE_WITNESS

NEGATIVE_WITNESS = {
    eta: sp.Rational(1, 10),
    lam: sp.Rational(1, 2000),
    gamma: sp.Rational(9, 10),
    sigma2: sp.S.One,
    A: sp.S.One,
}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the no-momentum equilibrium (γ = 0 formulas) holds for a run with momentum."""
    w1, _ = torch_step(w, v, eta, lam, gamma)
    cos_derived = (inner(w, w1) / A).subs(B, B_STAR)
    return Step(
        "no-momentum formulas with momentum",
        sp.Matrix([cos_derived, NORM4_STAR]),
        sp.Matrix([COS_NO_MOMENTUM, NORM4_NO_MOMENTUM]),
        r"Using $\cos\Delta^*=1-\eta\lambda$ and $\|w^*\|^4=\eta\sigma^2/(\lambda(2-\eta\lambda))$ "
        r"for a run with momentum $\gamma>0$ is false: with $\gamma=9/10$ the angle is off by "
        r"$\sqrt{1+\gamma}$ and $\|w^*\|^4$ by about $1/(1-\gamma)$.",
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
