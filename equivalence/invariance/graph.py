"""What depends on what in one forward pass, read off its autograd graph.

:class:`Reach` records, per parameter, the normalisers whose input depends on it and whether
the model's output does; the audit uses it to say why a tensor is not scale invariant
(:mod:`equivalence.invariance.reasons`). The walk is iterative and memoised, so deep networks
neither exceed the recursion limit nor revisit shared subgraphs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Reach"]


@dataclass(frozen=True)
class Reach:
    """What depends on each parameter in the autograd graph of one forward pass.

    ``norms[name]``: the normaliser modules whose input depends on parameter ``name``;
    ``output``: the parameters the model's output depends on; ``nonzero``: the parameters
    with a nonzero entry at the model's own parameters.
    """

    norms: dict[str, list[str]]
    output: frozenset[str]
    nonzero: frozenset[str]

    @classmethod
    def of_graph(
        cls,
        params: Mapping[str, torch.Tensor],
        norm_inputs: Mapping[str, torch.Tensor],
        out: Any,
        nonzero: frozenset[str],
    ) -> Reach:
        """Read off the autograd graph of one forward pass: ``norm_inputs`` the normalisers'
        inputs (by module name) and ``out`` the output (a tensor or a tuple / list / dict of
        them), both still attached to the graph of ``params`` (by name)."""
        leaves = _GraphLeaves({id(p): n for n, p in params.items()})
        norms: dict[str, list[str]] = {}
        for norm_name, x in norm_inputs.items():
            for p in leaves.of(x.grad_fn):
                norms.setdefault(p, []).append(norm_name)
        output: set[str] = set()
        for t in _tensors(out):
            output |= leaves.of(t.grad_fn)
        return cls(norms, frozenset(output), nonzero)

    def changes(self, name: str) -> tuple[list[str], bool]:
        """(normalisers whose input depends on ``name``, whether the output does), from the
        graph's structure: a tensor that is zero at these parameters (a zero-initialised bias)
        still counts, since the audit also tests a perturbed point where it is not."""
        return list(self.norms.get(name, [])), name in self.output


class _GraphLeaves:
    """The parameters (AccumulateGrad leaves) reachable from an autograd node, memoised."""

    def __init__(self, names: Mapping[int, str]) -> None:
        self.names = names
        self.memo: dict[int, frozenset[str]] = {}

    def of(self, fn: Any) -> frozenset[str]:
        if fn is None:
            return frozenset()
        stack: list[tuple[Any, bool]] = [(fn, False)]
        while stack:  # iterative post-order: deep networks exceed the recursion limit
            node, expanded = stack.pop()
            key = id(node)
            if key in self.memo:
                continue
            children = [c for c, _ in getattr(node, "next_functions", ()) if c is not None]
            if not expanded:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in self.memo)
                continue
            found: set[str] = set()
            var = getattr(node, "variable", None)
            if var is not None and id(var) in self.names:
                found.add(self.names[id(var)])
            for c in children:
                found |= self.memo.get(id(c), frozenset())
            self.memo[key] = frozenset(found)
        return self.memo[id(fn)]


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [t for x in tree for t in _tensors(x)]
    if isinstance(tree, dict):
        return [t for x in tree.values() for t in _tensors(x)]
    return []
