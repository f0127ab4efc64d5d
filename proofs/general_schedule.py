"""General theorem (any LR and WD schedule): SGD with WD ≡ SGD with η̃_t = η_t/(c_t c_{t+1}).

Paper result: the main theorem's general form ("any schedule of LR and WD";
the constant-rate case is proofs.closed_form).

Statement. Let L be scale invariant in θ (so ∇L(θ/c) = c ∇L(θ), c > 0), and run
PyTorch SGD with momentum γ, LR η_t and coupled WD λ_t from θ_0, v_0 = 0.
Define r_t = η_t/η_{t−1} and

    c_0 = 1,  c_1 = 1 − η_0 λ_0,
    c_{t+1} = (1 + γ r_t − η_t λ_t) c_t − γ r_t c_{t−1}     (t ≥ 1).

If c_t > 0 for t ≤ T, then SGD with the same γ, *no* WD, LR η̃_t = η_t/(c_t c_{t+1}),
the same θ_0 and a zero buffer satisfies, for t ≤ T,

    θ̃_t = θ_t / c_t,     ṽ_t = c_t v_t + ((c_t − c_{t−1})/η_{t−1}) θ_t   (t ≥ 1).

Proof by induction on t with the buffer coefficient κ_t (κ_0 = 0,
κ_t = (c_t − c_{t−1})/η_{t−1}): the step is proved for an arbitrary κ_t, and the
LR η̃_t and scale c_{t+1} are *derived* by matching the coefficients of θ_t, v_t
and ∇L(θ_t), not assumed. The constant-rate closed form of c_t comes from
``rsolve``. Negative control: the same mapping with the LR inside the velocity
(Sutskever/Keras) is false.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import sympy as sp

from proofs._core import Proof, Step, equal, sym, vec, vector_coefficients
from proofs._sgd import G, homogeneous, sutskever_step, torch_step, unroll

NAME = "general_schedule"
RESULT = "main theorem, general schedule (any LR and WD, with momentum)"
STATEMENT = (
    r"For a scale-invariant loss and PyTorch SGD with momentum $\gamma$, LR $\eta_t$ and WD "
    r"$\lambda_t$, define $c_0=1$, $c_1=1-\eta_0\lambda_0$, "
    r"$c_{t+1}=(1+\gamma r_t-\eta_t\lambda_t)c_t-\gamma r_t c_{t-1}$ with "
    r"$r_t=\eta_t/\eta_{t-1}$. While $c_t>0$, SGD without WD with LR "
    r"$\tilde\eta_t=\eta_t/(c_tc_{t+1})$, the same $\theta_0$ and zero buffer gives "
    r"$\tilde\theta_t=\theta_t/c_t$ and "
    r"$\tilde v_t=c_tv_t+\frac{c_t-c_{t-1}}{\eta_{t-1}}\theta_t$."
)
ASSUMPTIONS = (
    r"$L$ is scale invariant in $\theta$; its gradient $G=\nabla L$ obeys "
    r"$G(\theta/c)=c\,G(\theta)$ for $c>0$ (proofs.scale\_invariance), used as a rewrite rule.",
    r"$\eta_t,\lambda_t>0$, $0<\gamma$ (the case $\gamma=0$ is proofs.no\_momentum); "
    r"the vectors $\theta_t, v_t$ are abstract (noncommutative symbols, any dimension).",
    r"$c_t>0$ for all $t\le T$ (needed to apply the rewrite rule with $c=c_t$).",
    r"PyTorch's convention: $v_{t+1}=\gamma v_t+G(\theta_t)+\lambda_t\theta_t$, "
    r"$\theta_{t+1}=\theta_t-\eta_tv_{t+1}$, $v_0=0$.",
)

# Induction-step symbols (index t).
eta_prev = sym("eta_prev", r"\eta_{t-1}", positive=True)
eta = sym("eta_t", r"\eta_t", positive=True)
lam = sym("lambda_t", r"\lambda_t", positive=True)
gamma = sym("gamma", r"\gamma", positive=True)
c_prev = sym("c_prev", r"c_{t-1}", positive=True)
c = sym("c_t", r"c_t", positive=True)
c_next = sym("c_next", r"c_{t+1}", positive=True)
kappa = sym("kappa_t", r"\kappa_t", real=True)
eta_tilde = sym("etatilde_t", r"\tilde\eta_t", positive=True)
theta = vec("theta_t", r"\theta_t")
v = vec("v_t", r"v_t")
# Base-case symbols.
eta0 = sym("eta_0", r"\eta_0", positive=True)
lam0 = sym("lambda_0", r"\lambda_0", positive=True)
theta0 = vec("theta_0", r"\theta_0")
zero_vec = sp.S.Zero
# Constant-rate closed form: the two roots.
alpha = sym("alpha", r"\alpha", positive=True)
beta = sym("beta", r"\beta", positive=True)
t = sym("t", "t", integer=True, nonnegative=True)
eta_c = sym("eta", r"\eta", positive=True)
lam_c = sym("lambda", r"\lambda", positive=True)

#: The proved recurrence c_{t+1} in terms of (c_{t-1}, c_t, η_{t-1}, η_t, λ_t, γ), t ≥ 1.
C_NEXT = (1 + gamma * eta / eta_prev - eta * lam) * c - gamma * eta / eta_prev * c_prev
#: The proved equivalent LR.
ETA_TILDE = eta / (c * c_next)


def scale_factors_exact(lrs, weight_decay, momentum) -> list[Fraction]:
    """c_0..c_T of the general theorem, in exact arithmetic (Fractions).

    Evaluates the recurrence proved here (the expression :data:`C_NEXT`).
    ``weight_decay`` is a number or a per-step sequence.
    """
    lrs = [Fraction(x) for x in lrs]
    wds = _per_step(weight_decay, len(lrs))
    f = sp.lambdify((c_prev, c, eta_prev, eta, lam, gamma), C_NEXT, modules=[{}, "math"])
    cs = [Fraction(1), 1 - lrs[0] * wds[0]]
    for i in range(1, len(lrs)):
        cs.append(Fraction(f(cs[-2], cs[-1], lrs[i - 1], lrs[i], wds[i], Fraction(momentum))))
    return cs[: len(lrs) + 1]


def equivalent_lrs_exact(lrs, weight_decay, momentum) -> list[Fraction]:
    """η̃_t = η_t/(c_t c_{t+1}) (general theorem), exact."""
    cs = scale_factors_exact(lrs, weight_decay, momentum)
    return [Fraction(x) / (cs[i] * cs[i + 1]) for i, x in enumerate(lrs)]


def _per_step(weight_decay, n):
    if isinstance(weight_decay, (int, float, Fraction)):
        return [Fraction(weight_decay)] * n
    return [Fraction(x) for x in weight_decay]


def induction_step(kappa_t=kappa):
    """Both runs one step from the induction hypothesis with buffer coefficient κ_t.

    Returns (θ̃_{t+1}, ṽ_{t+1}, θ_{t+1}, v_{t+1}) with η̃_t and c_{t+1} left as the
    unknown symbols ``eta_tilde`` and ``c_next``.
    """
    theta_t_exp = theta / c
    v_t_exp = c * v + kappa_t * theta
    th_e, v_e = torch_step(theta_t_exp, v_t_exp, eta_tilde, 0, gamma)
    th_w, v_w = torch_step(theta, v, eta, lam, gamma)
    return th_e, v_e, th_w, v_w


#: c_{t+1} solved from the induction step, for any buffer coefficient κ_t.
C_NEXT_KAPPA = c + eta * (gamma * kappa - lam * c)


def induction_steps() -> list[Step]:
    """The induction step from θ̃_t = θ_t/c_t, ṽ_t = c_t v_t + κ_t θ_t (any κ_t, any v_t).

    η̃_t and c_{t+1} are derived by matching coefficients, not assumed; the
    hypothesis reproduces itself at t+1 with κ_{t+1} = (c_{t+1} − c_t)/η_t.
    """
    steps: list[Step] = []
    th_e, v_e, th_w, v_w = induction_step()
    raw_exp = theta / c - eta_tilde * (gamma * (c * v + kappa * theta) + G(theta / c))
    steps.append(
        Step(
            "exp-run step",
            raw_exp,
            th_e,
            r"Induction hypothesis $\tilde\theta_t=\theta_t/c_t$, $\tilde v_t=c_tv_t+\kappa_t\theta_t$; "
            r"one step without WD, then the rewrite $G(\theta_t/c_t)=c_t\,G(\theta_t)$ ($c_t>0$).",
            check=lambda: equal(homogeneous(raw_exp), th_e),
        )
    )
    steps.append(
        Step(
            "WD-run step",
            vec("theta_next", r"\theta_{t+1}"),
            th_w,
            r"$\theta_{t+1}=\theta_t-\eta_t(\gamma v_t+G(\theta_t)+\lambda_t\theta_t)$.",
            check=lambda: equal(th_w, theta - eta * (gamma * v + G(theta) + lam * theta)),
        )
    )
    # Derive η̃_t and c_{t+1}: θ̃_{t+1} = θ_{t+1}/c_{t+1} coefficient by coefficient.
    coeffs = vector_coefficients(th_e - th_w / c_next)
    eqs = [sp.numer(sp.together(e)) for e in coeffs.values()]
    sols = sp.solve(eqs, [eta_tilde, c_next], dict=True)
    sol = sols[0]
    c_next_val = sp.factor(sol[c_next])
    et_val = sp.factor(sol[eta_tilde])
    want_c_next = C_NEXT_KAPPA
    steps.append(
        Step(
            "solve for c_{t+1}",
            c_next,
            c_next_val,
            r"Match the coefficients of $\theta_t$, $v_t$, $G(\theta_t)$ in "
            r"$\tilde\theta_{t+1}=\theta_{t+1}/c_{t+1}$ and solve (unique solution); "
            r"$c_{t+1}=c_t+\eta_t(\gamma\kappa_t-\lambda_tc_t)$.",
            check=lambda: (
                len(sols) == 1
                and equal(c_next_val, want_c_next)
                and all(sp.cancel(e.subs(sol)) == 0 for e in eqs)
            ),
        )
    )
    steps.append(
        Step(
            "solve for the LR",
            eta_tilde,
            et_val,
            r"Same solution: the equivalent LR is $\eta_t/(c_tc_{t+1})$.",
            check=lambda: equal(et_val.subs(c_next, want_c_next), eta / (c * want_c_next)),
        )
    )
    sub = {eta_tilde: eta / (c * c_next)}
    th_e1, v_e1 = th_e.subs(sub), v_e.subs(sub)
    steps.append(
        Step(
            "position invariant at t+1",
            th_e1,
            th_w / c_next,
            r"With $\tilde\eta_t=\eta_t/(c_tc_{t+1})$ and $c_{t+1}$ as solved: "
            r"$\tilde\theta_{t+1}=\theta_{t+1}/c_{t+1}$.",
            check=lambda: equal(
                th_e1.subs(c_next, want_c_next), (th_w / c_next).subs(c_next, want_c_next)
            ),
        )
    )
    kappa_next = (c_next - c) / eta
    inv_next = c_next * v_w + kappa_next * th_w
    steps.append(
        Step(
            "buffer invariant at t+1",
            v_e1,
            inv_next,
            r"$\tilde v_{t+1}=c_{t+1}v_{t+1}+\kappa_{t+1}\theta_{t+1}$ with "
            r"$\kappa_{t+1}=(c_{t+1}-c_t)/\eta_t$: the hypothesis reproduces itself.",
            check=lambda: equal(v_e1.subs(c_next, want_c_next), inv_next.subs(c_next, want_c_next)),
        )
    )
    kappa_t_val = (c - c_prev) / eta_prev
    steps.append(
        Step(
            "recurrence (t >= 1)",
            want_c_next.subs(kappa, kappa_t_val),
            C_NEXT,
            r"For $t\ge1$, $\kappa_t=(c_t-c_{t-1})/\eta_{t-1}$ (previous step); with "
            r"$r_t=\eta_t/\eta_{t-1}$ this is the paper's recurrence.",
        )
    )
    return steps


def base_case_steps(buf0=zero_vec, buffer_text: str = "zero buffers") -> list[Step]:
    """t = 0 → 1 from θ̃_0 = θ_0 and ṽ_0 = v_0 = ``buf0`` (the same buffer in both runs).

    The hypothesis holds at t = 0 with c_0 = 1, κ_0 = 0 whatever the buffer, so
    c_1 = 1 − η_0λ_0, and one step of each run gives the invariants at t = 1.
    """
    c1 = 1 - eta0 * lam0
    th_e0, v_e0 = torch_step(theta0, buf0, eta0 / c1, 0, gamma)
    th_w0, v_w0 = torch_step(theta0, buf0, eta0, lam0, gamma)
    return [
        Step(
            "base case c_1",
            C_NEXT_KAPPA.subs({kappa: 0, c: 1, eta: eta0, lam: lam0}),
            c1,
            r"At $t=0$: $\tilde v_0=v_0=c_0v_0+\kappa_0\theta_0$ with $c_0=1$, $\kappa_0=0$, "
            r"so $c_1=1-\eta_0\lambda_0$.",
        ),
        Step(
            "base case position",
            th_e0,
            th_w0 / c1,
            rf"One step of each run from $\theta_0$ with {buffer_text}, "
            r"$\tilde\eta_0=\eta_0/(c_0c_1)$: $\tilde\theta_1=\theta_1/c_1$ (needs $c_1>0$).",
        ),
        Step(
            "base case buffer",
            v_e0,
            c1 * v_w0 + ((c1 - 1) / eta0) * th_w0,
            r"$\tilde v_1=c_1v_1+\frac{c_1-c_0}{\eta_0}\theta_1$: the invariant holds at $t=1$.",
        ),
    ]


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """The induction proof, the recurrence, the base case, the closed form."""
    return tuple(induction_steps() + base_case_steps() + closed_form_steps() + [unrolled_check()])


def _powers(expr, n):
    """Replace α**(n+k), β**(n+k) by α**k P, β**k Q (P = α**n, Q = β**n)."""
    P, Q = sp.symbols("P Q", positive=True)
    e = sp.expand_power_exp(sp.expand(expr))
    return e.subs({alpha**n: P, beta**n: Q})


def closed_form_steps() -> list[Step]:
    """Constant η, λ, γ: c_t = (α^{t+1}(1−β) − β^{t+1}(1−α))/(α−β) by rsolve."""
    steps: list[Step] = []
    x = sp.Symbol("x")
    # Vieta: roots α, β of x² − (1+γ−ηλ)x + γ  ⇔  γ = αβ, ηλ = (1−α)(1−β).
    gam_ab = alpha * beta
    el_ab = (1 - alpha) * (1 - beta)
    steps.append(
        Step(
            "Vieta parametrisation",
            (x - alpha) * (x - beta),
            x**2 - (1 + gam_ab - el_ab) * x + gam_ab,
            r"The roots $\alpha,\beta$ of $x^2-(1+\gamma-\eta\lambda)x+\gamma$: "
            r"$\gamma=\alpha\beta$, $\eta\lambda=(1-\alpha)(1-\beta)$ (see proofs.closed\_form).",
        )
    )
    cf = sp.Function("c")
    rec = cf(t + 2) - (alpha + beta) * cf(t + 1) + alpha * beta * cf(t)
    sol = sp.rsolve(rec, cf(t), {cf(0): 1, cf(1): 1 - el_ab})
    want = (alpha ** (t + 1) * (1 - beta) - beta ** (t + 1) * (1 - alpha)) / (alpha - beta)
    steps.append(
        Step(
            "rsolve: constant-rate c_t",
            sol,
            want,
            r"$c_{t+1}=(1+\gamma-\eta\lambda)c_t-\gamma c_{t-1}$, $c_0=1$, "
            r"$c_1=1-\eta\lambda$, solved by \texttt{rsolve} (roots $\alpha\neq\beta$).",
            check=lambda: sp.cancel(_powers(sol - want, t)) == 0,
        )
    )
    steps.append(
        Step(
            "closed form satisfies recurrence",
            want.subs(t, t + 2),
            sp.expand((alpha + beta) * want.subs(t, t + 1) - alpha * beta * want),
            r"Substituting back (with $\alpha^t,\beta^t$ as new symbols) gives zero.",
            check=lambda: (
                sp.cancel(
                    _powers(
                        want.subs(t, t + 2)
                        - (alpha + beta) * want.subs(t, t + 1)
                        + alpha * beta * want,
                        t,
                    )
                )
                == 0
                and sp.cancel(want.subs(t, 0) - 1) == 0
                and sp.cancel(want.subs(t, 1) - 1 + el_ab) == 0
            ),
        )
    )
    kappa_cf = -lam_c * (alpha**t - beta**t) / (alpha - beta)
    steps.append(
        Step(
            "buffer coefficient closed form",
            (want - want.subs(t, t - 1)) / eta_c,
            kappa_cf,
            r"$\kappa_t=(c_t-c_{t-1})/\eta$ with $\eta\lambda=(1-\alpha)(1-\beta)$: "
            r"$\tilde v_t=c_tv_t-\lambda\frac{\alpha^t-\beta^t}{\alpha-\beta}\theta_t$.",
            check=lambda: (
                sp.cancel(
                    _powers(
                        ((want - want.subs(t, t - 1)) / eta_c - kappa_cf).subs(
                            lam_c, el_ab / eta_c
                        ),
                        t - 1,
                    )
                )
                == 0
            ),
        )
    )
    return steps


#: A fixed exact schedule for the unrolled check: warm-up, a drop and a WD change.
UNROLL_LRS = [
    Fraction(1, 40),
    Fraction(1, 20),
    Fraction(1, 10),
    Fraction(1, 10),
    Fraction(1, 100),
    Fraction(3, 100),
]
UNROLL_WDS = [
    Fraction(1, 20),
    Fraction(1, 20),
    Fraction(1, 20),
    Fraction(1, 10),
    Fraction(1, 10),
    Fraction(1, 30),
]
UNROLL_MOMENTUM = Fraction(9, 10)
UNROLL_THETA0 = (Fraction(1), Fraction(-2), Fraction(1, 2))


def unrolled_check() -> Step:
    """Non-inductive confirmation: 6 exact steps with a concrete scale-invariant loss."""
    cs = scale_factors_exact(UNROLL_LRS, UNROLL_WDS, UNROLL_MOMENTUM)
    lrs_e = equivalent_lrs_exact(UNROLL_LRS, UNROLL_WDS, UNROLL_MOMENTUM)
    n = len(UNROLL_LRS)
    wd_run = unroll(UNROLL_LRS, UNROLL_WDS, UNROLL_MOMENTUM, UNROLL_THETA0)
    exp_run = unroll(lrs_e, [Fraction(0)] * n, UNROLL_MOMENTUM, UNROLL_THETA0)
    lhs = sp.Matrix([[sp.Rational(x.numerator, x.denominator) for x in th] for th in exp_run])
    rhs = sp.Matrix(
        [
            [sp.Rational((x / cs[i]).numerator, (x / cs[i]).denominator) for x in th]
            for i, th in enumerate(wd_run)
        ]
    )
    return Step(
        "exact unrolled check",
        r"\tilde\theta_t\ (t=0..6)",
        r"\theta_t/c_t\ (t=0..6)",
        r"Independent of the induction: 6 steps in exact rational arithmetic with the concrete "
        r"scale-invariant loss $L(\theta)=(\theta_1^2+3\theta_1\theta_2-2\theta_2\theta_3+"
        r"\theta_3^2/2)/\|\theta\|^2$, $\gamma=9/10$, warm-up, an LR drop and a WD change: "
        r"every $\tilde\theta_t$ equals $\theta_t/c_t$ exactly.",
        method="exact",
        check=lambda: lhs == rhs and all(x > 0 for x in cs),
    )


# Negative control: Sutskever/Keras convention with the same mapping.
eta1 = sym("eta_1", r"\eta_1", positive=True)
lam1 = sym("lambda_1", r"\lambda_1", positive=True)
theta1 = vec("theta_1", r"\theta_1")
v1 = vec("v_1", r"v_1")
NEGATIVE_WITNESS = {
    eta0: sp.Rational(1, 10),
    lam0: sp.Rational(1, 2),
    eta1: sp.Rational(1, 5),
    lam1: sp.Rational(1, 4),
    gamma: sp.Rational(9, 10),
}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False claim: with the LR inside the velocity, the same c_t, η̃_t still give θ̃_2 = θ_2/c_2."""
    c1 = 1 - eta0 * lam0
    c2 = C_NEXT.subs({c_prev: 1, c: c1, eta_prev: eta0, eta: eta1, lam: lam1})
    th_w1, v_w1 = sutskever_step(theta0, zero_vec, eta0, lam0, gamma)
    th_e1, v_e1 = sutskever_step(theta0, zero_vec, eta0 / c1, 0, gamma)
    # Express step-1 states through the atoms θ_1, v_1 of the WD run:
    # θ_0 = θ_1 + v_1 and G(θ_0) = v_1/η_0 − λ_0 θ_0.
    to_atoms = {G(theta0): v1 / eta0 - lam0 * (theta1 + v1)}
    th_e1 = sp.expand(th_e1.subs(to_atoms).subs(theta0, theta1 + v1))
    v_e1 = sp.expand(v_e1.subs(to_atoms).subs(theta0, theta1 + v1))
    th_e2, _ = sutskever_step(th_e1, v_e1, eta1 / (c1 * c2), 0, gamma)
    th_w2, _ = sutskever_step(theta1, v1, eta1, lam1, gamma)
    return Step(
        "Sutskever convention, same mapping",
        th_e2,
        th_w2 / c2,
        r"With $v_{t+1}=\gamma v_t+\eta_t(\nabla L+\lambda_t\theta_t)$, "
        r"$\theta_{t+1}=\theta_t-v_{t+1}$ and the same $c_t$, "
        r"$\tilde\eta_t=\eta_t/(c_tc_{t+1})$, the claim $\tilde\theta_2=\theta_2/c_2$ "
        r"(after $\tilde\theta_1=\theta_1/c_1$ holds) is false: exact counterexample.",
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
