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

The working copy is a float64 deep copy in training mode (batch statistics) with dropout and
its relatives switched off (``torch.nn``'s dropout layers and any module whose class name says
Dropout, DropPath, StochasticDepth or DropBlock, their ``p`` set to 0 for the layers that read
it; float attributes named like a dropout probability, Hugging Face's ``attention_dropout``,
set to 0), and every forward pass starts from the same random state, so that randomness left
over repeats identically; the model itself, its running statistics, its mode and the caller's
random state are never touched. The first pass is also recorded op by op
(:class:`~equivalence.invariance.degrees.Trace`).
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

from .degrees import Trace, _tensors
from .graph import Reach
from .layer_kinds import NORM_CLASSES, is_random_regulariser

__all__ = ["EulerRows", "Reach", "ScaledLoss", "joint_draws"]

#: a set of parameter names scaled by one common factor
Unit = Sequence[str]

#: attribute-name fragments of dropout probabilities kept as plain floats, set to 0 in the copy
_DROP_ATTRS = ("dropout", "drop_prob", "drop_rate", "drop_path")

#: a tensor with an RMS at most this times the median RMS of the trainable tensors counts as zero
#: when the test point is perturbed
_NEAR_ZERO = 0.1

#: every forward pass of the working copy starts from this seed (the global RNG restored after)
_FORWARD_SEED = 20200101


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
    its randomness matters, not its last digits). A tensor far smaller than the model's others
    (RMS at most ``_NEAR_ZERO`` times the median RMS of the trainable tensors: ConvNeXt's layer
    scale, initialised to 1e-6) counts as zero: a residual branch scaled by 1e-6 changes the
    loss by less than ``rtol`` whatever its parameters do, and would pass every forward test.
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
        self._cuda_devices = sorted(
            {p.device.index or 0 for p in self.params.values() if p.device.type == "cuda"}
        )
        self.args, self.kwargs = args, kwargs
        self.loss_fn = loss_fn
        self.targets: list[torch.Tensor] | None = None
        self.gen = torch.Generator().manual_seed(seed)
        base = {n: p.detach().clone() for n, p in self.params.items()}
        self.points: list[dict[str, torch.Tensor]] = [base]
        rms = {
            n: float(torch.linalg.vector_norm(base[n])) / math.sqrt(base[n].numel())
            if base[n].numel()
            else 0.0
            for n in self.trainable
        }
        positive = [r for r in rms.values() if r > 0]
        floor = _NEAR_ZERO * float(np.median(positive)) if positive else 0.0
        for _ in range(n_points - 1):
            pt = dict(base)
            for n in self.trainable:
                p = base[n]
                sigma = 0.5 * (rms[n] if rms[n] > floor else 1.0)
                noise = torch.randn(p.shape, generator=self.gen, dtype=torch.float32)
                wide = noise.to(p.dtype)
                pt[n] = torch.add(p, wide, alpha=sigma, out=wide)  # in place: no third tensor
            self.points.append(pt)
        self._at: tuple[int, dict[str, float]] = (0, {})  # the point and factors now loaded
        # caches, by the normalisers' eps (both depend on it) and the point
        self._refs: dict[tuple[tuple[float, ...], int], float] = {}
        self._norm_inputs: dict[tuple[float, ...], dict[str, torch.Tensor]] = {}
        self._reach: Reach | None = None
        self._grad_buffers: dict[Any, dict[str, torch.Tensor]] = {}
        self._sq_norms: dict[tuple[int, str], float] = {}  # ‖θ_W‖² at each point
        #: after :meth:`check` with ``screen_tol``: the tensors of the units whose Euler sum did
        #: not vanish at a scaled point (not invariant, whatever the unscaled points said)
        self.suspects: set[str] = set()
        #: the op-by-op record of the pass at ``points[0]`` (:mod:`equivalence.invariance.degrees`)
        self.trace: Trace | None = None

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
        pt, before = self.points[point], self.points[now_point]
        with torch.no_grad():
            for n, p in self.params.items():
                c = factors.get(n, 1.0)
                if (pt[n] is not before[n]) or now.get(n, 1.0) != c:  # (frozen: one tensor)
                    if c == 1.0:
                        p.copy_(pt[n])
                    else:
                        torch.mul(pt[n], c, out=p)
        self._at = (point, {n: c for n, c in factors.items() if c != 1.0})

    # -- evaluation -------------------------------------------------------------------
    def output(self) -> Any:
        """The working copy's output, every pass from the same random state.

        Randomness left in the forward pass (a drop path or noise layer not recognised as such)
        then repeats identically at every evaluation, the same masks at every scale, instead of
        failing every comparison; the caller's random state is restored afterwards.
        """
        with torch.random.fork_rng(devices=self._cuda_devices):
            torch.random.default_generator.manual_seed(_FORWARD_SEED)
            for i in self._cuda_devices:
                torch.cuda.default_generators[i].manual_seed(_FORWARD_SEED)
            return self.work(*self.args, **self.kwargs)

    def loss(self, out: Any) -> torch.Tensor:
        """The loss of ``out``, checked to be a finite scalar."""
        loss = self._raw_loss(out)
        if not torch.isfinite(loss):
            raise ValueError(f"the loss at the model's parameters is not finite ({float(loss)!r})")
        return loss

    def _raw_loss(self, out: Any) -> torch.Tensor:
        if self.loss_fn is None:
            own = _own_loss(out)
            if own is not None:  # a Hugging Face ModelOutput (or dict) with its loss
                loss = own
            else:
                outs = [t for t in _tensors(out) if t.is_floating_point()]
                if not outs:
                    raise TypeError(
                        f"the model returns {type(out).__name__} with no floating tensor; pass "
                        "loss_fn (output -> scalar tensor)"
                    )
                if self.targets is None:
                    self.targets = [
                        torch.randn(t.shape, generator=self.gen, dtype=t.dtype) for t in outs
                    ]
                loss = sum(
                    (0.5 * (t - y).pow(2).mean() for t, y in zip(outs, self.targets)),
                    torch.zeros((), dtype=outs[0].dtype),
                )
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

    def _buffers(self, key: Any, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Gradient buffers for ``names``, allocated once per ``key`` and reused: a fresh
        gradient per backward pass costs page faults that, for 10^8 parameters, take longer
        than the pass itself."""
        bufs = self._grad_buffers.setdefault(key, {})
        for n in names:
            if n not in bufs:  # zeroed before each use
                bufs[n] = torch.empty_like(self.params[n])
        return {n: bufs[n] for n in names}

    def _gradients(
        self,
        point: int,
        factors: Mapping[str, float],
        record: bool = False,
        into: Any = "scratch",
        only: Sequence[str] | None = None,
    ) -> tuple[float, dict[str, torch.Tensor]]:
        """L and ∇L at a scaled point; ``record``: keep the graph and the normalisers' inputs.

        The gradients are accumulated into the buffers named ``into`` (:meth:`_buffers`): the
        ones returned are valid until the next call with the same ``into``; ``into=None``:
        the gradients the backward pass allocated, returned as they are. ``only``: the
        gradients of these tensors alone (the backward pass skips the others' weight
        gradients: the embeddings' and the output layer's are the largest).
        """
        self.load(point, factors)
        grads = self._buffers(into, self.trainable if only is None else only) if into else {}
        for n, p in self.params.items():
            p.grad = None
            if n in grads:
                grads[n].zero_()
                p.grad = grads[n]  # the backward pass adds into it in place
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
        trace = Trace(self.params, NORM_CLASSES) if record else None
        try:
            out = loss = None
            if trace is not None:
                trace.attach(self.work)
                try:
                    with trace:
                        out = self.output()
                        # unscaled, a non-finite loss is an error (said clearly); scaled, a
                        # violation
                        loss = self._raw_loss(out) if factors else self.loss(out)
                    trace.set_loss(loss)
                except Exception:  # noqa: BLE001 - a pass that cannot run traced (a compiled
                    trace.ok = False  # module, say) runs untraced; its own errors recur there
                    out = loss = None
                finally:
                    trace.detach()
            if loss is None:
                out = self.output()
                loss = self._raw_loss(out) if factors else self.loss(out)
        finally:
            for h in hooks:
                h.remove()
        if record:
            self._record(seen, out)
            self.trace = trace if trace is not None and trace.ok else None
        value = float(loss.detach())
        if math.isfinite(value):
            if only is None:
                loss.backward()
            elif grads and loss.requires_grad:
                loss.backward(inputs=[self.params[n] for n in grads])
        if not into:  # the gradients the backward pass made, kept as they are
            grads = {}
            for n in self.trainable if only is None else only:
                made = self.params[n].grad
                grads[n] = made if made is not None else torch.zeros_like(self.params[n])
        for n, p in self.params.items():
            g = p.grad
            if n in grads and g is not None and g is not grads[n]:
                grads[n].copy_(g)  # replaced rather than accumulated (it should not be)
            p.grad = None
        return (value if math.isfinite(value) else math.inf), grads

    def _record(self, inputs: Mapping[str, torch.Tensor], out: Any) -> None:
        """Keep the normalisers' inputs and walk the graph (what depends on what)."""
        mods = dict(self.work.named_modules())
        self._norm_inputs[self._eps_key()] = {
            n: x.detach().clone() for n, x in inputs.items() if isinstance(mods[n], NORM_CLASSES)
        }
        nonzero = frozenset(n for n, v in self.points[0].items() if int(torch.count_nonzero(v)))
        self._reach = Reach.of_graph(self.params, inputs, out, nonzero)

    # -- the checks -------------------------------------------------------------------
    def euler_rows(self) -> tuple[EulerRows, list[dict[str, torch.Tensor]]]:
        """⟨∇_W L, W⟩ for every trainable W at every point (a backward pass each); the gradients."""
        k, n = len(self.points), len(self.trainable)
        dots, sq = np.zeros((k, n)), np.zeros((k, n))
        gnorm, losses = np.zeros(k), np.zeros(k)
        all_grads = []
        for i in range(k):
            # kept for the confirmation: the backward pass's own gradients, no buffer to zero
            loss, grads = self._gradients(i, {}, record=i == 0, into=None)
            self._refs.setdefault((self._eps_key(), i), loss)
            pt = self.points[i]
            for j, name in enumerate(self.trainable):
                dots[i, j] = float(torch.vdot(grads[name].reshape(-1), pt[name].reshape(-1)))
                sq[i, j] = float(torch.linalg.vector_norm(pt[name])) ** 2
                self._sq_norms[(i, name)] = sq[i, j]
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
        screen_tol: tuple[float, float] | None = None,
    ) -> tuple[float, dict[str, float], float]:
        """The loss at every draw and point; the gradients at every other one (alternating).

        Returns (the violation as :meth:`violation`, per tensor and over the set the degree −1
        error max ‖c_W ∇_W L(scaled) − ∇_W L(θ)‖ / ‖∇L(θ)‖). Draw j at the i-th point gets a
        backward pass when i + j is even: with two points every draw's factors have their
        gradients checked once, at half the cost of checking each at both. ``grads[i]`` is ∇L
        at ``points[i]``; the norm is that of the gradient of every trainable tensor, so that a
        set whose own gradient is rounding noise (a degenerate normaliser) is not judged on that
        noise.

        ``screen_tol`` = (rtol, slope_tol): also Euler's identity at the scaled points, per unit
        (the tensors sharing a factor in every draw), with the screen's tolerance
        (:class:`equivalence.invariance.search.Screen`). An invariant unit has a vanishing
        ⟨∇_U L, θ_U⟩ at *every* θ, so a unit that only seemed invariant at the unscaled points
        (a scale derivative that vanished by accident) shows here: :attr:`suspects` names the
        units that failed, from the same backward passes.
        """
        members = [n for n in self.trainable if any(n in d for d in draws)]
        per = dict.fromkeys(members, 0.0)
        worst = set_err = 0.0
        by_factors: dict[tuple[float, ...], list[str]] = {}
        for n in members:
            by_factors.setdefault(tuple(d.get(n, 1.0) for d in draws), []).append(n)
        units = list(by_factors.values())
        suspects: set[str] = set()
        for i, point in enumerate(points):
            g1, gn = grads[point], max(float(grad_norms[point]), 1e-300)
            ref = self.reference(point)
            sq = {
                n: self._sq_norms.get((point, n))
                or float(torch.linalg.vector_norm(self.points[point][n])) ** 2
                for n in members
            }
            for j, factors in enumerate(draws):
                if (i + j) % 2:
                    worst = max(worst, _rel(self._loss_value(point, factors), ref))
                    continue
                value, gc = self._gradients(point, factors, only=members)
                worst = max(worst, _rel(value, ref))
                if screen_tol is not None and math.isfinite(value):
                    suspects |= self._scaled_euler(
                        point, factors, gc, units, sq, value, screen_tol, gn
                    )
                tot = 0.0
                for n in members:  # gc is scratch: the difference overwrites it
                    diff = torch.add(g1[n], gc[n], alpha=-factors[n], out=gc[n])
                    d = float(torch.linalg.vector_norm(diff)) ** 2
                    tot += d
                    per[n] = max(per[n], math.sqrt(d) / gn)
                set_err = max(set_err, math.sqrt(tot) / gn)
        self.suspects = suspects
        return worst, per, set_err

    def _scaled_euler(
        self,
        point: int,
        factors: Mapping[str, float],
        gc: Mapping[str, torch.Tensor],
        units: Sequence[Sequence[str]],
        sq: Mapping[str, float],
        loss: float,
        screen_tol: tuple[float, float],
        gnorm_point: float,
    ) -> set[str]:
        """The tensors of the units whose ⟨∇_U L, θ_U⟩ does not vanish at this scaled point."""
        rtol, slope_tol = screen_tol
        gnorm = gnorm_point  # ‖∇L‖ over every tensor, at the unscaled point: the scale of the
        # rounding allowance (the backward pass at the scaled point computed the members' only)
        pt = self.points[point]
        failed: set[str] = set()
        for unit in units:
            c = factors[unit[0]]  # one factor per unit: θ_U scaled by c
            dot = c * sum(float(torch.vdot(gc[n].reshape(-1), pt[n].reshape(-1))) for n in unit)
            norm = c * math.sqrt(sum(sq[n] for n in unit))
            tol = max(rtol * gnorm * norm, slope_tol * abs(loss), 1e-300)
            if abs(dot) > tol:
                failed.update(unit)
        return failed

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

    def batch_statistics_sizes(self) -> dict[str, int]:
        """For each normaliser with batch statistics: how many values each channel's mean and
        variance are taken over (batch × spatial size), in the recorded pass."""
        if self._eps_key() not in self._norm_inputs:
            self._gradients(0, {}, record=True)
        mods = dict(self.work.named_modules())
        return {
            n: x.numel() // max(int(x.shape[1]), 1)
            for n, x in self._norm_inputs[self._eps_key()].items()
            if isinstance(mods[n], nn.modules.batchnorm._NormBase) and x.dim() >= 2
        }

    def reach(self) -> Reach:
        """What depends on each parameter, from the autograd graph of the pass at ``points[0]``."""
        if self._reach is None:
            self._gradients(0, {}, record=True)
        assert self._reach is not None
        return self._reach


def _own_loss(out: Any) -> torch.Tensor | None:
    """The scalar ``loss`` a model returned with its output (``ModelOutput.loss``), if any."""
    loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point():
        return loss
    return None


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
    # the floating parameters and buffers go straight to float64 copies (no copy in their own
    # dtype first, no gradients copied along): deepcopy takes them from its memo
    memo: dict[int, Any] = {}
    for param in model.parameters():
        if param.is_floating_point() and id(param) not in memo:
            memo[id(param)] = nn.Parameter(
                param.detach().to(torch.float64, copy=True), requires_grad=param.requires_grad
            )
    for buf in model.buffers():
        if buf.is_floating_point() and id(buf) not in memo:
            memo[id(buf)] = buf.detach().to(torch.float64, copy=True)
    try:
        work = copy.deepcopy(model, memo)
    except (TypeError, RuntimeError, AttributeError, copy.Error) as exc:
        # what deepcopy raises for a module it cannot copy: said with the model in the message
        raise TypeError(f"the model cannot be deep-copied for the audit: {exc}") from exc
    work = work.to(torch.float64)
    work.train()
    for m in work.modules():
        # random masks would make every comparison fail; dropout is scale-equivariant
        if is_random_regulariser(m):
            m.training = False  # this module only: a container's normalisers keep batch statistics
            if isinstance(getattr(m, "p", None), float):
                setattr(m, "p", 0.0)  # noqa: B010 - read by HF attention: dropout=self.dropout.p
        for attr, value in vars(m).items():
            # a dropout probability kept as a plain float (HF attention: attention_dropout)
            if (
                isinstance(value, float)
                and not isinstance(value, bool)
                and 0.0 < value < 1.0
                and any(k in attr.lower() for k in _DROP_ATTRS)
            ):
                setattr(m, attr, 0.0)
    return work
