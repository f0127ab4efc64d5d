r"""Scale-invariance audit of an ``nn.Module`` and the paper's way of making a network invariant.

The equivalence theorems need a set S of parameter tensors in which the loss
is scale invariant, L(c·θ_S, θ_R) = L(θ_S, θ_R) for every c > 0 (Li & Arora,
ICLR 2020, the scale-invariance lemma). :func:`audit` finds the largest such
set numerically and checks its three consequences:

- L(c θ_S) = L(θ_S) for random c spread over several orders of magnitude,
- ∇_p L(c θ_S) = ∇_p L(θ_S) / c for every p in S (homogeneity of degree −1),
- ⟨∇_S L, θ_S⟩ = 0 (Euler's identity for degree 0).

Each parameter is reported as invariant *on its own*, invariant only
*jointly* with others (the convolutions of a pre-activation ResNet), not
invariant (with the reason in words), or frozen (not trained, not audited).

The joint set (procedure). Invariant sets are closed under disjoint union: if
scaling A leaves L unchanged and so does scaling a disjoint B, scaling A ∪ B
does too. So the union I of the tensors invariant on their own is invariant,
and I lies in every maximal invariant set. The audit builds a maximal set M ⊇ I
by a fixed point:

1. test every trainable parameter alone; those that pass form I;
2. S ← all trainable parameters; while S is not invariant, remove from S \ I
   the parameter whose removal leaves the smallest violation (greedy);
3. add back, module by module and then one by one, removed parameters whose
   addition keeps S invariant; repeat 2–3 until nothing changes.

Normaliser scales and shifts (BN/GN/LN/IN affine parameters) and weight-norm
gains enter S only when invariant on their own. Jointly they can sometimes be
absorbed (a BN scale and shift feeding a conv that is normalised again), but
the largest set is then no longer unique (invariant sets are closed under
*disjoint* union only: in a pre-activation block either the convs feeding the
residual stream or the BN affine parameters before them can carry the scale,
not both) and the next normaliser's input would scale as c², which the
running-statistics correction of :class:`EquivalentLR` does not allow. They
keep their own recipe instead (the theorem allows any parameters outside S).
Every tensor invariant on its own is in every maximal set (disjoint union),
so step 2 never removes those.

A violation is max |L(cθ_S) − L(θ)| / |L(θ)| over the scales c, measured at
the given parameters *and* at a random perturbation of the trainable ones
(a zero-initialised bias would otherwise hide a broken invariance). Every
test runs on a float64 deep copy of the model in training mode (batch
statistics; dropout switched off), so the model, its running statistics and
its mode are left untouched. The normalisers' eps is set to 1e-300 in the
copy (the theorem's eps → 0 limit); the effect of the model's real eps is
measured separately and reported (``respect_eps=True`` classifies with it).

Cost: about n + r·n violation tests of 2·len(scales) forward passes each,
n trainable tensors, r of them outside M; use a small example batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["audit", "AuditReport", "ParamCheck", "make_scale_invariant"]

_NORM_CLASSES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_TINY_EPS = 1e-300
_STATUSES = ("individual", "joint", "not", "frozen")


@dataclass(frozen=True)
class ParamCheck:
    """The audit's findings for one parameter tensor.

    ``status``: ``"individual"`` (invariant on its own), ``"joint"`` (invariant
    only together with the rest of the invariant set), ``"not"`` or
    ``"frozen"``. The numbers are worst cases over the scales and both test
    points: ``loss_error`` = max |L(cθ) − L(θ)|/|L(θ)| (scaling the parameter
    alone for individual and non-invariant ones, the whole set for joint
    ones), ``grad_error`` = max ‖c ∇_p L(cθ_S) − ∇_p L(θ)‖ / ‖∇_S L(θ)‖
    (degree −1; NaN outside the set), ``euler`` = |⟨∇_p L, θ_p⟩| /
    (‖∇_p L‖ ‖θ_p‖) for individual ones (the set's value for joint ones).
    """

    name: str
    shape: tuple[int, ...]
    status: str
    loss_error: float
    grad_error: float = float("nan")
    euler: float = float("nan")
    reason: str = ""


@dataclass
class AuditReport:
    """What :func:`audit` found; ``report.is_invariant[name]`` says whether a parameter is in S.

    ``invariant_parameters()`` gives the tensors of S (of the audited model,
    ready for ``convert(invariant=...)``), ``norm_layers()`` the modules with
    running statistics whose inputs scale with S (for ``convert(norm_layers=...)``).
    """

    model: nn.Module = field(repr=False)
    checks: dict[str, ParamCheck]
    norm_input_degrees: dict[str, float | None]
    scales: list[float]
    rtol: float
    grad_rtol: float
    set_loss_error: float
    set_grad_error: float
    set_euler: float
    eps_effect: float
    eps_values: dict[str, float]
    respect_eps: bool
    notes: list[str] = field(default_factory=list)

    # -- the classification ---------------------------------------------------------
    @property
    def is_invariant(self) -> dict[str, bool]:
        """name -> whether the parameter belongs to the scale-invariant set S."""
        return {n: c.status in ("individual", "joint") for n, c in self.checks.items()}

    @property
    def individually_invariant(self) -> dict[str, bool]:
        return {n: c.status == "individual" for n, c in self.checks.items()}

    @property
    def invariant_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status in ("individual", "joint")]

    @property
    def individual_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "individual"]

    @property
    def joint_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "joint"]

    @property
    def not_invariant_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "not"]

    @property
    def frozen_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "frozen"]

    @property
    def reasons(self) -> dict[str, str]:
        """name -> what breaks invariance, for the parameters outside S."""
        return {n: c.reason for n, c in self.checks.items() if c.status == "not"}

    @property
    def fully_invariant(self) -> bool:
        """True when every trainable parameter is in S (the paper's setting)."""
        return not self.not_invariant_names and bool(self.invariant_names)

    @property
    def norm_layer_names(self) -> list[str]:
        """Modules with running statistics whose input is homogeneous of degree 1 in S."""
        return [n for n, d in self.norm_input_degrees.items() if d == 1.0]

    def invariant_parameters(self) -> list[torch.Tensor]:
        named = dict(self.model.named_parameters())
        return [named[n] for n in self.invariant_names]

    def norm_layers(self) -> list[nn.Module]:
        mods = dict(self.model.named_modules())
        return [mods[n] for n in self.norm_layer_names]

    # -- display ----------------------------------------------------------------------
    def __str__(self) -> str:
        rows = [("parameter", "shape", "status", "loss err", "grad err", "<g,θ>", "reason")]
        for c in self.checks.values():
            rows.append(
                (
                    c.name,
                    "x".join(map(str, c.shape)) or "scalar",
                    c.status,
                    _fmt(c.loss_error),
                    _fmt(c.grad_error),
                    _fmt(c.euler),
                    c.reason,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [
            f"Scale-invariance audit: {len(self.invariant_names)} invariant "
            f"({len(self.individual_names)} on their own, {len(self.joint_names)} only jointly), "
            f"{len(self.not_invariant_names)} not invariant, {len(self.frozen_names)} frozen; "
            f"scales c in [{min(self.scales):.3g}, {max(self.scales):.3g}], rtol {self.rtol:g}"
        ]
        for i, r in enumerate(rows):
            lines.append("  ".join(r[k].ljust(widths[k]) for k in range(6)) + ("  " + r[6] if r[6] else ""))
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(
            f"invariant set S: max loss change {_fmt(self.set_loss_error)}, gradient degree -1 error "
            f"{_fmt(self.set_grad_error)}, |<grad_S L, θ_S>|/(|grad||θ|) {_fmt(self.set_euler)}"
        )
        degs = ", ".join(f"{n} ({_deg(d)})" for n, d in self.norm_input_degrees.items()) or "none"
        lines.append(f"running-statistics layers and the degree of their input in S: {degs}")
        lines.append(f"norm_layers() for convert(): {', '.join(self.norm_layer_names) or 'none'}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1e}"


def _deg(d: float | None) -> str:
    return "not homogeneous" if d is None else f"degree {d:g}"


# ---------------------------------------------------------------------------------------
# the audit
# ---------------------------------------------------------------------------------------


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
    ICLR 2020) and the project's fixed-point procedure for the joint set (see
    the module docstring).

    Args:
        model: any ``nn.Module``; it is deep-copied (float64, training mode)
            and left untouched, running statistics and mode included.
        example_input: a tensor, a tuple/list of tensors (positional
            arguments) or a dict (keyword arguments); floating tensors are
            cast to float64. Batch statistics need a batch of at least 2.
        loss_fn: ``output -> scalar tensor`` (close over targets if it needs
            them). Default: ½·mean((output − t)²) with a fixed random t, which
            depends on every output component.
        scales: the factors c to test; default ``n_scales`` random values with
            |log10 c| between 0.3 and 3, half below 1 and half above.
        rtol: the largest relative loss change accepted as rounding (float64,
            a forward pass of modest depth: about 1e-15 to 1e-13 observed;
            structural violations are many orders of magnitude larger).
        grad_rtol: the same for the gradient checks (degree −1, Euler), which
            lose more digits to cancellation.
        respect_eps: classify with the model's own normaliser eps (then a
            parameter that is invariant only as eps → 0 is reported not
            invariant, with eps as the reason).
        seed: seeds the scales, the perturbed test point and the default loss.

    Returns an :class:`AuditReport`. Raises ``TypeError``/``ValueError`` on bad input.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (output -> scalar tensor) or None, got {type(loss_fn).__name__}")
    for name, val in (("rtol", rtol), ("grad_rtol", grad_rtol)):
        if not (isinstance(val, (int, float)) and 0 < val < 1):
            raise ValueError(f"{name} = {val!r} is outside the valid range 0 < {name} < 1")
    rng = np.random.default_rng(seed)
    scale_list = _scales(scales, n_scales, rng)
    args, kwargs = _as_args(example_input)

    work = _working_copy(model)
    eps_values = _set_eps(work, None)  # the model's own eps, per module
    if not respect_eps:
        _set_eps(work, _TINY_EPS)
    params = dict(work.named_parameters())
    trainable = [n for n, p in params.items() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (requires_grad=True): nothing to audit")
    frozen = [n for n in params if n not in trainable]

    gen = torch.Generator().manual_seed(seed)
    ev = _Evaluator(work, args, kwargs, loss_fn, gen)
    base = {n: p.detach().clone() for n, p in params.items()}
    perturbed = dict(base)
    for n in trainable:
        p = base[n]
        rms = float(p.pow(2).mean().sqrt()) if p.numel() else 0.0
        sigma = 0.5 * (rms if rms > 0 else 1.0)
        perturbed[n] = p + sigma * torch.randn(p.shape, generator=gen, dtype=p.dtype)
    points = [base, perturbed]

    def violation(subset: Sequence[str], pts: Sequence[dict[str, torch.Tensor]] = points) -> float:
        return ev.violation(set(subset), pts, scale_list)

    # 1. on their own
    alone = {n: violation([n]) for n in trainable}
    individual = [n for n in trainable if alone[n] <= rtol]
    # 2.-3. the largest joint set, by greedy removal and add-back to a fixed point, over the
    # trainable tensors other than normaliser scales/shifts and weight-norm gains
    candidates = [n for n in trainable if n in individual or not _is_gain_or_shift(work, n)]
    members = _fixed_point(candidates, individual, violation, rtol)

    # the three checks on the final set, at both points
    set_loss = violation(members) if members else float("nan")
    grad_err, set_grad, set_euler, euler_alone = ev.gradient_checks(members, individual, points, scale_list)

    notes: list[str] = []
    # the effect of the real eps on the invariant set
    eps_effect = 0.0
    if members and eps_values and not respect_eps:
        _set_eps(work, eps_values)
        eps_effect = violation(members)
        _set_eps(work, _TINY_EPS)
        if eps_effect > rtol:
            worst = max(eps_values.values())
            notes.append(
                f"invariance is exact only as eps -> 0: with the model's eps (up to {worst:g}) the loss "
                f"changes by up to {eps_effect:.2g} relative when S is scaled by c in "
                f"[{min(scale_list):.3g}, {max(scale_list):.3g}] (small when c*|θ_S| keeps the normalisers' "
                "input variance far above eps)"
            )
    degrees: dict[str, float | None] = ev.norm_degrees(members, base) if members else {
        n: 0.0 for n, m in work.named_modules() if _has_running_stats(m)
    }
    for n, d in degrees.items():
        if d is not None and d not in (0.0, 1.0):
            notes.append(
                f"{n}: its input has degree {d:g} in S, so convert(norm_layers=...) cannot correct its "
                "running statistics (it assumes degree 1)"
            )
        elif d is None:
            notes.append(f"{n}: its input does not scale homogeneously with S (running statistics not correctable)")

    eps_alone: dict[str, float] = {}
    if respect_eps:
        # which failures are due to eps: the set found with eps -> 0
        _set_eps(work, _TINY_EPS)
        ind0 = [n for n in trainable if violation([n]) <= rtol]
        cand0 = [n for n in trainable if n in ind0 or not _is_gain_or_shift(work, n)]
        eps_alone = {n: 0.0 for n in _fixed_point(cand0, ind0, violation, rtol) if n not in members}
        _set_eps(work, eps_values)

    reasons = _reasons(work, trainable, members, ev, base, eps_alone, eps_values, rtol)
    checks: dict[str, ParamCheck] = {}
    for n, p in params.items():
        shape = tuple(p.shape)
        if n in frozen:
            checks[n] = ParamCheck(n, shape, "frozen", float("nan"), reason="requires_grad=False (not audited)")
        elif n in individual:
            checks[n] = ParamCheck(n, shape, "individual", alone[n], grad_err.get(n, float("nan")), euler_alone.get(n, float("nan")))
        elif n in members:
            checks[n] = ParamCheck(n, shape, "joint", set_loss, grad_err.get(n, float("nan")), set_euler)
        else:
            checks[n] = ParamCheck(n, shape, "not", alone[n], reason=reasons.get(n, ""))
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
    )


def _is_gain_or_shift(work: nn.Module, name: str) -> bool:
    """A normaliser's affine scale/shift or a weight-normalisation gain."""
    _, mod, attr = _owner(work, name)
    return isinstance(mod, _NORM_CLASSES) or attr.endswith("original0")


def _fixed_point(
    trainable: list[str], individual: list[str], violation: Callable[[Sequence[str]], float], rtol: float
) -> list[str]:
    """Greedy removal and add-back until the set is invariant and nothing more can join."""
    order = {n: i for i, n in enumerate(trainable)}
    members = list(trainable)
    fixed = set(individual)
    for _ in range(len(trainable) + 1):
        # greedy removal: drop the parameter whose removal leaves the smallest violation
        current = violation(members)
        while current > rtol:
            candidates = [n for n in members if n not in fixed]
            if not candidates:
                break
            scored = [(violation([m for m in members if m != n]), -order[n], n) for n in candidates]
            best = min(scored)
            members.remove(best[2])
            current = best[0]
        if current > rtol:  # only the individually invariant ones remain; their union is invariant
            members = [n for n in trainable if n in fixed]
        # add back: whole modules first (a weight with its bias), then single tensors
        removed = [n for n in trainable if n not in members]
        changed = False
        by_module: dict[str, list[str]] = {}
        for n in removed:
            by_module.setdefault(n.rsplit(".", 1)[0], []).append(n)
        for group in [*by_module.values(), *([n] for n in removed)]:
            if all(g in members for g in group):
                continue
            trial = members + [g for g in group if g not in members]
            if violation(trial) <= rtol:
                members = trial
                changed = True
        if not changed:
            break
    return sorted(members, key=order.__getitem__)


class _Evaluator:
    """Loss and gradients of the working copy at a given point, with a subset scaled."""

    def __init__(
        self,
        work: nn.Module,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loss_fn: Callable[[Any], torch.Tensor] | None,
        gen: torch.Generator,
    ) -> None:
        self.work = work
        self.params = dict(work.named_parameters())
        self.args, self.kwargs = args, kwargs
        self.loss_fn = loss_fn
        self.target: torch.Tensor | None = None
        self.gen = gen
        with torch.no_grad():
            self.loss()  # validates the output and the loss once, with a clear error

    def set_point(self, point: Mapping[str, torch.Tensor], subset: set[str], c: float) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                v = point[n]
                p.copy_(v * c if n in subset else v)

    def output(self) -> Any:
        return self.work(*self.args, **self.kwargs)

    def loss(self) -> torch.Tensor:
        out = self.output()
        if self.loss_fn is None:
            if not isinstance(out, torch.Tensor):
                raise TypeError(
                    f"the model returns {type(out).__name__}; pass loss_fn (output -> scalar tensor) "
                    "for outputs that are not a single tensor"
                )
            if self.target is None:
                self.target = torch.randn(out.shape, generator=self.gen, dtype=out.dtype)
            loss = 0.5 * (out - self.target).pow(2).mean()
        else:
            loss = self.loss_fn(out)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(
                f"loss_fn must return a scalar tensor, got {type(loss).__name__}"
                + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
            )
        if not torch.isfinite(loss):
            raise ValueError(f"the loss at the model's parameters is not finite ({float(loss)!r})")
        return loss.reshape(())

    def violation(self, subset: set[str], points: Sequence[dict[str, torch.Tensor]], scales: list[float]) -> float:
        worst = 0.0
        with torch.no_grad():
            for pt in points:
                self.set_point(pt, subset, 1.0)
                ref = float(self.loss())
                for c in scales:
                    self.set_point(pt, subset, c)
                    val = float(self.loss())
                    err = abs(val - ref) / max(abs(ref), 1e-300)
                    worst = max(worst, err if math.isfinite(err) else math.inf)
            self.set_point(points[0], set(), 1.0)
        return worst

    def grads(self, point: Mapping[str, torch.Tensor], subset: set[str], c: float) -> dict[str, torch.Tensor]:
        self.set_point(point, subset, c)
        for p in self.params.values():
            p.grad = None
        self.loss().backward()
        return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for n, p in self.params.items()}

    def gradient_checks(
        self,
        members: list[str],
        individual: list[str],
        points: Sequence[dict[str, torch.Tensor]],
        scales: list[float],
    ) -> tuple[dict[str, float], float, float, dict[str, float]]:
        """Degree −1 of ∇_p L under scaling of S, and ⟨∇L, θ⟩ = 0 (set and single tensors)."""
        per: dict[str, float] = dict.fromkeys(members, 0.0)
        set_err = set_euler = 0.0
        euler_alone: dict[str, float] = dict.fromkeys(individual, 0.0)
        if not members:
            return {}, float("nan"), float("nan"), {}
        s = set(members)
        for pt in points:
            g1 = self.grads(pt, s, 1.0)
            # measured against the gradient of every trainable tensor, so that a set whose own
            # gradient is rounding noise (a degenerate normaliser) is not judged on that noise
            gnorm = math.sqrt(sum(float(g1[n].pow(2).sum()) for n in g1 if self.params[n].requires_grad))
            tnorm = math.sqrt(sum(float(pt[n].pow(2).sum()) for n in members))
            dot = sum(float((g1[n] * pt[n]).sum()) for n in members)
            set_euler = max(set_euler, abs(dot) / max(gnorm * tnorm, 1e-300))
            # a tensor whose gradient is rounding noise (a bias removed by BatchNorm) is measured
            # against the gradient of the whole set, not against its own noise
            for n in individual:
                gn, tn = gnorm, float(pt[n].norm())
                euler_alone[n] = max(euler_alone[n], abs(float((g1[n] * pt[n]).sum())) / max(gn * tn, 1e-300))
            for c in scales:
                gc = self.grads(pt, s, c)
                tot = 0.0
                for n in members:
                    d = float((c * gc[n] - g1[n]).pow(2).sum())
                    tot += d
                    per[n] = max(per[n], math.sqrt(d) / max(gnorm, 1e-300))
                set_err = max(set_err, math.sqrt(tot) / max(gnorm, 1e-300))
        self.set_point(points[0], set(), 1.0)
        for p in self.params.values():
            p.grad = None
        return per, set_err, set_euler, euler_alone

    def norm_inputs(self, point: Mapping[str, torch.Tensor], subset: set[str], c: float) -> dict[str, torch.Tensor]:
        seen: dict[str, torch.Tensor] = {}
        hooks = []
        for name, m in self.work.named_modules():
            if isinstance(m, _NORM_CLASSES):
                hooks.append(
                    m.register_forward_pre_hook(
                        lambda mod, inp, name=name: seen.__setitem__(name, inp[0].detach().clone())
                    )
                )
        try:
            with torch.no_grad():
                self.set_point(point, subset, c)
                self.output()
        finally:
            for h in hooks:
                h.remove()
        return seen

    def norm_degrees(self, members: list[str], point: Mapping[str, torch.Tensor]) -> dict[str, float | None]:
        """Scale S by 2 and read off, per running-statistics layer, k with input → 2^k input."""
        s = set(members)
        x1 = self.norm_inputs(point, s, 1.0)
        x2 = self.norm_inputs(point, s, 2.0)
        self.set_point(point, set(), 1.0)
        mods = dict(self.work.named_modules())
        out: dict[str, float | None] = {}
        for name in x1:
            if not _has_running_stats(mods[name]):
                continue
            out[name] = _degree(x1[name], x2[name])
        return out

    def reaches(self, point: Mapping[str, torch.Tensor], name: str) -> tuple[list[str], bool]:
        """Which normaliser inputs change when ``name`` alone is doubled, and whether the output does."""
        x1 = self.norm_inputs(point, set(), 1.0)
        x2 = self.norm_inputs(point, {name}, 2.0)
        with torch.no_grad():
            self.set_point(point, set(), 1.0)
            o1 = self.output()
            self.set_point(point, {name}, 2.0)
            o2 = self.output()
            self.set_point(point, set(), 1.0)
        changed = [n for n in x1 if not torch.equal(x1[n], x2[n])]
        out_changed = not _tree_equal(o1, o2)
        return changed, out_changed


def _tree_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return all(_tree_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return all(_tree_equal(a[k], b[k]) for k in a)
    return a == b


def _degree(x1: torch.Tensor, x2: torch.Tensor) -> float | None:
    """k such that x2 = 2^k x1 (exactly up to rounding), or None."""
    n1 = float(x1.abs().max())
    if n1 == 0.0:
        return 0.0 if float(x2.abs().max()) == 0.0 else None
    k = round(math.log2(float(x2.abs().max()) / n1))
    err = float((x2 - math.ldexp(1.0, k) * x1).abs().max()) / (math.ldexp(1.0, k) * n1)
    return float(k) if err <= 1e-10 else None


def _has_running_stats(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._NormBase) and bool(getattr(m, "track_running_stats", False))


def _owner(work: nn.Module, name: str) -> tuple[str, nn.Module, str]:
    """(module name, module, attribute) owning parameter ``name``; parametrizations resolved."""
    parts = name.split(".")
    if "parametrizations" in parts:
        i = parts.index("parametrizations")
        mod_name = ".".join(parts[:i])
        return mod_name, work.get_submodule(mod_name), ".".join(parts[i + 1 :])
    mod_name = ".".join(parts[:-1])
    return mod_name, work.get_submodule(mod_name) if mod_name else work, parts[-1]


def _reasons(
    work: nn.Module,
    trainable: list[str],
    members: list[str],
    ev: _Evaluator,
    base: Mapping[str, torch.Tensor],
    eps_alone: Mapping[str, float],
    eps_values: Mapping[str, float],
    rtol: float,
) -> dict[str, str]:
    """Say in words why each trainable parameter outside S breaks invariance."""
    out: dict[str, str] = {}
    param_modules = [n for n, m in work.named_modules() if any(True for _ in m.parameters(recurse=False))]
    last_module = param_modules[-1] if param_modules else ""
    for n in trainable:
        if n in members:
            continue
        mod_name, mod, attr = _owner(work, n)
        cls = type(mod).__name__
        label = mod_name or "<root>"
        if n in eps_alone and eps_alone[n] <= rtol:
            eps = eps_values.get(mod_name, max(eps_values.values(), default=0.0))
            out[n] = f"eps: invariant as eps -> 0, but the normalisers' eps (e.g. {eps:g}) breaks it at these scales"
            continue
        reached, out_changed = ev.reaches(base, n)
        if isinstance(mod, _NORM_CLASSES) and attr == "weight":
            out[n] = (
                f"trainable {cls} scale feeding the next layer: scaling {label}.weight scales what follows "
                + ("and no normaliser undoes it" if not reached else "without a matching scaling of its shift")
            )
        elif isinstance(mod, _NORM_CLASSES) and attr == "bias":
            out[n] = f"bias after the normaliser ({cls} shift of {label}): a shift added after normalising does not scale"
        elif attr.startswith("weight.original0"):
            out[n] = f"weight-normalisation gain of {label}: it scales the layer's output, which no normaliser follows"
        elif not reached:
            if mod_name == last_module:
                out[n] = f"unnormalised output layer: {label} ({cls}) feeds the output with no normaliser after it"
            else:
                out[n] = f"no normaliser between {label} ({cls}) and the output: its scale reaches the loss"
        elif attr == "bias":
            out[n] = (
                f"bias of {label} ({cls}): it is normalised only together with its weight, or its path also "
                "reaches the output un-normalised"
            )
        else:
            out[n] = (
                f"{label} ({cls}) reaches normalisers ({', '.join(reached[:3])}{', ...' if len(reached) > 3 else ''}) "
                "but its scale also reaches the loss another way (a residual or skip path, an unscaled "
                "branch, or a trainable scale after the normaliser)"
            )
        if not out_changed and not reached:
            out[n] = f"{label}: doubling it changes nothing at these inputs, yet other scales change the loss"
    return out


def _scales(scales: Sequence[float] | None, n_scales: int, rng: np.random.Generator) -> list[float]:
    if scales is not None:
        try:
            vals = [float(c) for c in scales]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"scales must be a sequence of positive floats, got {scales!r}") from exc
        if not vals or any(not (math.isfinite(c) and c > 0) or c == 1.0 for c in vals):
            raise ValueError(f"scales = {scales!r}: need at least one finite c > 0 with c != 1")
        return vals
    if isinstance(n_scales, bool) or not isinstance(n_scales, int) or n_scales < 2:
        raise ValueError(f"n_scales = {n_scales!r} is outside the valid range n_scales >= 2 (an int)")
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
        "example_input must be a tensor, a non-empty tuple/list of positional arguments or a non-empty dict "
        f"of keyword arguments, got {type(example_input).__name__}"
    )


def _working_copy(model: nn.Module) -> nn.Module:
    try:
        work = copy.deepcopy(model)
    except Exception as exc:  # noqa: BLE001 - report what could not be copied
        raise TypeError(f"the model cannot be deep-copied for the audit: {exc}") from exc
    work = work.to(torch.float64)
    work.train()
    for m in work.modules():
        if isinstance(m, _DROPOUT):
            m.eval()  # random masks would make every comparison fail; dropout is scale-equivariant
    return work


def _set_eps(work: nn.Module, value: float | Mapping[str, float] | None) -> dict[str, float]:
    """Read (value None), set to a float, or restore (a mapping) the normalisers' eps."""
    found: dict[str, float] = {}
    for name, m in work.named_modules():
        if isinstance(m, _NORM_CLASSES) and isinstance(getattr(m, "eps", None), float):
            norm: Any = m  # eps is a plain float attribute of every normaliser class
            found[name] = float(norm.eps)
            if isinstance(value, Mapping):
                norm.eps = value[name]
            elif value is not None:
                norm.eps = value
    return found


# ---------------------------------------------------------------------------------------
# making a network invariant
# ---------------------------------------------------------------------------------------


def make_scale_invariant(model: nn.Module, *, last_layer: str | None = "auto") -> list[str]:
    """Freeze what breaks scale invariance, the paper's way; return the names of the frozen tensors.

    Li & Arora (ICLR 2020), experiments (following Hoffer et al., 2018): the
    affine parameters of every BatchNorm, GroupNorm, LayerNorm, InstanceNorm
    (and RMSNorm) stay at their initial values, and so does the last linear
    layer; every other trainable weight of a standard normalised architecture
    (conv nets, pre-activation ResNets) then lies in the invariant set. Check
    the result with :func:`audit`.

    ``last_layer``: ``"auto"`` (the last ``nn.Linear`` in registration order),
    a module name, or ``None`` (freeze only the normalisers).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    frozen: list[str] = []
    for mod_name, m in model.named_modules():
        if isinstance(m, _NORM_CLASSES):
            for pn, p in m.named_parameters(recurse=False):
                if p.requires_grad:
                    p.requires_grad_(False)
                    frozen.append(f"{mod_name}.{pn}" if mod_name else pn)
    if last_layer is not None:
        if last_layer == "auto":
            linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(
                    "make_scale_invariant found no nn.Linear to freeze as the last layer; pass "
                    "last_layer='<module name>' or last_layer=None"
                )
            last_layer = linears[-1]
        try:
            head = model.get_submodule(last_layer)
        except AttributeError as exc:
            raise ValueError(f"last_layer = {last_layer!r} is not a submodule of the model") from exc
        for pn, p in head.named_parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen.append(f"{last_layer}.{pn}" if last_layer else pn)
    return frozen
