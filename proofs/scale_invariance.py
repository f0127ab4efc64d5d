"""Consequences of scale invariance (Euler's identity for degree-0 homogeneous functions).

Paper result: the lemma on scale-invariant losses (the properties of the gradient
and Hessian that the main theorem rests on).

Statement. If L(cθ) = L(θ) for every c > 0 (L twice differentiable), then

    ⟨∇L(θ), θ⟩ = 0,   ∇L(cθ) = ∇L(θ)/c,   ∇²L(cθ) = ∇²L(θ)/c²,   ∇²L(θ) θ = −∇L(θ).

Derivation: differentiate the hypothesis H(c, θ) = L(cθ) − L(θ) ≡ 0 with respect
to θ_i, θ_j and c (at c = 1). Each claimed identity is checked to be an explicit
multiple of a derivative of H, hence zero. The partial derivatives of the
abstract L are put into a canonical form L_{i..}(point) (mixed partials commute:
L ∈ C²). The generic proof uses R³; the computation is coordinatewise and the
same in any dimension. The identities are then checked on concrete
scale-invariant functions: f(θ/‖θ‖) and a BatchNorm-like loss (with √ handled
exactly by reduction modulo r² = S).
"""

from __future__ import annotations

import functools
import itertools

import sympy as sp

from proofs._core import Proof, Step, sym, zero_modulo

NAME = "scale_invariance"
RESULT = "lemma on scale-invariant losses (gradient and Hessian identities)"
STATEMENT = (
    r"If $L(c\theta)=L(\theta)$ for all $c>0$, then $\langle\nabla L(\theta),\theta\rangle=0$, "
    r"$\nabla L(c\theta)=\nabla L(\theta)/c$, $\nabla^2L(c\theta)=\nabla^2L(\theta)/c^2$ and "
    r"$\nabla^2L(\theta)\theta=-\nabla L(\theta)$."
)
ASSUMPTIONS = (
    r"$L\in C^2$ on $\mathbb R^n\setminus\{0\}$ (mixed partials commute); shown for $n=3$, "
    r"the computation is coordinatewise.",
    r"$H(c,\theta)=L(c\theta)-L(\theta)=0$ for all $c>0$, so every derivative of $H$ vanishes.",
    r"$c>0$; $\theta\neq0$ real.",
)

N = 3
c = sym("c", "c", positive=True)
TH = sp.symbols(f"theta1:{N + 1}", real=True)
XS = sp.symbols(f"x1:{N + 1}", real=True)
L = sp.Function("L")
r = sym("r", "r", positive=True)


def partial(idx: tuple[int, ...]) -> sp.FunctionClass:
    """The canonical name of ∂_{idx} L (indices sorted: L is C²)."""
    return sp.Function("L_" + "".join(str(i + 1) for i in sorted(idx)))


def _base_index(f) -> tuple[int, ...] | None:
    """Indices of an already-canonical partial (L -> (), L_12 -> (0, 1)); None if not L."""
    name = getattr(f.func, "__name__", "")
    if name == "L":
        return ()
    if name.startswith("L_"):
        return tuple(int(ch) - 1 for ch in name[2:])
    return None


def canon(expr):
    """Rewrite SymPy's Subs/Derivative forms of L's partials as L_{ij}(point)."""

    def from_subs(s):
        d = s.expr
        if not isinstance(d, sp.Derivative) or _base_index(d.expr) is None:
            return s
        f = d.expr
        point = [a.subs(dict(zip(s.variables, s.point)), simultaneous=True) for a in f.args]
        idx = _base_index(f) + tuple(f.args.index(v) for v, n in d.variable_count for _ in range(n))
        return partial(idx)(*point)

    def from_deriv(d):
        f = d.expr
        if _base_index(f) is None or not all(a.is_Symbol for a in f.args):
            return d
        idx = _base_index(f) + tuple(f.args.index(v) for v, n in d.variable_count for _ in range(n))
        return partial(idx)(*f.args)

    e = expr.replace(lambda e: isinstance(e, sp.Subs), from_subs)
    return e.replace(lambda e: isinstance(e, sp.Derivative), from_deriv)


def d(expr, *variables):
    """Differentiate one variable at a time, canonicalising after each."""
    for x in variables:
        expr = canon(sp.diff(expr, x))
    return expr


def grad(point):
    return sp.Matrix([partial((i,))(*point) for i in range(N)])


def hess(point):
    return sp.Matrix(N, N, lambda i, j: partial((i, j))(*point))


def _consequence(lhs, rhs, k, dH) -> bool:
    """lhs − rhs == k · dH (an explicit multiple of a derivative of H ≡ 0)."""
    return sp.expand(lhs - rhs - k * dH) == 0


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Generic identities from H ≡ 0, then concrete scale-invariant functions."""
    steps: list[Step] = []
    cth = [c * x for x in TH]
    H = L(*cth) - L(*TH)
    th = sp.Matrix(TH)
    # Euler: ∂H/∂c at c = 1.
    dHc = d(H, c).subs(c, 1)
    steps.append(
        Step(
            "Euler identity",
            (grad(TH).T * th)[0],
            0,
            r"$\partial_cH|_{c=1}=\langle\nabla L(\theta),\theta\rangle$ and $H\equiv0$.",
            check=lambda: _consequence((grad(TH).T * th)[0], 0, 1, dHc),
        )
    )
    dHi = [d(H, x) for x in TH]
    steps.append(
        Step(
            "gradient scaling",
            grad(cth),
            grad(TH) / c,
            r"$\partial_{\theta_i}H=c\,\partial_iL(c\theta)-\partial_iL(\theta)=0$.",
            check=lambda: all(
                _consequence(grad(cth)[i], grad(TH)[i] / c, 1 / c, dHi[i]) for i in range(N)
            ),
        )
    )
    dHij = {(i, j): d(H, TH[i], TH[j]) for i, j in itertools.product(range(N), repeat=2)}
    steps.append(
        Step(
            "Hessian scaling",
            hess(cth),
            hess(TH) / c**2,
            r"$\partial_{\theta_i}\partial_{\theta_j}H=c^2\partial_{ij}L(c\theta)-\partial_{ij}L(\theta)=0$.",
            check=lambda: all(
                _consequence(hess(cth)[i, j], hess(TH)[i, j] / c**2, 1 / c**2, dHij[i, j])
                for i, j in dHij
            ),
        )
    )
    dHic = [d(H, x, c).subs(c, 1) for x in TH]
    steps.append(
        Step(
            "Hessian times theta",
            hess(TH) * th,
            -grad(TH),
            r"$\partial_c\partial_{\theta_i}H|_{c=1}=\partial_iL+\sum_j\theta_j\partial_{ij}L=0$.",
            check=lambda: all(
                _consequence((hess(TH) * th)[i], -grad(TH)[i], 1, dHic[i]) for i in range(N)
            ),
        )
    )
    steps += concrete_steps()
    return tuple(steps)


# --- concrete scale-invariant functions -------------------------------------


def _D(expr, x, S):
    """∂/∂x of an expression in θ and r = √S(θ) (chain rule through r)."""
    return sp.diff(expr, x) + sp.diff(expr, r) * sp.diff(S, x) / (2 * r)


def _zero(expr, S) -> bool:
    """Is ``expr`` zero given r² = S?

    Every expression here is a polynomial in θ, r, 1/r, c, 1/c (the chain rule only
    divides by r, scaling only by c), so clearing the largest negative powers of r
    and c leaves a polynomial, reduced modulo r² − S.
    """
    e = sp.expand(expr)
    k = {r: 0, c: 0}
    for p in e.atoms(sp.Pow):
        if p.base in k and p.exp.is_Integer and p.exp < 0:
            k[p.base] = max(k[p.base], -int(p.exp))
    num = sp.expand(e * r ** (k[r] + 1) * c ** (k[c] + 1))
    if any(p.base in k and p.exp.is_negative for p in num.atoms(sp.Pow)):
        return zero_modulo(expr, {r: S})  # not of the expected shape: general route
    return sp.expand(sp.rem(num, r**2 - S, r)) == 0


def _identities_hold(Lexpr, S, xs) -> bool:
    """L(cθ) = L(θ) and the four identities for L(θ, r), r = √S(θ), S a quadratic form."""
    n = len(xs)
    th = sp.Matrix(xs)
    scale = {**{x: c * x for x in xs}, r: c * r}  # √(c²S) = c√S because c > 0
    g = sp.Matrix([_D(Lexpr, x, S) for x in xs])
    h = sp.Matrix(n, n, lambda i, j: _D(g[i], xs[j], S))
    g_c = g.subs(scale, simultaneous=True)
    h_c = h.subs(scale, simultaneous=True)
    return (
        _zero(Lexpr.subs(scale, simultaneous=True) - Lexpr, S)
        and _zero((g.T * th)[0], S)
        and all(_zero(e, S) for e in g_c - g / c)
        and all(_zero(e, S) for e in h_c - h / c**2)
        and all(_zero(e, S) for e in h * th + g)
    )


#: f(θ/‖θ‖) on R³ with a concrete non-even f (so r = ‖θ‖ survives).
S_NORM = sum(x**2 for x in TH)
L_SPHERE = (TH[0] ** 2 + 3 * TH[0] * TH[1]) / r**2 - TH[2] / r + sp.Rational(1, 2)
#: BatchNorm-like: one unit with weights (θ₁, θ₂), a batch of 3 fixed inputs, BN (ε = 0),
#: a quadratic head; r = σ, the batch standard deviation.
BATCH = ((1, 2), (sp.Rational(-1, 2), 1), (2, -1))
TARGETS = (1, -1, sp.Rational(1, 2))
HEAD_WEIGHTS = (sp.Rational(1, 3), 2, -1)


def bn_loss():
    z = [sum(w * xk for w, xk in zip(TH, x)) for x in BATCH]
    mu = sum(z) / len(z)
    S = sp.expand(sum((zk - mu) ** 2 for zk in z) / len(z))
    zhat = [(zk - mu) / r for zk in z]
    return sum(y * zh + w * zh**2 for zh, y, w in zip(zhat, TARGETS, HEAD_WEIGHTS)), S


def concrete_steps() -> list[Step]:
    Lb, Sb = bn_loss()
    return [
        Step(
            "concrete: f(theta/||theta||)",
            r"L_{\mathrm{sphere}}(\theta)",
            L_SPHERE,
            r"For $L(\theta)=\frac{\theta_1^2+3\theta_1\theta_2}{\|\theta\|^2}-"
            r"\frac{\theta_3}{\|\theta\|}+\frac12$: $L(c\theta)=L(\theta)$ and all four identities, "
            r"exactly (reduction modulo $r^2=\|\theta\|^2$, $r=\|\theta\|$).",
            check=lambda: _identities_hold(L_SPHERE, S_NORM, TH),
        ),
        Step(
            "concrete: BatchNorm-like loss",
            r"L_{\mathrm{BN}}(\theta)",
            r"\sum_k(y_k\hat z_k+w_k\hat z_k^2)",
            r"One unit $z_k=\langle\theta,x_k\rangle$ on a fixed batch of 3 inputs, "
            r"$\hat z_k=(z_k-\mu)/\sigma$ (BN with $\epsilon=0$), head "
            r"$\sum_k(y_k\hat z_k+w_k\hat z_k^2)$: scale invariant and all four identities hold "
            r"(modulo $r^2=\sigma^2$).",
            check=lambda: _identities_hold(Lb, Sb, TH[:2]),
        ),
    ]


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the gradient of a scale-invariant loss scales like c (degree +1)."""
    g = sp.Matrix([_D(L_SPHERE, x, S_NORM) for x in TH])
    return Step(
        "gradient homogeneous of degree +1",
        g.subs({**{x: c * x for x in TH}, r: c * r}, simultaneous=True),
        c * g,
        r"The claim $\nabla L(c\theta)=c\,\nabla L(\theta)$ for $L=f(\theta/\|\theta\|)$ "
        r"(the degree a WD-only intuition would suggest) is false: exact counterexample.",
    )


NEGATIVE_WITNESS = {TH[0]: 1, TH[1]: 2, TH[2]: 2, r: 3, c: 2}  # r = ‖θ‖ = 3

PROOF = Proof(
    name=NAME,
    result=RESULT,
    statement=STATEMENT,
    assumptions=ASSUMPTIONS,
    derive=derive,
    negative_control=negative_control,
    witness=NEGATIVE_WITNESS,
)
