r"""The effective-LR and equilibrium monitor: what weight decay does to scale-invariant weights.

Attach a :class:`Monitor` to any optimizer (stock ``torch.optim.SGD`` with weight decay, or
its converted exponential-LR twin from :func:`equivalence.convert`) and it records, per
scale-invariant group S (from :func:`groups_from_audit`) and per step t:

- ``lr`` the learning rate step t used (η̃_t as stored in a converted run, η_t in a stock run);
- ``weight_norm`` ‖w_t‖ (the stored weights) and ``weight_norm_stock`` ‖w_t‖/m_t, the norm
  in the stock run's units (m_t: stored = m_t × stock; 1 for a stock run);
- ``effective_lr`` η_t / (‖w_t‖ ‖w_{t+1}‖), the effective learning rate η/‖w‖² evaluated at the
  geometric mean of the norms before and after the step, with the run's *actual* η and w. The
  general theorem (θ̃_t = θ_t/c_t, η̃_t = η_t/(c_t c_{t+1})) gives
  η̃_t/(‖θ̃_t‖‖θ̃_{t+1}‖) = η_t/(‖θ_t‖‖θ_{t+1}‖) exactly, so a stock run and its converted twin
  read the same number (the power-of-two rescaling multiplies η by 4^k and both norms by 2^k);
  η_t/‖w_t‖² alone would differ by the factor c_{t+1}/c_t ≈ 1 − ηλ between the two runs;
- ``angular_update`` Δ_t = ∠(w_t, w_{t+1}) in radians (the same in both runs: w̃ ∥ w);
- ``grad_norm_unit`` ‖g_t‖ ‖w_t‖, the gradient norm at unit weight norm (scale invariant, so
  the same in both runs), whose running mean over one relaxation time estimates σ²;
- the predictions of the project's derivation ``proofs/equilibrium.py`` for PyTorch's SGD
  (momentum γ, weight decay λ, LR η of the *stock* recipe at step t), see
  :func:`predict_equilibrium`: ``predicted_angular_update`` Δ* = arccos(1 − ηλ/(1+γ)),
  ``predicted_weight_norm`` ‖w*‖ = (ησ²(1+γ)/(λ(1−γ)(2(1+γ)−ηλ)))^{1/4} (stock units),
  ``relaxation_steps`` τ = −1/ln ρ and ``steps_to_equilibrium`` τ ln(D_t/ε) with
  D_t = |‖w_t‖⁴/‖w*‖⁴ − 1| (0 once D_t ≤ ε, ε from ``rel_tol`` on ‖w‖);
- for PyTorch's AdamW (``torch.optim.AdamW``, or ``Adam(decoupled_weight_decay=True)``;
  amsgrad off) the same fields from the derivation's AdamW steps, see
  :func:`~equivalence.monitor.equilibrium.predict_adamw_equilibrium`: Δ* =
  arccos((e+β1)/(1+β1e)), e = 1 − ηλ, and ‖w*‖² = ηGr(1+β1e)/(λ(2−ηλ)(1−β1e)),
  r = (1−β1)/(1+β1), with G = E‖g_t/(√v̂_t + ε)‖² estimated along the run like σ² (from
  ``exp_avg_sq`` after the step: the normalised gradient Adam actually used); D_t on ‖w‖²;
  ``relaxation_steps`` from the moment map linearised with v̂'s lag (β2), ≈ (1 + 2c)/(2ηλ)
  for c = ηλ/(1 − β2) ≪ 1; ``steps_to_equilibrium`` only while c ≤ :data:`ADAMW_LAG_LIMIT`
  (NaN beyond: one mode no longer sets the time).
  The norm needs the stock run's moments: on a converted run (``scale`` or ``step_lr``
  given) it is NaN for AdamW, the angle is still predicted. ``effective_lr`` stays NaN for
  AdamW (η/‖w‖² is SGD's effective LR; AdamW's step does not shrink with ‖w‖).

Cost per monitored tensor per recorded step: fused norms (``torch._foreach_norm``) of w_t, g_t,
w_{t+1} and of the step. For SGD with momentum (no Nesterov) the step is w_t − w_{t+1} = η v_{t+1}
and its norm is η‖v_{t+1}‖, read from the momentum buffer: four norms and nothing else (equal to
the norm of the realised difference up to the rounding of the update, relative u/Δ_t); for other
optimizers a copy of w_t is subtracted from w_{t+1} (``step_norm``). The angle comes from the
three sides of the triangle (w_t, w_{t+1}, w_t − w_{t+1}) by Kahan's stable formula, so no inner
product and no cancellation for small angles. The figures stay on the device and are read
every ``flush_every`` steps (one host synchronisation). ``every = k`` records every k-th step.

The monitor's hooks run first on both sides of ``optimizer.step()``: before the step it reads
the stock (η_t, λ_t, γ_t) before a hook-based converter (:class:`equivalence.ExpLRConverter`)
puts η̃_t and no decay on the groups; after it, w_{t+1} and the η̃_t actually used, before any
hook restores the stock values, corrects the normalisers or rescales the weights.

Outputs: :attr:`Monitor.records` (a list of dicts), :meth:`Monitor.scalars` (the latest step as
a flat dict for TensorBoard-style loggers), :meth:`Monitor.iter_scalars` (every step),
:meth:`Monitor.to_csv`, :meth:`Monitor.to_json` (kept and written by
:class:`~equivalence.monitor.records.Records`), and the plots of
:mod:`equivalence.monitor.plots`. The predictions come from
:mod:`equivalence.monitor.equilibrium`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim import SGD, Adam, AdamW, Optimizer

from .equilibrium import Equilibrium, EquilibriumTracker, steps_to_equilibrium
from .records import Records

__all__ = [
    "ADAMW_LAG_LIMIT",
    "Monitor",
    "STEP_NORMS",
    "angle_from_sides",
    "groups_from_audit",
    "optimizer_kind",
]

Recipe = Callable[[int], tuple[float, float, float]]

#: AdamW's ``steps_to_equilibrium`` is given while c = ηλ/(1 − β2) ≤ this: there the slowest
#: mode of the linearisation with v̂'s lag sets the time (checked at c = 0.1: within the
#: error model; at c = 0.2 the crossing came 22 % early, at c = 5 2.6 times early). Beyond,
#: ‖w‖² first relaxes faster (v̂ nearly frozen) and the slow mode's share is not observed: NaN.
ADAMW_LAG_LIMIT = 0.25

#: How ‖w_t − w_{t+1}‖ is obtained: "buffer" = η ‖v_{t+1}‖ from SGD's momentum buffer (no copy),
#: "difference" = a copy of w_t subtracted from w_{t+1} (any optimizer), "auto" = the first when
#: it applies (torch.optim.SGD, momentum > 0, no Nesterov), else the second.
STEP_NORMS = ("auto", "buffer", "difference")


def angle_from_sides(a: Any, b: Any, c: Any) -> np.ndarray:
    """The angle between sides a and b of a triangle whose third side is c (Kahan's formula).

    Accurate for needle-like triangles (tiny angles), where arccos(⟨u,v⟩/(‖u‖‖v‖)) loses
    half its digits: 2 atan √(((a−b)+c) μ / ((a+(b+c)) ((a−c)+b))), a ≥ b, with
    μ = c − (a − b) if b ≥ c, else b − (a − c). Rounding that breaks the triangle
    inequality is clamped (angle 0 or π).
    """
    a, b, c = (np.asarray(z, dtype=np.float64) for z in (a, b, c))
    a, b = np.maximum(a, b), np.minimum(a, b)
    mu = np.where(b >= c, c - (a - b), b - (a - c))
    num = ((a - b) + c) * mu
    den = (a + (b + c)) * ((a - c) + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(den > 0, np.maximum(num, 0.0) / den, np.inf)
        out = 2.0 * np.arctan(np.sqrt(ratio))
    return np.where((a > 0) & (b > 0), out, np.nan)


def optimizer_kind(optimizer: Optimizer, group: Mapping[str, Any]) -> str | None:
    """``"sgd"`` (``torch.optim.SGD``), ``"adamw"`` (``torch.optim.AdamW`` or
    ``Adam(decoupled_weight_decay=True)``, amsgrad off) or ``None`` (no derived equilibrium:
    Adam with coupled L2 decay, amsgrad, other optimizers) for one param group."""
    if isinstance(optimizer, SGD):
        return "sgd"
    if isinstance(optimizer, (Adam, AdamW)):
        decoupled = group.get("decoupled_weight_decay", isinstance(optimizer, AdamW))
        if decoupled and not group.get("amsgrad", False):
            return "adamw"
    return None


def _read_recipe(kind: str | None, group: Mapping[str, Any]) -> tuple[float, float, float]:
    """(η, λ, γ) of SGD or (η, λ, β1) of AdamW from a param group."""
    momentum = group["betas"][0] if kind == "adamw" else group.get("momentum", 0.0)
    return float(group["lr"]), float(group.get("weight_decay", 0.0)), float(momentum)


# -- groups ------------------------------------------------------------------------------------------


def groups_from_audit(report: Any) -> dict[str, list[torch.Tensor]]:
    """Scale-invariant groups from an :class:`equivalence.AuditReport`.

    Each tensor invariant on its own is a group (named after it); the tensors invariant only
    jointly form one group ``"joint"``: with I the individually invariant ones and S ⊇ I the
    audited set, the loss is invariant under scaling S \\ I alone (scale S, then undo the
    scaling on each tensor of I), so each group is a set on which the loss is homogeneous of
    degree 0 and η/‖w‖² is its effective learning rate.
    """
    named = dict(report.model.named_parameters())
    groups = {n: [named[n]] for n in report.individual_names}
    if report.joint_names:
        groups["joint"] = [named[n] for n in report.joint_names]
    if not groups:
        raise ValueError("report has no scale-invariant parameters (nothing to monitor)")
    return groups


# -- the monitor -----------------------------------------------------------------------------------


class Monitor:
    """Records norms, effective LR, angular updates and equilibrium predictions of a run.

    Args:
        optimizer: the run's optimizer (any ``torch.optim.Optimizer``; the effective LR needs
            ``torch.optim.SGD``, the predictions SGD or AdamW (:func:`optimizer_kind`); for
            others they are NaN).
        groups: name -> tensors, each a set in which the loss is scale invariant (see
            :func:`groups_from_audit`); every tensor must be among the optimizer's parameters
            and within a group share one param group's LR.
        recipe: ``t -> (η_t, λ_t, γ)`` of the *stock* recipe the run is equivalent to (for the
            predictions; γ is β1 for AdamW); ``None``: read the param group's ``lr``,
            ``weight_decay`` and ``momentum`` (``betas[0]`` for AdamW; right for a stock run).
        scale: ``() -> m_t`` with stored weights = m_t × stock weights at the current step
            (``None``: 1).
        every: record every ``every``-th step (1: all).
        flush_every: recorded steps kept on the device before one host read.
        rel_tol: the relative distance from ‖w*‖ that counts as "at equilibrium".
        start_step: the index of the next optimizer step (for ``recipe``).
        step_norm: how ‖w_t − w_{t+1}‖ is measured (:data:`STEP_NORMS`).

    Use as a context manager or call :meth:`close` to remove the hooks.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        groups: Mapping[str, Sequence[torch.Tensor]],
        *,
        recipe: Recipe | None = None,
        scale: Callable[[], float] | None = None,
        every: int = 1,
        flush_every: int = 256,
        rel_tol: float = 0.01,
        start_step: int = 0,
        step_norm: str = "auto",
        step_lr: Callable[[int], float] | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        for name, val, lo in (
            ("every", every, 1),
            ("flush_every", flush_every, 1),
            ("start_step", start_step, 0),
        ):
            if isinstance(val, bool) or not isinstance(val, int):
                raise TypeError(f"{name} must be an integer, got {val!r}")
            if val < lo:
                raise ValueError(f"{name} = {val!r} is outside the valid range [{lo}, inf)")
        if not 0 < rel_tol < 1:
            raise ValueError(f"rel_tol = {rel_tol!r} is outside the valid range (0, 1)")
        if step_norm not in STEP_NORMS:
            raise ValueError(f"step_norm = {step_norm!r} is not one of {STEP_NORMS}")
        self.step_norm = step_norm
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError(f"groups must be a non-empty mapping name -> tensors, got {groups!r}")
        self.optimizer = optimizer
        self.recipe = recipe
        self.scale = scale
        # the lr a param group (as the user numbers it) stepped with; an in-place conversion
        # shows its own step view of the groups during the step, so it says it instead
        self._step_lr = step_lr
        self.every, self.flush_every, self.rel_tol = every, flush_every, rel_tol
        self.step = start_step
        self.group_names = [str(n) for n in groups]
        where = {id(p): gi for gi, g in enumerate(optimizer.param_groups) for p in g["params"]}
        self.params: list[torch.Tensor] = []
        index: list[int] = []
        self._param_group: list[int] = []
        seen: set[int] = set()
        for k, (name, tensors) in enumerate(groups.items()):
            tensors = list(tensors)
            if not tensors:
                raise ValueError(f"groups[{name!r}] is empty")
            pg = set()
            for p in tensors:
                if not isinstance(p, torch.Tensor):
                    raise TypeError(f"groups[{name!r}] holds {type(p).__name__}, not a tensor")
                if id(p) not in where:
                    raise ValueError(
                        f"groups[{name!r}] holds a tensor that is not among the optimizer's parameters"
                    )
                if id(p) in seen:
                    raise ValueError(
                        f"groups[{name!r}] holds a tensor that is already in another group"
                    )
                seen.add(id(p))
                pg.add(where[id(p)])
                self.params.append(p)
                index.append(k)
            for key, what in (
                ("lr", "learning rates; its effective LR is not one number"),
                ("weight_decay", "weight decays; its equilibrium prediction is not one number"),
                ("momentum", "momenta; its equilibrium prediction is not one number"),
                ("betas", "betas; its equilibrium prediction is not one number"),
                ("eps", "eps; its equilibrium prediction is not one number"),
            ):
                vals = {optimizer.param_groups[i].get(key, 0.0) for i in pg}
                if len(vals) != 1:
                    raise ValueError(
                        f"groups[{name!r}] spans param groups {sorted(pg)} with different {what} "
                        f"({key} = {sorted(vals)}); give each its own monitor group"
                    )
            self._param_group.append(min(pg))
        # per group: "sgd", "adamw" or None (no prediction); AdamW needs the stock moments for G
        self._kinds = [
            optimizer_kind(optimizer, optimizer.param_groups[i]) for i in self._param_group
        ]
        self._adamw_norm = scale is None and step_lr is None
        self._adamw_params = [
            (j, where[id(self.params[j])])
            for j, k in enumerate(index)
            if self._kinds[k] == "adamw" and self._adamw_norm
        ]
        dev = self.params[0].device
        self._index = torch.tensor(index, device=dev)
        self._w = [p.detach() for p in self.params]  # views sharing the parameters' storage
        self._snap: list[torch.Tensor] = []  # w_t, allocated when the difference is needed
        self._all_pg = sorted({where[id(p)] for p in self.params})
        self._use_buffer = False
        self._pre_norms: list[torch.Tensor] = []
        n = len(self.group_names)
        self._buf = torch.zeros((flush_every, 5, n), dtype=torch.float64, device=dev)
        self._row = 0
        self._pending: list[tuple[int, list[float], list[tuple[float, ...]], float, bool]] = []
        self._active = False
        self._equilibrium = EquilibriumTracker(n, every)  # σ² per group and the predictions
        self._log = Records(self.group_names)
        self._pre = optimizer.register_step_pre_hook(self._pre_hook)
        self._post = optimizer.register_step_post_hook(self._post_hook)
        # Run first on both sides of the step. Before the step: read the stock (η_t, λ_t, γ_t)
        # before a hook-based converter puts η̃_t and no decay on the groups for the step.
        # After it: read w_{t+1} and the η actually used before any hook restores the stock
        # values, corrects the normalisers or rescales the weights.
        for hooks, handle in (
            (optimizer._optimizer_step_pre_hooks, self._pre),
            (optimizer._optimizer_step_post_hooks, self._post),
        ):
            if isinstance(hooks, OrderedDict):
                hooks.move_to_end(handle.id, last=False)
        self.closed = False

    # -- construction for a converted run ---------------------------------------------------------
    @classmethod
    def for_run(
        cls, run: Any, groups: Mapping[str, Sequence[torch.Tensor]], **kwargs: Any
    ) -> Monitor:
        """A monitor on a converted run (:func:`equivalence.convert`): predictions in stock terms.

        Online conversion (``run.converter``, an :class:`equivalence.ExpLRConverter`): the
        param groups hold the stock (η_t, λ_t, γ_t) outside the step, which the monitor reads
        before the converter's pre-step hook; m_t = ``run.converter.current_scale()``.
        Precomputed schedules (``run.scheduler`` an ``EquivalentLR``): the recipe comes from the
        schedule of the param group holding the first group's tensors, m_t from
        ``run.scheduler.current_scale``.
        """
        from ..schedule.recipe import ExpLRSchedule

        opt, sched = run.optimizer, run.scheduler
        converter = getattr(run, "converter", None)
        if converter is not None:
            return cls(
                opt,
                groups,
                scale=converter.current_scale,
                step_lr=lambda i: converter.step_lrs[i],
                **kwargs,
            )
        first = next(iter(groups.values()))[0]
        gi = next(i for i, g in enumerate(opt.param_groups) if any(p is first for p in g["params"]))
        s = run.schedules[gi]
        if not isinstance(s, ExpLRSchedule):
            raise ValueError("groups' tensors are not in a converted (scale-invariant) param group")
        last = s.steps - 1

        def recipe(t: int) -> tuple[float, float, float]:
            i = min(t, last)
            return float(s.lrs[i]), float(s.weight_decay[i]), float(s.momentum)

        kwargs.setdefault("start_step", max(int(sched.last_epoch), 0))
        return cls(opt, groups, recipe=recipe, scale=lambda: sched.current_scale(gi), **kwargs)

    # -- hooks ------------------------------------------------------------------------------------------
    def _pre_hook(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        self._active = self.step % self.every == 0
        if not self._active:
            return
        self._use_buffer = self._buffer_applies(opt)
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
            if self._use_buffer:
                self._pre_norms = list(torch._foreach_norm(self._w + grads))  # ‖w_t‖, ‖g_t‖
            else:
                if not self._snap:
                    self._snap = [p.detach().clone() for p in self.params]
                torch._foreach_copy_(self._snap, self._w)
                self._pre_norms = list(torch._foreach_norm(self._snap + grads))
        recipes: list[tuple[float, ...]] = []
        for i, kind in zip(self._param_group, self._kinds):
            r = (
                self.recipe(self.step)
                if self.recipe is not None
                else _read_recipe(kind, opt.param_groups[i])
            )
            if kind == "adamw":  # β2 (its lag sets the relaxation time), from the param group
                recipes.append((*r, float(opt.param_groups[i]["betas"][1])))
            else:
                recipes.append(tuple(r))
        m = float(self.scale()) if self.scale is not None else 1.0
        self._pending.append((self.step, [], recipes, m, self._use_buffer))

    def _buffer_applies(self, opt: Optimizer) -> bool:
        """Whether w_{t+1} − w_t = −η v_{t+1} (SGD with momentum, no Nesterov) and it is wanted."""
        if self.step_norm == "difference":
            return False
        ok = isinstance(opt, SGD) and all(
            float(opt.param_groups[i].get("momentum", 0.0)) != 0.0
            and not opt.param_groups[i].get("nesterov", False)
            for i in self._all_pg
        )
        if self.step_norm == "buffer" and not ok:
            raise ValueError(
                "step_norm = 'buffer' needs torch.optim.SGD with momentum > 0 and nesterov=False "
                "in every monitored param group (use 'auto' or 'difference')"
            )
        return ok

    def _post_hook(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        if self._active:
            # the LR the step used (η̃_t in a converted run, before a converter restores η_t)
            if self._step_lr is not None:
                self._pending[-1][1].extend(self._step_lr(i) for i in self._param_group)
            else:
                self._pending[-1][1].extend(
                    float(opt.param_groups[i]["lr"]) for i in self._param_group
                )
            with torch.no_grad():
                if self._use_buffer:  # w_t − w_{t+1} = η v_{t+1}: its norm is η ‖v_{t+1}‖
                    bufs = [opt.state[p]["momentum_buffer"] for p in self.params]
                    post = torch._foreach_norm(bufs + self._w)  # ‖v_{t+1}‖, ‖w_{t+1}‖
                else:
                    torch._foreach_sub_(self._snap, self._w)  # w_t − w_{t+1}
                    post = torch._foreach_norm(self._snap + self._w)  # ‖w_t − w_{t+1}‖, ‖w_{t+1}‖
                # rows: ‖w_t‖², ‖g_t‖², ‖w_t − w_{t+1}‖², ‖w_{t+1}‖², ‖ĝ_t‖² (AdamW's
                # normalised gradient, 0 for others), summed per group (float64)
                sq = torch.stack([*self._pre_norms, *post, *self._normalised_grad_norms(opt)])
                sq = sq.to(torch.float64).square_()
                self._buf[self._row].index_add_(1, self._index, sq.view(5, -1))
                self._pre_norms = []
            self._row += 1
            if self._row == self.flush_every:
                self.flush()
        self._active = False
        self.step += 1

    def _normalised_grad_norms(self, opt: Optimizer) -> list[torch.Tensor]:
        """‖g_t/(√v̂_t + ε)‖ per monitored tensor for AdamW groups (v̂_t from ``exp_avg_sq``
        after the step, bias-corrected with the step count; zeros elsewhere)."""
        zero = self._w[0].new_zeros(())
        out = [zero] * len(self.params)
        for j, gi in self._adamw_params:
            p = self.params[j]
            st = opt.state.get(p, {})
            if p.grad is None or "exp_avg_sq" not in st:
                continue
            group = opt.param_groups[gi]
            beta2, eps = group["betas"][1], group["eps"]
            step = st["step"]
            if isinstance(step, torch.Tensor) and step.device.type == "cpu":
                step = float(step)
            bc2 = 1 - beta2**step
            denom = st["exp_avg_sq"].sqrt().div_(bc2**0.5 if isinstance(bc2, float) else bc2.sqrt())
            out[j] = torch.linalg.vector_norm(p.grad / denom.add_(eps)).to(zero.dtype)
        return out

    # -- host side -----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Read the recorded steps from the device and derive every field (one synchronisation)."""
        if self._row == 0:
            return
        vals = self._buf[: self._row].cpu().numpy().copy()
        self._buf[: self._row].zero_()
        pending, self._pending = self._pending[: self._row], self._pending[self._row :]
        self._row = 0
        sgd = isinstance(self.optimizer, SGD)
        no_eq = Equilibrium(math.nan, math.nan, math.nan, math.nan)
        for (t, lrs, recipes, m, from_buffer), v in zip(pending, vals):
            w0, w1, d = np.sqrt(v[0]), np.sqrt(v[3]), np.sqrt(v[2])
            if from_buffer:
                d = d * np.asarray(lrs)  # η ‖v_{t+1}‖ (one LR per group)
            angle = angle_from_sides(w0, w1, d)
            for k, name in enumerate(self.group_names):
                eta, lam, gam = recipes[k][:3]
                kind = self._kinds[k]
                s2 = float(v[1, k] * v[0, k])  # (‖g‖‖w‖)²: invariant under w → c w
                if kind is None:
                    eq = no_eq
                elif kind == "adamw":  # G = ‖g/(√v̂ + ε)‖², NaN where not measured
                    g2 = float(v[4, k]) if self._adamw_norm else math.nan
                    b2 = recipes[k][3]
                    eq = self._equilibrium.update(k, eta, lam, gam, g2, "adamw", b2)
                else:
                    eq = self._equilibrium.update(k, eta, lam, gam, s2)
                predicts = kind is not None
                if kind == "adamw" and eta * lam > ADAMW_LAG_LIMIT * (1 - recipes[k][3]):
                    predicts = False  # v̂'s lag: no one-mode time to equilibrium
                norm_stock = float(w0[k]) / m
                self._log.rows.append(
                    {
                        "step": t,
                        "group": name,
                        "lr": lrs[k],
                        "weight_norm": float(w0[k]),
                        "weight_norm_stock": norm_stock,
                        "effective_lr": lrs[k] / float(w0[k] * w1[k]) if sgd else math.nan,
                        "angular_update": float(angle[k]),
                        "grad_norm_unit": math.sqrt(s2),
                        "predicted_angular_update": eq.angular_update,
                        "predicted_weight_norm": eq.norm,
                        "relaxation_steps": eq.relaxation_steps,
                        "steps_to_equilibrium": steps_to_equilibrium(norm_stock, eq, self.rel_tol)
                        if predicts
                        else math.nan,
                    }
                )

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every recorded (step, group) as a dict with ``step``, ``group`` and :data:`FIELDS`."""
        self.flush()
        return self._log.rows

    def series(self, group: str, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one field of one group."""
        self.flush()
        return self._log.series(group, field)

    def scalars(self, prefix: str = "monitor") -> dict[str, float]:
        """The latest recorded step as ``{"prefix/group/field": value}`` (for a logger's add_scalar).

        Reads the device (one synchronisation).
        """
        self.flush()
        return self._log.scalars(prefix)

    def iter_scalars(
        self, prefix: str = "monitor", start: int = 0
    ) -> Iterator[tuple[int, dict[str, float]]]:
        """(step, {"prefix/group/field": value}) for every recorded step from ``start`` on.

        For a TensorBoard-style logger::

            for step, d in mon.iter_scalars(start=last_logged + 1):
                for k, v in d.items():
                    writer.add_scalar(k, v, step)
        """
        self.flush()
        yield from self._log.iter_scalars(prefix, start)

    def summary(self, last_fraction: float = 0.25) -> dict[str, dict[str, float]]:
        """Per group: means over the last ``last_fraction`` of the records, measured vs predicted."""
        self.flush()
        return self._log.summary(last_fraction)

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per (step, group) with the columns ``step, group`` + :data:`FIELDS`."""
        self.flush()
        return self._log.to_csv(path)

    def to_dict(self) -> dict[str, Any]:
        """Columns per group: ``{"groups": {name: {"step": [...], field: [...]}}, "summary": ...}``."""
        self.flush()
        return self._log.to_dict()

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (non-finite values as ``null``)."""
        self.flush()
        return self._log.to_json(path)

    def state_dict(self) -> dict[str, Any]:
        """What the monitor carries from one step to the next, for a checkpoint.

        Its step counter, its records (column by column: a long run has ~10⁵ rows) and, per
        group, the running noise statistic σ² (or G for AdamW) and its count, from which the
        equilibrium predictions continue. Reads the device first (one synchronisation). The
        values are plain Python numbers and lists (``torch.save`` / JSON friendly).
        """
        self.flush()
        rows = self._log.rows
        keys = list(rows[0]) if rows else []
        return {
            "step": self.step,
            "groups": list(self.group_names),
            "every": self.every,
            "keys": keys,
            "columns": [[r[k] for r in rows] for k in keys],
            "sigma2": list(self._equilibrium.sigma2),
            "count": list(self._equilibrium.count),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` of a monitor with the same groups and ``every``.

        The records, the step counter and the running noise statistics are replaced; the
        hooks, the optimizer and the weights are this monitor's own (build it on the restored
        optimizer, then load). A state of other groups or another ``every`` is refused.
        """
        missing = {"step", "groups", "every", "keys", "columns", "sigma2", "count"} - set(state)
        if missing:
            raise ValueError(f"state lacks {sorted(missing)}: not a Monitor.state_dict()")
        if list(state["groups"]) != self.group_names or int(state["every"]) != self.every:
            raise ValueError(
                f"state has groups {list(state['groups'])} and every = {state['every']}; this "
                f"monitor has groups {self.group_names} and every = {self.every}"
            )
        self.flush()
        self.step = int(state["step"])
        keys = list(state["keys"])
        self._log.rows = [dict(zip(keys, vals)) for vals in zip(*state["columns"])]
        self._equilibrium.sigma2 = [float(v) for v in state["sigma2"]]
        self._equilibrium.count = [int(v) for v in state["count"]]

    def close(self) -> None:
        """Read what is left on the device and remove the hooks."""
        if not self.closed:
            self.flush()
            self._pre.remove()
            self._post.remove()
            self.closed = True

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
