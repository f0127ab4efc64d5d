"""The result of a conversion: :class:`ConvertedRun`, shared by every conversion path.

The online maps (:mod:`equivalence.optim.online`, :mod:`equivalence.optim.torch_adamw`,
:mod:`equivalence.optim.sgd_variants`) and the precomputed path
(:mod:`equivalence.optim.torch_sgd`) all return one; it reads everything in stock units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from .inplace import InPlaceConversion, stock_clip_grad_norm_

__all__ = ["ConvertedRun"]


@dataclass(frozen=True, eq=False)
class ConvertedRun:
    """The converted run: the user's optimizer (converted in place), its scheduler, the conversion.

    ``converter`` is the in-place conversion (:class:`~equivalence.optim.online.ExpLRConverter`, or the AdamW / Nesterov
    maps; ``None`` for the precomputed forms, whose ``scheduler`` is an
    :class:`~equivalence.optim.torch_sgd.EquivalentLR` and whose ``schedules`` hold the recipes).
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

        See :meth:`equivalence.optim.inplace.InPlaceConversion.clip_grad_norm_`.
        """
        if isinstance(self.converter, InPlaceConversion):
            return self.converter.clip_grad_norm_(max_norm, norm_type, error_if_nonfinite)
        return _clip_precomputed(self, max_norm, norm_type, error_if_nonfinite)

    @property
    def stock_grads(self) -> bool:
        """Whether the invariant tensors' ``.grad`` holds stock-unit gradients outside the step
        (:meth:`set_stock_grads`)."""
        return isinstance(self.converter, InPlaceConversion) and self.converter.stock_grads

    def set_stock_grads(self, enabled: bool = True) -> None:
        """Keep ``.grad`` in stock units between backward and step, so that any third-party
        clipping (PyTorch's ``clip_grad_norm_``, the Hugging Face Trainer's ``max_grad_norm``,
        ``accelerator.clip_grad_norm_``, Lightning's ``gradient_clip_val``), gradient logging
        or ``GradScaler`` sees the stock run's gradients; the step converts them back. See
        :meth:`equivalence.optim.inplace.InPlaceConversion.set_stock_grads`."""
        self._conversion("set_stock_grads").set_stock_grads(enabled)

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
        changes every step (:mod:`equivalence.optim.compile_norms`)."""
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
