r"""Normalisers whose eps changes every step, compiled once by ``torch.compile``.

The converted run keeps each normaliser fed by an invariant set at ε m_t², and m_t changes
at every update. The stock modules hand ``self.eps`` to aten ops whose schema says
``float eps``; Dynamo turns a float there into a constant with an ``eps == value`` guard, so a
compiled model recompiles at every step, reaches its limit of 8 and falls back to eager. No
Dynamo setting changes that.

:func:`make_traceable` gives each such normaliser a *traceable* class: a subclass of its own
class (``isinstance`` and ``state_dict`` unchanged) whose ``forward`` is the stock forward
outside ``torch.compile`` (eager numerics bit for bit unchanged) and, while Dynamo traces it,
the same normalisation written with tensor operations (``var_mean``, ``rsqrt(var + ε)``, the
affine map, the running statistics with the unbiased variance and the module's momentum),
reading ε from a 0-dim float64 tensor ``_eps_t`` that :class:`~equivalence.optim.normalisers.NormLayers`
fills in place whenever it sets eps. Dynamo guards a tensor's metadata, not its value, so one
graph serves every ε. Compiled numerics differ from eager by rounding only (the formulas of
Inductor's own decomposition; float64: ~2e-15 relative over 100 steps).

Covered: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d (batched input), GroupNorm, LayerNorm,
RMSNorm, when their class does not override ``forward`` (SyncBatchNorm and user subclasses are
left stock). Needs Dynamo's default ``inline_inbuilt_nn_modules=True``.
:func:`make_stock` gives a module its own class back (``export``, ``remove``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ["is_traceable", "make_stock", "make_traceable"]


def _acc(x: Tensor) -> torch.dtype:
    """The accumulation type of the aten kernels (opmath): float32 for half types."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def _c(t: Tensor, ndim: int) -> Tensor:
    """(C,) → (1, C, 1, …, 1)."""
    return t.reshape([1, -1] + [1] * (ndim - 2))


def _bn_math(
    x: Tensor,
    rm: Tensor | None,
    rv: Tensor | None,
    w: Tensor | None,
    b: Tensor | None,
    batch_stats: bool,
    momentum: float,
    eps: Tensor,
    dims: list[int],
    per_channel: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """y = (x − μ)/√(σ² + ε) · w + b over ``dims``; running stats r ← (1 − μ_m) r + μ_m s."""
    xa = x.to(_acc(x))
    if batch_stats:
        var, mean = torch.var_mean(xa, dim=dims, correction=0, keepdim=True)
        out = (xa - mean) * torch.rsqrt(var + eps)
        if rm is not None and rv is not None:
            n = 1
            for d in dims:
                n *= x.shape[d]
            with torch.no_grad():
                m_, v_ = mean.detach(), var.detach() * (n / (n - 1))  # running var: unbiased

                def red(s: Tensor) -> Tensor:
                    return s.squeeze(dims) if per_channel is None else per_channel(s)

                rm.copy_(momentum * red(m_) + (1 - momentum) * rm)
                rv.copy_(momentum * red(v_) + (1 - momentum) * rv)
    else:
        assert rm is not None and rv is not None
        out = (xa - _c(rm.to(xa.dtype), x.dim())) * (
            1 / torch.sqrt(_c(rv.to(xa.dtype), x.dim()) + eps)
        )
    if w is not None:
        out = out * _c(w, x.dim())
    if b is not None:
        out = out + _c(b, x.dim())
    return out.to(x.dtype)


def _batchnorm(self: Any, input: Tensor) -> Tensor:
    if not torch.compiler.is_compiling():
        return _BatchNorm.forward(self, input)
    self._check_input_dim(input)
    factor = 0.0 if self.momentum is None else self.momentum
    if self.training and self.track_running_stats and self.num_batches_tracked is not None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
    batch_stats = self.training or (self.running_mean is None and self.running_var is None)
    keep = not self.training or self.track_running_stats
    return _bn_math(
        input,
        self.running_mean if keep else None,
        self.running_var if keep else None,
        self.weight,
        self.bias,
        batch_stats,
        factor,
        self._eps_t,
        [0, *range(2, input.dim())],
    )


def _instancenorm(self: Any, input: Tensor) -> Tensor:
    if not torch.compiler.is_compiling() or input.dim() == self._get_no_batch_dim():
        return _InstanceNorm.forward(self, input)
    self._check_input_dim(input)
    return _bn_math(
        input,
        self.running_mean,
        self.running_var,
        self.weight,
        self.bias,
        self.training or not self.track_running_stats,
        self.momentum if self.momentum is not None else 0.0,
        self._eps_t,
        list(range(2, input.dim())),
        per_channel=lambda s: s.reshape(s.shape[0], s.shape[1]).mean(0),
    )


def _groupnorm(self: Any, input: Tensor) -> Tensor:
    if not torch.compiler.is_compiling():
        return nn.GroupNorm.forward(self, input)
    n = input.shape[0]
    xg = input.to(_acc(input)).reshape(n, self.num_groups, -1)
    var, mean = torch.var_mean(xg, dim=-1, correction=0, keepdim=True)
    out = ((xg - mean) * torch.rsqrt(var + self._eps_t)).reshape(input.shape)
    if self.weight is not None:
        out = out * _c(self.weight, input.dim())
    if self.bias is not None:
        out = out + _c(self.bias, input.dim())
    return out.to(input.dtype)


def _layernorm(self: Any, input: Tensor) -> Tensor:
    if not torch.compiler.is_compiling():
        return nn.LayerNorm.forward(self, input)
    xa = input.to(_acc(input))
    dims = list(range(input.dim() - len(self.normalized_shape), input.dim()))
    var, mean = torch.var_mean(xa, dim=dims, correction=0, keepdim=True)
    out = (xa - mean) * torch.rsqrt(var + self._eps_t)
    if self.weight is not None:
        out = out * self.weight
    if self.bias is not None:
        out = out + self.bias
    return out.to(input.dtype)


def _rmsnorm(self: Any, input: Tensor) -> Tensor:
    if not torch.compiler.is_compiling():
        return nn.RMSNorm.forward(self, input)
    xa = input.to(_acc(input))
    dims = list(range(input.dim() - len(self.normalized_shape), input.dim()))
    out = xa * torch.rsqrt(xa.pow(2).mean(dim=dims, keepdim=True) + self._eps_t)
    if self.weight is not None:
        out = out * self.weight
    return out.to(input.dtype)


_FORWARDS: list[tuple[type[nn.Module], Callable[..., Tensor]]] = [
    (_BatchNorm, _batchnorm),
    (_InstanceNorm, _instancenorm),
    (nn.GroupNorm, _groupnorm),
    (nn.LayerNorm, _layernorm),
    *([(nn.RMSNorm, _rmsnorm)] if hasattr(nn, "RMSNorm") else []),
]

#: stock class → its traceable subclass (module-level names, so pickling finds them)
_TRACEABLE: dict[type[nn.Module], type[nn.Module]] = {}


def _traceable_class(cls: type[nn.Module], forward: Callable[..., Tensor]) -> type[nn.Module]:
    sub = _TRACEABLE.get(cls)
    if sub is None:
        name = f"Traceable{cls.__name__}"
        sub = type(name, (cls,), {"forward": forward, "__module__": __name__, "_stock": cls})
        sub.__qualname__ = name
        globals()[name] = sub
        _TRACEABLE[cls] = sub
    return sub


def is_traceable(module: nn.Module) -> bool:
    return type(module) in _TRACEABLE.values()


def make_traceable(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Give each stock normaliser its traceable class and an ``_eps_t`` tensor; returns those
    changed (others, e.g. SyncBatchNorm or a subclass with its own forward, stay as they are)."""
    done = []
    for m in modules:
        if is_traceable(m):
            done.append(m)
            continue
        cls = type(m)
        for base, forward in _FORWARDS:
            if isinstance(m, base) and cls.forward is base.forward:
                if not isinstance(getattr(m, "eps", None), float):
                    raise ValueError(f"{cls.__name__} needs an explicit float eps to be traceable")
                object.__setattr__(m, "_eps_t", torch.tensor(m.eps, dtype=torch.float64))
                m.__class__ = _traceable_class(cls, forward)
                done.append(m)
                break
    return done


def make_stock(module: nn.Module) -> None:
    """Give a traceable normaliser its own class back (and drop ``_eps_t``)."""
    if is_traceable(module):
        module.__class__ = type(module)._stock  # type: ignore[attr-defined]
        module.__dict__.pop("_eps_t", None)
