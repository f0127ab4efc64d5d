"""SGD variants of the optimizer table: one step each, the per-step ansatz and the unrolled system.

Conventions (d = ∇L(θ_t) + λ_t θ_t; ``torch.optim.SGD`` unless stated):

* ``damp``  (dampening τ): v_{t+1} = γ v_t + (1 − τ) d, except v_1 = d (PyTorch's first step);
  θ_{t+1} = θ_t − η_t v_{t+1};
* ``nest``  (nesterov=True, τ = 0): v_{t+1} = γ v_t + d; θ_{t+1} = θ_t − η_t (d + γ v_{t+1});
* ``keras`` (LR inside the velocity, Keras/TensorFlow): v_{t+1} = γ v_t − η_t d;
  θ_{t+1} = θ_t + v_{t+1}.

The converted run is the same optimizer with λ = 0 and per-step hyper-parameters. Two
ways to look for a map θ̃_t = θ_t/c_t:

* the *ansatz* ṽ_t = p_t v_t + κ_t θ_t, solved one step at a time by matching the
  coefficients of θ_t, v_t and the gradient (:func:`ansatz_equations`);
* the *unrolled system* (:func:`unrolled_equations`): K steps from v_0 = 0 with the
  gradients g_0, …, g_{K−1} at the iterates as independent vectors (a scale-invariant loss
  can take any gradients ⟂ θ_t at finitely many points, in enough dimensions), the
  converted run's gradient at θ_t/c_t being c_t g_t; every coefficient of θ_0, g_0, …
  in θ̃_{t+1} − θ_{t+1}/c_{t+1} must vanish. Its unknowns are *all* per-step
  hyper-parameter schedules, so "no solution" refutes every hyper-parameter-only map.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

KINDS = ("damp", "nest", "keras")


def sgd_step(
    kind: str,
    theta: Any,
    v: Any,
    grad: Any,
    lr: Any,
    wd: Any,
    mom: Any,
    tau: Any = 0,
    first: bool = False,
) -> tuple[Any, Any]:
    """One step of the variant ``kind``; returns (θ_{t+1}, v_{t+1}), expanded."""
    d = grad + wd * theta
    if kind == "damp":
        vn = d if first else mom * v + (1 - tau) * d
        return sp.expand(theta - lr * vn), sp.expand(vn)
    if kind == "nest":
        vn = mom * v + d
        return sp.expand(theta - lr * (d + mom * vn)), sp.expand(vn)
    if kind == "keras":
        vn = mom * v - lr * d
        return sp.expand(theta + vn), sp.expand(vn)
    raise ValueError(f"kind={kind!r}; valid: {KINDS}")


def coefficient_equations(expr: Any, atoms: list[Any]) -> list[sp.Expr]:
    """Numerators of the coefficients of ``atoms`` (commutative stand-ins) in ``expr``."""
    poly = sp.Poly(sp.expand(expr), *atoms)
    return [sp.numer(sp.together(c)) for c in poly.coeffs()]


def unrolled_equations(
    kind: str,
    steps: int,
    lrs: list[Any],
    wds: list[Any],
    mom: Any,
    tau: Any = 0,
    free_momentum: bool = True,
) -> tuple[list[sp.Expr], list[Any]]:
    """Equations and unknowns of every hyper-parameter-only map over ``steps`` steps.

    Unknowns: η̃_t, γ̃_t (when ``free_momentum``; else γ̃ = γ) and c_{t+1}, t < steps;
    c_0 = 1 is no loss of generality (the runs start from the same θ_0).
    """
    theta0 = sp.Symbol("theta_0")
    gs = [sp.Symbol(f"g_{t}") for t in range(steps)]
    et = [sp.Symbol(f"etat_{t}") for t in range(steps)]
    gt = [sp.Symbol(f"gammat_{t}") for t in range(steps)] if free_momentum else [mom] * steps
    cs = [sp.Integer(1)] + [sp.Symbol(f"c_{t + 1}") for t in range(steps)]
    th, v = theta0, sp.Integer(0)
    tth, tv = theta0, sp.Integer(0)
    eqs: list[sp.Expr] = []
    for t in range(steps):
        th, v = sgd_step(kind, th, v, gs[t], lrs[t], wds[t], mom, tau, first=t == 0)
        tth, tv = sgd_step(kind, tth, tv, cs[t] * gs[t], et[t], 0, gt[t], tau, first=t == 0)
        eqs += coefficient_equations(tth - th / cs[t + 1], [theta0, *gs[: t + 1]])
    unknowns = et + (gt if free_momentum else []) + cs[1:]
    return eqs, unknowns


def no_solution(eqs: list[sp.Expr], unknowns: list[Any], nonzero: tuple[Any, ...] = ()) -> bool:
    """True iff the polynomial system has no solution (a Gröbner basis equal to [1]).

    ``nonzero``: unknowns that must not vanish (scales, LRs), imposed by the extra equation
    u·∏ nonzero = 1 with a fresh unknown u (clearing denominators can add solutions at 0).
    """
    eqs = [e for e in eqs if e != 0]
    unknowns = list(unknowns)
    if nonzero:
        u = sp.Dummy("u")
        eqs.append(u * sp.Mul(*nonzero) - 1)
        unknowns.append(u)
    basis = sp.groebner(eqs, *unknowns, order="lex")
    return list(basis.exprs) == [1]
