r"""Scale-invariance audit of an ``nn.Module``: the public front.

The equivalence theorems need a set S of parameter tensors in which the loss
is scale invariant, L(c·θ_S, θ_R) = L(θ_S, θ_R) for every c > 0 (Li & Arora,
ICLR 2020, the scale-invariance lemma). :func:`audit` finds the largest such
set numerically and checks its three consequences:

- L(c θ_S) = L(θ_S) for random c spread over several orders of magnitude,
- ∇_p L(c θ_S) = ∇_p L(θ_S) / c for every p in S (homogeneity of degree −1),
- ⟨∇_S L, θ_S⟩ = 0 (Euler's identity for degree 0).

Each parameter is reported as invariant *on its own*, invariant only
*jointly* with others (the convolutions of a pre-activation ResNet; the
report's ``joint_sets`` splits them into the parts that are invariant each on
its own), not invariant (with the reason in words and its kind), or frozen
(not trained, not audited).

How (the rooms of the audit):

- :mod:`equivalence.invariance.checks`: the numeric checks on a float64 deep
  copy of the model in training mode (batch statistics; dropout, drop path and
  stochastic depth switched off, every pass from the same random state), so
  that the model, its running statistics and its mode are left untouched. One
  backward pass per test point gives ⟨∇_W L, W⟩ for every tensor W at once;
  forward passes at random joint scalings confirm a set.
- :mod:`equivalence.invariance.degrees`: the first pass recorded op by op;
  which tensors can carry a common scale follows from the kinds of the ops
  (the joint sets of transformers and ConvNeXts, too large to enumerate).
- :mod:`equivalence.invariance.search`: the largest invariant set M ⊇ I (I:
  the tensors invariant on their own), screened by Euler's identity, proposed
  by the degrees and confirmed by scaling, with the procedure and its
  tolerances.
- :mod:`equivalence.invariance.reasons`: why each tensor outside M breaks
  invariance, in words.
- :mod:`equivalence.invariance.report`: :class:`AuditReport` and
  :class:`ParamCheck`.
- :mod:`equivalence.invariance.make_invariant`: :func:`make_scale_invariant`, the
  paper's way of making a network invariant.

Normaliser scales and shifts (BN/GN/LN/IN affine parameters) and weight-norm
gains enter S only when invariant on their own. Jointly they can sometimes be
absorbed (a BN scale and shift feeding a conv that is normalised again), but
the largest set is then no longer unique (invariant sets are closed under
*disjoint* union only: in a pre-activation block either the convs feeding the
residual stream or the BN affine parameters before them can carry the scale,
not both) and the next normaliser's input would scale as c², which the
running-statistics correction of :class:`EquivalentLR` does not allow. They
keep their own recipe instead (the theorem allows any parameters outside S).

Test points: the given parameters and a random perturbation of the trainable
ones (a zero-initialised bias would otherwise hide a broken invariance). The
normalisers' eps is set to 1e-300 in the copy (the theorem's eps → 0 limit);
the effect of the model's real eps is measured separately, at the given
parameters, and reported (``respect_eps=True`` classifies with it).

Cost, with s = len(scales): 2 forward + backward passes for the screen
(they also record the autograd graph and the running-statistics inputs), s
forward + backward and s forward passes to confirm M and check the gradients
(:meth:`~equivalence.invariance.checks.ScaledLoss.check`; those backward passes
compute the gradients of M's tensors only), 3 forward passes for the real eps
(the loss at the model's parameters, and with S scaled by the smallest and the
largest factor) and one for the running-statistics degrees: for the default
s = 4, 6 forward + backward and 8 forward passes (the first pass is also
recorded op by op: no extra pass). A screen that lets a tensor through
wrongly costs a few more confirmations (one when the scaled points' Euler
numbers name it, else group testing, 2·s forward passes each);
``respect_eps=True`` repeats the screen and the confirmation with eps → 0.
The gradients go into buffers allocated once: for 10^8 parameters, fresh
memory per backward pass would cost more page faults than the pass itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .checks import EulerRows, ScaledLoss, joint_draws
from .degrees import parts as degree_parts
from .degrees import propose as degree_propose
from .layer_kinds import is_gain_or_shift
from .make_invariant import make_scale_invariant
from .reasons import reasons
from .report import AuditReport, ParamCheck
from .search import SearchResult, search

__all__ = ["audit", "AuditReport", "ParamCheck", "make_scale_invariant"]

_TINY_EPS = 1e-300
_N_POINTS = 2  # the model's parameters and one random perturbation of them
_CONFIRM_POINTS = (1, 0)  # the screen ends at point 1, the eps and degree passes use point 0
_FEW_VALUES = 2  # a batch-statistics normaliser over this many values per channel is degenerate


def audit(
    model: nn.Module,
    example_input: Any,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    *,
    scales: Sequence[float] | None = None,
    n_scales: int = 4,
    rtol: float = 1e-8,
    grad_rtol: float = 1e-6,
    respect_eps: bool = False,
    seed: int = 0,
) -> AuditReport:
    """Find the parameters in which ``loss_fn(model(example_input))`` is scale invariant.

    Implements the check of the paper's scale-invariance lemma (Li & Arora,
    ICLR 2020): Euler's identity Σ_{W∈S} ⟨∇_W L, W⟩ = 0 screens every set from
    one backward pass per test point, and the loss at random joint scalings
    confirms the set found (see :mod:`equivalence.invariance.search`).

    Args:
        model: any ``nn.Module``; it is deep-copied (float64, training mode)
            and left untouched, running statistics and mode included.
        example_input: a tensor, a tuple/list of tensors (positional
            arguments) or a dict (keyword arguments); floating tensors are
            cast to float64. Batch statistics need a batch of at least 2.
        loss_fn: ``output -> scalar tensor`` (close over targets if it needs
            them). Default: the model's own loss when its output carries one (a
            Hugging Face ``ModelOutput`` with ``loss``, labels among the inputs),
            else ½·mean((output − t)²) with a fixed random t, summed over the
            output's floating tensors (a tensor, or a tuple / dict of them), which
            depends on every output component.
        scales: the factors c to test; default ``n_scales`` random values with
            |log10 c| between 0.3 and 3, half below 1 and half above. A test
            of several units at once scales each unit by c·2^z, z uniform in
            [−1, 1] and independent per unit.
        rtol: the largest relative loss change accepted as rounding (float64,
            a forward pass of modest depth: about 1e-15 to 1e-13 observed;
            structural violations are many orders of magnitude larger); also
            the screen's allowance for ⟨∇_S L, θ_S⟩ relative to its
            Cauchy–Schwarz bound (see :mod:`equivalence.invariance.search`).
        grad_rtol: the same for the gradient checks (degree −1, Euler), which
            lose more digits to cancellation.
        respect_eps: classify with the model's own normaliser eps (then a
            parameter that is invariant only as eps → 0 is reported not
            invariant, with eps as the reason).
        seed: seeds the scales, the perturbed test point, the joint
            scalings and the default loss.

    Returns an :class:`AuditReport`. Raises ``TypeError``/``ValueError`` on bad input.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(
            "loss_fn must be callable (output -> scalar tensor) or None, "
            f"got {type(loss_fn).__name__}"
        )
    for name, val in (("rtol", rtol), ("grad_rtol", grad_rtol)):
        if not (isinstance(val, (int, float)) and 0 < val < 1):
            raise ValueError(f"{name} = {val!r} is outside the valid range 0 < {name} < 1")
    rng = np.random.default_rng(seed)
    scale_list = _scales(scales, n_scales, rng)
    # Euler's identity at the scaled points names a unit when its slope dL/d ln c would move
    # the loss by more than rtol over the largest factor: the forward test's own threshold
    flag_slope = rtol / max(abs(math.log(c)) for c in scale_list)
    args, kwargs = _as_args(example_input)

    probe = ScaledLoss(model, args, kwargs, loss_fn, seed, _N_POINTS)
    if not probe.trainable:
        raise ValueError(
            "the model has no trainable parameters (requires_grad=True): nothing to audit"
        )
    eps_values = probe.model_eps
    if not respect_eps:
        probe.set_eps(_TINY_EPS)
    trainable = probe.trainable

    def draws(
        singles: Sequence[str], rest: Sequence[str], parts: Sequence[Sequence[str]] | None = None
    ) -> list[dict[str, float]]:
        groups = [list(p) for p in parts] if parts else ([list(rest)] if rest else [])
        return joint_draws([[n] for n in singles] + groups, scale_list, rng)

    def violation(
        singles: Sequence[str], rest: Sequence[str], parts: Sequence[Sequence[str]] | None = None
    ) -> float:
        return probe.violation(draws(singles, rest, parts), _CONFIRM_POINTS)

    def propose(cands: list[str]) -> list[str]:
        return degree_propose(probe.trace, cands).members if probe.trace is not None else []

    def split(joint: list[str]) -> list[list[str]]:
        return degree_parts(probe.trace, joint) if probe.trace is not None else [joint]

    def run_search(
        with_gradients: bool,
    ) -> tuple[SearchResult, EulerRows, tuple[float, dict[str, float], float] | None]:
        """Screen, confirm, repair; ``with_gradients``: the degree −1 check at the confirmation."""
        rows, grads = probe.euler_rows()
        probe.suspects = set()
        checked: dict[Any, tuple[float, dict[str, float], float]] = {}

        def confirm(
            singles: Sequence[str],
            rest: Sequence[str],
            parts: Sequence[Sequence[str]] | None = None,
        ) -> float:
            if not with_gradients:
                return violation(singles, rest, parts)
            key = (tuple(singles), tuple(rest), tuple(tuple(p) for p in parts or ()))
            checked[key] = probe.check(
                draws(singles, rest, parts),
                _CONFIRM_POINTS,
                grads,
                rows.grad_norms,
                screen_tol=(rtol, flag_slope),
            )
            return checked[key][0]

        joinable = lambda n: not is_gain_or_shift(probe.work, n)  # noqa: E731
        found = search(
            rows,
            trainable,
            joinable,
            confirm,
            violation,
            rtol=rtol,
            scales=scale_list,
            propose=propose if probe.trace is not None else None,
            split=split if probe.trace is not None else None,
            suspects=(lambda: set(probe.suspects)) if with_gradients else None,
        )
        joint = tuple(n for n in found.members if n not in found.individual)
        parts = tuple(tuple(p) for p in found.parts) if len(found.parts) > 1 else ()
        final = (tuple(found.individual), joint, parts)
        if with_gradients and found.members and final not in checked:
            # the set changed in the repair: check the final one
            confirm(final[0], final[1], [list(p) for p in parts] or None)
        return found, rows, checked.get(final)

    found, rows, final_check = run_search(with_gradients=True)
    members, individual = found.members, found.individual
    set_loss, grad_err, set_grad = final_check or (float("nan"), {}, float("nan"))

    # Euler's identity on the final set and on each tensor, from the screen's backward passes
    set_euler = float("nan")
    if members:
        idx = [trainable.index(n) for n in members]
        denom = rows.grad_norms * np.sqrt(rows.sq_norms[:, idx].sum(axis=1))
        set_euler = float((np.abs(rows.dots[:, idx].sum(axis=1)) / np.maximum(denom, 1e-300)).max())
    own_euler = np.abs(rows.dots) / np.maximum(
        rows.grad_norms[:, None] * np.sqrt(rows.sq_norms), 1e-300
    )
    euler = {n: float(own_euler[:, i].max()) for i, n in enumerate(trainable)}

    notes: list[str] = []
    # the effect of the real eps on the invariant set
    eps_effect = 0.0
    if members and eps_values and not respect_eps:
        probe.set_eps(eps_values)
        # at the model's own parameters, at the smallest and the largest factor: the first
        # brings the normalisers' input variance closest to eps, the second farthest
        extremes = [dict.fromkeys(members, c) for c in (min(scale_list), max(scale_list))]
        eps_effect = probe.violation(extremes, (0,))
        probe.set_eps(_TINY_EPS)
        if eps_effect > rtol:
            worst = max(eps_values.values())
            notes.append(
                "invariance is exact only as eps -> 0: with the model's eps "
                f"(up to {worst:g}) the loss changes by up to {eps_effect:.2g} relative when S is "
                f"scaled by c in [{min(scale_list):.3g}, {max(scale_list):.3g}] (small when "
                "c*|θ_S| keeps the normalisers' input variance far above eps)"
            )
    degrees = probe.norm_degrees(members)
    for n, d in degrees.items():
        if d is not None and d not in (0.0, 1.0):
            notes.append(
                f"{n}: its input has degree {d:g} in S, so convert(norm_layers=...) cannot "
                "correct its running statistics (it assumes degree 1)"
            )
        elif d is None:
            notes.append(
                f"{n}: its input does not scale homogeneously with S (running statistics "
                "not correctable)"
            )

    tiny = {n: k for n, k in probe.batch_statistics_sizes().items() if k <= _FEW_VALUES}
    if tiny:
        shown = ", ".join(f"{n} ({k})" for n, k in list(tiny.items())[:3])
        notes.append(
            f"{len(tiny)} batch-statistics normaliser(s) average over {_FEW_VALUES} values or fewer "
            f"per channel ({shown}{', ...' if len(tiny) > 3 else ''}): with 2 values the "
            "normalised output is ±1 whatever its input, so the loss is piecewise constant in "
            "everything before it and the verdicts there are not meaningful; use a larger batch "
            "or input"
        )

    eps_only: list[str] = []
    if respect_eps:
        # which failures are due to eps: the set found with eps -> 0
        probe.set_eps(_TINY_EPS)
        eps_only = [n for n in run_search(with_gradients=False)[0].members if n not in members]
        probe.set_eps(eps_values)

    outside = [n for n in trainable if n not in members]
    stopped: dict[str, str] = {}
    if probe.trace is not None:  # what the degrees of the traced pass say about the rest
        # every joinable tensor as a candidate (the individual ones too: a key's bias is
        # invariant on its own, but the attention scores are what stop the key's weight)
        joinable = [n for n in trainable if not is_gain_or_shift(probe.work, n)]
        stopped = degree_propose(probe.trace, joinable).removed
    why = reasons(probe.work, outside, probe.reach(), eps_only, eps_values, stopped)
    checks: dict[str, ParamCheck] = {}
    for n, p in probe.params.items():
        shape = tuple(p.shape)
        if n not in trainable:
            checks[n] = ParamCheck(
                n, shape, "frozen", float("nan"), reason="requires_grad=False (not audited)"
            )
        elif n in individual:
            checks[n] = ParamCheck(
                n, shape, "individual", set_loss, grad_err.get(n, float("nan")), euler[n]
            )
        elif n in members:
            checks[n] = ParamCheck(
                n, shape, "joint", set_loss, grad_err.get(n, float("nan")), set_euler
            )
        else:
            checks[n] = ParamCheck(
                n,
                shape,
                "not",
                found.alone.get(n, float("nan")),
                euler=euler[n],
                reason=why[n][0] if n in why else "",
                reason_kind=why[n][1] if n in why else "",
            )
    return AuditReport(
        model=model,
        checks=checks,
        norm_input_degrees=degrees,
        scales=scale_list,
        rtol=rtol,
        grad_rtol=grad_rtol,
        set_loss_error=set_loss,
        set_grad_error=set_grad,
        set_euler=set_euler,
        eps_effect=eps_effect,
        eps_values=eps_values,
        respect_eps=respect_eps,
        notes=notes,
        joint_sets=[list(p) for p in found.parts],
    )


def _scales(scales: Sequence[float] | None, n_scales: int, rng: np.random.Generator) -> list[float]:
    if scales is not None:
        try:
            vals = [float(c) for c in scales]
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"scales must be a sequence of positive floats, got {scales!r}"
            ) from exc
        if not vals or any(not (math.isfinite(c) and c > 0) or c == 1.0 for c in vals):
            raise ValueError(f"scales = {scales!r}: need at least one finite c > 0 with c != 1")
        return vals
    if isinstance(n_scales, bool) or not isinstance(n_scales, int) or n_scales < 2:
        raise ValueError(
            f"n_scales = {n_scales!r} is outside the valid range n_scales >= 2 (an int)"
        )
    u = rng.uniform(0.3, 3.0, size=n_scales)
    signs = np.where(np.arange(n_scales) % 2 == 0, -1.0, 1.0)
    return [float(10.0 ** (s * v)) for s, v in zip(signs, u)]


def _as_args(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    def conv(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x.detach().to(torch.float64) if x.is_floating_point() else x.detach()
        return x

    if isinstance(example_input, torch.Tensor):
        return (conv(example_input),), {}
    if isinstance(example_input, (tuple, list)) and example_input:
        return tuple(conv(x) for x in example_input), {}
    if isinstance(example_input, dict) and example_input:
        return (), {k: conv(v) for k, v in example_input.items()}
    raise TypeError(
        "example_input must be a tensor, a non-empty tuple/list of positional arguments or a "
        f"non-empty dict of keyword arguments, got {type(example_input).__name__}"
    )
