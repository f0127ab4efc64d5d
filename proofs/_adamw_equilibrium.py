r"""The AdamW part of ``proofs/equilibrium.py``: weight norm and angular update at equilibrium.

Not a registered result of its own: :func:`adamw_steps` are steps of the ``equilibrium``
result (``proofs.equilibrium.derive``), and :func:`adamw_negative_control` is the AdamW
counterpart of that result's negative control (checked by the tests).

PyTorch's ``torch.optim.AdamW(lr=η, betas=(β1, β2), eps=ε, weight_decay=λ)``, step t ≥ 1::

    θ ← (1 − ηλ) θ_t                                  (decoupled decay first, times the LR)
    m_t = β1 m_{t−1} + (1 − β1) g_t,  v_t = β2 v_{t−1} + (1 − β2) g_t²
    θ_{t+1} = θ − η · (m_t/(1 − β1^t)) / (√(v_t/(1 − β2^t)) + ε)

Model (the assumptions of :data:`ASSUMPTIONS`): at t ≫ 1/(1 − β2) the bias corrections
are 1; ĝ_t = g_t/(√v̂_t + ε) is the per-coordinate normalised gradient, and with v̂
quasi-static over the momentum's memory the update is u_t = m̃_t,
m̃_t = β1 m̃_{t−1} + (1 − β1) ĝ_t. Given the past, g_t ↦ ĝ_t is odd in the noise
(v_t is even in g_t), so E⟨ĝ_t, w_t⟩ = E⟨ĝ_t, m̃_{t−1}⟩ = 0 with no orthogonality of
ĝ_t to w_t needed, and G = E‖ĝ_t‖² is a constant: G = C (the number of coordinates)
for i.i.d. isotropic noise with ε ≪ √v̂ and β2 → 1. With e = 1 − ηλ and
A = E‖w‖², B = E⟨w, m̃⟩, M = E‖m̃‖²::

    M* = r G,  r = (1 − β1)/(1 + β1)           (E‖u‖² = r G: momentum shrinks the step)
    B* = −η r G/(1 − β1 e)
    A* = ‖w*‖² = η G r (1 + β1 e) / (λ (2 − ηλ) (1 − β1 e))
    cos Δ* = (e + β1)/(1 + β1 e),   1 − cos Δ* = ηλ (1 − β1)/(1 + β1 e)

so Δ* = √(2ηλ (1 − β1)/(1 + β1)) (1 + O(ηλ)) and ‖w*‖² → ηG/(2λ) as ηλ/(1 − β1) → 0.
The moment map is linear (G does not depend on A, unlike SGD's σ²/A): its eigenvalues are
e², β1 e and β1², so deviations decay as ρ^t with ρ = max(e, β1)², τ = −1/ln ρ ≈ 1/(2ηλ),
as long as v̂ follows the norm. Out of equilibrium v̂ lags (G = σ²/(A V), V an EMA of
σ²/(CA)): the map with V as a fourth moment has the same steady state and a 4 × 4
Jacobian whose slowest root is, to leading order, 1 − ρ = ηλ((1 + 4c) − √(1 + 16c²))/(2c)
with c = ηλ/(1 − β2): τ ≈ (1 + 2c)/(2ηλ) for c ≪ 1, τ → 2/(1 − β2) for c ≫ 1.

Negative controls: SGD's formula cos Δ* = 1 − ηλ/(1+γ) with γ = β1 overstates
1 − cos Δ* by (1 + β1 e)/((1 − β1)(1 + β1)) (→ 1/(1 − β1): Δ* by √10 at β1 = 0.9), and
the balance of an update orthogonal to w, ‖w*‖² = η E‖u‖²/(λ(2 − ηλ)), understates A* by
(1 − β1 e)/(1 + β1 e) (→ 1/19 at β1 = 0.9): with momentum the step has a radial part.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from proofs._core import Step, equal, sym, vec, vector_coefficients, z3_prove

ASSUMPTIONS = (
    r"AdamW (PyTorch): $\theta\leftarrow(1-\eta\lambda)\theta_t$, then "
    r"$\theta_{t+1}=\theta-\eta\,\hat m_t/(\sqrt{\hat v_t}+\epsilon)$ with "
    r"$m_t=\beta_1m_{t-1}+(1-\beta_1)g_t$, $v_t=\beta_2v_{t-1}+(1-\beta_2)g_t^2$, "
    r"$\hat m_t=m_t/(1-\beta_1^t)$, $\hat v_t=v_t/(1-\beta_2^t)$; constant $\eta,\lambda>0$, "
    r"$\eta\lambda<1$, $0\le\beta_1<1$, amsgrad off.",
    r"AdamW steady state: $t\gg1/(1-\beta_2)$ (bias corrections $=1$); $\hat v$ quasi-static "
    r"over the momentum's memory, so the update is $u_t=\tilde m_t=\beta_1\tilde m_{t-1}+"
    r"(1-\beta_1)\hat g_t$ with $\hat g_t=g_t/(\sqrt{\hat v_t}+\epsilon)$.",
    r"AdamW noise: given the past, $g_t\mapsto\hat g_t$ is odd in the (symmetric) noise, so "
    r"$\mathbb E\langle\hat g_t,w_t\rangle=\mathbb E\langle\hat g_t,\tilde m_{t-1}\rangle=0$; "
    r"$G=\mathbb E\|\hat g_t\|^2$ is constant, $G=C$ (the number of coordinates) for i.i.d. "
    r"isotropic noise with $\epsilon\ll\sqrt{\hat v}$ and $\beta_2\to1$ (else $G$ is measured).",
)

eta = sym("eta", r"\eta", positive=True)
lam = sym("lambda", r"\lambda", positive=True)
beta1 = sym("beta_1", r"\beta_1", nonnegative=True)
beta2 = sym("beta_2", r"\beta_2", nonnegative=True)
Gn = sym("G_hat", r"G", positive=True)  # E‖ĝ‖²
A = sym("A", "A", positive=True)
B = sym("B", "B", real=True)
M = sym("M", "M", positive=True)
x = sym("x", "x")
s_mult = sym("s_t", "s_t", positive=True)  # Loshchilov–Hutter's schedule multiplier
alpha = sym("alpha", r"\alpha", positive=True)  # Loshchilov–Hutter's Adam step size
lam_lh = sym("lambda_LH", r"\lambda_{\mathrm{LH}}", positive=True)
w = vec("w_t", r"w_t")
mt = vec("mtilde_t", r"\tilde m_t")
gh = vec("ghat_t", r"\hat g_t")
u = vec("u_t", r"u_t")

E = 1 - eta * lam  # the decay factor e
R = (1 - beta1) / (1 + beta1)
M_STAR = R * Gn
B_STAR = -eta * R * Gn / (1 - beta1 * E)
#: ‖w*‖² of AdamW (exact in ηλ under the model)
NORM2_STAR = eta * Gn * R * (1 + beta1 * E) / (lam * (2 - eta * lam) * (1 - beta1 * E))
COS_STAR = (E + beta1) / (1 + beta1 * E)
#: the slowest eigenvalue of the moment map when e ≥ β1 (ηλ ≤ 1 − β1)
RHO = E**2
#: Kosson et al.'s leading-order forms (G = C): ‖w*‖² = ηC/(2λ), Δ*² = 2ηλ(1−β1)/(1+β1)
NORM2_SMALL = eta * Gn / (2 * lam)
DELTA2_SMALL = 2 * eta * lam * R
#: wrong claims: SGD's angle with γ = β1, and the balance of an orthogonal update
COS_SGD = 1 - eta * lam / (1 + beta1)
NORM2_ORTHOGONAL = eta * M_STAR / (lam * (2 - eta * lam))


def _gram() -> dict[tuple[Any, Any], Any]:
    table = {(w, w): A, (w, mt): B, (mt, mt): M, (gh, gh): Gn, (gh, w): 0, (gh, mt): 0}
    out: dict[tuple[Any, Any], Any] = {}
    for (a, b), val in table.items():
        out[(a, b)] = out[(b, a)] = sp.sympify(val)
    return out


def inner(p: Any, q: Any) -> sp.Expr:
    """E⟨p, q⟩ for p, q linear in w_t, m̃_t, ĝ_t, expanded bilinearly over the Gram table."""
    table = _gram()
    cp, cq = vector_coefficients(p), vector_coefficients(q)
    if 1 in cp or 1 in cq:
        raise ValueError("inner() needs vector expressions (a scalar term was found)")
    return sp.expand(sum(a * b * table[(s, t)] for s, a in cp.items() for t, b in cq.items()))


def torch_adamw_step(theta: Any, update: Any, lr: Any, weight_decay: Any) -> Any:
    """PyTorch's order: ``param.mul_(1 − lr·wd)``, then ``param.add_(update, alpha=−lr)``."""
    decayed = (1 - lr * weight_decay) * theta
    return sp.expand(decayed - lr * update)


def adamw_step_model(theta: Any, buf: Any) -> tuple[Any, Any]:
    """(θ_{t+1}, m̃_{t+1}) of the steady-state model: u = m̃_{t+1} = β1 m̃_t + (1−β1) ĝ_t."""
    new_buf = sp.expand(beta1 * buf + (1 - beta1) * gh)
    return torch_adamw_step(theta, new_buf, eta, lam), new_buf


def adamw_moment_map() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(A', B', M') after one step of the model, as functions of A, B, M and G."""
    w1, m1 = adamw_step_model(w, mt)
    return inner(w1, w1), inner(w1, m1), inner(m1, m1)


def adamw_steps() -> list[Step]:
    """The AdamW steps of the ``equilibrium`` result (see the module docstring)."""
    steps: list[Step] = []
    torch_form = torch_adamw_step(w, u, eta, lam)
    steps.append(
        Step(
            "AdamW: order of operations",
            sp.Tuple(torch_form, torch_form.subs({eta: s_mult * alpha, lam: lam_lh / alpha})),
            sp.Tuple(
                sp.expand(w - eta * (u + lam * w)),
                sp.expand(w - s_mult * (alpha * u + lam_lh * w)),
            ),
            r"PyTorch decays first, $\theta\leftarrow(1-\eta\lambda)w_t$, then subtracts "
            r"$\eta u_t$; $u_t$ depends on the gradient at $w_t$ only, so this is the "
            r"simultaneous $w_t-\eta(u_t+\lambda w_t)$ (Kosson et al.'s form). Loshchilov and "
            r"Hutter's $w_t-s_t(\alpha u_t+\lambda_{\mathrm{LH}}w_t)$ is the same step with "
            r"$\eta=s_t\alpha$, $\lambda=\lambda_{\mathrm{LH}}/\alpha$: PyTorch's decay is "
            r"multiplied by the whole LR.",
        )
    )
    a1, b1_, m1 = adamw_moment_map()
    m_exp = beta1**2 * M + (1 - beta1) ** 2 * Gn
    b_exp = E * beta1 * B - eta * m_exp
    a_exp = E**2 * A - 2 * E * eta * beta1 * B + eta**2 * m_exp
    steps.append(
        Step(
            "AdamW: moment recursion",
            sp.Tuple(a1, b1_, m1),
            sp.Tuple(a_exp, b_exp, m_exp),
            r"With $e=1-\eta\lambda$, $\mathbb E\langle\hat g_t,w_t\rangle="
            r"\mathbb E\langle\hat g_t,\tilde m_t\rangle=0$ and $\mathbb E\|\hat g_t\|^2=G$: "
            r"$M'=\beta_1^2M+(1-\beta_1)^2G$, $B'=e\beta_1B-\eta M'$, "
            r"$A'=e^2A-2e\eta\beta_1B+\eta^2M'$.",
        )
    )
    sols = sp.solve([a1 - A, b1_ - B, m1 - M], [A, B, M], dict=True)
    steps.append(
        Step(
            "AdamW: steady state",
            sp.Tuple(*(sols[0][s] for s in (A, B, M))) if len(sols) == 1 else sp.Tuple(),
            sp.Tuple(NORM2_STAR, B_STAR, M_STAR),
            r"$A'=A$, $B'=B$, $M'=M$ is linear in $(A,B,M)$ with one solution: "
            r"$M^*=rG$ with $r=(1-\beta_1)/(1+\beta_1)$, $B^*=-\eta rG/(1-\beta_1e)$, "
            r"$\|w^*\|^2=A^*=\eta Gr(1+\beta_1e)/(\lambda(2-\eta\lambda)(1-\beta_1e))$ "
            r"(no closure needed: $G$ does not depend on $\|w\|$).",
            check=lambda: (
                len(sols) == 1
                and equal(
                    sp.Tuple(sols[0][A], sols[0][B], sols[0][M]),
                    sp.Tuple(NORM2_STAR, B_STAR, M_STAR),
                )
            ),
        )
    )
    steps.append(
        Step(
            "AdamW: update size",
            M_STAR / Gn,
            R,
            r"The update's second moment at equilibrium is $\mathbb E\|u\|^2=M^*=rG$: an EMA "
            r"with weights $(1-\beta_1)\beta_1^k$ of uncorrelated steps has "
            r"$r=(1-\beta_1)^2/(1-\beta_1^2)=(1-\beta_1)/(1+\beta_1)$.",
        )
    )
    gt, ge, lt = sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan
    hyps = [
        *(gt(s, 0, evaluate=False) for s in (eta, lam, Gn)),
        ge(beta1, 0, evaluate=False),
        lt(beta1, 1, evaluate=False),
        lt(eta * lam, 1, evaluate=False),
    ]
    # z3 sees 1/(...) as a division: multiply by the positive denominators first
    den = lam * (2 - eta * lam) * (1 - beta1 * E) ** 2 * (1 + beta1)
    goals = [NORM2_STAR, NORM2_STAR * M_STAR - B_STAR**2]
    steps.append(
        Step(
            "AdamW: steady state admissible",
            sp.And(NORM2_STAR > 0, B_STAR**2 < NORM2_STAR * M_STAR),
            sp.true,
            r"For $0<\eta\lambda<1$ and $0\le\beta_1<1$ the norm is positive and $B^2<AM$ "
            r"(Cauchy--Schwarz holds strictly).",
            rel="<=>",
            method="z3",
            check=lambda: all(
                z3_prove(hyps, gt(sp.cancel(sp.together(g * den * d)), 0))
                for g, d in zip(goals, (1, (1 + beta1)))
            ),
        )
    )
    w1, _ = adamw_step_model(w, mt)
    cos_ratio = inner(w, w1) / A
    cos_at = sp.cancel(sp.together(cos_ratio.subs({B: B_STAR, A: NORM2_STAR})))
    steps.append(
        Step(
            "AdamW: angular update",
            sp.Tuple(cos_at, 1 - cos_at),
            sp.Tuple(COS_STAR, eta * lam * (1 - beta1) / (1 + beta1 * E)),
            r"At the steady state $\cos\Delta^*=\mathbb E\langle w_t,w_{t+1}\rangle/A"
            r"=e-\eta\beta_1B^*/A^*=(e+\beta_1)/(1+\beta_1e)$, i.e. "
            r"$1-\cos\Delta^*=\eta\lambda(1-\beta_1)/(1+\beta_1e)$: the angle does not depend "
            r"on $G$.",
        )
    )
    ee = sym("epsilon_AW", r"\epsilon", positive=True)  # ηλ in the small-step limits
    delta2 = sp.acos(COS_STAR) ** 2
    lim_angle = sp.limit((delta2 / DELTA2_SMALL).subs(lam, ee / eta), ee, 0, "+")
    lim_norm = sp.limit(sp.cancel((NORM2_STAR / NORM2_SMALL).subs(lam, ee / eta)), ee, 0, "+")
    steps.append(
        Step(
            "AdamW: small-step limits",
            sp.Tuple(sp.simplify(lim_angle), lim_norm),
            sp.Tuple(sp.S.One, sp.S.One),
            r"As $\eta\lambda\to0$: $\Delta^{*2}/(2\eta\lambda(1-\beta_1)/(1+\beta_1))\to1$ and "
            r"$A^*/(\eta G/(2\lambda))\to1$, Kosson et al.'s $\sqrt{2\eta\lambda(1-\beta_1)/"
            r"(1+\beta_1)}$ and $\sqrt{\eta C/(2\lambda)}$ (with $G=C$); the norm's correction is "
            r"of relative order $\eta\lambda\beta_1/(1-\beta_1)$, not $\eta\lambda$.",
        )
    )
    jac = sp.Matrix([a_exp, b_exp, m_exp]).jacobian([A, B, M])
    charpoly = sp.factor((jac - x * sp.eye(3)).det())
    target = -(x - E**2) * (x - beta1 * E) * (x - beta1**2)
    steps.append(
        Step(
            "AdamW: linearisation",
            charpoly,
            target,
            r"The moment map is affine in $(A,B,M)$; its matrix has the eigenvalues $e^2$, "
            r"$\beta_1e$, $\beta_1^2$, all in $[0,1)$, so the steady state is globally "
            r"attracting and deviations decay as $\rho^t$, $\rho=\max(e,\beta_1)^2$ "
            r"($=e^2$ for $\eta\lambda\le1-\beta_1$): $\tau=-1/\ln\rho\approx1/(2\eta\lambda)$.",
            check=lambda: equal(sp.expand(charpoly), sp.expand(target)),
        )
    )
    steps.append(
        Step(
            "AdamW: steady state with the second moment's lag",
            lag_fixed_point_residual(),
            sp.zeros(4, 1),
            r"With $\hat v$'s level $V$ as a fourth moment ($V'=\beta_2V+(1-\beta_2)\sigma^2/(CA)$, "
            r"$G=\sigma^2/(AV')$), the steady state above with $V^*=\sigma^2/(CA^*)$ is a fixed "
            r"point of the extended map (scaled variables of the next step): $G^*=C$.",
        )
    )
    jac4, target4 = lag_jacobian()
    x4 = (jac4 - x * sp.eye(4)).det(method="berkowitz")
    steps.append(
        Step(
            "AdamW: linearisation with the second moment's lag",
            sp.Tuple(jac4, sp.expand(x4.subs(beta2, 0))),
            sp.Tuple(target4, sp.expand(-x * charpoly)),
            r"Out of equilibrium $\hat v$ lags: per coordinate $\hat v\approx V$ with "
            r"$V'=\beta_2V+(1-\beta_2)\sigma^2/(CA)$ (scale invariance: $\mathbb E\|g\|^2="
            r"\sigma^2/A$) and $G=\sigma^2/(AV')$, $=C$ at the steady state. In "
            r"$a=A/A^*$, $b=B/(\eta C)$, $m=M/C$, $p=CVA^*/\sigma^2$ the Jacobian of "
            r"$(a,b,m,p)\mapsto(a',b',m',p')$ at $(1,-r/(1-\beta_1e),r,1)$ is the matrix shown, "
            r"with $k=\eta^2C/A^*=(1-e^2)(1-\beta_1e)/(r(1+\beta_1e))$ and $q=(1-\beta_1)^2$; "
            r"at $\beta_2=0$ ($\hat v$ without memory) its characteristic polynomial is $-x$ "
            r"times the one above. Its largest eigenvalue is the relaxation rate $\rho$ with "
            r"the lag (the monitor computes it numerically).",
            check=lambda: (
                equal(jac4, target4)
                and equal(sp.expand(x4.subs(beta2, 0)), sp.expand(-x * charpoly))
            ),
        )
    )
    d, c, y = sp.symbols("delta c y", positive=True)
    scaled = x4.subs(eta, d / lam).subs(beta2, 1 - d / c).subs(x, 1 - d * y)
    num = sp.Poly(sp.expand(sp.numer(sp.together(sp.expand(scaled)))), d)
    (low_power, low_coeff) = min(num.terms(), key=lambda t: t[0][0])
    steps.append(
        Step(
            "AdamW: relaxation with the lag",
            sp.Tuple(low_power[0], sp.factor(low_coeff)),
            sp.Tuple(
                2, -c * (beta1 - 1) ** 3 * (beta1 + 1) ** 3 * (c * y**2 - (4 * c + 1) * y + 2)
            ),
            r"With $\eta\lambda=\delta$, $1-\beta_2=\delta/c$ and $x=1-\delta y$, the "
            r"characteristic polynomial's lowest order in $\delta$ ($\delta^2$) vanishes where "
            r"$cy^2-(4c+1)y+2=0$: the slowest mode has $1-\rho\approx\eta\lambda\,"
            r"((1+4c)-\sqrt{1+16c^2})/(2c)$, $c=\eta\lambda/(1-\beta_2)$, whatever $\beta_1$. "
            r"For $c\to0$ ($\hat v$ adapts fast) $1-\rho\to2\eta\lambda$, i.e. "
            r"$\tau\approx(1+2c)/(2\eta\lambda)$; for $c\to\infty$ ($\hat v$ frozen over "
            r"the relaxation) $1-\rho\to(1-\beta_2)/2$: $\|w\|^2$ then first relaxes like "
            r"SGD's, and the rest follows $\hat v$'s memory.",
        )
    )
    steps.append(
        Step(
            "AdamW: SGD's formulas are off",
            sp.Tuple(
                sp.cancel((1 - COS_SGD) / (1 - COS_STAR)),
                sp.cancel(NORM2_ORTHOGONAL / NORM2_STAR),
            ),
            sp.Tuple(
                (1 + beta1 * E) / ((1 - beta1) * (1 + beta1)),
                (1 - beta1 * E) / (1 + beta1 * E),
            ),
            r"SGD's $\cos\Delta^*=1-\eta\lambda/(1+\gamma)$ with $\gamma=\beta_1$ overstates "
            r"$1-\cos\Delta^*$ by $(1+\beta_1e)/((1-\beta_1)(1+\beta_1))\to1/(1-\beta_1)$ "
            r"($\Delta^*$ by $\sqrt{10}$ at $\beta_1=0.9$); balancing an update orthogonal to "
            r"$w$, $\|w^*\|^2=\eta\mathbb E\|u\|^2/(\lambda(2-\eta\lambda))$, understates $A^*$ "
            r"by $(1-\beta_1e)/(1+\beta_1e)\to1/19$: with momentum the update has a radial "
            r"part ($B^*\ne0$).",
        )
    )
    return steps


def lag_jacobian() -> tuple[sp.Matrix, sp.Matrix]:
    """(the Jacobian of the moment map with v̂'s lag, derived; the explicit matrix), both in
    the scaled variables (a, b, m, p) at the steady state (see the step that uses them)."""
    a, b, m, p = sp.symbols("a b m p", real=True)
    k = sp.Symbol("k", positive=True)
    p1 = beta2 * p + (1 - beta2) / a
    g_rel = 1 / (a * p1)  # G/C
    m1 = beta1**2 * m + (1 - beta1) ** 2 * g_rel
    b1_ = E * beta1 * b - m1
    a1 = E**2 * a - 2 * E * beta1 * k * b + k * m1
    fmap = sp.Matrix([a1, b1_, m1, p1])
    fixed = {a: 1, b: -R / (1 - beta1 * E), m: R, p: 1}
    k_val = (1 - E**2) * (1 - beta1 * E) / (R * (1 + beta1 * E))
    jac = fmap.jacobian([a, b, m, p]).subs(fixed).subs(k, k_val)
    q, kk = (1 - beta1) ** 2, k_val
    target = sp.Matrix(
        [
            [E**2 - beta2 * kk * q, -2 * beta1 * E * kk, beta1**2 * kk, -beta2 * kk * q],
            [beta2 * q, beta1 * E, -(beta1**2), beta2 * q],
            [-beta2 * q, 0, beta1**2, -beta2 * q],
            [beta2 - 1, 0, 0, beta2],
        ]
    )
    return jac, target


def lag_fixed_point_residual() -> sp.Matrix:
    """The scaled moment map with v̂'s lag minus the identity at its steady state (zero)."""
    a, b, m, p = sp.symbols("a b m p", real=True)
    k_val = (1 - E**2) * (1 - beta1 * E) / (R * (1 + beta1 * E))
    p1 = beta2 * p + (1 - beta2) / a
    m1 = beta1**2 * m + (1 - beta1) ** 2 / (a * p1)
    b1_ = E * beta1 * b - m1
    a1 = E**2 * a - 2 * E * beta1 * k_val * b + k_val * m1
    fixed = {a: 1, b: -R / (1 - beta1 * E), m: R, p: 1}
    return (sp.Matrix([a1, b1_, m1, p1]) - sp.Matrix([a, b, m, p])).subs(fixed)


#: where :func:`adamw_negative_control` is refuted (exact rationals inside the assumptions)
NEGATIVE_WITNESS = {
    eta: sp.Rational(1, 100),
    lam: sp.Rational(1, 2),
    beta1: sp.Rational(9, 10),
    Gn: sp.Integer(2048),
    A: sp.Integer(20),
}


def adamw_negative_control() -> Step:
    """False: SGD's angle (γ = β1) and the orthogonal-update balance hold for AdamW."""
    w1, _ = adamw_step_model(w, mt)
    cos_derived = (inner(w, w1) / A).subs(B, B_STAR).subs(A, NORM2_STAR)
    return Step(
        "AdamW with SGD's formulas",
        sp.Matrix([cos_derived, NORM2_STAR]),
        sp.Matrix([COS_SGD, NORM2_ORTHOGONAL]),
        r"Using $\cos\Delta^*=1-\eta\lambda/(1+\beta_1)$ and $\|w^*\|^2=\eta\mathbb E\|u\|^2/"
        r"(\lambda(2-\eta\lambda))$ for AdamW is false: at $\eta\lambda=1/200$, $\beta_1=9/10$ "
        r"the angle is off by about $\sqrt{10}$ and $\|w^*\|^2$ by about $18$.",
    )
