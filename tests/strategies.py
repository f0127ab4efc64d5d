"""Hypothesis strategies of the property suite: tiny normalised networks and SGD recipes.

- :func:`net_specs` draws a :class:`equivalence.testing_nets.NetSpec`: an MLP, a CNN or a
  residual network; BatchNorm, GroupNorm, LayerNorm, InstanceNorm or weight normalisation;
  random depth, width, activation, bias and where the normaliser sits (before or after the
  activation; pre- or post-activation residual blocks); the normalisers' eps is 0 or 1e-300,
  so scale invariance holds to rounding (built by ``equivalence.testing_nets.build``).
- :func:`recipes` draws an SGD + weight-decay recipe (η, λ, γ with γ = 0 included; constant,
  step, cosine, warm-up, warm-up + step, random per-step LR, time-varying WD) inside the
  valid domain (the scale sequence c_t of the general theorem stays positive); its
  :attr:`Recipe.sgd` is the stock recipe the lockstep harness runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    MultiStepLR,
    SequentialLR,
)

import equivalence
from equivalence.verify.lockstep import SGDRecipe
from equivalence.verify.testing_nets import ALL_ACTS, HOMOGENEOUS_ACTS, NetSpec

PAPER = {"lr": 0.1, "weight_decay": 5e-4, "momentum": 0.9}


@st.composite
def net_specs(
    draw: Any,
    families: tuple[str, ...] = ("mlp", "cnn", "resnet"),
    norms: tuple[str, ...] | None = None,
    max_width: int = 8,
    second_order: bool = False,
) -> NetSpec:
    """A random tiny scale-invariant network (see :class:`NetSpec`).

    ``second_order``: the network's second derivatives are taken (Hessian
    properties), so no ReLU sits right before a normaliser. A ReLU there can zero
    a whole normalisation group (a dead group: GroupNorm/InstanceNorm over a few
    pixels of one sample, or BatchNorm over a small batch), whose variance is then
    0, so (var + eps)^(-1/2) = 1e150 with eps = 1e-300. First derivatives stay
    finite (the ReLU's zero mask multiplies that 1e150), but the double backward
    carries (var + eps)^(-3/2) = inf, and inf · 0 = NaN. This degenerate case
    (a constant input to a normaliser) is left out; leaky ReLU and the identity
    keep the act-then-norm order covered.
    """
    family = draw(st.sampled_from(families))
    allowed = {
        "mlp": ("bn", "ln", "gn", "wn"),
        "cnn": ("bn", "gn", "in", "wn"),
        "resnet": ("bn", "gn", "in"),
    }[family]
    if norms is not None:
        allowed = tuple(n for n in allowed if n in norms)
        assume(allowed)
    norm = draw(st.sampled_from(allowed))
    if family == "resnet":
        order = draw(st.sampled_from(("pre", "post")))
        depth = draw(st.integers(1, 2))
        width = draw(st.sampled_from([w for w in (2, 4, 6, 8) if w <= max_width]))
    else:
        order = draw(st.sampled_from(("norm_act", "act_norm")))
        depth = draw(st.integers(1, 3))
        # LayerNorm/GroupNorm over 2 features is ±1 whatever the input (a zero gradient):
        # keep at least 3 features per group
        width = draw(st.integers(3 if family == "mlp" else 2, max_width))
    act_pool = HOMOGENEOUS_ACTS if order == "act_norm" else ALL_ACTS
    if order == "act_norm" and family == "mlp" and norm in ("ln", "gn"):
        # a ReLU before a LayerNorm over 3-8 features often leaves one live feature, whose
        # normalised value is a constant: the gradient would be rounding noise
        act_pool = ("leaky_relu", "identity")
    if second_order and order == "act_norm":
        act_pool = tuple(a for a in act_pool if a != "relu")
    affine = draw(st.sampled_from(("trainable", "frozen", "none")))
    if family == "mlp" and norm == "bn" and affine == "trainable" and depth > 1:
        # BN(affine) → Linear → identity → BN: the next BatchNorm removes the per-feature
        # constant W·β and the scale γ feeds only its (invariant) input, so these affine
        # parameters are scale invariant on their own. The constructed S would then not be
        # maximal (the audit rightly adds them, making the next BN's input inhomogeneous
        # in S); this degenerate linear case is left out.
        act_pool = tuple(a for a in act_pool if a != "identity")
    act = draw(st.sampled_from(act_pool))
    # eps = 0 needs a nonzero variance; a ReLU in front of the normaliser can
    # leave a whole channel at zero, so there eps stays at the tiny 1e-300.
    # BatchNorm and InstanceNorm reject eps = 0 in training mode.
    eps_zero_ok = order == "norm_act" and norm in ("ln", "gn")
    eps_pool = (0.0, 1e-300) if eps_zero_ok else (1e-300,)
    return NetSpec(
        family=family,
        norm=norm,
        order=order,
        depth=depth,
        width=width,
        act=act,
        bias=draw(st.booleans()),
        affine=affine,
        head=draw(st.sampled_from(("trainable", "frozen"))),
        eps=draw(st.sampled_from(eps_pool)),
        in_dim=draw(st.integers(1, 3)) if family != "mlp" else draw(st.integers(2, 6)),
        image=draw(st.integers(3, 5)),
        out_dim=draw(st.integers(1, 3)),
        track=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@dataclass(frozen=True)
class Recipe:
    """An SGD + WD recipe: per-step ``lrs`` and ``wds`` plus how the stock side produces them.

    ``factory`` is a stock PyTorch scheduler factory (``optimizer -> LRScheduler``)
    or ``None`` (then the stock side sets ``lrs[t]`` by hand each step).
    ``wd_varies``: the stock side sets ``weight_decay = wds[t]`` by hand.
    """

    kind: str
    lr: float
    weight_decay: float
    momentum: float
    lrs: np.ndarray
    wds: np.ndarray
    factory: Callable[[Any], Any] | None
    wd_varies: bool

    @property
    def steps(self) -> int:
        return int(self.lrs.size)

    @property
    def piecewise_constant(self) -> bool:
        return self.kind in ("constant", "step")

    @property
    def sgd(self) -> SGDRecipe:
        """The stock recipe: its scheduler factory, or the per-step LR set by hand (and WD)."""
        return SGDRecipe(
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=float(self.wds[0]),
            lr_scheduler=self.factory,
            lrs=self.lrs if self.factory is None and self.kind != "constant" else None,
            weight_decays=self.wds if self.wd_varies else None,
        )

    def __repr__(self) -> str:
        return (
            f"Recipe({self.kind}, lr={self.lr:.4g}, wd={self.weight_decay:.4g}, momentum={self.momentum:.4g}, "
            f"steps={self.steps}, wd_varies={self.wd_varies})"
        )


def _stock_lrs(factory: Callable[[Any], Any], lr: float, steps: int) -> np.ndarray:
    """The per-step LRs a stock scheduler sets."""
    return SGDRecipe(lr, lr_scheduler=factory).per_step(steps)[0]


KINDS = ("constant", "step", "cosine", "warmup", "warmup_step", "random")
DEFAULT_STEPS = st.integers(20, 60)


@st.composite
def recipes(
    draw: Any,
    steps: int | st.SearchStrategy[int] = DEFAULT_STEPS,
    kinds: tuple[str, ...] = KINDS,
    momentum: st.SearchStrategy[float] | None = None,
    vary_wd: bool | None = None,
    lr_range: tuple[float, float] = (1e-3, 0.3),
    wd_range: tuple[float, float] = (1e-5, 2e-2),
) -> Recipe:
    """A recipe (η, λ, γ, schedule) inside the valid domain of the general theorem."""
    n = steps if isinstance(steps, int) else draw(steps)
    kind = draw(st.sampled_from(kinds))
    g = draw(momentum if momentum is not None else st.one_of(st.just(0.0), st.floats(0.3, 0.95)))
    lr = math.exp(draw(st.floats(math.log(lr_range[0]), math.log(lr_range[1]))))
    wd = math.exp(draw(st.floats(math.log(wd_range[0]), math.log(wd_range[1]))))
    # valid domain: ηλ ≤ (1 − √γ)² at the largest LR (real roots, c_t > 0)
    bound = (1.0 - math.sqrt(g)) ** 2
    if lr * wd > 0.9 * bound:
        wd = 0.9 * bound / lr
    factory: Callable[[Any], Any] | None
    if kind == "constant":
        factory = None
        lrs = np.full(n, lr)
    elif kind == "step":
        k = draw(st.integers(1, 2))
        ms = sorted(draw(st.lists(st.integers(1, n - 1), min_size=k, max_size=k, unique=True)))
        gamma = draw(st.sampled_from((0.1, 0.2, 0.5)))
        factory = lambda opt, ms=ms, gamma=gamma: MultiStepLR(opt, ms, gamma)  # noqa: E731
        lrs = _stock_lrs(factory, lr, n)
    elif kind == "cosine":
        t_max = draw(st.integers(n // 2, 2 * n))
        eta_min = lr * draw(st.sampled_from((0.0, 0.01, 0.1)))
        if eta_min == 0.0:
            t_max = max(t_max, n + 1)  # a zero LR is outside the domain
        factory = lambda opt, t=t_max, e=eta_min: CosineAnnealingLR(opt, t, e)  # noqa: E731
        lrs = _stock_lrs(factory, lr, n)
    elif kind == "warmup":
        w = draw(st.integers(2, max(2, n // 2)))
        s = draw(st.sampled_from((0.01, 0.1, 1.0 / 3.0)))
        factory = lambda opt, w=w, s=s: LinearLR(opt, s, 1.0, w)  # noqa: E731
        lrs = _stock_lrs(factory, lr, n)
    elif kind == "warmup_step":
        w = draw(st.integers(2, max(2, n // 3)))
        m = draw(st.integers(1, max(1, n - w - 1)))

        def factory(opt: Any, w: int = w, m: int = m) -> Any:
            return SequentialLR(
                opt, [LinearLR(opt, 0.1, 1.0, w), MultiStepLR(opt, [m], 0.1)], milestones=[w]
            )

        lrs = _stock_lrs(factory, lr, n)
    elif kind == "random":
        factory = None
        u = np.asarray(draw(st.lists(st.floats(-2.0, 0.0), min_size=n, max_size=n)))
        lrs = lr * np.exp(u)
    else:
        raise ValueError(kind)
    varies = draw(st.booleans()) if vary_wd is None else vary_wd
    if varies:
        pieces = draw(st.integers(2, 3))
        cuts = sorted(
            draw(
                st.lists(
                    st.integers(1, n - 1), min_size=pieces - 1, max_size=pieces - 1, unique=True
                )
            )
        )
        levels = [
            wd * f
            for f in draw(
                st.lists(st.sampled_from((0.1, 0.5, 1.0, 2.0)), min_size=pieces, max_size=pieces)
            )
        ]
        wds = np.empty(n)
        for lev, a, b in zip(levels, [0, *cuts], [*cuts, n]):
            wds[a:b] = min(lev, 0.9 * bound / max(lrs))
    else:
        wds = np.full(n, wd)
    # the general theorem's domain: c_t > 0 throughout (the library raises otherwise)
    try:
        equivalence.scale_factors(lrs, wds, g)
    except equivalence.ScaleSequenceError:
        assume(False)
    return Recipe(kind, lr, float(wds[0]), g, lrs, wds, factory, varies)


def paper_recipe(steps: int, kind: str = "constant") -> Recipe:
    """The paper's recipe η = 0.1, λ = 5e-4, γ = 0.9, constant (or one ×0.1 step halfway)."""
    lr, wd, g = PAPER["lr"], PAPER["weight_decay"], PAPER["momentum"]
    if kind == "constant":
        return Recipe("constant", lr, wd, g, np.full(steps, lr), np.full(steps, wd), None, False)
    ms = [steps // 2]
    factory = lambda opt: MultiStepLR(opt, ms, 0.1)  # noqa: E731
    return Recipe(
        "step", lr, wd, g, _stock_lrs(factory, lr, steps), np.full(steps, wd), factory, False
    )
