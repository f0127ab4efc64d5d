"""A normaliser with ε > 0 is scale invariant exactly when ε scales with the square of its input.

Paper result: the scale invariance that the main theorem assumes, for a real
normalisation layer (BatchNorm, GroupNorm, LayerNorm, InstanceNorm with their
default ε > 0); the project's derivation, beside the running-statistics
correction of proofs.rescaling.

Statement. Let x_1..x_n be the entries of the normaliser's input over which it
takes its statistics (any finite index set: BatchNorm per channel over batch and
space, LayerNorm per sample, GroupNorm per sample and group, InstanceNorm per
sample and channel), μ(x) = (1/n) Σ x_i and σ²(x) = (1/n) Σ (x_i − μ(x))² (biased, as
in the training-mode forward pass), and

    y_j(x; ε) = (x_j − μ(x)) / sqrt(σ²(x) + ε),    ε > 0,

followed by an affine map w·y + b that does not depend on the scale. Then for every
m > 0 and every n ≥ 1 (symbolic):

    μ(m x) = m μ(x),   σ²(m x) = m² σ²(x),   y_j(m x; m² ε) = y_j(x; ε),

and m² ε is the *only* ε' with y_j(m x; ε') = y_j(x; ε) (for x_j ≠ μ(x)). With ε left
alone the output changes (negative control, exact witness).

Eval mode. The eval-mode output (z − r)/sqrt(ρ + ε) with running mean r and running
variance ρ is unchanged when z, r scale by m, ρ by m² *and* ε by m². In the
converted run the normaliser's input is m_t = 1/c_t times the stock run's
(θ̃_t = θ_t/c_t, proofs.general_schedule); proofs.rescaling shows that multiplying
the running mean by c_t/c_{t+1} and the running variance by (c_t/c_{t+1})² after each
step keeps r̃_t = r_t/c_t, ρ̃_t = ρ_t/c_t². So ε̃_t = ε/c_t², i.e. ε multiplied by
(c_t/c_{t+1})² after each step, the same factor as the running variance, keeps the
train- and eval-mode outputs of the two runs equal; a power-of-two rescaling by s
multiplies ε̃ by s², as it does the running variance.
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, equal, sym

NAME = "normaliser_eps"
RESULT = r"normalisers with $\epsilon$, $\epsilon\mapsto m^2\epsilon$ (project's derivation)"
STATEMENT = (
    r"For the mean $\mu$ and biased variance $\sigma^2$ of the entries $x_1,\dots,x_n$ of any "
    r"index set (BatchNorm, GroupNorm, LayerNorm, InstanceNorm) and "
    r"$y_j(x;\epsilon)=(x_j-\mu(x))/\sqrt{\sigma^2(x)+\epsilon}$: for every $m>0$ and $n\ge1$, "
    r"$y_j(mx;m^2\epsilon)=y_j(x;\epsilon)$, and $m^2\epsilon$ is the only $\epsilon'$ with "
    r"$y_j(mx;\epsilon')=y_j(x;\epsilon)$. In eval mode, running mean $\times m$, running "
    r"variance $\times m^2$ and $\epsilon\times m^2$ keep the output; in the converted run "
    r"($m_t=1/c_t$) $\epsilon$ is multiplied by $(c_t/c_{t+1})^2$ after each step, like the "
    r"running variance (proofs.rescaling)."
)
ASSUMPTIONS = (
    r"$n\ge1$ entries (symbolic $n$; the index set of the layer's statistics is arbitrary), "
    r"$x_i$ real, $m>0$, $\epsilon>0$, $\sigma^2\ge0$.",
    r"The affine map $w\,y+b$ after the normalisation is not rescaled (its parameters are not "
    r"in the scale-invariant set).",
    r"Eval mode: running mean $r$ and variance $\rho$ maintained as in proofs.rescaling "
    r"(they do not involve $\epsilon$; biased or unbiased variance alike, both are "
    r"homogeneous of degree 2).",
)

n = sym("n", "n", integer=True, positive=True)
i = sym("i", "i", integer=True)
j = sym("j", "j", integer=True)
x = sp.IndexedBase("x", real=True)
m = sym("m", "m", positive=True)
eps = sym("epsilon", r"\epsilon", positive=True)
eps2 = sym("epsilon_prime", r"\epsilon'", positive=True)
# The statistics of x as symbols (after the homogeneity steps): mean, biased variance.
mu = sym("mu_x", r"\mu(x)", real=True)
var = sym("sigma2_x", r"\sigma^2(x)", nonnegative=True)
xj = sym("x_j", "x_j", real=True)
w, b = sym("w", "w", real=True), sym("b", "b", real=True)
# Eval mode: input entry z, running mean r, running variance rho.
z = sym("z", "z", real=True)
r = sym("r", "r", real=True)
rho = sym("rho", r"\rho", nonnegative=True)
# Converted run: c_t, c_{t+1}; s of a power-of-two rescaling.
c = sym("c_t", "c_t", positive=True)
c_next = sym("c_next", "c_{t+1}", positive=True)
s = sym("s", "s", positive=True)


def mean(entry) -> sp.Expr:
    """μ = (1/n) Σ_{i=1}^n entry(i)."""
    return sp.Sum(entry(i), (i, 1, n)) / n


def variance(entry, ddof: int = 0) -> sp.Expr:
    """σ² = (1/(n − ddof)) Σ (entry(i) − μ)² (ddof 0: biased, 1: unbiased)."""
    return sp.Sum((entry(i) - mean(entry)) ** 2, (i, 1, n)) / (n - ddof)


def normalise(entry, epsilon) -> sp.Expr:
    """y_j = (entry(j) − μ)/sqrt(σ² + ε), symbolic n."""
    return (entry(j) - mean(entry)) / sp.sqrt(variance(entry) + epsilon)


def y(xj_, mu_, var_, epsilon) -> sp.Expr:
    """The normaliser's output in terms of an entry and the statistics."""
    return (xj_ - mu_) / sp.sqrt(var_ + epsilon)


def _sums_equal(lhs, rhs) -> bool:
    """Expand the summands and pull out the factors free of the index (factor_terms)."""
    return sp.factor_terms(sp.expand(lhs - rhs)) == 0


def _sqrt_equal(lhs, rhs) -> bool:
    """Equality after factoring under the square roots (m > 0 then leaves the root)."""

    def fac(e):
        return e.replace(lambda a: isinstance(a, sp.Pow) and a.exp.is_Rational, sp.factor)

    return equal(fac(lhs), fac(rhs))


def _root_step(name: str, lhs: sp.Expr, rhs: sp.Expr, justification: str) -> Step:
    """A step checked by :func:`_sqrt_equal` (the roots factored, m > 0 taken out)."""
    return Step(name, lhs, rhs, justification, check=lambda: _sqrt_equal(lhs, rhs))


def _entry(k):
    return x[k]


def _scaled(k):
    return m * x[k]


def _concrete(size: int):
    """(entries, mean, biased variance) of a sample of ``size`` symbols, written out."""
    xs = sp.symbols(f"x1:{size + 1}", real=True)
    mu_ = sp.Add(*xs) / size
    var_ = sp.Add(*[(a - mu_) ** 2 for a in xs]) / size
    return xs, mu_, var_


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    """Homogeneity of the statistics, invariance of the output, uniqueness of m²ε, eval mode."""
    steps: list[Step] = []
    steps.append(
        Step(
            "mean is homogeneous",
            mean(_scaled),
            m * mean(_entry),
            r"$\mu(mx)=\frac1n\sum_{i=1}^n mx_i=m\,\mu(x)$ for symbolic $n$ ($m$ is free of "
            r"the index $i$).",
            check=lambda: _sums_equal(mean(_scaled), m * mean(_entry)),
        )
    )
    for ddof, which in ((0, "biased"), (1, "unbiased")):
        lhs, rhs = variance(_scaled, ddof), m**2 * variance(_entry, ddof)
        steps.append(
            Step(
                f"{which} variance is homogeneous",
                lhs,
                rhs,
                r"Each summand $(mx_i-m\mu(x))^2=m^2(x_i-\mu(x))^2$; the "
                + which
                + r" variance (divisor "
                + ("$n$" if ddof == 0 else r"$n-1$, $n\ge2$")
                + r") scales by $m^2$.",
                check=lambda lhs=lhs, rhs=rhs: _sums_equal(lhs, rhs),
            )
        )
    scaled_y = y(m * xj, m * mu, m**2 * var, m**2 * eps)
    steps.append(
        _root_step(
            "output invariant, eps times m squared",
            scaled_y,
            y(xj, mu, var, eps),
            r"With the two homogeneities: $\sqrt{m^2\sigma^2+m^2\epsilon}=m\sqrt{\sigma^2+"
            r"\epsilon}$ ($m>0$, $\sigma^2+\epsilon>0$), so $y_j(mx;m^2\epsilon)=y_j(x;\epsilon)$.",
        )
    )
    whole = normalise(_scaled, m**2 * eps) - normalise(_entry, eps)
    steps.append(
        Step(
            "whole normaliser, symbolic n",
            normalise(_scaled, m**2 * eps),
            normalise(_entry, eps),
            r"Independently of the two steps above: the normaliser written out with sums over "
            r"$i=1..n$ ($n$ symbolic) simplifies to the same output (SymPy \texttt{simplify}, "
            r"which pulls $m$ out of the sums and the root).",
            check=lambda: sp.simplify(whole) == 0,
        )
    )
    xs, mu3, var3 = _concrete(3)
    mxs = {a: m * a for a in xs}
    lhs3 = y(
        m * xs[0], mu3.subs(mxs, simultaneous=True), var3.subs(mxs, simultaneous=True), m**2 * eps
    )
    rhs3 = y(xs[0], mu3, var3, eps)
    steps.append(
        _root_step(
            "three entries written out",
            lhs3,
            rhs3,
            r"A concrete check with $n=3$ and no sums: $x=(x_1,x_2,x_3)$ symbolic.",
        )
    )
    steps.append(
        _root_step(
            "affine map unchanged",
            w * scaled_y + b,
            w * y(xj, mu, var, eps) + b,
            r"The affine map after the normaliser sees the same $y$, so the layer's output and "
            r"everything after it are unchanged.",
        )
    )
    sols = sp.solve(sp.Eq(y(m * xj, m * mu, m**2 * var, eps2) ** 2, y(xj, mu, var, eps) ** 2), eps2)
    steps.append(
        Step(
            "eps times m squared is the only choice",
            eps2,
            m**2 * eps,
            r"Solving $y_j(mx;\epsilon')=y_j(x;\epsilon)$ for $\epsilon'>0$ (squared: both "
            r"sides have the sign of $x_j-\mu(x)\neq0$) gives the unique root "
            r"$\epsilon'=m^2\epsilon$.",
            check=lambda: len(sols) == 1 and equal(sols[0], m**2 * eps),
        )
    )
    eval_lhs = y(m * z, m * r, m**2 * rho, m**2 * eps)
    steps.append(
        _root_step(
            "eval mode with running statistics",
            eval_lhs,
            y(z, r, rho, eps),
            r"Eval mode normalises with the running statistics: input $mz$, running mean "
            r"$mr$, running variance $m^2\rho$ and $\epsilon$ scaled by $m^2$ give the same "
            r"output.",
        )
    )
    steps.append(
        Step(
            "eps update in the converted run",
            eps / c_next**2,
            (eps / c**2) * (c / c_next) ** 2,
            r"In the converted run the input is $m_t=1/c_t$ times the stock run's, so "
            r"$\tilde\epsilon_t=\epsilon/c_t^2$: after each step $\tilde\epsilon$ is multiplied "
            r"by $(c_t/c_{t+1})^2$, the factor proofs.rescaling applies to the running variance.",
        )
    )
    conv_lhs = y(z / c, r / c, rho / c**2, eps / c**2)
    steps.append(
        _root_step(
            "eval outputs of the two runs agree",
            conv_lhs,
            y(z, r, rho, eps),
            r"With proofs.rescaling's $\tilde r_t=r_t/c_t$, $\tilde\rho_t=\rho_t/c_t^2$ and "
            r"$\tilde\epsilon_t=\epsilon/c_t^2$, the converted run's eval-mode output equals the "
            r"stock run's.",
        )
    )
    resc_lhs = y(s * z / c, s * r / c, s**2 * rho / c**2, s**2 * eps / c**2)
    steps.append(
        _root_step(
            "power-of-two rescaling",
            resc_lhs,
            y(z, r, rho, eps),
            r"A rescaling by $s>0$ (proofs.rescaling: parameters and running mean $\times s$, "
            r"running variance $\times s^2$) keeps the output when $\tilde\epsilon$ is "
            r"multiplied by $s^2$ too.",
        )
    )
    return tuple(steps)


#: x = (0, 8): μ = 4, σ² = 16; ε = 9 and m = 35/16 make both roots rational
#: (sqrt(16 + 9) = 5, sqrt(16 m² + 9) = 37/4), so the two outputs are -4/5 and -35/37.
_X2 = sp.symbols("x1:3", real=True)
NEGATIVE_WITNESS = {_X2[0]: 0, _X2[1]: 8, eps: 9, m: sp.Rational(35, 16)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: the normaliser is scale invariant with ε left alone."""
    mu2 = (_X2[0] + _X2[1]) / 2
    var2 = ((_X2[0] - mu2) ** 2 + (_X2[1] - mu2) ** 2) / 2
    return Step(
        "eps left alone",
        y(m * _X2[0], m * mu2, m**2 * var2, eps),
        y(_X2[0], mu2, var2, eps),
        r"With $\epsilon$ not rescaled, $y_1(mx;\epsilon)=y_1(x;\epsilon)$ is false: at "
        r"$x=(0,8)$, $\epsilon=9$, $m=35/16$ the outputs are $-35/37$ and $-4/5$.",
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
