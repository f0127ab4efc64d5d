r"""Normalisers fed by the scale-invariant set: running statistics and eps kept exact.

A normaliser computes (x − μ)/√(σ² + ε). The converted run feeds it m_t·x, with
m_t = ``current_scale()`` the factor between the converted and the stock weights
(θ̃_stored = m_t θ_t). Two corrections keep its output exactly the stock one:

1. **eps** (``proofs/normaliser_eps.py``): ((m x) − m μ)/√(m² σ² + ε m²) =
   (x − μ)/√(σ² + ε), so the converted normaliser uses ε m_t² — for BatchNorm,
   GroupNorm, LayerNorm, InstanceNorm and RMSNorm (√(mean x² + ε) likewise), in
   train and eval mode, across power-of-two rescalings;
2. **running statistics** (``proofs/rescaling.py``): they are linear in the
   inputs, so after step t the running mean is multiplied by m_{t+1}/m_t =
   c_t/c_{t+1} and the running variance by its square; a power-of-two rescaling
   by s multiplies them by s and s².

The user's own ε is recorded when the layers are adopted and is what a
checkpoint stores; every later ε is computed as ε_user · m² from it, so a
resumed run sets bit-identical values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..invariance.layer_kinds import NORM_CLASSES, has_running_stats

__all__ = ["NormLayers", "has_running_stats", "is_normaliser"]


def is_normaliser(module: nn.Module) -> bool:
    """True for BatchNorm*, InstanceNorm*, GroupNorm, LayerNorm and RMSNorm modules."""
    return isinstance(module, NORM_CLASSES)


class NormLayers:
    """The normalisers whose input scales with the invariant set, and their user eps.

    ``scale(m)`` sets every ε to ε_user · m²; ``correct(ratio)`` multiplies the
    running means by ``ratio`` and the variances by ``ratio²``.
    """

    def __init__(self, modules: Iterable[nn.Module], *, adjust_eps: bool = True) -> None:
        self.modules: list[nn.Module] = []
        for m in modules:
            if not isinstance(m, nn.Module):
                raise TypeError(f"norm_layers holds {type(m).__name__}, which is not an nn.Module")
            if not is_normaliser(m):
                raise TypeError(
                    f"norm_layers holds {type(m).__name__}, which is not a normaliser (BatchNorm, "
                    "InstanceNorm, GroupNorm, LayerNorm or RMSNorm)"
                )
            if adjust_eps and not isinstance(getattr(m, "eps", None), float):
                raise ValueError(
                    f"norm_layers holds {type(m).__name__} with eps = {getattr(m, 'eps', None)!r}; the "
                    "converted run scales eps by m², which needs an explicit float eps"
                )
            self.modules.append(m)
        self.adjust_eps = adjust_eps
        self._record()

    def _record(self) -> None:
        self.user_eps: list[float] = [float(getattr(m, "eps", 0.0)) for m in self.modules]
        self._stats = [m for m in self.modules if has_running_stats(m)]

    def adopt(self, modules: Iterable[nn.Module]) -> None:
        """Take ``modules`` (found by a probe) as the normalisers, with their eps as the user's."""
        checked = NormLayers(modules, adjust_eps=self.adjust_eps)
        self.modules = checked.modules
        self._record()

    @property
    def means(self) -> list[torch.Tensor]:
        """The running means, looked up each time (``.to()`` or a reload may replace them)."""
        return [_tensor(m, "running_mean") for m in self._stats]

    @property
    def variances(self) -> list[torch.Tensor]:
        """The running variances, looked up each time."""
        return [_tensor(m, "running_var") for m in self._stats]

    def __len__(self) -> int:
        return len(self.modules)

    def set_scale(self, inv_scale: float) -> None:
        """ε ← ε_user / inv_scale² (= ε_user m² with m = 1/inv_scale)."""
        if not self.adjust_eps:
            return
        sq = inv_scale * inv_scale
        for m, eps in zip(self.modules, self.user_eps):
            # eps is a plain float attribute: skip nn.Module.__setattr__'s slow checks
            object.__setattr__(m, "eps", eps / sq)
            t = m.__dict__.get("_eps_t")  # a traceable normaliser (equivalence.optim.compile_norms)
            if t is not None:
                t.fill_(eps / sq)

    def restore_eps(self) -> None:
        """Give every normaliser back the user's ε."""
        for m, eps in zip(self.modules, self.user_eps):
            norm: Any = m
            norm.eps = eps
            t = m.__dict__.get("_eps_t")
            if t is not None:
                t.fill_(eps)

    def correct(self, ratio: float) -> None:
        """running_mean ← ratio · running_mean, running_var ← ratio² · running_var.

        The running statistics are buffers that never require grad, so no autograd record is
        made of this in-place update (no ``no_grad`` context needed, and none paid for).
        """
        if self._stats:  # two calls with one scalar each: faster than one with a scalar list
            torch._foreach_mul_(self.means, ratio)
            torch._foreach_mul_(self.variances, ratio * ratio)


def _tensor(m: nn.Module, name: str) -> torch.Tensor:
    # the buffer dict first: nn.Module.__getattr__ is the slow path of attribute look-up
    value = m._buffers.get(name)
    if value is None:
        value = getattr(m, name)
    assert isinstance(value, torch.Tensor)
    return value
