"""Which modules normalise, which parameters are gains or shifts, and who owns a parameter.

The scale-invariance audit and :func:`equivalence.make_scale_invariant` both sort a model's
modules and parameters by these kinds: a normaliser removes the scale of its input (BatchNorm,
GroupNorm, LayerNorm, InstanceNorm, RMSNorm), its affine scale and shift do not scale with the
weights before it, and a weight-normalisation gain (``parametrizations.weight.original0``)
scales its layer's output directly. Dropout and its relatives (drop path, stochastic depth) are
switched off in the audit's working copy.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "DROPOUT_CLASSES",
    "NORM_CLASSES",
    "has_running_stats",
    "is_random_regulariser",
    "is_gain_or_shift",
    "owner",
]

NORM_CLASSES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
DROPOUT_CLASSES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


#: class-name fragments of the stochastic regularisers outside ``torch.nn`` (timm's and Hugging
#: Face's ``DropPath``, torchvision's ``StochasticDepth``, ``DropBlock2d``)
RANDOM_REGULARISER_NAMES = ("Dropout", "DropPath", "StochasticDepth", "DropBlock")


def is_random_regulariser(module: nn.Module) -> bool:
    """Dropout and its relatives: ``torch.nn``'s dropout classes, and any module whose class name
    contains one of :data:`RANDOM_REGULARISER_NAMES` (drop path, stochastic depth, drop block)."""
    if isinstance(module, DROPOUT_CLASSES):
        return True
    name = type(module).__name__
    return any(frag in name for frag in RANDOM_REGULARISER_NAMES)


def has_running_stats(module: nn.Module) -> bool:
    """True for normalisers with running statistics (BatchNorm*, InstanceNorm with tracking)."""
    return (
        isinstance(module, nn.modules.batchnorm._NormBase)
        and bool(getattr(module, "track_running_stats", False))
        and isinstance(getattr(module, "running_mean", None), torch.Tensor)
    )


def owner(model: nn.Module, name: str) -> tuple[str, nn.Module, str]:
    """(module name, module, attribute) owning parameter ``name``; parametrizations resolved."""
    parts = name.split(".")
    if "parametrizations" in parts:
        i = parts.index("parametrizations")
        mod_name = ".".join(parts[:i])
        return mod_name, model.get_submodule(mod_name), ".".join(parts[i + 1 :])
    mod_name = ".".join(parts[:-1])
    return mod_name, model.get_submodule(mod_name) if mod_name else model, parts[-1]


def is_gain_or_shift(model: nn.Module, name: str) -> bool:
    """A normaliser's affine scale/shift or a weight-normalisation gain."""
    _, mod, attr = owner(model, name)
    return isinstance(mod, NORM_CLASSES) or attr.endswith("original0")
