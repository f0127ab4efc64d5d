"""Exact equivalence of SGD + weight decay and SGD with an exponential learning rate.

Li & Arora, "An Exponential Learning Rate Schedule for Deep Learning" (ICLR
2020): on a scale-invariant network, SGD with momentum γ, weight decay λ_t and
learning rate η_t follows exactly the same network functions as SGD with the
same momentum, no weight decay and the learning rate η̃_t = η_t / (c_t c_{t+1}).

Schedule mathematics (pure numpy): :func:`scale_factors`, :func:`equivalent_lrs`,
:func:`original_lrs`, :func:`alpha_root`, :func:`closed_form_lrs`,
:func:`texp_lrs`, :class:`ExpLRSchedule`. PyTorch interface:
:func:`convert_optimizer` (in place on the user's SGD, AdamW or Nesterov SGD; the front
door), :func:`convert` (online, :class:`ExpLRConverter`),
:class:`EquivalentLR` (precomputed),
:func:`lrs_from_scheduler`. Scale-invariance audit: :func:`audit`. Effective-LR and
equilibrium monitor: :class:`Monitor`, :func:`groups_from_audit`, :func:`predict_equilibrium`.
"""

from __future__ import annotations

from typing import Any

from . import schedules
from .closed_form import (
    alpha_root,
    closed_form_initial_buffer,
    closed_form_lrs,
    log_closed_form_lrs,
    log_texp_lrs,
    log_texp_scale_factors,
    one_minus_alpha,
    per_epoch_growth,
    texp_buffer_shifts,
    texp_deviation,
    texp_lrs,
)
from .exact import (
    ScaleSequenceError,
    equivalent_lrs,
    log_equivalent_lrs,
    log_original_lrs,
    log_scale_factors,
    original_lrs,
    scale_factors,
    scale_ratios,
)
from .recipe import FORMS, ExpLRSchedule

__version__ = "0.1.0"

_TORCH_NAMES = {
    "EquivalentLR": "torch_sgd",
    "PlainSchedule": "torch_sgd",
    "ConvertedRun": "converter",
    "convert": "converter",
    "convert_optimizer": "converter",
    "ExpLRConverter": "converter",
    "ConversionError": "converter",
    "InvarianceCheckError": "inplace",
    "StockAveragedModel": "inplace",
    "ScheduleLR": "converter",
    "NormLayers": "normalisers",
    "lrs_from_scheduler": "torch_sgd",
    "is_norm_layer": "torch_sgd",
    "convert_adamw": "torch_adamw",
    "AdamWEquivalence": "torch_adamw",
    "adamw_equivalent_schedule": "torch_adamw",
    "convert_sgd_variant": "sgd_variants",
    "keras_equivalent_schedule": "sgd_variants",
    "keras_lockstep": "sgd_variants",
    "keras_reference_run": "sgd_variants",
    "audit": "invariance",
    "AuditReport": "invariance",
    "make_scale_invariant": "invariance",
    "Monitor": "monitor",
    "groups_from_audit": "monitor",
    "predict_equilibrium": "monitor",
}


def __getattr__(name: str) -> Any:
    """Import the PyTorch interface on first use: the schedule maths (and its command line)
    starts without paying for ``import torch``."""
    mod = _TORCH_NAMES.get(name)
    if mod is None:
        raise AttributeError(f"module 'equivalence' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


__all__ = [
    "FORMS",
    "ExpLRSchedule",
    "ScaleSequenceError",
    "alpha_root",
    "closed_form_initial_buffer",
    "closed_form_lrs",
    "equivalent_lrs",
    "log_closed_form_lrs",
    "log_equivalent_lrs",
    "log_original_lrs",
    "log_scale_factors",
    "log_texp_lrs",
    "log_texp_scale_factors",
    "one_minus_alpha",
    "original_lrs",
    "per_epoch_growth",
    "scale_factors",
    "scale_ratios",
    "schedules",
    "texp_buffer_shifts",
    "texp_deviation",
    "texp_lrs",
    *_TORCH_NAMES,
]
