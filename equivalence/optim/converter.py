"""The front door: :func:`convert` and :func:`convert_optimizer` pick the map for the optimizer.

- ``torch.optim.SGD``: the online κ-form map (:class:`~equivalence.optim.online.ExpLRConverter`,
  :mod:`equivalence.optim.online`), or with ``form="closed_form"``/``"texp"`` or
  ``online=False`` the precomputed schedule (:mod:`equivalence.optim.torch_sgd`);
- ``torch.optim.SGD(nesterov=True)``: :mod:`equivalence.optim.sgd_variants`;
- ``torch.optim.AdamW`` / ``Adam(decoupled_weight_decay=True)``: :mod:`equivalence.optim.torch_adamw`.

Every path returns a :class:`~equivalence.optim.run.ConvertedRun`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import SGD, Optimizer

from ..schedule.recipe import FORMS
from ..schedule.validation import check_steps
from .inplace import ConversionError, InvarianceCheckError, as_sets
from .online import ExpLRConverter, RunScheduler, convert_online
from .run import ConvertedRun
from .scheduling import ScheduleLR, make_scheduler
from .sgd_variants import convert_sgd_variant
from .torch_adamw import convert_adamw
from .torch_sgd import convert_optimizer_precomputed, convert_precomputed

__all__ = [
    "ExpLRConverter",
    "ConvertedRun",
    "RunScheduler",
    "ScheduleLR",
    "ConversionError",
    "InvarianceCheckError",
    "make_scheduler",
    "convert",
    "convert_online",
    "convert_optimizer",
]


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
    stock_grads: bool = False,
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
    schedule (:class:`~equivalence.optim.torch_sgd.EquivalentLR`, ``steps`` required).

    ``weight_decay_schedule``: per-update λ_t of the default group, applied to each group
    as λ_t · group_wd / weight_decay; with ``weight_decay = 0`` it is the decay itself.
    ``stock_grads``: as in :func:`convert_optimizer` (online form only).
    """
    if form not in FORMS:
        raise ValueError(f"form = {form!r} is not one of {FORMS}")
    _check_stock_grads(stock_grads)
    if steps is not None:
        check_steps(steps)
    use_online = form == "general" if online is None else bool(online)
    if use_online and form != "general":
        raise ValueError(
            f"form = {form!r} is a precomputed schedule; online conversion needs form='general'"
        )
    if not use_online:
        _no_stock_grads(stock_grads, form)
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
    run = convert_online(
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
    return _with_stock_grads(run, stock_grads)


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
    stock_grads: bool = False,
) -> ConvertedRun:
    """Convert the user's optimizer **in place**, at any point of its run: the front door.

    ``run.optimizer is optimizer``: its param groups (as the user numbered them), state and
    every scheduler, GradScaler or framework wrapper already attached keep working; the step
    hooks apply the exact map. By kind:

    - ``torch.optim.SGD`` (momentum, dampening; the κ-form map of :class:`ExpLRConverter`),
    - ``torch.optim.SGD(nesterov=True)`` (:class:`~equivalence.optim.sgd_variants.SGDVariantEquivalence`),
    - ``torch.optim.AdamW`` / ``Adam(decoupled_weight_decay=True)``
      (:class:`~equivalence.optim.torch_adamw.AdamWEquivalence`; Adam with coupled L2 decay is
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
        stock_grads: keep the invariant tensors' ``.grad`` in stock units between backward and
            step (:meth:`ConvertedRun.set_stock_grads`), so that third-party gradient clipping
            (the Hugging Face Trainer's ``max_grad_norm``, ``accelerator.clip_grad_norm_``,
            Lightning's ``gradient_clip_val``, ``torch.nn.utils.clip_grad_norm_``) and
            gradient logging see the stock run's gradients. Off by default.
        form, online, steps: ``form="closed_form"``/``"texp"`` (SGD only) precompute the
            schedule on a *new* optimizer (``steps`` required), as before.
    """
    _check_stock_grads(stock_grads)
    use_online = form == "general" if online is None else bool(online)
    if not use_online:
        if not isinstance(optimizer, SGD):
            raise TypeError(
                f"form = {form!r} precomputes an SGD schedule; optimizer is {type(optimizer).__name__}"
            )
        if steps is None:
            raise ValueError(f"form = {form!r} precomputes the schedule: give steps")
        _no_stock_grads(stock_grads, form)
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
        conv: Any = convert_adamw(
            optimizer,
            invariant=invariant,
            norm_layers=norm_layers,
            model=model,
            rescale_log2=rescale_log2,
            check=check,
        )
    elif isinstance(optimizer, SGD) and not plain:
        conv = convert_sgd_variant(
            optimizer, invariant=invariant, norm_layers=norm_layers, model=model, check=check
        )
    elif isinstance(optimizer, SGD):
        run = convert_online(
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
        return _with_stock_grads(run, stock_grads)
    else:
        raise TypeError(
            f"optimizer must be torch.optim.SGD, AdamW or Adam(decoupled_weight_decay=True), got "
            f"{type(optimizer).__name__}"
        )
    inner = make_scheduler(lr_scheduler, optimizer)
    flat = tuple(p for s in as_sets(invariant) for p in s)
    run = ConvertedRun(optimizer, _GenericScheduler(inner, conv), [], conv, flat)
    return _with_stock_grads(run, stock_grads)


def _no_stock_grads(stock_grads: bool, form: str) -> None:
    if stock_grads:
        raise ValueError(
            f"stock_grads=True needs the online conversion (form='general', online not False); "
            f"form = {form!r} here precomputes the schedule on a new optimizer: clip with "
            "run.clip_grad_norm_ there"
        )


def _check_stock_grads(stock_grads: Any) -> None:
    if not isinstance(stock_grads, bool):
        raise TypeError(f"stock_grads must be True or False, got {type(stock_grads).__name__}")


def _with_stock_grads(run: ConvertedRun, stock_grads: bool) -> ConvertedRun:
    """Switch the mode on; if it is refused, the optimizer is left unconverted (scale 1)."""
    if stock_grads:
        try:
            run.set_stock_grads(True)
        except Exception:
            run.remove()
            raise
    return run


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
