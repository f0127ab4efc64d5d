"""Make a normalised network scale invariant the paper's way: freeze what breaks invariance."""

from __future__ import annotations

from torch import nn

from .layer_kinds import NORM_CLASSES

__all__ = ["make_scale_invariant"]


def make_scale_invariant(model: nn.Module, *, last_layer: str | None = "auto") -> list[str]:
    """Freeze what breaks scale invariance, the paper's way; return the names of the frozen tensors.

    Li & Arora (ICLR 2020), experiments (following Hoffer et al., 2018): the
    affine parameters of every BatchNorm, GroupNorm, LayerNorm, InstanceNorm
    (and RMSNorm) stay at their initial values, and so does the last linear
    layer; every other trainable weight of a standard normalised architecture
    (conv nets, pre-activation ResNets) then lies in the invariant set. Check
    the result with :func:`audit`.

    ``last_layer``: ``"auto"`` (the last ``nn.Linear`` in registration order),
    a module name, or ``None`` (freeze only the normalisers).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    frozen: list[str] = []
    for mod_name, m in model.named_modules():
        if isinstance(m, NORM_CLASSES):
            for pn, p in m.named_parameters(recurse=False):
                if p.requires_grad:
                    p.requires_grad_(False)
                    frozen.append(f"{mod_name}.{pn}" if mod_name else pn)
    if last_layer is not None:
        if last_layer == "auto":
            linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(
                    "make_scale_invariant found no nn.Linear to freeze as the last layer; pass "
                    "last_layer='<module name>' or last_layer=None"
                )
            last_layer = linears[-1]
        try:
            head = model.get_submodule(last_layer)
        except AttributeError as exc:
            raise ValueError(
                f"last_layer = {last_layer!r} is not a submodule of the model"
            ) from exc
        for pn, p in head.named_parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen.append(f"{last_layer}.{pn}" if last_layer else pn)
    return frozen
