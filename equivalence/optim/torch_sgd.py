r"""The precomputed path: stock ``torch.optim.SGD`` driven by a log-space schedule.

:func:`equivalence.convert` converts online by default (:mod:`equivalence.optim.online`).
This module keeps the precomputed path, which the closed form and TEXP need (their
momentum-buffer shifts are fixed in advance) and ``online=False`` selects for the general
form: the whole recipe is read ahead (:func:`lrs_from_scheduler`) into an
:class:`~equivalence.schedule.recipe.ExpLRSchedule` (log η̃_t, log c_t in float64 log space) and
:class:`EquivalentLR`, an ``LRScheduler`` stepped once after every optimizer step, does
the book-keeping that keeps the no-WD run *exactly* equal to θ_t / c_t:

1. eval-mode BatchNorm (the project's derivation, ``proofs/rescaling.py``):
   after step t multiply ``running_mean`` by c_t/c_{t+1} and ``running_var`` by
   (c_t/c_{t+1})²; every normaliser's eps is kept at ε m_t² (``proofs/normaliser_eps.py``);
2. exact rescaling: (θ_S, v_S, η̃, mean, var) → (sθ_S, v_S/s, s²η̃, s·mean,
   s²·var) leaves every later network function unchanged; with s a power of
   two it changes no mantissa, so the stored weights stay within [1, 2^R) times
   the WD run's, and float32 or bfloat16 never overflow;
3. momentum-buffer shifts of the closed form and of exact TEXP
   (ṽ ← ṽ + δ_t c_t² θ̃_t at the start of step t).

A precomputed schedule cannot follow what happens during the run, so
:class:`EquivalentLR` refuses it at the step where it happens (never a silent
difference): an optimizer update skipped (``GradScaler``) or repeated (a scheduler stepped
per epoch) between two of its steps, or an LR changed by anything else.
"""

from __future__ import annotations

import copy
import hashlib
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from torch import nn
from torch.optim import SGD, Optimizer
from torch.optim.lr_scheduler import LRScheduler

from ..invariance.layer_kinds import has_running_stats
from ..schedule.recipe import FORMS, ExpLRSchedule
from ..schedule.schedules import materialize
from ..schedule.validation import as_lr_array, as_weight_decay_array, check_steps
from .inplace import ConversionError
from .normalisers import NormLayers
from .recipe_record import RecipeRecord
from .run import ConvertedRun
from .scheduling import make_scheduler

__all__ = [
    "PlainSchedule",
    "EquivalentLR",
    "ConvertedRun",
    "convert_precomputed",
    "convert_optimizer_precomputed",
    "lrs_from_scheduler",
    "is_norm_layer",
]

_LN2 = math.log(2.0)

SchedulerSpec = Union[  # noqa: UP007 - a runtime alias; `|` of these types needs Python 3.10+ objects
    None,
    LRScheduler,
    Callable[[Optimizer], LRScheduler],
    Callable[[Any], Any],
    Sequence[float],
    np.ndarray,
]


def is_norm_layer(module: nn.Module) -> bool:
    """True for modules with running statistics (BatchNorm*, InstanceNorm with tracking)."""
    return has_running_stats(module)


@dataclass(frozen=True, eq=False)
class PlainSchedule:
    """A parameter group that keeps its original recipe: LR η_t and weight decay λ_t per step."""

    lrs: np.ndarray
    weight_decay: np.ndarray

    @classmethod
    def make(cls, lrs: Any, weight_decay: Any) -> PlainSchedule:
        lr = as_lr_array(lrs)
        return cls(lr, as_weight_decay_array(weight_decay, lr.size))

    @property
    def steps(self) -> int:
        return int(self.lrs.size)

    def fingerprint(self) -> str:
        """A short hash identifying the schedule (checked on ``load_state_dict``)."""
        return hashlib.sha256(self.lrs.tobytes() + self.weight_decay.tobytes()).hexdigest()[:16]


def _pow2_float(log_value: float, log2_extra: int) -> float:
    """exp(log_value) · 2^log2_extra, with a mantissa that does not depend on ``log2_extra``.

    Splitting log_value = n ln 2 + f and returning ldexp(exp(f), n + k) makes
    the rescaled LR exactly 4^k times the unrescaled one (no rounding moves).
    """
    n = math.floor(log_value / _LN2)
    f = log_value - n * _LN2
    return math.ldexp(math.exp(f), n + log2_extra)


class EquivalentLR(LRScheduler):
    """Sets η̃_t on the scale-invariant groups of a stock ``SGD`` and the original recipe elsewhere.

    Args:
        optimizer: a ``torch.optim.SGD`` with ``dampening=0``, ``nesterov=False``.
        schedules: one entry per param group: an :class:`ExpLRSchedule` for a
            group of scale-invariant parameters (the group's ``weight_decay``
            must be 0 and its ``momentum`` the schedule's), or a
            :class:`PlainSchedule` for a group that keeps its LR and WD.
        norm_layers: modules whose running statistics are corrected for eval
            mode (their inputs must scale with the invariant group's weights).
        norm_group: index of the invariant group whose scale the norm layers
            follow (default: the first ``ExpLRSchedule`` group).
        rescale_log2: rescale by powers of two so the stored weights stay within
            [1, 2^rescale_log2) times the WD run's; ``None`` disables it.
        last_epoch: as for every PyTorch scheduler (-1 to start).

    ``last_epoch`` is the index t of the next optimizer step; it may reach T
    (after the last step) but not go beyond. ``current_scale(g)`` returns the
    factor m with stored θ = m · θ_WD for group g.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedules: Sequence[ExpLRSchedule | PlainSchedule],
        *,
        norm_layers: Iterable[nn.Module] = (),
        norm_group: int | None = None,
        rescale_log2: float | None = 16.0,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}")
        groups = optimizer.param_groups
        if len(schedules) != len(groups):
            raise ValueError(
                f"schedules has {len(schedules)} entries but the optimizer has {len(groups)} param groups"
            )
        self.schedules = list(schedules)
        steps = {s.steps for s in self.schedules}
        if len(steps) != 1:
            raise ValueError(
                f"all schedules must have the same number of steps, got {sorted(steps)}"
            )
        self.total_steps = steps.pop()
        self._record = RecipeRecord(self.schedules)  # what a checkpoint says about the recipe
        for i, (group, sched) in enumerate(zip(groups, self.schedules)):
            _check_group(i, group, sched)
        exp_groups = [i for i, s in enumerate(self.schedules) if isinstance(s, ExpLRSchedule)]
        self.norm_layers = [m for m in norm_layers]
        self._eps = NormLayers(
            self.norm_layers
        )  # ε m² on every normaliser (proofs/normaliser_eps.py)
        self.log2_scale = [0] * len(groups)
        if self.norm_layers and not exp_groups:
            raise ValueError("norm_layers given but no param group follows an ExpLRSchedule")
        self.norm_group = exp_groups[0] if norm_group is None and exp_groups else norm_group
        if rescale_log2 is not None and not (1 <= rescale_log2 <= 512):
            raise ValueError(
                f"rescale_log2 = {rescale_log2!r} is outside the valid range [1, 512] (or None)"
            )
        self.rescale_log2 = rescale_log2

        self._updates = 0  # optimizer updates since the last step()
        super().__init__(optimizer, last_epoch)
        self._hooks = [
            optimizer.register_step_pre_hook(self._check_lrs),
            optimizer.register_step_post_hook(self._count_update),
        ]

    # -- count discipline ---------------------------------------------------------------
    def _check_lrs(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        """Refuse an update whose LRs are not the ones this scheduler set."""
        for g, (group, lr) in enumerate(zip(opt.param_groups, self._last_lr)):
            if group["lr"] != lr:
                raise ConversionError(
                    f"param_groups[{g}]['lr'] = {group['lr']!r} at step {self.last_epoch}, but EquivalentLR "
                    f"set {lr!r}: something else (another scheduler, a hand edit) changed it, which the "
                    "precomputed schedule cannot follow. Use the online conversion (form='general'), "
                    "which reads the stock values at every step"
                )
        if self._updates:
            raise ConversionError(
                f"optimizer.step() called twice at step {self.last_epoch} of EquivalentLR without "
                "scheduler.step() in between; the precomputed schedule needs exactly one scheduler.step() "
                "after every optimizer.step() (use form='general' for per-epoch schedulers)"
            )

    def _count_update(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        self._updates += 1

    # -- the schedule ---------------------------------------------------------------
    def _target_log2(self, g: int, t: int) -> int:
        sched = self.schedules[g]
        if self.rescale_log2 is None or not isinstance(sched, ExpLRSchedule):
            return 0
        inv_c = -sched.log_scales[t] / _LN2  # log2(1/c_t)
        r = self.rescale_log2
        return -int(math.floor(inv_c / r) * r)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        t = self.last_epoch
        t = min(t, self.total_steps - 1)
        out: list[float] = []
        for g, sched in enumerate(self.schedules):
            if isinstance(sched, ExpLRSchedule):
                out.append(_pow2_float(float(sched.log_lrs[t]), 2 * self.log2_scale[g]))
            else:
                out.append(float(sched.lrs[t]))
        return out

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise ValueError(
                "EquivalentLR.step() takes no epoch argument (its LR depends on every step)"
            )
        t_new = self.last_epoch + 1
        if t_new >= 1 and self._updates != 1:
            raise ConversionError(
                f"EquivalentLR.step() at step {t_new} follows {self._updates} optimizer updates; the "
                "precomputed schedule needs exactly one optimizer.step() before each scheduler.step() (an "
                "update skipped by GradScaler, or a scheduler stepped per epoch, would silently depart "
                "from the stock run). Use the online conversion (form='general'), exact in both cases"
            )
        self._updates = 0
        if t_new > self.total_steps:
            raise IndexError(
                f"EquivalentLR was built for {self.total_steps} steps and step {t_new} was requested; "
                "build the schedule with more steps"
            )
        with torch.no_grad():
            if t_new >= 1:
                self._correct_norm_layers(t_new - 1)
            for g in range(len(self.schedules)):
                k = self._target_log2(g, t_new)
                if k != self.log2_scale[g]:
                    self._rescale_group(g, k - self.log2_scale[g])
            # what LRScheduler.step does, minus its per-call warning machinery
            self._step_count += 1
            self.last_epoch = t_new
            values = self.get_lr()
            for group, lr in zip(self.optimizer.param_groups, values):
                group["lr"] = lr
            self._last_lr = list[float | torch.Tensor](values)
            if self.norm_group is not None:
                self._eps.set_scale(math.exp(-self.log_current_scale(self.norm_group)))
            for g, sched in enumerate(self.schedules):
                group = self.optimizer.param_groups[g]
                if isinstance(sched, PlainSchedule):
                    group["weight_decay"] = float(sched.weight_decay[min(t_new, sched.steps - 1)])
                elif t_new in sched.buffer_shifts and group["momentum"] != 0:
                    self._shift_buffers(g, t_new, sched.buffer_shifts[t_new])

    # -- side effects -------------------------------------------------------------------
    def _correct_norm_layers(self, t: int) -> None:
        if not self.norm_layers or self.norm_group is None:
            return
        sched = self.schedules[self.norm_group]
        assert isinstance(sched, ExpLRSchedule)
        ratio = math.exp(float(sched.log_scales[t] - sched.log_scales[t + 1]))  # c_t / c_{t+1}
        self._eps.correct(ratio)

    def _rescale_group(self, g: int, k: int) -> None:
        """Multiply group g's weights by 2^k, its buffers by 2^−k (LR by 4^k via log2_scale)."""
        s = math.ldexp(1.0, k)
        for p in self.optimizer.param_groups[g]["params"]:
            p.mul_(s)
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_(1.0 / s)
        if g == self.norm_group and self.norm_layers:
            self._eps.correct(s)
        self.log2_scale[g] += k

    def _shift_buffers(self, g: int, t: int, delta: float) -> None:
        sched = self.schedules[g]
        assert isinstance(sched, ExpLRSchedule)
        # ṽ += δ c_t² θ̃ (unrescaled)  ⇔  v_stored += δ c_t² 4^−k θ_stored
        coef = delta * math.exp(2.0 * float(sched.log_scales[t]) - 2.0 * self.log2_scale[g] * _LN2)
        for p in self.optimizer.param_groups[g]["params"]:
            state = self.optimizer.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = p.detach().clone().mul_(coef)
            else:
                buf.add_(p.detach(), alpha=coef)

    # -- inspection -----------------------------------------------------------------------
    def current_scale(self, group: int | None = None) -> float:
        """m_t with stored θ = m_t · θ_WD (= 2^k / c_t) at the current step."""
        g = self.norm_group if group is None else group
        if g is None:
            return 1.0
        return math.exp(self.log_current_scale(g))

    def log_current_scale(self, group: int) -> float:
        sched = self.schedules[group]
        if not isinstance(sched, ExpLRSchedule):
            return 0.0
        t = self.last_epoch
        return self.log2_scale[group] * _LN2 - float(sched.log_scales[t])

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "log2_scale": list(self.log2_scale),
            "_last_lr": list(self._last_lr),
            "recipe": self._record.describe(self.last_epoch + 1),
            "rescale_log2": self.rescale_log2,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume; refused with the differing hyper-parameters named when the runs differ.

        Only the steps already taken must agree: a run built with more ``steps`` (same
        recipe so far) resumes.
        """
        t = int(state_dict["last_epoch"])
        theirs = state_dict.get("recipe")
        if theirs is None:
            raise ValueError("state_dict was not saved by EquivalentLR (it has no 'recipe' entry)")
        diffs = self._record.differences(theirs, t, self.total_steps)
        if state_dict.get("rescale_log2") != self.rescale_log2:
            diffs.append(
                f"rescale_log2 {state_dict.get('rescale_log2')!r} (checkpoint) vs "
                f"{self.rescale_log2!r} (this run)"
            )
        if diffs:
            raise ValueError(
                "state_dict was saved by an EquivalentLR with a different recipe: "
                + "; ".join(diffs)
            )
        self.last_epoch = t
        self._step_count = int(state_dict["_step_count"])
        self.log2_scale = [int(k) for k in state_dict["log2_scale"]]
        self._last_lr = list(state_dict["_last_lr"])
        self._updates = 0
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr
        if self.norm_group is not None:
            self._eps.set_scale(math.exp(-self.log_current_scale(self.norm_group)))


def _check_group(i: int, group: dict[str, Any], sched: ExpLRSchedule | PlainSchedule) -> None:
    if group.get("nesterov", False):
        raise ValueError(
            f"param_groups[{i}] uses nesterov=True; the equivalence is proved for plain momentum "
            "(nesterov=False) only"
        )
    if group.get("dampening", 0) != 0:
        raise ValueError(
            f"param_groups[{i}] has dampening = {group['dampening']!r}; the equivalence needs dampening = 0"
        )
    if isinstance(sched, ExpLRSchedule):
        if group.get("weight_decay", 0) != 0:
            raise ValueError(
                f"param_groups[{i}] follows an ExpLRSchedule but has weight_decay = "
                f"{group['weight_decay']!r}; the exponential-LR run must use weight_decay = 0"
            )
        if float(group.get("momentum", 0)) != sched.momentum:
            raise ValueError(
                f"param_groups[{i}] has momentum = {group.get('momentum')!r} but its schedule was built "
                f"for momentum = {sched.momentum!r}"
            )
        if group.get("maximize", False):
            raise ValueError(
                f"param_groups[{i}] has maximize=True, which the theorem does not cover"
            )
    elif not isinstance(sched, PlainSchedule):
        raise TypeError(
            f"schedules[{i}] must be an ExpLRSchedule or a PlainSchedule, got {type(sched).__name__}"
        )


def lrs_from_scheduler(
    scheduler: SchedulerSpec, steps: int, base_lrs: Sequence[float] | None = None
) -> np.ndarray:
    """Read the per-step LRs a stock PyTorch scheduler would set, as a (steps, groups) array.

    ``scheduler`` is any ``lr_scheduler=`` form of :func:`equivalence.optim.scheduling.make_scheduler`:
    a live scheduler (read from its current step on, without touching it or its
    optimizer: it is copied onto dummy parameters), a factory ``optimizer -> scheduler``
    or a schedule ``step -> lr`` (applied to a dummy SGD whose groups have ``base_lrs``),
    a per-step array, or ``None`` (constant ``base_lrs``).
    """
    n = check_steps(steps)
    if scheduler is None:
        if base_lrs is None:
            raise ValueError("base_lrs is needed when scheduler is None")
        return np.tile(np.asarray(base_lrs, dtype=np.float64), (n, 1))
    if isinstance(scheduler, (Sequence, np.ndarray)) and not isinstance(scheduler, (str, bytes)):
        return materialize(scheduler, n)[:, None]
    if isinstance(scheduler, LRScheduler):
        opt = scheduler.optimizer
        memo: dict[int, Any] = {
            id(p): torch.zeros(1) for grp in opt.param_groups for p in grp["params"]
        }
        memo[id(opt.state)] = {}
        sched: Any = copy.deepcopy(scheduler, memo)
    else:
        if base_lrs is None:
            raise ValueError("base_lrs is needed to apply a scheduler factory or a schedule")
        dummy = SGD(
            [{"params": [torch.zeros(1)], "lr": float(lr)} for lr in base_lrs],
            lr=float(base_lrs[0]),
        )
        sched = make_scheduler(scheduler, dummy)  # TypeError naming anything not accepted
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TypeError(
            "ReduceLROnPlateau sets its LRs from the run's metrics, so they cannot be read ahead of time; "
            "use the online conversion (equivalence.convert with form='general'), which follows it exactly"
        )
    out = np.empty((n, len(sched.optimizer.param_groups)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(n):
            out[t] = [float(g["lr"]) for g in sched.optimizer.param_groups]
            if t + 1 < n:
                sched.step()
    return out


def convert_precomputed(
    params: Iterable[Any],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    steps: int | None,
    invariant: Iterable[torch.Tensor],
    lr_scheduler: SchedulerSpec = None,
    weight_decay_schedule: Sequence[float] | np.ndarray | None = None,
    norm_layers: Iterable[nn.Module] = (),
    form: str = "general",
    rescale_log2: float | None = 16.0,
) -> ConvertedRun:
    """Build the exponential-LR equivalent of ``SGD(params, lr, momentum, weight_decay)`` + a schedule.

    ``params`` is what you would pass to ``torch.optim.SGD`` (tensors or group
    dicts with their own ``lr``/``weight_decay``); ``lr_scheduler`` is a
    stock scheduler factory such as ``lambda opt: MultiStepLR(opt, [...])``,
    a pure schedule, a per-step array or ``None``; ``invariant`` are the
    parameters in which the loss is (jointly) scale invariant (see
    :func:`equivalence.audit`). Each group is split in two: its invariant
    parameters get η̃_t (``form``: general theorem, closed form or TEXP) and no
    weight decay; the others keep η_t and λ_t, which stays exact because their
    gradients depend only on the network function. Returns the new optimizer
    and its :class:`EquivalentLR`.

    ``weight_decay_schedule`` (per step, for the default ``weight_decay``) is
    applied to each group as λ_t · group_wd / weight_decay. The invariant set
    is scaled as a whole, so groups holding invariant parameters must give the
    same scale sequence c_t (same LR, WD and momentum schedules); otherwise a
    ``ValueError`` names the groups.
    """
    if form not in FORMS:
        raise ValueError(f"form = {form!r} is not one of {FORMS}")
    if steps is None:
        raise ValueError(f"form = {form!r} with online=False precomputes the schedule: give steps")
    n = check_steps(steps)
    ref = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)  # validates like SGD
    inv_ids = {id(p) for p in invariant}
    base_lrs = [float(g["lr"]) for g in ref.param_groups]
    lr_table = lrs_from_scheduler(lr_scheduler, n, base_lrs)
    if lr_table.shape[1] == 1 and len(base_lrs) > 1:
        # a single per-step schedule applied multiplicatively to each group's base LR
        lr_table = lr_table * (np.asarray(base_lrs) / base_lrs[0])[None, :]
    new_groups: list[dict[str, Any]] = []
    schedules: list[ExpLRSchedule | PlainSchedule] = []
    found: set[int] = set()
    for gi, group in enumerate(ref.param_groups):
        lam = group["weight_decay"]
        if weight_decay_schedule is None:
            wd = np.full(n, float(lam))
        elif weight_decay != 0:
            wd = as_weight_decay_array(weight_decay_schedule, n, "weight_decay_schedule") * (
                lam / weight_decay
            )
        elif lam == 0:  # weight_decay = 0: the schedule is the decay itself
            wd = as_weight_decay_array(weight_decay_schedule, n, "weight_decay_schedule")
        else:
            raise ValueError(
                f"weight_decay_schedule is given with weight_decay = 0 (so the schedule is the decay "
                f"itself), but param group {gi} sets its own weight_decay = {lam!r}; set weight_decay to "
                "the default decay the schedule scales, or drop the group's own value"
            )
        inv = [p for p in group["params"] if id(p) in inv_ids]
        rest = [p for p in group["params"] if id(p) not in inv_ids]
        found.update(id(p) for p in inv)
        extra: dict[str, Any] = {
            k: group[k] for k in ("dampening", "nesterov", "maximize") if k in group
        }
        if inv:
            sched = ExpLRSchedule.build(form, lr_table[:, gi], wd, group["momentum"])
            new_groups.append(
                {
                    "params": inv,
                    "lr": float(np.exp(sched.log_lrs[0])),
                    "momentum": group["momentum"],
                    "weight_decay": 0.0,
                    **extra,
                }
            )
            schedules.append(sched)
        if rest:
            new_groups.append(
                {
                    "params": rest,
                    "lr": float(lr_table[0, gi]),
                    "momentum": group["momentum"],
                    "weight_decay": float(wd[0]),
                    **extra,
                }
            )
            schedules.append(PlainSchedule.make(lr_table[:, gi], wd))
    ref_params = [p for g in ref.param_groups for p in g["params"]]
    missing = inv_ids - found
    if missing:
        raise ValueError(f"{len(missing)} tensor(s) in invariant are not among params")
    _check_one_scale(ref.param_groups, new_groups, schedules)
    opt = SGD(new_groups, lr=lr, momentum=momentum)
    scheduler = EquivalentLR(opt, schedules, norm_layers=norm_layers, rescale_log2=rescale_log2)
    return ConvertedRun(
        opt, scheduler, list(schedules), None, tuple(p for p in ref_params if id(p) in inv_ids)
    )


def _check_one_scale(
    user_groups: list[dict[str, Any]],
    new_groups: list[dict[str, Any]],
    schedules: Sequence[ExpLRSchedule | PlainSchedule],
) -> None:
    """Refuse invariant parameters whose groups would scale them by different c_t.

    ``invariant`` is one set S in which the loss is (jointly) scale invariant: the
    theorem scales all of it by the same c_t. Groups with different LR, WD or momentum
    schedules give different c_t, and scaling parts of S by different factors changes
    the network function (a conv weight and its bias in separate groups, the common
    "no weight decay on biases" recipe) — so it is an error, not a silent mismatch.
    """
    exp = [(g, s) for g, s in zip(new_groups, schedules) if isinstance(s, ExpLRSchedule)]
    if len(exp) < 2:
        return
    ref_group, ref_sched = exp[0]
    for group, sched in exp[1:]:
        if not np.array_equal(sched.log_scales, ref_sched.log_scales):
            i = _user_group(user_groups, ref_group["params"][0])
            j = _user_group(user_groups, group["params"][0])
            t = int(np.argmax(sched.log_scales != ref_sched.log_scales))
            raise ValueError(
                f"invariant spans param groups {i} and {j}, whose recipes give different scale "
                f"sequences (c_{t} = {math.exp(ref_sched.log_scales[t]):.6g} vs "
                f"{math.exp(sched.log_scales[t]):.6g}: lr, weight_decay or momentum differ); the "
                "loss is invariant to scaling the invariant set as a whole, not its parts by "
                "different factors. Give every invariant parameter the same lr, weight_decay and "
                "momentum, or convert each independently invariant part separately"
            )


def _user_group(groups: list[dict[str, Any]], p: torch.Tensor) -> int:
    return next(i for i, g in enumerate(groups) if any(q is p for q in g["params"]))


def convert_optimizer_precomputed(
    optimizer: SGD,
    *,
    steps: int,
    invariant: Iterable[torch.Tensor],
    lr_scheduler: SchedulerSpec = None,
    norm_layers: Iterable[nn.Module] = (),
    form: str = "general",
    rescale_log2: float | None = 16.0,
) -> ConvertedRun:
    """:func:`convert` for an existing ``torch.optim.SGD``: same parameters, groups and hyper-parameters.

    A live ``lr_scheduler`` attached to ``optimizer`` is read from its current
    step on (it is not modified).
    """
    if not isinstance(optimizer, SGD):
        raise TypeError(f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}")
    groups = [{k: v for k, v in g.items() if k != "initial_lr"} for g in optimizer.param_groups]
    d = optimizer.defaults
    has_buffers = any(
        optimizer.state.get(p, {}).get("momentum_buffer") is not None
        for g in optimizer.param_groups
        for p in g["params"]
    )
    if has_buffers and form != "general":
        raise ValueError(
            f"form = {form!r} assumes zero momentum buffers at the start, but this optimizer has "
            "already stepped; convert it mid-run with form='general' (exact from any state)"
        )
    run = convert_precomputed(
        groups,
        lr=d["lr"] if isinstance(d["lr"], float) else float(groups[0]["lr"]),
        momentum=d.get("momentum", 0.0),
        weight_decay=d.get("weight_decay", 0.0),
        steps=steps,
        invariant=invariant,
        lr_scheduler=lr_scheduler,
        norm_layers=norm_layers,
        form=form,
        rescale_log2=rescale_log2,
    )
    for p in (q for g in run.optimizer.param_groups for q in g["params"]):
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            run.optimizer.state[p]["momentum_buffer"] = buf.detach().clone()
    return run
