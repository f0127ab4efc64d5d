"""Why a parameter breaks scale invariance, in words, from where its scale reaches in the graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from .graph import Reach
from .layer_kinds import NORM_CLASSES, owner

__all__ = ["reasons"]


def reasons(
    work: nn.Module,
    outside: Sequence[str],
    reach: Reach,
    eps_only: Sequence[str],
    eps_values: Mapping[str, float],
) -> dict[str, str]:
    """Say in words why each parameter in ``outside`` (trainable, not in S) breaks invariance.

    ``reach`` says which normalisers' inputs and whether the output change when a parameter is
    doubled; ``eps_only``: the parameters that would be invariant as eps -> 0.
    """
    out: dict[str, str] = {}
    param_modules = [
        n for n, m in work.named_modules() if any(True for _ in m.parameters(recurse=False))
    ]
    last_module = param_modules[-1] if param_modules else ""
    for n in outside:
        mod_name, mod, attr = owner(work, n)
        cls = type(mod).__name__
        label = mod_name or "<root>"
        if n in eps_only:
            eps = eps_values.get(mod_name, max(eps_values.values(), default=0.0))
            out[n] = (
                f"eps: invariant as eps -> 0, but the normalisers' eps (e.g. {eps:g}) breaks it "
                "at these scales"
            )
            continue
        reached, out_changed = reach.changes(n)
        if isinstance(mod, NORM_CLASSES) and attr == "weight":
            undone = "and no normaliser undoes it"
            unmatched = "without a matching scaling of its shift"
            out[n] = (
                f"trainable {cls} scale feeding the next layer: scaling {label}.weight scales "
                f"what follows {unmatched if reached else undone}"
            )
        elif isinstance(mod, NORM_CLASSES) and attr == "bias":
            out[n] = (
                f"bias after the normaliser ({cls} shift of {label}): a shift added after "
                "normalising does not scale"
            )
        elif attr.startswith("weight.original0"):
            out[n] = (
                f"weight-normalisation gain of {label}: it scales the layer's output, which no "
                "normaliser follows"
            )
        elif not reached:
            if mod_name == last_module:
                out[n] = (
                    f"unnormalised output layer: {label} ({cls}) feeds the output with no "
                    "normaliser after it"
                )
            else:
                out[n] = (
                    f"no normaliser between {label} ({cls}) and the output: its scale reaches "
                    "the loss"
                )
        elif attr == "bias":
            out[n] = (
                f"bias of {label} ({cls}): it is normalised only together with its weight, or its "
                "path also reaches the output un-normalised"
            )
        else:
            shown = ", ".join(reached[:3]) + (", ..." if len(reached) > 3 else "")
            out[n] = (
                f"{label} ({cls}) reaches normalisers ({shown}) but its scale also reaches the "
                "loss another way (a residual or skip path, an unscaled branch, or a trainable "
                "scale after the normaliser)"
            )
        if not out_changed and not reached:
            out[n] = (
                f"{label}: doubling it changes nothing at these inputs, yet other scales change "
                "the loss"
            )
    return out
