r"""The numeric checks of scale invariance, on a float64 working copy of a model.

:class:`ScaledLoss` evaluates L(θ) = loss_fn(model(x)) at test points θ with chosen parameter
tensors scaled, and measures what the scale-invariance lemma (Li & Arora, ICLR 2020) predicts
for a set S in which L is invariant, L(c·θ_S, θ_R) = L(θ) for every c > 0:

- :meth:`ScaledLoss.euler_rows`: ⟨∇_W L, W⟩ for *every* tensor W from one backward pass per
  test point. Differentiating L(c·θ_S) = L(θ) at c = 1 gives Euler's identity for degree-0
  homogeneity, Σ_{W∈S} ⟨∇_W L, W⟩ = 0, so these numbers screen every candidate set at once
  (a necessary condition; a scale derivative that vanishes by accident is not excluded);
- :meth:`ScaledLoss.violation`: max |L(scaled) − L(θ)| / |L(θ)| over random joint scalings,
  each *unit* (a tensor, or a set scaled as a whole) by its own factor; a loss unchanged under
  independent factors is invariant in each unit separately, so one test confirms a candidate
  set and which of its parts are invariant on their own;
- :meth:`ScaledLoss.gradient_errors`: ∇_W L(scaled) = ∇_W L(θ) / c_W for W in a unit scaled
  by c_W (homogeneity of degree −1);
- :meth:`ScaledLoss.norm_degrees`: the degree k of each running-statistics layer's input in S
  (input → 2^k · input when S is doubled);
- :meth:`ScaledLoss.reach`: which normalisers' inputs and whether the output depend on each
  parameter, read off the autograd graph of one forward pass (:mod:`equivalence.invariance.graph`).

The working copy is a float64 deep copy in training mode (batch statistics) with dropout
switched off; the model itself, its running statistics and its mode are never touched.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .graph import Reach
from .layer_kinds import DROPOUT_CLASSES, NORM_CLASSES

__all__ = ["EulerRows", "Reach", "ScaledLoss", "joint_draws"]

#: a set of parameter names scaled by one common factor
Unit = Sequence[str]


@dataclass(frozen=True)
class EulerRows:
    """⟨∇_W L, W⟩ and ‖W‖² for every trainable tensor W, one row per test point.

    ``dots[k, i]`` = ⟨∇_W L, W⟩ and ``sq_norms[k, i]`` = ‖W‖² for W = ``names[i]`` at point
    k; ``grad_norms[k]`` = ‖∇L‖ over every trainable tensor and ``losses[k]`` = L at point k.
    """

    names: tuple[str, ...]
    dots: np.ndarray
    sq_norms: np.ndarray
    grad_norms: np.ndarray
    losses: np.ndarray


def joint_draws(
    units: Sequence[Unit], scales: Sequence[float], rng: np.random.Generator
) -> list[dict[str, float]]:
    """One factor per unit for each scale c: c itself for a single unit, else c·2^z per unit.

    z is uniform in [−1, 1], independently for every unit and draw: two units never share a
    factor, so a loss unchanged under the draws is invariant in each unit on its own (a set
    only jointly invariant, split into two units, changes with the ratio of their factors).
    """
    draws = []
    for c in scales:
        if len(units) == 1:
            draws.append(dict.fromkeys(units[0], c))
            continue
        tilts = np.exp2(rng.uniform(-1.0, 1.0, size=len(units)))
        draws.append({n: c * float(t) for u, t in zip(units, tilts) for n in u})
    return draws


class ScaledLoss:
    """The loss of a float64 working copy at test points, with parameter tensors scaled.

    ``points[0]`` is the model's own parameters; each further point adds Gaussian noise of half
    the tensor's RMS (1/2 for a zero tensor) to every trainable tensor, so that a zero bias or a
    special initial value cannot hide a broken invariance (the noise is drawn in float32: only
    its randomness matters, not its last digits).
    """

    def __init__(
        self,
        model: nn.Module,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loss_fn: Callable[[Any], torch.Tensor] | None,
        seed: int,
        n_points: int,
    ) -> None:
        self.work = _working_copy(model)
        self.model_eps = self.set_eps(None)
        self.params = dict(self.work.named_parameters())
        self.trainable = [n for n, p in self.params.items() if p.requires_grad]
        self.args, self.kwargs = args, kwargs
        self.loss_fn = loss_fn
        self.target: torch.Tensor | None = None
        self.gen = torch.Generator().manual_seed(seed)
        base = {n: p.detach().clone() for n, p in self.params.items()}
        self.points: list[dict[str, torch.Tensor]] = [base]
        for _ in range(n_points - 1):
            pt = dict(base)
            for n in self.trainable:
                p = base[n]
                rms = (
                    float(torch.linalg.vector_norm(p)) / math.sqrt(p.numel()) if p.numel() else 0.0
                )
                sigma = 0.5 * (rms if rms > 0 else 1.0)
                noise = torch.randn(p.shape, generator=self.gen, dtype=torch.float32)
                pt[n] = torch.add(p, noise.to(p.dtype), alpha=sigma)
            self.points.append(pt)
        self._at: tuple[int, dict[str, float]] = (0, {})  # the point and factors now loaded
        # caches, by the normalisers' eps (both depend on it) and the point
        self._refs: dict[tuple[tuple[float, ...], int], float] = {}
        self._norm_inputs: dict[tuple[float, ...], dict[str, torch.Tensor]] = {}
        self._reach: Reach | None = None

    # -- state ------------------------------------------------------------------------
    def set_eps(self, value: float | Mapping[str, float] | None) -> dict[str, float]:
        """Read (None), set to a float, or restore (a mapping) the normalisers' eps."""
        found: dict[str, float] = {}
        for name, m in self.work.named_modules():
            if isinstance(m, NORM_CLASSES) and isinstance(getattr(m, "eps", None), float):
                norm: Any = m  # eps is a plain float attribute of every normaliser class
                found[name] = float(norm.eps)
                if isinstance(value, Mapping):
                    norm.eps = value[name]
                elif value is not None:
                    norm.eps = value
        return found

    def _eps_key(self) -> tuple[float, ...]:
        eps = (getattr(m, "eps", None) for m in self.work.modules() if isinstance(m, NORM_CLASSES))
        return tuple(e for e in eps if isinstance(e, float))

    def load(self, point: int, factors: Mapping[str, float]) -> None:
        """Load ``points[point]``, each named tensor times its factor (copies only what changes)."""
        now_point, now = self._at
        pt = self.points[point]
        with torch.no_grad():
            for n, p in self.params.items():
                c = factors.get(n, 1.0)
                if point != now_point or now.get(n, 1.0) != c:
                    if c == 1.0:
                        p.copy_(pt[n])
                    else:
                        torch.mul(pt[n], c, out=p)
        self._at = (point, {n: c for n, c in factors.items() if c != 1.0})

    # -- evaluation -------------------------------------------------------------------
    def output(self) -> Any:
        return self.work(*self.args, **self.kwargs)

    def loss(self, out: Any) -> torch.Tensor:
        """The loss of ``out``, checked to be a finite scalar."""
        loss = self._raw_loss(out)
        if not torch.isfinite(loss):
            raise ValueError(f"the loss at the model's parameters is not finite ({float(loss)!r})")
        return loss

    def _raw_loss(self, out: Any) -> torch.Tensor:
        if self.loss_fn is None:
            if not isinstance(out, torch.Tensor):
                raise TypeError(
                    f"the model returns {type(out).__name__}; pass loss_fn (output -> scalar "
                    "tensor) for outputs that are not a single tensor"
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
        return loss.reshape(())

    def _loss_value(self, point: int, factors: Mapping[str, float]) -> float:
        self.load(point, factors)
        with torch.no_grad():
            value = float(self._raw_loss(self.output()))
        return value if math.isfinite(value) else math.inf

    def reference(self, point: int) -> float:
        """L at ``points[point]`` unscaled (cached until the eps changes)."""
        key = (self._eps_key(), point)
        if key not in self._refs:
            self._refs[key] = self._loss_value(point, {})
        return self._refs[key]

    def _gradients(
        self, point: int, factors: Mapping[str, float], record: bool = False
    ) -> tuple[float, dict[str, torch.Tensor]]:
        """L and ∇L at a scaled point; ``record``: keep the graph and the normalisers' inputs."""
        self.load(point, factors)
        for p in self.params.values():
            p.grad = None
        seen: dict[str, Any] = {}
        hooks = (
            [
                m.register_forward_pre_hook(
                    lambda mod, inp, name=name: seen.__setitem__(name, inp[0])
                )
                for name, m in self.work.named_modules()
                if isinstance(m, NORM_CLASSES)
            ]
            if record
            else []
        )
        try:
            out = self.output()
        finally:
            for h in hooks:
                h.remove()
        # unscaled, a non-finite loss is an error (said clearly); scaled, it is a violation
        loss = self._raw_loss(out) if factors else self.loss(out)
        if record:
            self._record(seen, out)
        value = float(loss.detach())
        if math.isfinite(value):
            loss.backward()
        grads = {}
        for n in self.trainable:
            g = self.params[n].grad
            grads[n] = g if g is not None else torch.zeros_like(self.params[n])
        for p in self.params.values():
            p.grad = None
        return (value if math.isfinite(value) else math.inf), grads

    def _record(self, inputs: Mapping[str, torch.Tensor], out: Any) -> None:
        """Keep the normalisers' inputs and walk the graph (what depends on what)."""
        mods = dict(self.work.named_modules())
        self._norm_inputs[self._eps_key()] = {
            n: x.detach().clone() for n, x in inputs.items() if isinstance(mods[n], NORM_CLASSES)
        }
        nonzero = frozenset(n for n, v in self.points[0].items() if bool(v.ne(0).any()))
        self._reach = Reach.of_graph(self.params, inputs, out, nonzero)

    # -- the checks -------------------------------------------------------------------
    def euler_rows(self) -> tuple[EulerRows, list[dict[str, torch.Tensor]]]:
        """⟨∇_W L, W⟩ for every trainable W at every point (a backward pass each); the gradients."""
        k, n = len(self.points), len(self.trainable)
        dots, sq = np.zeros((k, n)), np.zeros((k, n))
        gnorm, losses = np.zeros(k), np.zeros(k)
        all_grads = []
        for i in range(k):
            loss, grads = self._gradients(i, {}, record=i == 0)
            self._refs.setdefault((self._eps_key(), i), loss)
            pt = self.points[i]
            for j, name in enumerate(self.trainable):
                dots[i, j] = float(torch.vdot(grads[name].reshape(-1), pt[name].reshape(-1)))
                sq[i, j] = float(torch.linalg.vector_norm(pt[name])) ** 2
            gnorm[i] = math.sqrt(
                sum(float(torch.linalg.vector_norm(g)) ** 2 for g in grads.values())
            )
            losses[i] = loss
            all_grads.append(grads)
        return EulerRows(tuple(self.trainable), dots, sq, gnorm, losses), all_grads

    def violation(self, draws: Sequence[Mapping[str, float]], points: Sequence[int]) -> float:
        """max over points and draws of |L(scaled) − L(θ)| / |L(θ)| (inf when not finite)."""
        worst = 0.0
        for i in points:
            ref = self.reference(i)
            for factors in draws:
                worst = max(worst, _rel(self._loss_value(i, factors), ref))
        return worst

    def check(
        self,
        draws: Sequence[Mapping[str, float]],
        points: Sequence[int],
        grads: Sequence[Mapping[str, torch.Tensor]],
        grad_norms: np.ndarray,
    ) -> tuple[float, dict[str, float], float]:
        """The loss at every draw and point; the gradients at every other one (alternating).

        Returns (the violation as :meth:`violation`, per tensor and over the set the degree −1
        error max ‖c_W ∇_W L(scaled) − ∇_W L(θ)‖ / ‖∇L(θ)‖). Draw j at the i-th point gets a
        backward pass when i + j is even: with two points every draw's factors have their
        gradients checked once, at half the cost of checking each at both. ``grads[i]`` is ∇L
        at ``points[i]``; the norm is that of the gradient of every trainable tensor, so that a
        set whose own gradient is rounding noise (a degenerate normaliser) is not judged on that
        noise.
        """
        members = [n for n in self.trainable if any(n in d for d in draws)]
        per = dict.fromkeys(members, 0.0)
        worst = set_err = 0.0
        for i, point in enumerate(points):
            g1, gn = grads[point], max(float(grad_norms[point]), 1e-300)
            ref = self.reference(point)
            for j, factors in enumerate(draws):
                if (i + j) % 2:
                    worst = max(worst, _rel(self._loss_value(point, factors), ref))
                    continue
                value, gc = self._gradients(point, factors)
                worst = max(worst, _rel(value, ref))
                tot = 0.0
                for n in members:
                    d = (
                        float(torch.linalg.vector_norm(torch.add(g1[n], gc[n], alpha=-factors[n])))
                        ** 2
                    )
                    tot += d
                    per[n] = max(per[n], math.sqrt(d) / gn)
                set_err = max(set_err, math.sqrt(tot) / gn)
        return worst, per, set_err

    def norm_degrees(self, members: Sequence[str]) -> dict[str, float | None]:
        """Double S and read off, per normaliser, k with input → 2^k input."""
        if self._eps_key() not in self._norm_inputs:
            self._gradients(0, {}, record=True)
        x1 = self._norm_inputs[self._eps_key()]
        seen: dict[str, torch.Tensor] = {}
        hooks = [
            m.register_forward_pre_hook(
                lambda mod, inp, name=name: seen.__setitem__(name, inp[0].detach().clone())
            )
            for name, m in self.work.named_modules()
            if name in x1
        ]
        try:
            self.load(0, dict.fromkeys(members, 2.0))
            with torch.no_grad():
                self.output()
        finally:
            for h in hooks:
                h.remove()
        return {name: _degree(x1[name], seen[name]) for name in x1}

    def reach(self) -> Reach:
        """What depends on each parameter, from the autograd graph of the pass at ``points[0]``."""
        if self._reach is None:
            self._gradients(0, {}, record=True)
        assert self._reach is not None
        return self._reach


def _rel(value: float, ref: float) -> float:
    err = abs(value - ref) / max(abs(ref), 1e-300)
    return err if math.isfinite(err) else math.inf


def _degree(x1: torch.Tensor, x2: torch.Tensor) -> float | None:
    """k such that x2 = 2^k x1 (exactly up to rounding), or None."""
    n1 = float(x1.abs().max())
    if n1 == 0.0:
        return 0.0 if float(x2.abs().max()) == 0.0 else None
    k = round(math.log2(float(x2.abs().max()) / n1))
    err = float((x2 - math.ldexp(1.0, k) * x1).abs().max()) / (math.ldexp(1.0, k) * n1)
    return float(k) if err <= 1e-10 else None


def _working_copy(model: nn.Module) -> nn.Module:
    try:
        work = copy.deepcopy(model)
    except (TypeError, RuntimeError, AttributeError, copy.Error) as exc:
        # what deepcopy raises for a module it cannot copy: said with the model in the message
        raise TypeError(f"the model cannot be deep-copied for the audit: {exc}") from exc
    work = work.to(torch.float64)
    work.train()
    for m in work.modules():
        if isinstance(m, DROPOUT_CLASSES):
            m.eval()  # random masks would make every comparison fail; dropout is scale-equivariant
    return work
