"""The PyTorch optimizer conversions: a stock SGD, Nesterov SGD or AdamW run turned, in place or precomputed, into its exact exponential-LR twin without weight decay.

:func:`convert_optimizer` and :func:`convert` (:mod:`equivalence.optim.converter`) are the
front door; the maps are :class:`ExpLRConverter` (:mod:`equivalence.optim.online`, plain and
dampened SGD), :class:`SGDVariantEquivalence` (:mod:`equivalence.optim.sgd_variants`),
:class:`AdamWEquivalence` (:mod:`equivalence.optim.torch_adamw`) on the shared in-place
machinery of :mod:`equivalence.optim.inplace`, and the precomputed :class:`EquivalentLR`
(:mod:`equivalence.optim.torch_sgd`). Normaliser corrections: :mod:`equivalence.optim.normalisers`
and :mod:`equivalence.optim.compile_norms`; stock hyper-parameter drivers:
:mod:`equivalence.optim.scheduling`; the result: :class:`ConvertedRun` (:mod:`equivalence.optim.run`).
"""

from __future__ import annotations

from .converter import convert, convert_optimizer
from .inplace import ConversionError, InvarianceCheckError, StockAveragedModel
from .normalisers import NormLayers
from .online import ExpLRConverter, RunScheduler
from .run import ConvertedRun
from .scheduling import ScheduleLR, WeightDecaySchedule, make_scheduler
from .sgd_variants import (
    SGDVariantEquivalence,
    convert_sgd_variant,
    keras_equivalent_schedule,
    keras_lockstep,
    keras_reference_run,
)
from .torch_adamw import AdamWEquivalence, adamw_equivalent_schedule, convert_adamw
from .torch_sgd import EquivalentLR, PlainSchedule, is_norm_layer, lrs_from_scheduler

__all__ = [
    "AdamWEquivalence",
    "ConversionError",
    "ConvertedRun",
    "EquivalentLR",
    "ExpLRConverter",
    "InvarianceCheckError",
    "NormLayers",
    "PlainSchedule",
    "RunScheduler",
    "SGDVariantEquivalence",
    "ScheduleLR",
    "StockAveragedModel",
    "WeightDecaySchedule",
    "adamw_equivalent_schedule",
    "convert",
    "convert_adamw",
    "convert_optimizer",
    "convert_sgd_variant",
    "is_norm_layer",
    "keras_equivalent_schedule",
    "keras_lockstep",
    "keras_reference_run",
    "lrs_from_scheduler",
    "make_scheduler",
]
