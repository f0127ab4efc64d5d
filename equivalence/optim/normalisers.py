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

import operator
from collections.abc import Iterable
from typing import Any, cast

import torch
from torch import nn

from ..invariance.layer_kinds import NORM_CLASSES, has_running_stats

__all__ = ["NormLayers", "has_running_stats", "is_normaliser"]


def is_normaliser(module: nn.Module) -> bool:
    """True for BatchNorm*, InstanceNorm*, GroupNorm, LayerNorm and RMSNorm modules."""
    return isinstance(module, NORM_CLASSES)


class NormLayers:
    """The normalisers whose input scales with the invariant set, and their user eps.

    ``set_scale(c)`` sets every ε to ε_user / c² (= ε_user · m², m = 1/c); ``correct(ratio)``
    multiplies the running means by ``ratio`` and the variances by ``ratio²``. Both run once
    per converted update and cost a number of tensor ops (on CUDA, kernel launches) that does
    not grow with the number of layers: one ``torch._foreach_mul_`` per (device, dtype) group
    of means and of variances, and one division for the ε tensors of traceable normalisers.
    Each normaliser belongs to one ``NormLayers`` (one invariant set).
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
        # instance dicts, looked up once: eps is written there directly when it is a plain
        # instance attribute of every module (the stock classes), else through setattr
        self._dicts = [m.__dict__ for m in self.modules]
        self._plain_eps = all(_plain_attribute(m, "eps") for m in self.modules)
        self._stat_buffers = [m._buffers for m in self._stats]
        # correct(): the running statistics last seen and their (device, dtype) groups; the
        # groups are rebuilt when a buffer is replaced (``.to()``, reassignment)
        self._seen: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self._mean_groups: list[list[torch.Tensor]] = []
        self._var_groups: list[list[torch.Tensor]] = []
        # set_scale(): the ε tensors of traceable normalisers (compile_norms), rebound as
        # elements of one float64 vector so that one division sets them all
        self._eps_views: list[torch.Tensor | None] = [None] * len(self.modules)
        self._eps_user_t: torch.Tensor | None = None  # ε_user of the bound modules
        self._eps_all: torch.Tensor | None = None  # their current ε; the _eps_t are its elements

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
        """ε ← ε_user / inv_scale² (= ε_user m² with m = 1/inv_scale).

        The float ``eps`` attributes are plain attribute writes (no tensor op). The ε tensors
        of traceable normalisers (:mod:`equivalence.optim.compile_norms`) are elements of one
        float64 CPU vector, set by one division: the same IEEE division as ``eps / sq`` in
        Python, so bit for bit the values a per-layer ``fill_`` wrote, whatever the number of
        layers.
        """
        if not self.adjust_eps:
            return
        sq = inv_scale * inv_scale
        stale = False
        if self._plain_eps:
            for d, eps, view in zip(self._dicts, self.user_eps, self._eps_views):
                d["eps"] = eps / sq  # skips nn.Module.__setattr__'s slow checks
                stale = stale or d.get("_eps_t") is not view
        else:
            for m, eps, view in zip(self.modules, self.user_eps, self._eps_views):
                object.__setattr__(m, "eps", eps / sq)
                stale = stale or m.__dict__.get("_eps_t") is not view
        if stale:  # a normaliser was made traceable (or stock) since the last call
            self._bind_eps_tensors()
        if self._eps_all is not None:
            assert self._eps_user_t is not None
            torch.div(self._eps_user_t, sq, out=self._eps_all)

    def restore_eps(self) -> None:
        """Give every normaliser back the user's ε."""
        for m, eps in zip(self.modules, self.user_eps):
            norm: Any = m
            norm.eps = eps
        if any(d.get("_eps_t") is not v for d, v in zip(self._dicts, self._eps_views)):
            self._bind_eps_tensors()
        if self._eps_all is not None:
            assert self._eps_user_t is not None
            self._eps_all.copy_(self._eps_user_t)

    def _bind_eps_tensors(self) -> None:
        """Rebind every traceable normaliser's ``_eps_t`` as an element of one float64 vector.

        ``compile_norms.make_traceable`` gives each a 0-dim float64 CPU tensor; its element of
        the vector has the same dtype, device and shape, so the compiled forward reads it as
        before (Dynamo guards its metadata, not its value: no recompile). The caller writes
        the values.
        """
        idx = [i for i, d in enumerate(self._dicts) if d.get("_eps_t") is not None]
        self._eps_views = [None] * len(self.modules)
        if not idx:
            self._eps_user_t = self._eps_all = None
            return
        self._eps_user_t = torch.tensor([self.user_eps[i] for i in idx], dtype=torch.float64)
        self._eps_all = self._eps_user_t.clone()
        for i, view in zip(idx, self._eps_all.unbind(0)):
            object.__setattr__(self.modules[i], "_eps_t", view)
            self._eps_views[i] = view

    def correct(self, ratio: float) -> None:
        """running_mean ← ratio · running_mean, running_var ← ratio² · running_var.

        One ``torch._foreach_mul_`` per (device, dtype) group of means and one per group of
        variances, with a Python scalar: a constant number of calls whatever the number of
        layers (on CUDA one kernel launch each, up to the foreach kernels' chunk of 110
        tensors) and no host–device synchronisation. Each element gets the multiplication a
        per-layer ``mul_`` would give it. The running statistics are buffers that never
        require grad, so no autograd record is made of this in-place update (no ``no_grad``
        context needed, and none paid for).
        """
        if not self._stats:
            return
        try:  # tensors while has_running_stats holds (checked when the layers were recorded)
            means = cast(list[torch.Tensor], [b["running_mean"] for b in self._stat_buffers])
            variances = cast(list[torch.Tensor], [b["running_var"] for b in self._stat_buffers])
        except KeyError:  # statistics kept outside the buffer dict
            means, variances = self.means, self.variances
        seen_means, seen_vars = self._seen
        if not (_same(means, seen_means) and _same(variances, seen_vars)):
            self._mean_groups = _by_device_and_dtype(means)
            self._var_groups = _by_device_and_dtype(variances)
            self._seen = (means, variances)
        for group in self._mean_groups:
            torch._foreach_mul_(group, ratio)
        r2 = ratio * ratio
        for group in self._var_groups:
            torch._foreach_mul_(group, r2)


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    """The same tensor objects, in order (the cached groups hold ``b``: its ids stay unique)."""
    return len(a) == len(b) and all(map(operator.is_, a, b))


def _plain_attribute(m: nn.Module, name: str) -> bool:
    """``name`` is an instance attribute of ``m`` that no class-level descriptor intercepts."""
    return name in m.__dict__ and not any(
        hasattr(vars(c).get(name), "__set__") for c in type(m).__mro__
    )


def _by_device_and_dtype(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """``tensors`` split by (device, dtype), each group in the original order (a foreach op
    runs one fused kernel per group; a mixed list falls back to one kernel per tensor)."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return list(groups.values())


def _tensor(m: nn.Module, name: str) -> torch.Tensor:
    # the buffer dict first: nn.Module.__getattr__ is the slow path of attribute look-up
    value = m._buffers.get(name)
    if value is None:
        value = getattr(m, name)
    assert isinstance(value, torch.Tensor)
    return value
