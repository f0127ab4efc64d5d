"""Exact rescaling of an exponential-LR run, and the eval-mode BatchNorm correction.

Paper result: the project's own derivations around the main theorem (the paper's
equivalence is for the training-mode function; these keep it exact for ever in
floating point and in eval mode).

Statement 1 (rescaling). For s > 0 the map
(θ_S, v_S, η̃, running_mean, running_var) -> (sθ_S, v_S/s, s²η̃, s·mean, s²·var)
commutes with a step of SGD without WD (momentum γ) and a training-mode forward
pass, where BN's batch mean/variance of its input are homogeneous of degree 1/2 in
the scale of S. Hence, with every later η̃ multiplied by s², every later network
function (train mode, and eval mode with BN ε = 0) is unchanged.

Statement 2 (eval-mode BN). With PyTorch's EMA m <- (1−μ)m + μ·batch_mean,
var <- (1−μ)var + μ·batch_var (m_0 = 0, var_0 = 1), if after each step t of the exp
run the running mean is multiplied by c_t/c_{t+1} and the running var by
(c_t/c_{t+1})², then for all t: mean_exp_t = mean_WD_t/c_t and var_exp_t = var_WD_t/c_t²;
so the eval-mode outputs of the two runs agree (ε = 0; with ε > 0 they agree exactly
when ε is multiplied by (c_t/c_{t+1})² too, proofs.normaliser_eps).
"""

from __future__ import annotations

import functools

import sympy as sp

from proofs._core import Proof, Step, apply_homogeneity, equal, sym, vec
from proofs._sgd import G, homogeneous

NAME = "rescaling"
RESULT = "exact rescaling and eval-mode BatchNorm statistics (project's derivation)"
STATEMENT = (
    r"(i) $(\theta,v,\tilde\eta,m,\sigma^2)\mapsto(s\theta,v/s,s^2\tilde\eta,sm,s^2\sigma^2)$ commutes "
    r"with a step; (ii) multiplying the exp run's running mean by $c_t/c_{t+1}$ and running var by "
    r"$(c_t/c_{t+1})^2$ after each step keeps them equal to the WD run's divided by $c_t$, $c_t^2$."
)
ASSUMPTIONS = (
    r"Scale invariance: $G(k\theta)=G(\theta)/k$; BN's batch mean $M$ and variance $V$ of its "
    r"input are homogeneous: $M(k\theta)=kM(\theta)$, $V(k\theta)=k^2V(\theta)$, $k>0$ "
    r"(BN input linear in $\theta_S$; biased or unbiased variance alike).",
    r"$s>0$, $c_t>0$, $0<\mu\le1$ (BN momentum), $\epsilon=0$ in BN (with $\epsilon>0$ exactness "
    r"needs $\epsilon\mapsto s^2\epsilon$, resp.\ $\epsilon/c_t^2$: proofs.normaliser\_eps).",
    r"PyTorch's order: the forward pass at $\tilde\theta_t$ updates the running statistics, "
    r"then the optimizer step; the correction is applied after the step.",
)

s = sym("s", "s", positive=True)
gamma = sym("gamma", r"\gamma", positive=True)
eta_tilde = sym("etatilde", r"\tilde\eta", positive=True)
mu = sym("mu", r"\mu", positive=True)
c = sym("c_t", r"c_t", positive=True)
c_next = sym("c_next", r"c_{t+1}", positive=True)
theta = vec("theta", r"\theta")
v = vec("v", r"v")
m = vec("m", r"m")
var = vec("var", r"\sigma^2")
M = sp.Function("M", commutative=False)  # BN batch mean of the layer input
V = sp.Function("V", commutative=False)  # BN batch variance
# Scalar stand-ins for one channel in the eval-mode output (BN input z, stats).
z, mz, vz = (
    sym("z", "z", real=True),
    sym("m_z", "m", real=True),
    sym("v_z", r"\sigma^2", positive=True),
)
eps_bn = sym("epsilon", r"\epsilon", positive=True)


def rewrite(expr):
    """Apply the three homogeneity rules (degrees −1, 1, 2)."""
    return apply_homogeneity(apply_homogeneity(homogeneous(expr), M, 1), V, 2)


def step(th, buf, lr, mean, variance):
    """Forward pass (running statistics) and one SGD step without WD."""
    new_mean = rewrite((1 - mu) * mean + mu * M(th))
    new_var = rewrite((1 - mu) * variance + mu * V(th))
    new_buf = rewrite(gamma * buf + G(th))
    new_th = sp.expand(th - lr * new_buf)
    return new_th, sp.expand(new_buf), sp.expand(new_mean), sp.expand(new_var)


@functools.lru_cache(maxsize=1)
def derive() -> tuple[Step, ...]:
    steps: list[Step] = []
    a = step(theta, v, eta_tilde, m, var)
    b = step(s * theta, v / s, s**2 * eta_tilde, s * m, s**2 * var)
    names = ("parameters", "momentum buffer", "running mean", "running var")
    scale = (s, 1 / s, s, s**2)
    for name, x, y, k in zip(names, a, b, scale):
        steps.append(
            Step(
                f"rescale commutes: {name}",
                y,
                k * x,
                r"Step from the rescaled state (LR $s^2\tilde\eta$) equals the rescaled step: "
                + {
                    "parameters": r"$s\theta'$.",
                    "momentum buffer": r"$v'/s$.",
                    "running mean": r"$s\,m'$.",
                    "running var": r"$s^2\sigma^{2\prime}$.",
                }[name],
            )
        )
    steps.append(
        Step(
            "eval-mode output invariant",
            (s * z - s * mz) / sp.sqrt(s**2 * vz),
            (z - mz) / sp.sqrt(vz),
            r"Eval-mode BN at the rescaled state: input $sz$, mean $sm$, var $s^2\sigma^2$ "
            r"($\epsilon=0$); then the rest of the network sees the same values.",
            check=lambda: equal(
                sp.powsimp((s * z - s * mz) / sp.sqrt(s**2 * vz)), (z - mz) / sp.sqrt(vz)
            ),
        )
    )
    steps.append(
        Step(
            "eval-mode output with epsilon",
            (s * z - s * mz) / sp.sqrt(s**2 * vz + s**2 * eps_bn),
            (z - mz) / sp.sqrt(vz + eps_bn),
            r"With $\epsilon>0$ the invariance needs $\epsilon\mapsto s^2\epsilon$ (otherwise it is "
            r"approximate: relative error $O(\epsilon/\sigma^2)$; proofs.normaliser\_eps proves "
            r"$s^2\epsilon$ the only exact choice).",
            check=lambda: equal(
                sp.powsimp((s * z - s * mz) / sp.sqrt(sp.factor(s**2 * vz + s**2 * eps_bn))),
                (z - mz) / sp.sqrt(vz + eps_bn),
            ),
        )
    )
    # BN correction: WD run vs exp run, induction on t.
    th_t = vec("theta_t", r"\theta_t")
    mW, vW = vec("mW_t", r"m^{W}_t"), vec("varW_t", r"\sigma^{2,W}_t")
    mW1 = sp.expand((1 - mu) * mW + mu * M(th_t))
    vW1 = sp.expand((1 - mu) * vW + mu * V(th_t))
    mE1 = rewrite(((1 - mu) * mW / c + mu * M(th_t / c)) * (c / c_next))
    vE1 = rewrite(((1 - mu) * vW / c**2 + mu * V(th_t / c)) * (c / c_next) ** 2)
    steps.append(
        Step(
            "BN running mean invariant",
            mE1,
            mW1 / c_next,
            r"Hypothesis $m^E_t=m^W_t/c_t$, exp-run forward at $\theta_t/c_t$, EMA update, then "
            r"$\times c_t/c_{t+1}$: $m^E_{t+1}=m^W_{t+1}/c_{t+1}$.",
        )
    )
    steps.append(
        Step(
            "BN running var invariant",
            vE1,
            vW1 / c_next**2,
            r"Hypothesis $\sigma^{2,E}_t=\sigma^{2,W}_t/c_t^2$; update, then $\times(c_t/c_{t+1})^2$.",
        )
    )
    steps.append(
        Step(
            "BN base case",
            sp.Tuple(0, 1),
            sp.Tuple(0 / sp.S.One, 1 / sp.S.One**2),
            r"$m_0=0=m^W_0/c_0$ and $\sigma^2_0=1=\sigma^{2,W}_0/c_0^2$ since $c_0=1$.",
        )
    )
    steps.append(
        Step(
            "eval outputs agree",
            (z / c - mz / c) / sp.sqrt(vz / c**2),
            (z - mz) / sp.sqrt(vz),
            r"Exp net at $\theta_t/c_t$ with the corrected statistics vs WD net at $\theta_t$: "
            r"the BN input scales by $1/c_t$, and so do mean and standard deviation.",
            check=lambda: equal(
                sp.powsimp((z / c - mz / c) / sp.sqrt(vz / c**2)), (z - mz) / sp.sqrt(vz)
            ),
        )
    )
    return tuple(steps)


NEGATIVE_WITNESS = {mu: sp.Rational(1, 10), c: 1, c_next: sp.Rational(9, 10)}


@functools.lru_cache(maxsize=1)
def negative_control() -> Step:
    """False: without the correction the running mean of the exp run is the WD run's / c."""
    th0 = vec("theta_0", r"\theta_0")
    return Step(
        "uncorrected running mean",
        rewrite((1 - mu) * 0 + mu * M(th0 / 1)),
        (mu * M(th0)) / c_next,
        r"Without the correction, after one step $m^E_1=\mu M(\theta_0)$ but $m^W_1/c_1="
        r"\mu M(\theta_0)/c_1$: unequal for $c_1\neq1$ (exact counterexample $c_1=9/10$).",
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
