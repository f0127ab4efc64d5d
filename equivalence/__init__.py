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

Where they live: :mod:`equivalence.schedule` (the schedule mathematics, numpy only),
:mod:`equivalence.invariance` (the scale-invariance audit), :mod:`equivalence.optim` (the
PyTorch optimizer conversions), :mod:`equivalence.monitor` (the monitor) and
:mod:`equivalence.verify` (the verification harness: lockstep runs, the noise floor, the test
networks); :mod:`equivalence.cli` is the command line. Each layer imports only the ones before
it in that list (``tests/test_layering.py``). The old flat module names
(``equivalence.converter``, ``equivalence.lockstep``, ...) still import, with a
``DeprecationWarning`` naming the new place (:mod:`equivalence._moved`).
"""

from __future__ import annotations

from typing import Any

from . import _moved
from .schedule import schedules
from .schedule.closed_form import (
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
from .schedule.exact import (
    ScaleSequenceError,
    equivalent_lrs,
    log_equivalent_lrs,
    log_original_lrs,
    log_scale_factors,
    original_lrs,
    scale_factors,
    scale_ratios,
)
from .schedule.recipe import FORMS, ExpLRSchedule

__version__ = "0.1.0"

#: public name -> the module (under ``equivalence.``) that defines it, imported on first use
_TORCH_NAMES = {
    "EquivalentLR": "optim.torch_sgd",
    "PlainSchedule": "optim.torch_sgd",
    "ConvertedRun": "optim.run",
    "convert": "optim.converter",
    "convert_optimizer": "optim.converter",
    "ExpLRConverter": "optim.online",
    "ConversionError": "optim.inplace",
    "InvarianceCheckError": "optim.inplace",
    "StockAveragedModel": "optim.inplace",
    "ScheduleLR": "optim.scheduling",
    "NormLayers": "optim.normalisers",
    "lrs_from_scheduler": "optim.torch_sgd",
    "is_norm_layer": "optim.torch_sgd",
    "convert_adamw": "optim.torch_adamw",
    "AdamWEquivalence": "optim.torch_adamw",
    "adamw_equivalent_schedule": "optim.torch_adamw",
    "convert_sgd_variant": "optim.sgd_variants",
    "keras_equivalent_schedule": "optim.sgd_variants",
    "keras_lockstep": "optim.sgd_variants",
    "keras_reference_run": "optim.sgd_variants",
    "audit": "invariance.core",
    "AuditReport": "invariance.report",
    "make_scale_invariant": "invariance.make_invariant",
    "Monitor": "monitor.core",
    "groups_from_audit": "monitor.core",
    "predict_equilibrium": "monitor.equilibrium",
}

_moved.install(__name__)


def __getattr__(name: str) -> Any:
    """Import the PyTorch interface on first use: the schedule maths (and its command line)
    starts without paying for ``import torch``. The old flat module names (``lockstep``,
    ``noise_floor``, ``converter``, ...) give the modules at their new places."""
    import importlib

    mod = _TORCH_NAMES.get(name)
    if mod is not None:
        value = getattr(importlib.import_module(f".{mod}", __name__), name)
    elif name in _moved.MOVED:
        value = importlib.import_module(f".{_moved.MOVED[name]}", __name__)
    else:
        raise AttributeError(f"module 'equivalence' has no attribute {name!r}")
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
