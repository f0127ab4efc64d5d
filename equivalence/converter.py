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
from .normalisers import NormLayers

__all__ = [
    "ExpLRConverter",
    "ConvertedRun",
    "RunScheduler",
    "ScheduleLR",
    "ConversionError",
    "make_scheduler",
    "convert",
    "convert_optimizer",
]

_STATE_KEY = "equivalence_converter"
_LN2 = math.log(2.0)
_ACCEPTED = (
    "a live scheduler (torch.optim.lr_scheduler.LRScheduler or ReduceLROnPlateau), a factory "
    "optimizer -> scheduler (e.g. lambda opt: MultiStepLR(opt, [100, 150])), a pure schedule from "
    "equivalence.schedules, a per-step array of learning rates, a plain callable step -> lr, or None"
)


class ConversionError(RuntimeError):
    """The converted run would leave the stock run at this step; raised instead of diverging."""


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


class ExpLRConverter:
    """Installs the online conversion on a stock ``SGD`` (see the module docstring).

    Args:
        optimizer: ``torch.optim.SGD``; its groups ``invariant_groups`` hold the
            scale-invariant set S (all of it, nothing else) and must agree on lr,
            weight decay and momentum at every step (one scale sequence for S).
        invariant_groups: indices of those groups.
        norm_layers: normalisers whose input scales with S.
        rescale_log2: keep the stored weights within [1, 2^R) times the stock ones by
            exact power-of-two rescaling (``None``: never rescale).
        adjust_eps: keep each normaliser's eps at ε m² (exact with any eps).
        weight_decay_schedule: optional (per-update λ_t table, per-group factors): the
            groups' ``weight_decay`` is set from it before each update.
        invariant: the parameters of S (default: everything in ``invariant_groups``);
            frozen parameters outside S may share their groups (SGD skips them).

    State: ``updates`` (real optimizer updates so far), ``C``/``E`` (c_t = C·2^E), the
    stored weights being θ_t / C; :meth:`current_scale` = 1/C.
    """

    def __init__(
        self,
        optimizer: SGD,
        invariant_groups: Sequence[int],
        *,
        norm_layers: Iterable[nn.Module] = (),
        rescale_log2: Any = 16,
        adjust_eps: bool = True,
        weight_decay_schedule: tuple[np.ndarray, list[float]] | None = None,
        invariant: Iterable[torch.Tensor] | None = None,
    ) -> None:
        if not isinstance(optimizer, SGD):
            raise TypeError(
                f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}{_other_optimizer_hint(optimizer)}"
            )
        self.optimizer = optimizer
        self.invariant_groups = [int(i) for i in invariant_groups]
        n = len(optimizer.param_groups)
        for i in self.invariant_groups:
            if not 0 <= i < n:
                raise ValueError(f"invariant group index {i} is outside the valid range 0..{n - 1}")
        self.n_groups = n
        self.norms = NormLayers(norm_layers, adjust_eps=adjust_eps)
        if len(self.norms) and not self.invariant_groups:
            raise ValueError("norm_layers given but no param group holds invariant parameters")
        self.rescale_log2 = _check_rescale(rescale_log2)
        self.wd_schedule = weight_decay_schedule
        in_groups = [p for i in self.invariant_groups for p in optimizer.param_groups[i]["params"]]
        ids = {id(p) for p in in_groups} if invariant is None else {id(p) for p in invariant}
        self._inv_params: list[torch.Tensor] = [p for p in in_groups if id(p) in ids]
        self._frozen: list[torch.Tensor] = [p for p in in_groups if id(p) not in ids]
        for p in self._frozen:
            if p.requires_grad:
                raise ValueError(
                    f"a trainable parameter of shape {tuple(p.shape)} outside the invariant set is in an "
                    "invariant param group; put it in a group of its own"
                )
        for i in self.invariant_groups:
            _check_plain_sgd(optimizer.param_groups[i], i)
        self._check_one_scale(0)
        if self.invariant_groups and weight_decay_schedule is None:
            g0 = optimizer.param_groups[self.invariant_groups[0]]
            q = 1.0 - float(g0["lr"]) * float(g0["weight_decay"])
            if not q > 0:
                raise ScaleSequenceError(
                    f"the scale sequence reaches zero or goes negative at update 1: c_1 = 1 - lr*weight_decay "
                    f"= {q:.6g} <= 0 with lr = {g0['lr']!r}, weight_decay = {g0['weight_decay']!r}"
                )
        # state: c_t = C · 2^E, d_{t−1}, η_{t−1}, updates taken
        self.updates = 0
        self.C = 1.0
        self.E = 0
        self.d_prev = 0.0
        self.lr_prev = 1.0
        self._gamma_prev = 0.0
        self.last_equivalent_lr: float | None = None  # as set on the groups (stored frame)
        self.last_log_equivalent_lr: float | None = None  # log η̃_t = log(stored) − 2 E ln 2
        self._pending: tuple[float, float, float, list[tuple[Any, Any]]] | None = None
        self.norms.set_scale(self.C)
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
            optimizer.register_state_dict_post_hook(self._state_dict_hook),
            optimizer.register_load_state_dict_pre_hook(self._load_pre_hook),
            optimizer.register_load_state_dict_post_hook(self._load_post_hook),
        ]
        self._incoming: dict[str, Any] | None = None

    # -- the step ------------------------------------------------------------------------
    def _pre_step(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        if self._pending is not None:
            self._restore(self._pending[3])
            self._pending = None
            raise ConversionError(
                "the previous optimizer.step() did not complete (it raised); the converted run "
                "cannot tell how far it got. Restore from a checkpoint"
            )
        groups = opt.param_groups
        t = self.updates
        if len(groups) != self.n_groups:
            raise ConversionError(
                f"the optimizer has {len(groups)} param groups at update {t} but was converted with "
                f"{self.n_groups}; param groups cannot be added to a converted run"
            )
        if not self.invariant_groups:
            self.updates += 1
            return
        if self.wd_schedule is not None:
            self._apply_wd_schedule(t)
        self._check_one_scale(t)
        g0 = groups[self.invariant_groups[0]]
        eta, lam, gamma = float(g0["lr"]), float(g0["weight_decay"]), float(g0["momentum"])
        if not (eta > 0 and math.isfinite(eta)):
            raise ConversionError(
                f"lr = {eta!r} at update {t}; the equivalence needs a finite lr > 0 at every update "
                "(valid range 0 < lr < inf; a per-step lr_scheduler array gives nan past its end)"
            )
        if not (lam >= 0 and math.isfinite(lam)):
            raise ConversionError(
                f"weight_decay = {lam!r} at update {t} is outside the valid range 0 <= weight_decay < inf"
            )
        if t > 0 and (gamma == 0) != (self._gamma_prev == 0):
            raise ConversionError(
                f"momentum changed from {self._gamma_prev!r} to {gamma!r} at update {t}; PyTorch's SGD keeps "
                "no momentum buffer at momentum 0, so switching momentum on or off mid-run is not covered"
            )
        for p in self._frozen:
            if p.grad is not None:
                raise ConversionError(
                    f"a parameter of shape {tuple(p.shape)} outside the invariant set, frozen at conversion, "
                    f"has a gradient at update {t}: it would get the invariant set's η̃ and no decay"
                )
        has_closure = (len(args) > 1 and args[1] is not None) or kwargs.get("closure") is not None
        for p in () if has_closure else self._inv_params:  # a closure makes the gradients in step()
            if p.grad is None:
                raise ConversionError(
                    f"optimizer.step() at update {t} found no gradient for an invariant parameter of shape "
                    f"{tuple(p.shape)}; stock SGD skips such a parameter (no weight decay either), which the "
                    "converted run cannot match. Give every invariant parameter a gradient (zero_grad() "
                    "with set_to_none=False keeps zeros)"
                )
        d = gamma * (eta / self.lr_prev) * self.d_prev / (1.0 + self.d_prev) - eta * lam
        if not d > -1.0:
            raise ScaleSequenceError(
                f"the scale sequence reaches zero or goes negative at update {t + 1}: c_{t + 1}/c_{t} = "
                f"{1.0 + d:.6g} <= 0 with lr = {eta!r}, weight_decay = {lam!r}, momentum = {gamma!r}. The "
                "weight-decay run shrinks the scale-invariant weights through zero there (for constant "
                "hyper-parameters the equivalence needs lr*weight_decay <= (1 - sqrt(momentum))**2)"
            )
        c_next = self.C * (1.0 + d)
        lr_eq = eta / (self.C * c_next)
        saved = []
        for i in self.invariant_groups:
            g = groups[i]
            saved.append((g["lr"], g["weight_decay"]))
            g["lr"] = lr_eq
            g["weight_decay"] = 0.0
        self._pending = (d, c_next, eta, saved)
        self._gamma_prev = gamma
        self.last_equivalent_lr = lr_eq
        self.last_log_equivalent_lr = math.log(lr_eq) - 2 * self.E * _LN2

    def _restore(self, saved: list[tuple[Any, Any]]) -> None:
        groups = self.optimizer.param_groups
        for i, (lr, wd) in zip(self.invariant_groups, saved):
            groups[i]["lr"] = lr
            groups[i]["weight_decay"] = wd

    def _post_step(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        if self._pending is None:
            return
        d, c_next, eta, saved = self._pending
        self._pending = None
        self._restore(saved)
        self.norms.correct(self.C / c_next)
        self.C = c_next
        self.d_prev = d
        self.lr_prev = eta
        self.updates += 1
        r = self.rescale_log2
        if r is not None and not (-r < math.log2(c_next) <= 0.0):
            self._rescale(math.floor(-math.log2(c_next) / r) * r)
        self.norms.set_scale(self.C)

    @torch.no_grad()
    def _rescale(self, k: int) -> None:
        """C ← C·2^k, E ← E − k: weights × 2^−k, buffers × 2^k, running stats × 2^−k, 4^−k."""
        if k == 0:
            return
        s = math.ldexp(1.0, -k)
        torch._foreach_mul_(self._inv_params, s)
        bufs = [
            b
            for p in self._inv_params
            if (b := self.optimizer.state.get(p, {}).get("momentum_buffer")) is not None
        ]
        if bufs:
            torch._foreach_mul_(bufs, 1.0 / s)
        self.norms.correct(s)
        self.C = math.ldexp(self.C, k)
        self.E -= k

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

    def _check_one_scale(self, t: int) -> None:
        groups = self.optimizer.param_groups
        if len(self.invariant_groups) < 2:
            if self.invariant_groups:
                _check_plain_sgd(groups[self.invariant_groups[0]], self.invariant_groups[0], t)
            return
        i0 = self.invariant_groups[0]
        ref = groups[i0]
        _check_plain_sgd(ref, i0, t)
        for j in self.invariant_groups[1:]:
            g = groups[j]
            _check_plain_sgd(g, j, t)
            for key in ("lr", "weight_decay", "momentum"):
                if g[key] != ref[key]:
                    raise ValueError(
                        f"invariant spans param groups {i0} and {j}, whose {key} differ at update {t} "
                        f"({ref[key]!r} vs {g[key]!r}): they would get different scale sequences c_t. "
                        "The loss is invariant to scaling the invariant set as a whole, not its parts by "
                        "different factors. Give every invariant parameter the same lr, weight_decay and "
                        "momentum, or convert each independently invariant part separately"
                    )

    # -- inspection ------------------------------------------------------------------------
    def current_scale(self) -> float:
        """m_t = 1/C_t with stored θ = m_t · θ_stock on the invariant set."""
        return 1.0 / self.C

    def log_current_scale(self) -> float:
        """log m_t."""
        return -math.log(self.C)

    def log_scale_factor(self) -> float:
        """log c_t (= log C_t + E_t ln 2; θ̃_t = θ_t / c_t before rescaling)."""
        return math.log(self.C) + self.E * _LN2

    # -- checkpointing ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "C": self.C,
            "E": self.E,
            "d_prev": self.d_prev,
            "lr_prev": self.lr_prev,
            "gamma_prev": self._gamma_prev,
            "rescale_log2": self.rescale_log2,
            "invariant_groups": list(self.invariant_groups),
            "invariant_sizes": [int(p.numel()) for p in self._inv_params],
            "user_eps": list(self.norms.user_eps),
            "adjust_eps": self.norms.adjust_eps,
        }

    def _state_dict_hook(self, opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        state_dict[_STATE_KEY] = self.state()
        return state_dict

    def _load_pre_hook(self, opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        mine = state_dict.pop(_STATE_KEY, None)
        if mine is None:
            raise ValueError(
                "this optimizer state_dict holds no converter state: it was saved by a stock optimizer. "
                "To continue a stock run converted, load it into the stock optimizer (and the stock "
                "weights into the model) and call equivalence.convert_optimizer on it"
            )
        expect = self.state()
        diffs = [
            f"{name} {mine.get(key)!r} (checkpoint) vs {expect[key]!r} (this run)"
            for key, name in (
                ("rescale_log2", "rescale_log2"),
                ("invariant_groups", "the invariant param groups"),
                ("invariant_sizes", "the invariant parameters' sizes"),
                ("user_eps", "the normalisers' eps"),
                ("adjust_eps", "adjust_eps"),
            )
            if mine.get(key) != expect[key]
        ]
        if diffs:
            raise ValueError(
                "the checkpoint was saved by a different conversion: " + "; ".join(diffs)
            )
        self._incoming = mine
        return state_dict

    def _load_post_hook(self, opt: Optimizer) -> None:
        s = self._incoming
        if s is None:
            return
        self._incoming = None
        self.updates = int(s["updates"])
        self.C = float(s["C"])
        self.E = int(s["E"])
        self.d_prev = float(s["d_prev"])
        self.lr_prev = float(s["lr_prev"])
        self._gamma_prev = float(s["gamma_prev"])
        self.norms.set_scale(self.C)

    def remove(self) -> None:
        """Uninstall the hooks and give the normalisers back the user's eps."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.norms.restore_eps()


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
    if group.get("dampening", 0) != 0:
        raise ValueError(
            f"param_groups[{i}] has dampening = {group['dampening']!r}{when}; this converter needs "
            "dampening = 0: use equivalence.convert_sgd_variant (proofs/dampening.py)"
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
        return [self.converter.E if i in inv else 0 for i in range(self.converter.n_groups)]


# -- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConvertedRun:
    """The converted run: a stock SGD (``optimizer``), its scheduler, and the conversion.

    ``converter`` is the online :class:`ExpLRConverter` (``None`` for the precomputed
    forms, whose ``scheduler`` is an :class:`~equivalence.torch_sgd.EquivalentLR` and
    whose ``schedules`` hold the precomputed recipes).
    """

    optimizer: SGD
    scheduler: Any
    schedules: list[Any] = field(default_factory=list)
    converter: ExpLRConverter | None = None
    invariant: tuple[torch.Tensor, ...] = ()

    def current_scale(self) -> float:
        """m with stored θ = m · θ_stock on the invariant set."""
        if self.converter is not None:
            return self.converter.current_scale()
        return float(self.scheduler.current_scale())

    def log2_rescale(self) -> int:
        """k of the power-of-two rescaling: stored θ = 2^k θ̃ on the invariant set (0 if none)."""
        if self.converter is not None:
            return int(self.converter.E) if self.converter.invariant_groups else 0
        g = self.scheduler.norm_group
        return int(self.scheduler.log2_scale[g]) if g is not None else 0

    def last_log_equivalent_lr(self) -> float | None:
        """log η̃_t of the last update taken on the invariant set (unrescaled; None before one).

        η̃_t = η_t / (c_t c_{t+1}) (the general theorem, ``proofs/general_schedule.py``), with
        t the index of that update; the param groups of the online run hold the stock η
        between updates, so their ``lr`` is not η̃.
        """
        if self.converter is not None:
            return self.converter.last_log_equivalent_lr
        sched = self.scheduler
        t = int(sched.last_epoch) - 1
        g = sched.norm_group
        if t < 0 or g is None:
            return None
        return float(sched.schedules[g].log_lrs[t])

    @torch.no_grad()
    def clip_grad_norm_(
        self, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
    ) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` of the **stock** run, applied to this run.

        ∇L(θ/c) = c ∇L(θ), so the stock gradient of an invariant parameter is
        g = m g̃ (m = :meth:`current_scale`). The total norm is taken over the stock
        gradients (invariant ones rescaled by m, the others as they are) and the stock
        clip coefficient min(1, max_norm / (norm + 1e-6)) multiplies every gradient of
        the run: the clipped converted run equals the clipped stock run. Returns the
        stock run's total norm. (``clip_grad_norm_`` called on the converted run's own
        gradients measures g̃ = g/m and clips at the wrong threshold.)
        """
        inv_ids = {id(p) for p in self.invariant}
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return torch.tensor(0.0)
        grads = [p.grad for p in params]
        norms = torch._foreach_norm(grads, norm_type)
        m = self.current_scale()
        stock = [n * m if id(p) in inv_ids else n for n, p in zip(norms, params)]
        total = torch.linalg.vector_norm(
            torch.stack([n.to(stock[0].dtype) for n in stock]), norm_type
        )
        if error_if_nonfinite and not bool(torch.isfinite(total)):
            raise RuntimeError(
                f"the total norm of order {norm_type} of the stock gradients is non-finite ({float(total)})"
            )
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        torch._foreach_mul_(grads, coef.to(grads[0].device))
        return total

    def remove(self) -> None:
        """Uninstall the conversion's hooks and restore the normalisers' eps."""
        if self.converter is not None:
            self.converter.remove()


def _split_groups(
    ref_groups: list[dict[str, Any]], inv_ids: set[int]
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Split each group into its invariant and other parameters (stock values kept in both)."""
    new_groups: list[dict[str, Any]] = []
    inv_groups: list[int] = []
    origin: list[int] = []
    for gi, group in enumerate(ref_groups):
        extra = {k: v for k, v in group.items() if k != "params"}
        inv = [p for p in group["params"] if id(p) in inv_ids]
        rest = [p for p in group["params"] if id(p) not in inv_ids]
        if inv and all(not p.requires_grad for p in rest):
            # frozen parameters ride along with the invariant ones (SGD skips them, no gradient):
            # the group is not split, so a scheduler of the user's optimizer still fits
            inv, rest = group["params"], []
        if inv:
            inv_groups.append(len(new_groups))
            new_groups.append({"params": inv, **extra})
            origin.append(gi)
        if rest:
            new_groups.append({"params": rest, **extra})
            origin.append(gi)
    return new_groups, inv_groups, origin


def convert_online(
    ref: SGD,
    *,
    invariant: Iterable[torch.Tensor],
    lr_scheduler: Any = None,
    weight_decay_schedule: Any = None,
    default_weight_decay: float = 0.0,
    steps: int | None = None,
    norm_layers: Iterable[nn.Module] = (),
    rescale_log2: Any = 16,
    adjust_eps: bool = True,
    copy_state: bool = False,
) -> ConvertedRun:
    """The online conversion of the groups (and, with ``copy_state``, the momentum buffers) of ``ref``."""
    inv_list = list(invariant)
    inv_ids = {id(p) for p in inv_list}
    all_ids = {id(p) for g in ref.param_groups for p in g["params"]}
    missing = inv_ids - all_ids
    if missing:
        raise ValueError(f"{len(missing)} tensor(s) in invariant are not among params")
    groups, inv_groups, origin = _split_groups(ref.param_groups, inv_ids)
    wd_sched = None
    if weight_decay_schedule is not None:
        n = steps if steps is not None else len(weight_decay_schedule)
        table = as_weight_decay_array(weight_decay_schedule, n, "weight_decay_schedule")
        if default_weight_decay != 0:
            factors = [float(g["weight_decay"]) / default_weight_decay for g in groups]
        else:
            own = [
                (origin[i], g["weight_decay"])
                for i, g in enumerate(groups)
                if g["weight_decay"] != 0
            ]
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
    opt = SGD(
        groups,
        lr=ref.defaults["lr"],
        momentum=ref.defaults.get("momentum", 0.0),
        weight_decay=ref.defaults.get("weight_decay", 0.0),
    )
    if copy_state:
        for p in (q for g in groups for q in g["params"]):
            buf = ref.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                opt.state[p]["momentum_buffer"] = buf.detach().clone()
    converter = ExpLRConverter(
        opt,
        inv_groups,
        norm_layers=norm_layers,
        rescale_log2=rescale_log2,
        adjust_eps=adjust_eps,
        weight_decay_schedule=wd_sched,
        invariant=inv_list,
    )
    inner = make_scheduler(lr_scheduler, opt)
    return ConvertedRun(opt, RunScheduler(converter, inner), [], converter, tuple(inv_list))


def convert(
    params: Iterable[Any],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    invariant: Iterable[torch.Tensor],
    steps: int | None = None,
    lr_scheduler: Any = None,
    weight_decay_schedule: Sequence[float] | np.ndarray | None = None,
    norm_layers: Iterable[nn.Module] = (),
    form: str = "general",
    rescale_log2: Any = 16,
    online: bool | None = None,
    adjust_eps: bool = True,
) -> ConvertedRun:
    """The exponential-LR equivalent of ``SGD(params, lr, momentum, weight_decay)`` + a schedule.

    ``params`` is what you would pass to ``torch.optim.SGD`` (tensors or group dicts);
    ``invariant`` the parameters in which the loss is jointly scale invariant (see
    :func:`equivalence.audit`); ``norm_layers`` the normalisers fed by them. Each group
    is split into its invariant part (η̃_t and no weight decay during each step) and the
    rest (its own η_t and λ_t, exact because its gradient depends only on the network
    function).

    ``form="general"`` (default, ``online``): the online conversion of
    :class:`ExpLRConverter` — the param groups keep the stock values, so any scheduler
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
            norm_layers=norm_layers,
            form=form,
            rescale_log2=rescale_log2,
        )
    ref = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)  # validates like SGD
    return convert_online(
        ref,
        invariant=invariant,
        lr_scheduler=lr_scheduler,
        weight_decay_schedule=weight_decay_schedule,
        default_weight_decay=float(weight_decay),
        steps=steps,
        norm_layers=norm_layers,
        rescale_log2=rescale_log2,
        adjust_eps=adjust_eps,
    )


def convert_optimizer(
    optimizer: SGD,
    *,
    invariant: Iterable[torch.Tensor],
    steps: int | None = None,
    lr_scheduler: Any = None,
    norm_layers: Iterable[nn.Module] = (),
    form: str = "general",
    rescale_log2: Any = 16,
    online: bool | None = None,
    adjust_eps: bool = True,
) -> ConvertedRun:
    """:func:`convert` for an existing ``torch.optim.SGD``, at any point of its run.

    The new optimizer has the same parameters, groups and current hyper-parameters, and
    a copy of every momentum buffer: from any state, c_0 = 1, c_1 = 1 − η_0 λ_0 and the
    buffer copied as is continue the stock run exactly (``proofs/mid_run.py``). The model
    keeps its current weights (scale 1 at conversion). A live ``lr_scheduler`` attached
    to ``optimizer`` is copied onto the new optimizer with its state (the original is
    not touched) and becomes ``run.scheduler``. ``optimizer`` itself is left as it was.
    """
    if not isinstance(optimizer, SGD):
        raise TypeError(
            f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}{_other_optimizer_hint(optimizer)}"
        )
    use_online = form == "general" if online is None else bool(online)
    if not use_online:
        from .torch_sgd import convert_optimizer_precomputed

        if steps is None:
            raise ValueError(f"form = {form!r} precomputes the schedule: give steps")
        return convert_optimizer_precomputed(
            optimizer,
            steps=steps,
            invariant=invariant,
            lr_scheduler=lr_scheduler,
            norm_layers=norm_layers,
            form=form,
            rescale_log2=rescale_log2,
        )
    return convert_online(
        optimizer,
        invariant=invariant,
        lr_scheduler=lr_scheduler,
        steps=steps,
        norm_layers=norm_layers,
        rescale_log2=rescale_log2,
        adjust_eps=adjust_eps,
        copy_state=True,
    )
