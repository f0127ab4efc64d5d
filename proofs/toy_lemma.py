"""The toy counterexample: BN + WD has no stationary point; GD on the direction turns unstable.

Paper result: the counterexample showing that training with BN and WD cannot
converge to a point (the norm shrinks until the effective LR η/‖w‖² destabilises
the minimum).

Statement 1. If L is scale invariant and λ > 0, then L(θ) + (λ/2)‖θ‖² has no
stationary point with θ ≠ 0: ⟨∇L(θ) + λθ, θ⟩ = λ‖θ‖² > 0.

Statement 2. Let w = ρ(cos φ, sin φ) and L(w) = ℓ(φ) (a direction-only loss).
One GD step w' = w − η∇L(w) moves the angle by φ' = φ − arctan(η ℓ'(φ)/ρ²): the
effective LR on the direction is η/ρ². At a minimum φ* with curvature
k = ℓ''(φ*) > 0 the linearised map is x ← (1 − ηk/ρ²) x, unstable iff
ηk/ρ² > 2, i.e. iff ρ² < ηk/2. With WD the norm at the minimum shrinks as
ρ_{t+1} = (1 − ηλ)ρ_t, so it always gets there: the iterates cannot converge.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym, z3_prove
from proofs.scale_invariance import TH, L, d, grad

NAME = "toy_lemma"
RESULT = "toy counterexample (no stationary point with BN and WD; instability threshold)"
STATEMENT = (
    r"For scale-invariant $L$ and $\lambda>0$, $L+\frac\lambda2\|\theta\|^2$ has no stationary "
    r"point $\theta\neq0$. GD on a direction-only loss $\ell(\varphi)$ has effective LR "
    r"$\eta/\|w\|^2$, and a minimum with curvature $k$ is linearly unstable iff "
    r"$\|w\|^2<\eta k/2$."
)
ASSUMPTIONS = (
    r"$L$ scale invariant (Euler identity $\langle\nabla L(\theta),\theta\rangle=0$, "
    r"proofs.scale\_invariance); $\lambda>0$.",
    r"Toy: $w\in\mathbb R^2$ with $w_1>0$ (so $\varphi=\arctan(w_2/w_1)$), $\eta,k,\rho>0$, "
    r"$\ell\in C^2$ with $\ell'(\varphi^*)=0$, $\ell''(\varphi^*)=k$.",
    r"Linearisation in the angle at fixed $\rho$ (the norm changes by $O(\ell'^2)=O(x^2)$).",
)

lam = sym("lambda", r"\lambda", positive=True)
eta = sym("eta", r"\eta", positive=True)
k = sym("k", "k", positive=True)
rho = sym("rho", r"\rho", positive=True)
phi = sym("phi", r"\varphi", real=True)
w1, w2 = sym("w1", "w_1", positive=True), sym("w2", "w_2", real=True)
ell = sp.Function("ell")
# z3 symbols (no sign assumptions).
zl = sp.Symbol("lambda", real=True)
zth = sp.symbols("t1:4", real=True)
zg = sp.symbols("g1:4", real=True)
zq, zr2, zeta, zk = sp.symbols("q r2 eta k", real=True)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    steps: list[Step] = []
    th = sp.Matrix(TH)
    g = grad(TH)
    H = L(*[sym("c", "c", positive=True) * x for x in TH]) - L(*TH)
    euler = d(H, sym("c", "c", positive=True)).subs(sym("c", "c", positive=True), 1)
    inner = ((g + lam * th).T * th)[0]
    steps.append(
        Step(
            "inner product with theta",
            inner,
            lam * (th.T * th)[0],
            r"$\langle\nabla L+\lambda\theta,\theta\rangle=\langle\nabla L,\theta\rangle+\lambda\|\theta\|^2"
            r"=\lambda\|\theta\|^2$ by Euler's identity (its left side minus the right is "
            r"$\partial_cH|_{c=1}=0$).",
            check=lambda: sp.expand(inner - lam * (th.T * th)[0] - euler) == 0,
        )
    )
    hyps = [zl > 0, sum(x**2 for x in zth) > 0, sp.Eq(sum(a * b for a, b in zip(zg, zth)), 0)]
    hyps += [sp.Eq(a + zl * b, 0) for a, b in zip(zg, zth)]
    steps.append(
        Step(
            "no stationary point (z3)",
            sp.And(*hyps),
            sp.false,
            r"$\lambda>0$, $\theta\neq0$, $\langle g,\theta\rangle=0$ and $g+\lambda\theta=0$ are "
            r"inconsistent (z3, nonlinear real arithmetic).",
            rel="=>",
            method="z3",
            check=lambda: z3_prove(hyps, sp.false),
        )
    )
    # Toy: direction-only loss in the plane.
    ang = sp.atan(w2 / w1)
    Lw = ell(ang)
    gw = sp.Matrix([sp.diff(Lw, w1), sp.diff(Lw, w2)])
    lp = sp.Subs(sp.Derivative(ell(phi), phi), phi, ang).doit()
    n2 = w1**2 + w2**2
    expect = (lp / n2) * sp.Matrix([-w2, w1])
    steps.append(
        Step(
            "gradient of a direction-only loss",
            gw,
            expect,
            r"$\nabla_w\ell(\varphi(w))=\frac{\ell'(\varphi)}{\|w\|^2}(-w_2,w_1)$: orthogonal to $w$, "
            r"length $|\ell'|/\rho$.",
            check=lambda: all(sp.cancel(sp.together(a - b)) == 0 for a, b in zip(gw, expect)),
        )
    )
    kk = eta * lp / n2
    wn = sp.Matrix([w1, w2]) - eta * expect
    cross = w1 * wn[1] - w2 * wn[0]
    dot = w1 * wn[0] + w2 * wn[1]
    steps.append(
        Step(
            "angle change",
            cross / dot,
            -eta * lp / n2,
            r"$\tan(\varphi'-\varphi)=\frac{w\times w'}{w\cdot w'}=-\eta\ell'(\varphi)/\|w\|^2$: "
            r"the direction moves by GD on $\ell$ with effective LR $\eta/\rho^2$ (to first order).",
            check=lambda: equal(sp.cancel(cross / dot), -kk),
        )
    )
    steps.append(
        Step(
            "norm grows without WD",
            sp.expand((wn.T * wn)[0]),
            sp.expand(n2 + eta**2 * lp**2 / n2),
            r"$\|w'\|^2=\|w\|^2+\eta^2\ell'^2/\|w\|^2$; with WD, $w'=(1-\eta\lambda)w-\eta\nabla L$ and at "
            r"the minimum ($\ell'=0$) $\rho'=(1-\eta\lambda)\rho$: the norm shrinks geometrically.",
            check=lambda: equal((wn.T * wn)[0], n2 + eta**2 * lp**2 / n2),
        )
    )
    F = phi - sp.atan(eta * sp.Derivative(ell(phi), phi) / rho**2)
    dF = (
        sp.diff(F, phi)
        .subs(sp.Derivative(ell(phi), (phi, 2)), k)
        .subs(sp.Derivative(ell(phi), phi), 0)
    )
    steps.append(
        Step(
            "linearisation",
            dF,
            1 - eta * k / rho**2,
            r"$\frac{d\varphi'}{d\varphi}$ at $\varphi^*$ ($\ell'=0$, $\ell''=k$): "
            r"$x\leftarrow(1-\eta k/\rho^2)x$.",
        )
    )
    hq = [zr2 > 0, zeta > 0, zk > 0, sp.Eq(zq * zr2, zeta * zk)]
    unstable = sp.Or(1 - zq > 1, 1 - zq < -1)
    steps.append(
        Step(
            "instability threshold (z3)",
            sp.And(*hq),
            sp.And(
                sp.Implies(unstable, zr2 < zeta * zk / 2), sp.Implies(zr2 < zeta * zk / 2, unstable)
            ),
            r"With $q=\eta k/\rho^2$: $|1-q|>1\iff q>2\iff\rho^2<\eta k/2$ (z3).",
            rel="=>",
            method="z3",
            check=lambda: z3_prove(
                hq,
                sp.And(
                    sp.Implies(unstable, zr2 < zeta * zk / 2),
                    sp.Implies(zr2 < zeta * zk / 2, unstable),
                ),
            ),
        )
    )
    return tuple(steps)


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the threshold is ρ² < ηk (forgetting the factor 2)."""
    hq = [zr2 > 0, zeta > 0, zk > 0, sp.Eq(zq * zr2, zeta * zk)]
    unstable = sp.Or(1 - zq > 1, 1 - zq < -1)
    return Step(
        "threshold without the factor 2",
        sp.And(*hq, zr2 < zeta * zk),
        unstable,
        r"The claim ``unstable once $\rho^2<\eta k$'' is false: z3 finds a counterexample "
        r"($\eta k/2\le\rho^2<\eta k$ is stable).",
        rel="=>",
        method="z3",
        check=lambda: z3_prove([*hq, zr2 < zeta * zk], unstable),
    )


#: The negative control carries its own check (the exact runs differ).
NEGATIVE_WITNESS = None

PROOF = Proof(
    name=NAME,
    result=RESULT,
    statement=STATEMENT,
    assumptions=ASSUMPTIONS,
    derive=derive,
    negative_control=negative_control,
    witness=NEGATIVE_WITNESS,
)
