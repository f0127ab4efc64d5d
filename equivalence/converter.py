r"""Online conversion: a stock ``torch.optim.SGD`` whose step hooks apply the equivalent LR.

The general theorem (``proofs/general_schedule.py``; from any momentum buffer,
``proofs/mid_run.py``): with PyTorch's SGD ``v_{t+1} = γ_t v_t + ∇L(θ_t) + λ_t θ_t``,
``θ_{t+1} = θ_t − η_t v_{t+1}`` on a loss scale invariant in θ, the run without weight
decay and with

    c_0 = 1,  c_1 = 1 − η_0 λ_0,  c_{t+1} = (1 + γ_t r_t − η_t λ_t) c_t − γ_t r_t c_{t−1},
    r_t = η_t / η_{t−1},  η̃_t = η_t / (c_t c_{t+1})

follows θ̃_t = θ_t / c_t from the same starting point and the same momentum buffer.
c_{t+1} depends only on (η_t, λ_t, γ_t) and the past, so it is computed when step t
happens: :class:`ExpLRConverter` does it in the optimizer's step hooks.

- The param groups always hold the **stock** ``lr``, ``weight_decay`` and ``momentum``
  that the user's code and schedulers set; the pre-hook reads them as (η_t, λ_t, γ_t),
  advances c and puts η̃_t and zero decay on the invariant groups for the duration of
  the step; the post-hook puts the stock values back, corrects the normalisers
  (:mod:`equivalence.normalisers`: running statistics by c_t/c_{t+1}, eps at ε m²) and
  rescales by a power of two when due. Any scheduler, stepped per batch or per epoch,
  before or after the optimizer, chained or hand-written, therefore drives the
  converted run exactly as it drives the stock one; optimizer checkpoints hold the
  stock values.
- c advances only when ``optimizer.step()`` runs: a step skipped by
  ``torch.amp.GradScaler`` (inf/NaN gradients) is skipped by both runs alike.
- c is kept as d_t = c_{t+1}/c_t − 1 (d_{−1} = 0, d_t = γ_t r_t d_{t−1}/(1 + d_{t−1}) −
  η_t λ_t, no cancellation) and a mantissa C_t = c_t 2^{−E_t} renormalised by powers
  of two together with the stored weights (θ_stored = θ_t / C_t, buffers × C_t,
  running mean / var × 1/C_t, 1/C_t²): nothing overflows however long the run, and
  rescaling changes no mantissa (``proofs/rescaling.py``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import SGD, Optimizer
from torch.optim.lr_scheduler import ConstantLR, LRScheduler

from ._checks import as_weight_decay_array, check_steps
from .exact import ScaleSequenceError
from .inplace import (
    ConversionError,
    InPlaceConversion,
    InvarianceCheckError,
    ScaleSet,
    as_sets,
    check_finite_hyper,
    iter_sets_groups,
    nonnegative,
    stock_clip_grad_norm_,
)
from .normalisers import NormLayers

__all__ = [
    "ExpLRConverter",
    "ConvertedRun",
    "RunScheduler",
    "ScheduleLR",
    "ConversionError",
    "InvarianceCheckError",
    "make_scheduler",
    "convert",
    "convert_optimizer",
]

_STATE_KEY = "equivalence_converter"
_LN2 = math.log(2.0)
_U = 2.0**-53  # unit roundoff of float64, the hyper-parameters' arithmetic
_ACCEPTED = (
    "a live scheduler (torch.optim.lr_scheduler.LRScheduler or ReduceLROnPlateau), a factory "
    "optimizer -> scheduler (e.g. lambda opt: MultiStepLR(opt, [100, 150])), a pure schedule from "
    "equivalence.schedules, a per-step array of learning rates, a plain callable step -> lr, or None"
)


def _check_rescale(rescale_log2: Any) -> int | None:
    if rescale_log2 is None:
        return None
    try:
        r = float(rescale_log2)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"rescale_log2 must be an int or None, got {type(rescale_log2).__name__}"
        ) from exc
    if not (1 <= r <= 512) or r != int(r):
        raise ValueError(
            f"rescale_log2 = {rescale_log2!r} is outside the valid range: an integer in [1, 512] "
            "(a power-of-two exponent), or None"
        )
    return int(r)


class _SGDSetState:
    """The scale of one invariant set under plain (or dampened) SGD: c_t = C · 2^E, and per
    user group k = κ_t / c_t (the κ form, no 1/η: lr = 0 is an ordinary step)."""

    __slots__ = ("C", "E", "k", "gamma_prev", "fresh_checked")

    def __init__(self) -> None:
        self.C = 1.0
        self.E = 0
        self.k: dict[int, float] = {}
        self.gamma_prev: dict[int, float] = {}
        self.fresh_checked: set[int] = set()


class ExpLRConverter(InPlaceConversion):
    r"""The online conversion of a stock ``torch.optim.SGD``, in place (see the module docstring).

    The recurrence is the κ form (``proofs/kappa_form.py``), which has no 1/η: per user group
    holding a set, with its stock (η_t, λ_t, γ_t, τ) and k_t = κ_t/c_t,

        q_t = γ_t k_t − (1 − τ) λ_t,   d_t = η_t q_t,   c_{t+1} = c_t (1 + d_t),
        k_{t+1} = q_t / (1 + d_t),     η̃_t = η_t / (c_t c_{t+1}),

    with γ_t = τ = 0 on a step that starts a momentum buffer (PyTorch's first step is plain).
    One set may span groups whose d_t agree (to 8 ulps; e.g. layer-wise LR with equal η·λ).

    Args:
        optimizer: ``torch.optim.SGD`` (nesterov=False; dampening allowed).
        invariant: the invariant sets (:func:`~equivalence.inplace.as_sets`).
        norm_layers: the normalisers each set feeds (one list, or one list per set); ``None``
            with ``model`` finds them at the first update.
        model: the model, for the exact probe, names in messages, and ``remove()``.
        rescale_log2: keep the stored weights within [1, 2^R) times the stock ones by exact
            power-of-two rescaling (``None``: never rescale).
        adjust_eps: keep each normaliser's eps at ε m² (exact with any eps).
        weight_decay_schedule: optional (per-update λ_t table, per-group factors).
        check: run the first-update checks (Euler identity; the probe with ``model``).
    """

    def __init__(
        self,
        optimizer: SGD,
        invariant: Any,
        *,
        norm_layers: Any = None,
        model: nn.Module | None = None,
        rescale_log2: Any = 16,
        adjust_eps: bool = True,
        weight_decay_schedule: tuple[np.ndarray, list[float]] | None = None,
        check: bool = True,
    ) -> None:
        if not isinstance(optimizer, SGD):
            raise TypeError(
                f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}{_other_optimizer_hint(optimizer)}"
            )
        sets = as_sets(invariant)
        self.rescale_log2 = _check_rescale(rescale_log2)
        self.wd_schedule = weight_decay_schedule
        self.states: list[_SGDSetState] = [_SGDSetState() for _ in sets]
        super().__init__(
            optimizer, sets, norm_layers, model=model, adjust_eps=adjust_eps, check=check
        )
        groups_of = iter_sets_groups(self.layout())
        for s in self.sets:
            for gi in groups_of.get(s.index, []):
                g = optimizer.param_groups[gi]
                _check_plain_sgd(g, gi)
                gam = check_finite_hyper(g["momentum"], "momentum", gi, 0, "0 <= momentum < 1")
                if not 0.0 <= gam < 1.0:
                    raise ValueError(
                        f"param_groups[{gi}] has momentum = {g['momentum']!r}, outside the valid "
                        "range 0 <= momentum < 1: at momentum >= 1 the scale sequence c_t changes "
                        "sign and no exponential-LR run is equivalent"
                    )
        self._agree_at_start()
        self._require_norm_info()
        # η̃ of the first set's first group, as set on the step view (stored frame)
        self.last_equivalent_lr: float | None = None
        self.last_log_equivalent_lr: float | None = None
        # per set stepping: (set, c_{t+1}, per-group k_{t+1}), committed after the step
        self._pending: list[tuple[ScaleSet, float, dict[int, float]]] = []
        for s in self.sets:
            s.norms.set_scale(1.0)

    def _agree_at_start(self) -> None:
        """Refuse at conversion a set whose groups' first scale ratios c_1/c_0 already differ."""
        state = self.optimizer.state
        for s in self.sets:
            first: tuple[int, float] | None = None
            for gi, (g, parts, _) in enumerate(self.layout()):
                ps = next((q for k, q in parts if k == s.index), None)
                if ps is None:
                    continue
                tau = float(g.get("dampening", 0.0)) if state.get(ps[0]) else 0.0
                d = -float(g["lr"]) * (1.0 - tau) * float(g["weight_decay"])
                if not 1.0 + d > 0.0:
                    raise ScaleSequenceError(
                        f"the scale sequence of invariant set {s.index} reaches zero or goes negative "
                        f"at update 1: c_1 = 1 - lr*weight_decay = {1.0 + d:.6g} <= 0 with lr = "
                        f"{g['lr']!r}, weight_decay = {g['weight_decay']!r} (param group {gi})"
                    )
                if first is None:
                    first = (gi, d)
                elif abs(d - first[1]) > 8 * _U * max(abs(d), abs(first[1])):
                    raise ValueError(
                        f"invariant set {s.index} spans param groups {first[0]} and {gi}, whose scale "
                        f"recurrences differ at update 0 (c_1/c_0 − 1 = {first[1]!r} vs {d!r}: their "
                        "lr·weight_decay differ). The loss is invariant to scaling the set as a whole, "
                        "not its parts by different factors. If each group's part is invariant on its "
                        "own, declare the parts as separate sets, invariant=[[...], [...]] "
                        "(equivalence.audit lists which tensors are invariant on their own and which "
                        "only jointly); otherwise give the set's groups equal lr·weight_decay"
                    )

    def _new_set(self, s: ScaleSet) -> None:
        self.states.append(_SGDSetState())
        s.norms.set_scale(1.0)

    # -- compatibility views of the first set -------------------------------------------------
    @property
    def C(self) -> float:
        return self.states[0].C if self.states else 1.0

    @property
    def E(self) -> int:
        return self.states[0].E if self.states else 0

    @property
    def invariant_groups(self) -> list[int]:
        """User group indices holding invariant tensors (any set)."""
        return sorted({gi for gis in iter_sets_groups(self.layout()).values() for gi in gis})

    @property
    def norms(self) -> NormLayers:
        """The first set's normalisers."""
        return self.sets[0].norms if self.sets else NormLayers(())

    def set_scale(self, s: ScaleSet) -> float:
        st = self.states[s.index]
        return math.ldexp(st.C, st.E) if self.rescale_log2 is None else st.C

    def current_scale(self, s: int = 0) -> float:
        """m_t = 1/C_t of set ``s`` (stored θ = m_t · θ_stock)."""
        return 1.0 / self.states[s].C if self.states else 1.0

    def log_current_scale(self, s: int = 0) -> float:
        """log m_t of set ``s``."""
        return -math.log(self.states[s].C) if self.states else 0.0

    def log_scale_factor(self, s: int = 0) -> float:
        """log c_t of set ``s`` (= log C_t + E_t ln 2; θ̃_t = θ_t / c_t before rescaling)."""
        if not self.states:
            return 0.0
        st = self.states[s]
        return math.log(st.C) + st.E * _LN2

    # -- the step ------------------------------------------------------------------------------
    def _advance(self, opt: Optimizer, layout: Any) -> dict[tuple[int, int], dict[str, Any]]:
        t = self.updates
        if self.wd_schedule is not None:
            self._apply_wd_schedule(t)
        groups_of = iter_sets_groups(layout)
        out: dict[tuple[int, int], dict[str, Any]] = {}
        pending = []
        for s in self.sets:
            if s.index in self.skipped:
                continue
            st = self.states[s.index]
            gis = groups_of.get(s.index, [])
            d_ref: float | None = None
            tol_ref = 0.0
            gi_ref = -1
            qs: dict[int, float] = {}
            etas: dict[int, float] = {}
            for gi in gis:
                g = layout[gi][0]
                _check_plain_sgd(g, gi, t)
                eta = check_finite_hyper(g["lr"], "lr", gi, t, "0 <= lr < inf", nonnegative)
                lam = check_finite_hyper(
                    g["weight_decay"], "weight_decay", gi, t, "0 <= weight_decay < inf", nonnegative
                )
                gam = check_finite_hyper(
                    g["momentum"],
                    "momentum",
                    gi,
                    t,
                    "0 <= momentum < 1 (c_t changes sign at momentum >= 1)",
                    lambda v: 0 <= v < 1,
                )
                tau = check_finite_hyper(
                    g.get("dampening", 0.0), "dampening", gi, t, "0 <= dampening <= 1"
                )
                prev = st.gamma_prev.get(gi)
                if prev is not None and (gam == 0) != (prev == 0):
                    raise ConversionError(
                        f"param_groups[{gi}]: momentum changed from {prev!r} to {gam!r} at update {t}; "
                        "PyTorch's SGD keeps no momentum buffer at momentum 0 (a stale one is reused "
                        "when it comes back), so switching momentum on or off mid-run is not covered"
                    )
                fresh = gam != 0 and self._fresh(s, gi, layout[gi][1])
                gam_eff, tau_eff = (0.0, 0.0) if (gam == 0 or fresh) else (gam, tau)
                q = gam_eff * st.k.get(gi, 0.0) - (1.0 - tau_eff) * lam
                d = eta * q
                tol = 8 * _U * (abs(eta * gam_eff * st.k.get(gi, 0.0)) + abs(eta * lam))
                if d_ref is None:
                    d_ref, tol_ref, gi_ref = d, tol, gi
                elif abs(d - d_ref) > max(tol, tol_ref):
                    raise ConversionError(
                        f"invariant set {s.index} spans param groups {gi_ref} and {gi}, whose scale "
                        f"recurrences differ at update {t} (c_{{t+1}}/c_t − 1 = {d_ref!r} vs {d!r}: "
                        "their lr·weight_decay, momentum or lr ratios differ). The loss is invariant to "
                        "scaling the set as a whole, not its parts by different factors. If each "
                        "group's part is invariant on its own, declare the parts as separate sets, "
                        "invariant=[[...], [...]] (equivalence.audit lists which tensors are invariant "
                        "on their own and which only jointly); otherwise give the set's groups equal "
                        "lr·weight_decay and momentum"
                    )
                qs[gi] = q
                etas[gi] = eta
                st.gamma_prev[gi] = gam
            if d_ref is None:
                continue
            if not d_ref > -1.0:
                raise ScaleSequenceError(
                    f"the scale sequence of invariant set {s.index} reaches zero or goes negative at "
                    f"update {t + 1}: c_{t + 1}/c_{t} = {1.0 + d_ref:.6g} <= 0 (param group {gi_ref}). "
                    "The weight-decay run shrinks the scale-invariant weights through zero there (for "
                    "constant hyper-parameters the equivalence needs lr*weight_decay <= "
                    "(1 - sqrt(momentum))**2)"
                )
            c_next = st.C * (1.0 + d_ref)
            for gi, eta in etas.items():
                out[(s.index, gi)] = {"lr": eta / (st.C * c_next), "weight_decay": 0.0}
            if s.index == 0:
                lr0 = etas[gis[0]] / (st.C * c_next)
                self.last_equivalent_lr = lr0
                self.last_log_equivalent_lr = (
                    math.log(lr0) - 2 * st.E * _LN2 if lr0 > 0 else -math.inf
                )
            pending.append((s, c_next, {gi: q / (1.0 + d_ref) for gi, q in qs.items()}))
        self._pending = pending
        return out

    def _fresh(self, s: ScaleSet, gi: int, parts: list[tuple[int, list[torch.Tensor]]]) -> bool:
        """Whether the set's tensors in group ``gi`` start their momentum buffers at this step."""
        st = self.states[s.index]
        params = next(ps for k, ps in parts if k == s.index)
        state = self.optimizer.state
        if gi in st.fresh_checked:
            return False
        has = [bool(state.get(p)) and state[p].get("momentum_buffer") is not None for p in params]
        if any(has) and not all(has):
            raise ConversionError(
                f"invariant set {s.index}: in param group {gi} some tensors have a momentum buffer and "
                f"some do not (e.g. {self.name_of(params[has.index(False)])}); the set is scaled as a "
                "whole, so its tensors must all have stepped alike"
            )
        st.fresh_checked.add(gi)
        return not any(has)

    def _commit(self, opt: Optimizer) -> None:
        pending, self._pending = self._pending, []
        r = self.rescale_log2
        for s, c_next, ks in pending:
            st = self.states[s.index]
            s.norms.correct(st.C / c_next)
            st.C = c_next
            st.k.update(ks)
            if r is not None and not (-r < math.log2(c_next) <= 0.0):
                self._rescale(s, math.floor(-math.log2(c_next) / r) * r)
            s.norms.set_scale(st.C)

    @torch.no_grad()
    def _rescale(self, s: ScaleSet, k: int) -> None:
        """C ← C·2^k, E ← E − k: weights × 2^−k, buffers × 2^k, running stats × 2^−k, 4^−k."""
        if k == 0:
            return
        st = self.states[s.index]
        f = math.ldexp(1.0, -k)
        torch._foreach_mul_([p.detach() for p in s.params], f)
        state = self.optimizer.state
        bufs = [b for p in s.params if (b := state.get(p, {}).get("momentum_buffer")) is not None]
        if bufs:
            torch._foreach_mul_(bufs, 1.0 / f)
        s.norms.correct(f)
        st.C = math.ldexp(st.C, k)
        st.E -= k

    def _stock_state(self, s: ScaleSet, p: torch.Tensor, state: dict[str, Any]) -> dict[str, Any]:
        """v_t = b/C − k_g C θ_stored (``proofs/kappa_form.py``: v_t = (ṽ_t − κ_t θ_t)/c_t)."""
        b = state.get("momentum_buffer")
        if b is None:
            return state
        st = self.states[s.index]
        gi = next(
            i for i, g in enumerate(self.optimizer.param_groups) if any(q is p for q in g["params"])
        )
        k = st.k.get(gi, 0.0)
        with torch.no_grad():
            v = b / st.C - (k * st.C) * p.detach()
        return {**state, "momentum_buffer": v}

    def _removed(self) -> None:
        for st in self.states:
            st.C, st.E = 1.0, 0

    def _apply_wd_schedule(self, t: int) -> None:
        assert self.wd_schedule is not None
        table, factors = self.wd_schedule
        if t >= table.size:
            raise ConversionError(
                f"weight_decay_schedule has {table.size} per-update values and update {t} needs value "
                f"{t + 1}; give a longer schedule"
            )
        lam = float(table[t])
        for g, f in zip(self.optimizer.param_groups, factors):
            g["weight_decay"] = lam * f

    # -- checkpointing ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 2,
            "updates": self.updates,
            "sets": [
                {
                    "C": st.C,
                    "E": st.E,
                    "k": dict(st.k),
                    "gamma_prev": dict(st.gamma_prev),
                    "fresh_checked": sorted(st.fresh_checked),
                }
                for st in self.states
            ],
            "rescale_log2": self.rescale_log2,
            "set_sizes": self._set_sizes(),
            "user_eps": [list(s.norms.user_eps) for s in self.sets],
            "adjust_eps": self.adjust_eps,
        }

    def _check_incoming(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        if state.get("format") != 2:  # the first format: one set, its sizes listed flat
            state = {
                **state,
                "set_sizes": [state.get("invariant_sizes")],
                "user_eps": [state.get("user_eps")],
            }
        diffs = [
            f"{name} {state.get(key)!r} (checkpoint) vs {mine[key]!r} (this run)"
            for key, name in (
                ("rescale_log2", "rescale_log2"),
                ("set_sizes", "the invariant set sizes"),
                ("user_eps", "the normalisers' eps"),
                ("adjust_eps", "adjust_eps"),
            )
            if state.get(key) != mine[key]
        ]
        if diffs:
            raise ValueError(
                "the checkpoint was saved by a different conversion: " + "; ".join(diffs)
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        if state.get("format") == 2:
            for st, d in zip(self.states, state["sets"]):
                st.C, st.E = float(d["C"]), int(d["E"])
                st.k = {int(i): float(v) for i, v in d["k"].items()}
                st.gamma_prev = {int(i): float(v) for i, v in d["gamma_prev"].items()}
                st.fresh_checked = {int(i) for i in d["fresh_checked"]}
        else:  # the first format: one set, d_{t-1} and η_{t-1}: k_t = d/(η (1 + d))
            st = self.states[0]
            st.C, st.E = float(state["C"]), int(state["E"])
            d, lr = float(state["d_prev"]), float(state["lr_prev"])
            k = d / (lr * (1.0 + d)) if self.updates > 0 else 0.0
            gis = list(state.get("invariant_groups", [0]))
            st.k = {gi: k for gi in gis}
            st.gamma_prev = {gi: float(state["gamma_prev"]) for gi in gis} if self.updates else {}
            st.fresh_checked = set(gis) if self.updates else set()
        for s, st in zip(self.sets, self.states):
            s.norms.set_scale(st.C)


def _other_optimizer_hint(optimizer: Any) -> str:
    """Where to go for an optimizer this converter does not take."""
    if isinstance(optimizer, torch.optim.AdamW):
        return "; for AdamW use equivalence.convert_adamw"
    if isinstance(optimizer, torch.optim.Adam):
        return (
            "; Adam with weight_decay (coupled L2) has no exact no-WD equivalent "
            "(proofs/adam_l2.py); AdamW does (equivalence.convert_adamw)"
        )
    return ""


def _check_plain_sgd(group: dict[str, Any], i: int, t: int | None = None) -> None:
    when = "" if t is None else f" at update {t}"
    if group.get("nesterov", False):
        raise ValueError(
            f"param_groups[{i}] uses nesterov=True{when}; this converter is for plain momentum "
            "(nesterov=False): use equivalence.convert_sgd_variant (exact with one buffer rewrite "
            "per step, proofs/nesterov.py)"
        )
    if group.get("maximize", False):
        raise ValueError(
            f"param_groups[{i}] has maximize=True{when}, which the theorem does not cover"
        )


# -- schedulers ------------------------------------------------------------------------------


class ScheduleLR(LRScheduler):
    """A stock-style scheduler from a pure schedule ``step -> lr`` or a per-step array.

    Group g gets ``schedule(t) · base_lr_g / base_lr_0`` (exactly ``schedule(t)`` for
    groups with the first group's base LR); ``t`` counts ``step()`` calls, as for every
    PyTorch scheduler.
    """

    def __init__(self, optimizer: Optimizer, schedule: Any, last_epoch: int = -1) -> None:
        if callable(schedule):
            self._fn: Callable[[int], Any] | None = schedule
            self._table: np.ndarray | None = None
        else:
            self._fn = None
            table = np.asarray(schedule, dtype=np.float64)
            if table.ndim != 1 or table.size == 0:
                raise ValueError(
                    f"lr_scheduler as a per-step array must be 1-D and non-empty, got shape {table.shape}"
                )
            self._table = table
        base = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        self._ratios = [1.0 if b == base[0] else b / base[0] for b in base]
        super().__init__(optimizer, last_epoch)

    def value(self, t: int) -> float:
        if self._table is not None:
            if t >= self._table.size:
                # past the end: nan, refused by the converter if an update would use it (the
                # customary scheduler.step() after the last update is fine)
                return math.nan
            v = float(self._table[t])
        else:
            assert self._fn is not None
            v = float(self._fn(t))
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(
                f"lr_scheduler gives lr = {v!r} at step {t}; valid range: 0 < lr < inf"
            )
        return v

    def get_lr(self) -> list[float]:  # type: ignore[override]
        v = self.value(self.last_epoch)
        return [v * r for r in self._ratios]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_fn", "_table")}


def _is_scheduler(obj: Any) -> bool:
    return isinstance(obj, LRScheduler)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return isinstance(v, np.ndarray) and v.ndim == 0 and np.issubdtype(v.dtype, np.number)


def _retarget(sched: Any, optimizer: Optimizer) -> Any:
    old = sched.optimizer
    if old is optimizer:
        return sched
    n_old, n_new = len(old.param_groups), len(optimizer.param_groups)
    if n_old != n_new:
        raise ValueError(
            f"lr_scheduler drives an optimizer with {n_old} param group(s) but the converted optimizer "
            f"has {n_new} (each group holding both invariant and other parameters is split in two); "
            "pass a factory (lambda opt: MultiStepLR(opt, ...)) or attach the scheduler to run.optimizer"
        )
    memo: dict[int, Any] = {id(old): optimizer}
    moved = copy.deepcopy(sched, memo)
    # let PyTorch's scheduler track optimizer.step() calls on the new optimizer as on the old
    # one (its order warning): a scheduler built on it does that; ConstantLR with factor 1 and
    # no iterations sets every lr to lr * 1.0, the same float
    ConstantLR(optimizer, factor=1.0, total_iters=0)
    return moved


def make_scheduler(spec: Any, optimizer: Optimizer) -> Any:
    """The stock scheduler that ``lr_scheduler=spec`` stands for, driving ``optimizer``.

    Accepted: a live scheduler (re-targeted to ``optimizer`` with its state; its param
    group count must match), a factory ``optimizer -> scheduler``, a pure schedule from
    :mod:`equivalence.schedules`, a per-step array, a plain callable ``step -> lr``, or
    ``None``. Anything else: ``TypeError`` naming it and listing the accepted forms.
    """
    if spec is None:
        return None
    if _is_scheduler(spec):
        return _retarget(spec, optimizer)
    if isinstance(spec, (str, bytes)) or not (
        callable(spec) or isinstance(spec, (Sequence, np.ndarray))
    ):
        raise TypeError(
            f"lr_scheduler = {spec!r} ({type(spec).__name__}) is not accepted; give {_ACCEPTED}"
        )
    if not callable(spec):
        return ScheduleLR(optimizer, spec)
    if getattr(spec, "__equivalence_schedule__", False):
        return ScheduleLR(optimizer, spec)
    factory_error: BaseException | None = None
    made: Any = None
    try:
        made = spec(optimizer)
    except Exception as exc:  # noqa: BLE001 - not a factory; tried as step -> lr below
        factory_error = exc
    if _is_scheduler(made):
        return made
    if factory_error is None and not _is_number(made):
        raise TypeError(
            f"lr_scheduler = {spec!r} was called with the optimizer as a factory and returned "
            f"{type(made).__name__}, not a scheduler; give {_ACCEPTED}"
        )
    if _is_number(made):  # a constant schedule step -> lr ignores its argument
        return ScheduleLR(optimizer, spec)
    try:
        v0 = spec(0)
    except Exception:  # noqa: BLE001
        v0 = None
    if _is_number(v0):
        return ScheduleLR(optimizer, spec)
    got = (
        f"calling it with the optimizer raised {type(factory_error).__name__}: {factory_error}"
        if factory_error is not None
        else f"calling it with the optimizer returned {type(made).__name__}"
    )
    raise TypeError(
        f"lr_scheduler = {spec!r} is neither a scheduler factory nor a schedule step -> lr ({got}; "
        f"calling it with step 0 returned {type(v0).__name__}); give {_ACCEPTED}"
    )


class RunScheduler:
    """``run.scheduler``: steps the scheduler given as ``lr_scheduler`` (a no-op without one).

    ``step(*args)`` passes its arguments on (``ReduceLROnPlateau.step(metric)``);
    ``current_scale()``, ``log_current_scale()`` and ``log2_scale`` report the
    conversion's scale. Any scheduler attached directly to ``run.optimizer`` works too.
    """

    def __init__(self, converter: ExpLRConverter, inner: Any) -> None:
        self.converter = converter
        self.inner = inner

    def step(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            self.inner.step(*args, **kwargs)

    def get_last_lr(self) -> list[float]:
        if self.inner is not None:
            return list(self.inner.get_last_lr())
        return [float(g["lr"]) for g in self.converter.optimizer.param_groups]

    @property
    def last_epoch(self) -> int:
        return int(self.inner.last_epoch) if self.inner is not None else self.converter.updates

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict() if self.inner is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.inner is not None and state_dict.get("inner") is not None:
            self.inner.load_state_dict(state_dict["inner"])

    def current_scale(self, group: int | None = None) -> float:
        return self._for_group(group, self.converter.current_scale(), 1.0)

    def log_current_scale(self, group: int | None = None) -> float:
        return self._for_group(group, self.converter.log_current_scale(), 0.0)

    def _for_group(self, group: int | None, inv: float, other: float) -> float:
        if group is None or group in self.converter.invariant_groups:
            return inv if self.converter.invariant_groups else other
        return other

    @property
    def log2_scale(self) -> list[int]:
        inv = set(self.converter.invariant_groups)
        n = len(self.converter.optimizer.param_groups)
        return [self.converter.E if i in inv else 0 for i in range(n)]


# -- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConvertedRun:
    """The converted run: the user's optimizer (converted in place), its scheduler, the conversion.

    ``converter`` is the in-place conversion (:class:`ExpLRConverter`, or the AdamW / Nesterov
    maps; ``None`` for the precomputed forms, whose ``scheduler`` is an
    :class:`~equivalence.torch_sgd.EquivalentLR` and whose ``schedules`` hold the recipes).
    Everything read through the run is in stock units: :meth:`export`, :meth:`averaged_model`,
    :meth:`remove`, :meth:`clip_grad_norm_`, :meth:`clip_grad_value_`.
    """

    optimizer: Optimizer
    scheduler: Any
    schedules: list[Any] = field(default_factory=list)
    converter: Any = None
    invariant: tuple[torch.Tensor, ...] = ()

    def current_scale(self, s: int = 0) -> float:
        """m with stored θ = m · θ_stock on invariant set ``s``."""
        if self.converter is not None:
            return float(self.converter.current_scale(s))
        return float(self.scheduler.current_scale())

    def log2_rescale(self) -> int:
        """k of the power-of-two rescaling: stored θ = 2^k θ̃ on the invariant set (0 if none)."""
        if self.converter is not None:
            return int(getattr(self.converter, "E", 0)) if self.converter.sets else 0
        g = self.scheduler.norm_group
        return int(self.scheduler.log2_scale[g]) if g is not None else 0

    def last_log_equivalent_lr(self) -> float | None:
        """log η̃_t of the last update taken on the invariant set (unrescaled; None before one).

        η̃_t = η_t / (c_t c_{t+1}) (the general theorem, ``proofs/general_schedule.py``), with
        t the index of that update; the param groups of the online run hold the stock η
        between updates, so their ``lr`` is not η̃.
        """
        if self.converter is not None:
            return getattr(self.converter, "last_log_equivalent_lr", None)
        sched = self.scheduler
        t = int(sched.last_epoch) - 1
        g = sched.norm_group
        if t < 0 or g is None:
            return None
        return float(sched.schedules[g].log_lrs[t])

    def _conversion(self, what: str) -> InPlaceConversion:
        if not isinstance(self.converter, InPlaceConversion):
            raise ValueError(
                f"{what} needs the online conversion (form='general'); the precomputed forms "
                "drive a new optimizer through an EquivalentLR scheduler"
            )
        return self.converter

    def clip_grad_norm_(
        self, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
    ) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` of the **stock** run, applied to this run.

        See :meth:`equivalence.inplace.InPlaceConversion.clip_grad_norm_`.
        """
        if isinstance(self.converter, InPlaceConversion):
            return self.converter.clip_grad_norm_(max_norm, norm_type, error_if_nonfinite)
        return _clip_precomputed(self, max_norm, norm_type, error_if_nonfinite)

    def clip_grad_value_(self, clip_value: float) -> None:
        """``torch.nn.utils.clip_grad_value_`` of the **stock** run: invariant gradients clamped
        to ±clip_value/m (their stock gradient is m g̃), the others to ±clip_value."""
        self._conversion("clip_grad_value_").clip_grad_value_(clip_value)

    def export(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` in stock units, equal to the stock run's model (no hooks of ours)."""
        return self._conversion("export").export(model)

    def averaged_model(self, model: nn.Module, **kwargs: Any) -> Any:
        """An ``AveragedModel`` (EMA/SWA) of the stock weights; keyword arguments as
        ``torch.optim.swa_utils.AveragedModel`` (``avg_fn``, ``multi_avg_fn``, ``use_buffers``,
        ``device``)."""
        return self._conversion("averaged_model").averaged_model(model, **kwargs)

    def make_compilable(self) -> list[nn.Module]:
        """Before ``torch.compile(model)``: the normalisers compile once although their eps
        changes every step (:mod:`equivalence.compile_norms`)."""
        return self._conversion("make_compilable").make_compilable()

    def add_param_group(
        self, param_group: dict[str, Any], *, invariant: bool = False, norm_layers: Any = ()
    ) -> None:
        """Add a group: stock unless ``invariant=True`` (then a new set with its own scale)."""
        self._conversion("add_param_group").add_param_group(
            param_group, invariant=invariant, norm_layers=norm_layers
        )

    def remove(self, model: nn.Module | None = None) -> None:
        """Detach the conversion and leave the run in stock units (weights, statistics, eps,
        optimizer state), so that training or evaluating on equals the stock run. ``model``
        is needed unless it was given at conversion (``model=``)."""
        if isinstance(self.converter, InPlaceConversion):
            self.converter.remove(model)
        elif self.converter is not None:
            self.converter.remove()


def _clip_precomputed(
    run: ConvertedRun, max_norm: float, norm_type: float, error_if_nonfinite: bool
) -> torch.Tensor:
    m = run.current_scale()
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    scale = {id(p): m for p in run.invariant}
    return stock_clip_grad_norm_(params, scale, max_norm, norm_type, error_if_nonfinite)


def convert_online(
    opt: SGD,
    *,
    invariant: Any,
    lr_scheduler: Any = None,
    weight_decay_schedule: Any = None,
    default_weight_decay: float = 0.0,
    steps: int | None = None,
    norm_layers: Any = None,
    model: nn.Module | None = None,
    rescale_log2: Any = 16,
    adjust_eps: bool = True,
    check: bool = True,
) -> ConvertedRun:
    """The online conversion of ``opt``, in place (its groups, state and schedulers kept)."""
    sets = as_sets(invariant)
    wd_sched = None
    groups = opt.param_groups
    if weight_decay_schedule is not None:
        n = steps if steps is not None else len(weight_decay_schedule)
        table = as_weight_decay_array(weight_decay_schedule, n, "weight_decay_schedule")
        if default_weight_decay != 0:
            factors = [float(g["weight_decay"]) / default_weight_decay for g in groups]
        else:
            own = [(i, g["weight_decay"]) for i, g in enumerate(groups) if g["weight_decay"] != 0]
            if own:
                raise ValueError(
                    f"weight_decay_schedule is given with weight_decay = 0 (so the schedule is the decay "
                    f"itself), but param group {own[0][0]} sets its own weight_decay = {own[0][1]!r}; set "
                    "weight_decay to the default decay the schedule scales, or drop the group's own value"
                )
            factors = [1.0] * len(groups)
        for g, f in zip(groups, factors):
            g["weight_decay"] = float(table[0]) * f
        wd_sched = (table, factors)
    converter = ExpLRConverter(
        opt,
        sets,
        norm_layers=norm_layers,
        model=model,
        rescale_log2=rescale_log2,
        adjust_eps=adjust_eps,
        weight_decay_schedule=wd_sched,
        check=check,
    )
    inner = make_scheduler(lr_scheduler, opt)
    flat = tuple(p for s in sets for p in s)
    return ConvertedRun(opt, RunScheduler(converter, inner), [], converter, flat)


def convert(
    params: Iterable[Any],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    invariant: Any,
    steps: int | None = None,
    lr_scheduler: Any = None,
    weight_decay_schedule: Sequence[float] | np.ndarray | None = None,
    norm_layers: Any = None,
    model: nn.Module | None = None,
    form: str = "general",
    rescale_log2: Any = 16,
    online: bool | None = None,
    adjust_eps: bool = True,
    check: bool = True,
) -> ConvertedRun:
    """The exponential-LR equivalent of ``SGD(params, lr, momentum, weight_decay)`` + a schedule.

    ``params`` is what you would pass to ``torch.optim.SGD`` (tensors or group dicts); the
    returned ``run.optimizer`` is that SGD, converted in place (:func:`convert_optimizer`).
    ``invariant``: the parameters in which the loss is jointly scale invariant (one set), or
    a sequence of such sets, each with its own scale (see :func:`equivalence.audit`);
    ``norm_layers`` the normalisers they feed (found by a probe with ``model=``).

    ``form="general"`` (default, ``online``): the online conversion of
    :class:`ExpLRConverter`: the param groups keep the stock values, so any scheduler
    on ``run.optimizer`` or hand edit of its groups gives the stock run; ``steps`` is
    optional. ``lr_scheduler`` (see :func:`make_scheduler`) becomes ``run.scheduler``.
    ``form="closed_form"``/``"texp"`` or ``online=False``: the precomputed log-space
    schedule (:class:`~equivalence.torch_sgd.EquivalentLR`, ``steps`` required).

    ``weight_decay_schedule``: per-update λ_t of the default group, applied to each group
    as λ_t · group_wd / weight_decay; with ``weight_decay = 0`` it is the decay itself.
    """
    from .recipe import FORMS

    if form not in FORMS:
        raise ValueError(f"form = {form!r} is not one of {FORMS}")
    if steps is not None:
        check_steps(steps)
    use_online = form == "general" if online is None else bool(online)
    if use_online and form != "general":
        raise ValueError(
            f"form = {form!r} is a precomputed schedule; online conversion needs form='general'"
        )
    if not use_online:
        from .torch_sgd import convert_precomputed

        return convert_precomputed(
            params,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            steps=steps,
            invariant=invariant,
            lr_scheduler=lr_scheduler,
            weight_decay_schedule=weight_decay_schedule,
            norm_layers=() if norm_layers is None else norm_layers,
            form=form,
            rescale_log2=rescale_log2,
        )
    opt = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)  # validates like SGD
    return convert_online(
        opt,
        invariant=invariant,
        lr_scheduler=lr_scheduler,
        weight_decay_schedule=weight_decay_schedule,
        default_weight_decay=float(weight_decay),
        steps=steps,
        norm_layers=norm_layers,
        model=model,
        rescale_log2=rescale_log2,
        adjust_eps=adjust_eps,
        check=check,
    )


def convert_optimizer(
    optimizer: Optimizer,
    *,
    invariant: Any,
    steps: int | None = None,
    lr_scheduler: Any = None,
    norm_layers: Any = None,
    model: nn.Module | None = None,
    form: str = "general",
    rescale_log2: Any = 16,
    online: bool | None = None,
    adjust_eps: bool = True,
    check: bool = True,
) -> ConvertedRun:
    """Convert the user's optimizer **in place**, at any point of its run: the front door.

    ``run.optimizer is optimizer``: its param groups (as the user numbered them), state and
    every scheduler, GradScaler or framework wrapper already attached keep working; the step
    hooks apply the exact map. By kind:

    - ``torch.optim.SGD`` (momentum, dampening; the κ-form map of :class:`ExpLRConverter`),
    - ``torch.optim.SGD(nesterov=True)`` (:class:`~equivalence.sgd_variants.SGDVariantEquivalence`),
    - ``torch.optim.AdamW`` / ``Adam(decoupled_weight_decay=True)``
      (:class:`~equivalence.torch_adamw.AdamWEquivalence`; Adam with coupled L2 decay is
      refused: no exact map exists, ``proofs/adam_l2.py``).

    From any state, c_0 = 1 and the buffers as they are continue the stock run exactly
    (``proofs/mid_run.py``); the model keeps its weights (scale 1 at conversion).

    Args:
        invariant: one invariant set (tensors) or a sequence of independently invariant sets.
        norm_layers: the normalisers each set feeds (one list, or one per set); omit with
            ``model=`` to have them found at the first update.
        model: enables the exact probe at the first update (each set doubled in a forward
            pass on the inputs of the last training forward: output unchanged, normalisers
            found), names in messages, and ``run.remove()`` without arguments.
        lr_scheduler: optional; a scheduler attached to ``optimizer`` is used as it is
            (see :func:`make_scheduler` for the other forms); it becomes ``run.scheduler``.
        check: the first-update checks (on by default).
        form, online, steps: ``form="closed_form"``/``"texp"`` (SGD only) precompute the
            schedule on a *new* optimizer (``steps`` required), as before.
    """
    use_online = form == "general" if online is None else bool(online)
    if not use_online:
        if not isinstance(optimizer, SGD):
            raise TypeError(
                f"form = {form!r} precomputes an SGD schedule; optimizer is {type(optimizer).__name__}"
            )
        from .torch_sgd import convert_optimizer_precomputed

        if steps is None:
            raise ValueError(f"form = {form!r} precomputes the schedule: give steps")
        return convert_optimizer_precomputed(
            optimizer,
            steps=steps,
            invariant=invariant,
            lr_scheduler=lr_scheduler,
            norm_layers=() if norm_layers is None else norm_layers,
            form=form,
            rescale_log2=rescale_log2,
        )
    plain = isinstance(optimizer, SGD) and not any(
        g.get("nesterov", False) for g in optimizer.param_groups
    )
    if not adjust_eps and not plain:
        raise ValueError(
            f"adjust_eps=False is supported for plain SGD only; the {type(optimizer).__name__} "
            "map always keeps the normalisers' eps at ε·m² (valid: adjust_eps=True)"
        )
    if isinstance(optimizer, torch.optim.Adam):  # AdamW is a subclass of Adam
        from .torch_adamw import convert_adamw

        conv: Any = convert_adamw(
            optimizer,
            invariant=invariant,
            norm_layers=norm_layers,
            model=model,
            rescale_log2=rescale_log2,
            check=check,
        )
    elif isinstance(optimizer, SGD) and not plain:
        from .sgd_variants import convert_sgd_variant

        conv = convert_sgd_variant(
            optimizer, invariant=invariant, norm_layers=norm_layers, model=model, check=check
        )
    elif isinstance(optimizer, SGD):
        return convert_online(
            optimizer,
            invariant=invariant,
            lr_scheduler=lr_scheduler,
            steps=steps,
            norm_layers=norm_layers,
            model=model,
            rescale_log2=rescale_log2,
            adjust_eps=adjust_eps,
            check=check,
        )
    else:
        raise TypeError(
            f"optimizer must be torch.optim.SGD, AdamW or Adam(decoupled_weight_decay=True), got "
            f"{type(optimizer).__name__}"
        )
    inner = make_scheduler(lr_scheduler, optimizer)
    flat = tuple(p for s in as_sets(invariant) for p in s)
    return ConvertedRun(optimizer, _GenericScheduler(inner, conv), [], conv, flat)


class _GenericScheduler(RunScheduler):
    """``run.scheduler`` for the AdamW and Nesterov conversions."""

    def __init__(self, inner: Any, conv: Any) -> None:
        self.converter = conv
        self.inner = inner

    @property
    def last_epoch(self) -> int:
        return int(self.inner.last_epoch) if self.inner is not None else int(self.converter.updates)

    def get_last_lr(self) -> list[float]:
        if self.inner is not None:
            return list(self.inner.get_last_lr())
        return [float(g["lr"]) for g in self.converter.optimizer.param_groups]

    def current_scale(self, group: int | None = None) -> float:
        return float(self.converter.current_scale())

    def log_current_scale(self, group: int | None = None) -> float:
        return math.log(self.current_scale())

    @property
    def log2_scale(self) -> list[int]:
        return [0 for _ in self.converter.optimizer.param_groups]
