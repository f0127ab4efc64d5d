"""Symbolic SGD steps shared by the proofs (PyTorch's convention and Sutskever's).

PyTorch ``torch.optim.SGD(lr=η_t, momentum=γ, weight_decay=λ_t, dampening=0,
nesterov=False)``::

    v_{t+1} = γ v_t + ∇L(θ_t) + λ_t θ_t
    θ_{t+1} = θ_t − η_t v_{t+1}

Sutskever et al. / Keras (the LR inside the velocity)::

    v_{t+1} = γ v_t + η_t (∇L(θ_t) + λ_t θ_t)
    θ_{t+1} = θ_t − v_{t+1}

``G`` stands for ∇L restricted to the scale-invariant parameters: an abstract
vector-valued function, homogeneous of degree −1 (proofs.scale_invariance), used
through the rewrite ``G(θ/c) -> c G(θ)`` (:func:`homogeneous`).
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from proofs._core import apply_homogeneity

#: The gradient ∇L of the scale-invariant loss, as an abstract vector function.
G = sp.Function("G", commutative=False)


def homogeneous(expr):
    """Apply ∇L(kθ) = ∇L(θ)/k (k > 0) everywhere in ``expr``."""
    return apply_homogeneity(expr, G, -1)


def torch_step(theta, buf, lr, weight_decay, momentum):
    """One step of PyTorch SGD; returns (θ_{t+1}, v_{t+1}) with G rewritten."""
    new_buf = homogeneous(momentum * buf + G(theta) + weight_decay * theta)
    return sp.expand(theta - lr * new_buf), sp.expand(new_buf)


def sutskever_step(theta, buf, lr, weight_decay, momentum):
    """One step with the LR inside the velocity; returns (θ_{t+1}, v_{t+1})."""
    new_buf = homogeneous(momentum * buf + lr * (G(theta) + weight_decay * theta))
    return sp.expand(theta - new_buf), sp.expand(new_buf)


# ---------------------------------------------------------------------------
# An exact, concrete scale-invariant loss for unrolled (non-inductive) checks
# ---------------------------------------------------------------------------


def concrete_gradient(theta: tuple[Fraction, ...]) -> tuple[Fraction, ...]:
    """Exact gradient of L(θ) = (θ₁² + 3θ₁θ₂ − 2θ₂θ₃ + θ₃²/2) / ‖θ‖² on R³.

    L is a ratio of homogeneous quadratics, hence scale invariant, and its
    gradient is rational: exact in ``Fraction`` arithmetic, homogeneous of degree
    −1 and orthogonal to θ, like the gradient of any scale-invariant loss.
    """
    x, y, z = theta
    n = x * x + y * y + z * z
    p = x * x + 3 * x * y - 2 * y * z + z * z / 2
    dp = (2 * x + 3 * y, 3 * x - 2 * z, -2 * y + z)
    return tuple((dpi * n - p * 2 * ti) / (n * n) for dpi, ti in zip(dp, theta))


def unroll(lrs, wds, momentum, theta0, buf0=None, convention="torch"):
    """Exact run of SGD with :func:`concrete_gradient`; returns the list of θ_t.

    ``lrs``/``wds``: per-step η_t, λ_t (Fractions); ``buf0`` the initial buffer
    (zero when None). ``convention`` is "torch" or "sutskever".
    """
    theta = tuple(Fraction(a) for a in theta0)
    buf = tuple(Fraction(0) for _ in theta) if buf0 is None else tuple(buf0)
    out = [theta]
    for lr, wd in zip(lrs, wds):
        g = concrete_gradient(theta)
        if convention == "torch":
            buf = tuple(momentum * b + gi + wd * ti for b, gi, ti in zip(buf, g, theta))
            theta = tuple(ti - lr * b for ti, b in zip(theta, buf))
        elif convention == "sutskever":
            buf = tuple(momentum * b + lr * (gi + wd * ti) for b, gi, ti in zip(buf, g, theta))
            theta = tuple(ti - b for ti, b in zip(theta, buf))
        else:
            raise ValueError(f"convention={convention!r}; valid: 'torch', 'sutskever'")
        out.append(theta)
    return out
