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
  (:mod:`equivalence.optim.normalisers`: running statistics by c_t/c_{t+1}, eps at ε m²) and
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

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import SGD, Optimizer

from ..schedule.exact import ScaleSequenceError
from .inplace import (
    ConversionError,
    InPlaceConversion,
    ScaleSet,
    as_sets,
    check_finite_hyper,
    iter_sets_groups,
    nonnegative,
)
from .normalisers import NormLayers
from .run import ConvertedRun
from .scheduling import WeightDecaySchedule, make_scheduler

__all__ = ["ExpLRConverter", "RunScheduler", "convert_online"]

_LN2 = math.log(2.0)
_U = 2.0**-53  # unit roundoff of float64, the hyper-parameters' arithmetic


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
    user group k = κ_t / c_t (the κ form, no 1/η: lr = 0 is an ordinary step); with the
    momentum seen last per group and the groups whose buffers were checked, and its
    checkpoint form."""

    __slots__ = ("C", "E", "k", "gamma_prev", "fresh_checked")

    def __init__(self) -> None:
        self.C = 1.0
        self.E = 0
        self.k: dict[int, float] = {}
        self.gamma_prev: dict[int, float] = {}
        self.fresh_checked: set[int] = set()

    def to_dict(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "E": self.E,
            "k": dict(self.k),
            "gamma_prev": dict(self.gamma_prev),
            "fresh_checked": sorted(self.fresh_checked),
        }

    def load(self, d: dict[str, Any]) -> None:
        """Restore from :meth:`to_dict` (keys may have become strings on the way)."""
        self.C, self.E = float(d["C"]), int(d["E"])
        self.k = {int(i): float(v) for i, v in d["k"].items()}
        self.gamma_prev = {int(i): float(v) for i, v in d["gamma_prev"].items()}
        self.fresh_checked = {int(i) for i in d["fresh_checked"]}

    def load_first_format(self, state: dict[str, Any], updates: int) -> None:
        """Restore from the first checkpoint format: one set, d_{t-1} and η_{t-1}, so that
        k_t = d/(η (1 + d))."""
        self.C, self.E = float(state["C"]), int(state["E"])
        d, lr = float(state["d_prev"]), float(state["lr_prev"])
        k = d / (lr * (1.0 + d)) if updates > 0 else 0.0
        gis = list(state.get("invariant_groups", [0]))
        self.k = dict.fromkeys(gis, k)
        self.gamma_prev = dict.fromkeys(gis, float(state["gamma_prev"])) if updates else {}
        self.fresh_checked = set(gis) if updates else set()


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
        invariant: the invariant sets (:func:`~equivalence.optim.inplace.as_sets`).
        norm_layers: the normalisers each set feeds (one list, or one list per set); ``None``
            with ``model`` finds them at the first update.
        model: the model, for the exact probe, names in messages, and ``remove()``.
        rescale_log2: keep the stored weights within [1, 2^R) times the stock ones by exact
            power-of-two rescaling (``None``: never rescale).
        adjust_eps: keep each normaliser's eps at ε m² (exact with any eps).
        weight_decay_schedule: optional stock weight decay per update
            (:class:`~equivalence.optim.scheduling.WeightDecaySchedule`, or its
            (per-update λ_t table, per-group factors)), applied to the param groups before
            each update reads them.
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
        weight_decay_schedule: WeightDecaySchedule | tuple[np.ndarray, list[float]] | None = None,
        check: bool = True,
    ) -> None:
        if not isinstance(optimizer, SGD):
            raise TypeError(
                f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}{_other_optimizer_hint(optimizer)}"
            )
        sets = as_sets(invariant)
        self.rescale_log2 = _check_rescale(rescale_log2)
        self.wd_schedule = (
            WeightDecaySchedule(*weight_decay_schedule)
            if isinstance(weight_decay_schedule, tuple)
            else weight_decay_schedule
        )
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
            self.wd_schedule.apply(self.optimizer.param_groups, t)
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
                eta, lam, gam, tau = _stock_hypers(layout[gi][0], gi, t)
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

    # -- checkpointing ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 2,
            "updates": self.updates,
            "sets": [st.to_dict() for st in self.states],
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
                st.load(d)
        else:
            self.states[0].load_first_format(state, self.updates)
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


def _stock_hypers(g: dict[str, Any], gi: int, t: int) -> tuple[float, float, float, float]:
    """(η_t, λ_t, γ_t, τ) of param group ``gi`` at update ``t``, each checked (plain SGD)."""
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
    tau = check_finite_hyper(g.get("dampening", 0.0), "dampening", gi, t, "0 <= dampening <= 1")
    return eta, lam, gam, tau


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
    if weight_decay_schedule is not None:
        wd_sched = WeightDecaySchedule.for_groups(
            weight_decay_schedule, opt.param_groups, default_weight_decay, steps
        )
        wd_sched.apply(opt.param_groups, 0)
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
