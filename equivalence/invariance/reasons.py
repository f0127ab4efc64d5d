"""Why a parameter breaks scale invariance, in words, from where its scale reaches in the graph.

Each reason comes with a short kind (:data:`KINDS`), so that reasons can be counted by kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from .graph import Reach
from .layer_kinds import NORM_CLASSES, owner

__all__ = ["KINDS", "reasons", "tied_names"]

#: the kinds of reason, as ``reasons`` reports them
KINDS = {
    "eps": "invariant only as eps -> 0",
    "norm scale": "a normaliser's trainable scale",
    "norm shift": "a normaliser's trainable shift",
    "weight-norm gain": "a weight-normalisation gain",
    "output layer": "the unnormalised output layer",
    "nonlinearity": "its scale enters a nonlinearity before any normaliser",
    "attention scores": "its scale enters attention scores (query, key)",
    "unscaled sum": "added to a term that does not scale with it",
    "product": "multiplies a tensor that already scales with the set",
    "loss": "reaches the loss with no normaliser in between",
    "no normaliser": "no normaliser between it and the output",
    "other path": "reaches normalisers, but its scale also reaches the loss another way",
    "bias": "a bias normalised only together with its weight",
    "no effect": "doubling it changes nothing at these inputs",
}


def tied_names(model: nn.Module) -> dict[str, list[str]]:
    """name -> the other names of the same tensor (tied weights: GPT-2's ``wte`` and
    ``lm_head``), for the names ``named_parameters()`` reports."""
    by_id: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), []).append(n)
    return {ns[0]: ns[1:] for ns in by_id.values() if len(ns) > 1}


def reasons(
    work: nn.Module,
    outside: Sequence[str],
    reach: Reach,
    eps_only: Sequence[str],
    eps_values: Mapping[str, float],
    degree_reasons: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, str]]:
    """Say in words why each parameter in ``outside`` (trainable, not in S) breaks invariance.

    ``reach`` says which normalisers' inputs and whether the output depend on a parameter;
    ``eps_only``: the parameters that would be invariant as eps -> 0; ``degree_reasons``: for
    the parameters the degrees of the traced pass stopped (:mod:`equivalence.invariance.degrees`),
    the op that stopped them. Returns name -> (reason, kind), the kind a key of :data:`KINDS`.
    """
    degree_reasons = degree_reasons or {}
    out: dict[str, tuple[str, str]] = {}
    param_modules = [
        n for n, m in work.named_modules() if any(True for _ in m.parameters(recurse=False))
    ]
    last_module = param_modules[-1] if param_modules else ""
    tied = tied_names(work)
    for n in outside:
        mod_name, mod, attr = owner(work, n)
        cls = type(mod).__name__
        label = mod_name or "<root>"
        others = tied.get(n, [])
        # a tied tensor is also the weight of its other modules: the last one names the head
        uses = [(mod_name, mod, attr)] + [owner(work, o) for o in others]
        head = next((u for u in uses if u[0] == last_module), None)
        tie = (
            f"tied to {', '.join(others)} (one tensor, used by "
            + ", ".join(f"{u[0]} ({type(u[1]).__name__})" for u in uses)
            + "): "
            if others
            else ""
        )
        reached, out_changed = reach.changes(n)
        if n in eps_only:
            eps = eps_values.get(mod_name, max(eps_values.values(), default=0.0))
            text, kind = (
                f"eps: invariant as eps -> 0, but the normalisers' eps (e.g. {eps:g}) breaks it "
                "at these scales",
                "eps",
            )
        elif isinstance(mod, NORM_CLASSES) and attr == "weight":
            undone = "and no normaliser undoes it"
            unmatched = "without a matching scaling of its shift"
            text, kind = (
                f"trainable {cls} scale feeding the next layer: scaling {label}.weight scales "
                f"what follows {unmatched if reached else undone}",
                "norm scale",
            )
        elif isinstance(mod, NORM_CLASSES) and attr == "bias":
            text, kind = (
                f"bias after the normaliser ({cls} shift of {label}): a shift added after "
                "normalising does not scale",
                "norm shift",
            )
        elif attr.startswith("weight.original0"):
            text, kind = (
                f"weight-normalisation gain of {label}: it scales the layer's output, which no "
                "normaliser follows",
                "weight-norm gain",
            )
        elif head is not None and head[0] != mod_name:
            cls_h = type(head[1]).__name__
            text, kind = (
                f"unnormalised output layer: {head[0]} ({cls_h}) feeds the output with no "
                "normaliser after it",
                "output layer",
            )
        elif mod_name == last_module and not reached:
            text, kind = (
                f"unnormalised output layer: {label} ({cls}) feeds the output with no "
                "normaliser after it",
                "output layer",
            )
        elif not out_changed and not reached:
            text, kind = (
                f"{label}: doubling it changes nothing at these inputs, yet other scales change "
                "the loss",
                "no effect",
            )
        elif n in degree_reasons:
            why = degree_reasons[n]
            kind = _degree_kind(why)
            text = f"{label} ({cls}): {why}"
        elif not reached:
            text, kind = (
                f"no normaliser between {label} ({cls}) and the output: its scale reaches the loss",
                "no normaliser",
            )
        elif attr == "bias":
            text, kind = (
                f"bias of {label} ({cls}): it is normalised only together with its weight, or "
                "its path also reaches the output un-normalised",
                "bias",
            )
        else:
            shown = ", ".join(reached[:3]) + (", ..." if len(reached) > 3 else "")
            text, kind = (
                f"{label} ({cls}) reaches normalisers ({shown}) but its scale also reaches the "
                "loss another way (a residual or skip path, an unscaled branch, or a trainable "
                "scale after the normaliser)",
                "other path",
            )
        out[n] = (tie + text, kind)
    return out


def _degree_kind(why: str) -> str:
    """The kind of a reason from :func:`equivalence.invariance.degrees.propose`."""
    if "attention scores" in why:
        return "attention scores"
    if "it multiplies" in why:
        return "product"
    if "is added" in why:
        return "unscaled sum"
    if "reaches the loss" in why:
        return "loss"
    return "nonlinearity"
