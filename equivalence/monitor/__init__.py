"""The effective-LR and equilibrium monitor: per-group norms, effective LR and angular updates of a run, with the predictions of ``proofs/equilibrium.py`` (SGD and AdamW).

:class:`Monitor` measures (:mod:`equivalence.monitor.core`), :mod:`equivalence.monitor.equilibrium`
predicts, :class:`~equivalence.monitor.records.Records` keeps and writes the records, and
:mod:`equivalence.monitor.plots` draws them.
"""

from __future__ import annotations

from .core import STEP_NORMS, Monitor, Recipe, angle_from_sides, groups_from_audit, optimizer_kind
from .equilibrium import (
    OPTIMIZERS,
    Equilibrium,
    EquilibriumTracker,
    predict_adamw_equilibrium,
    predict_equilibrium,
    steps_to_equilibrium,
)
from .plots import plot_all, plot_angular_update, plot_effective_lr, plot_weight_norms
from .records import FIELDS, Records

__all__ = [
    "Equilibrium",
    "EquilibriumTracker",
    "Monitor",
    "FIELDS",
    "Records",
    "Recipe",
    "STEP_NORMS",
    "OPTIMIZERS",
    "predict_equilibrium",
    "predict_adamw_equilibrium",
    "steps_to_equilibrium",
    "angle_from_sides",
    "groups_from_audit",
    "optimizer_kind",
    "plot_effective_lr",
    "plot_angular_update",
    "plot_weight_norms",
    "plot_all",
]
