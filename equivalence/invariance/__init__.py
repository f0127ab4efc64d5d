"""The scale-invariance audit: which parameter tensors of an ``nn.Module`` the loss is scale invariant in, and why the others are not.

:func:`audit` (:mod:`equivalence.invariance.core`) returns an :class:`AuditReport`; the
numeric checks live in :mod:`equivalence.invariance.checks`, the set search in
:mod:`equivalence.invariance.search`, the reasons in :mod:`equivalence.invariance.reasons`,
the autograd-graph reading in :mod:`equivalence.invariance.graph` and the layer vocabulary
(normalisers, dropout, gains and shifts) in :mod:`equivalence.invariance.layer_kinds`.
"""

from __future__ import annotations

from .core import AuditReport, ParamCheck, audit, make_scale_invariant

__all__ = ["audit", "AuditReport", "ParamCheck", "make_scale_invariant"]
