"""What the framework adapters share: resolving the user's arguments against the live model."""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim import Optimizer

from ..optim.converter import convert_optimizer
from ..optim.run import ConvertedRun

__all__ = ["check_callback_arguments", "convert_framework_optimizer", "resolve", "unwrap_optimizer"]


def unwrap_optimizer(optimizer: Any) -> Optimizer:
    """The ``torch.optim.Optimizer`` inside a framework's wrapper (Accelerate's
    ``AcceleratedOptimizer``, Lightning's ``LightningOptimizer``): the hooks go on it."""
    opt = optimizer
    for _ in range(8):
        inner = getattr(opt, "optimizer", None)
        if inner is None:
            inner = getattr(opt, "_optimizer", None)
        if not isinstance(inner, Optimizer) or inner is opt:
            break
        opt = inner
    if not isinstance(opt, Optimizer):
        raise TypeError(
            f"the framework's optimizer is a {type(optimizer).__name__}, not a torch.optim.Optimizer "
            "(nor a wrapper of one): the conversion needs torch.optim.SGD, AdamW or "
            "Adam(decoupled_weight_decay=True)"
        )
    return opt


def check_callback_arguments(invariant: Any, convert_kwargs: dict[str, Any], receives: str) -> None:
    """A framework callback's own arguments: ``invariant`` given (the parameters, or a callable
    ``receives`` -> those), and none of the arguments the callback sets itself among
    ``convert_kwargs``."""
    if invariant is None:
        raise ValueError(
            f"invariant is required: the scale-invariant parameters, or a callable {receives} -> "
            f"those (equivalence.audit({receives}, batch).invariant_parameters())"
        )
    for key in ("stock_grads", "model", "invariant"):
        if key in convert_kwargs:
            raise TypeError(f"ExpLRCallback sets {key} itself")


def resolve(value: Any, model: nn.Module) -> Any:
    """``value(model)`` for a callable (the model exists only once the framework starts), else
    ``value`` itself."""
    if callable(value) and not isinstance(value, nn.Module):
        return value(model)
    return value


def convert_framework_optimizer(
    optimizer: Any,
    model: nn.Module,
    invariant: Any,
    norm_layers: Any,
    probe_model: nn.Module | None,
    **kwargs: Any,
) -> ConvertedRun | None:
    """Convert ``optimizer`` (unwrapped) in place, stock-unit gradients on, on the part of
    ``invariant`` it holds; ``None`` when it holds none of it."""
    opt = unwrap_optimizer(optimizer)
    inv = resolve(invariant, model)
    norms = resolve(norm_layers, model)
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    sets = _as_set_list(inv)
    mine = [[p for p in s if id(p) in held] for s in sets]
    if not any(mine):
        return None
    partial = [k for k, (s, m) in enumerate(zip(sets, mine)) if m and len(m) != len(s)]
    if partial:
        raise ValueError(
            f"invariant set {partial[0]} is split between optimizers: the set is scaled as a "
            "whole, so one optimizer must hold all of it (declare one set per optimizer)"
        )
    kept = [k for k, m in enumerate(mine) if m]
    if norms is not None and len(sets) > 1 and _is_per_set(norms):
        norms = [list(norms)[k] for k in kept]
    chosen: Any = [mine[k] for k in kept] if len(sets) > 1 else mine[0]
    return convert_optimizer(
        opt, invariant=chosen, norm_layers=norms, model=probe_model, stock_grads=True, **kwargs
    )


def _as_set_list(invariant: Any) -> list[list[Any]]:
    from ..optim.inplace import as_sets

    if invariant is None:
        raise ValueError(
            "invariant is required: the scale-invariant parameters (equivalence.audit(model, "
            "batch).invariant_parameters()), or a callable model -> those parameters"
        )
    return as_sets(invariant)


def _is_per_set(norms: Any) -> bool:
    items = list(norms)
    return bool(items) and not isinstance(items[0], nn.Module)
