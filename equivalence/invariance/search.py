r"""The largest scale-invariant set: screened by Euler's identity, confirmed by scaling.

Invariant sets are closed under disjoint union: if scaling A leaves L unchanged and so does
scaling a disjoint B, scaling A ∪ B does too. So the union I of the tensors invariant on their
own is invariant, and I lies in every maximal invariant set. The search builds a maximal set
M ⊇ I in three stages.

1. *Screen* (no extra pass). A set S invariant at every θ has Σ_{W∈S} ⟨∇_W L, W⟩ = 0 at every
   θ (Euler's identity for degree-0 homogeneity: differentiate L(c·θ_S) = L(θ) at c = 1), and
   conversely a set whose sum vanishes at every θ is invariant (the derivative of
   c ↦ L(c·θ_S) is that sum at c·θ_S, divided by c). The numbers ⟨∇_W L, W⟩ at K test points
   (one backward pass each) therefore test every candidate set at once: a tensor whose value
   vanishes at every point is a candidate for I, and the joint set is the largest subset of
   the candidates whose sum vanishes: the removal sets are tried smallest first (all of one
   size in a few vectorised array operations; the non-invariant candidates are usually few).
   Past ``ENUMERATION_BUDGET`` removal sets the joint set is left to the forward tests of 3.
2. *Confirm* (forward passes). Euler's identity at K points is necessary only: a scale
   derivative can vanish by accident (a quantised layer, ReLUs dead on this batch). The loss is
   evaluated at random joint scalings, each tensor of I by its own factor and the rest of M by
   one common factor; a loss unchanged under independent factors is invariant in each unit, so
   one test confirms I (each tensor on its own) and M (the set as a whole) together.
3. *Repair* (only when a confirmation fails). Group testing (halving) finds the screened
   tensors that are not invariant on their own; the screen is blind to them (their Euler
   numbers vanish), so after the search among the others each is offered to M by a forward
   test of its own. If M itself fails (or the screen ran past its budget), greedy removal
   (drop the tensor whose removal leaves the smallest violation) and add-back (whole modules,
   then single tensors) run to a fixed point on the forward-pass violation.

A violation is max |L(scaled) − L(θ)| / |L(θ)| over the scales and the test points; a set
passes when it is at most ``rtol``. The screen's tolerance, per point k, is

    tol_k(S) = max(rtol · ‖∇L‖ · ‖θ_S‖,  10 · rtol · |L| / min_c |ln c|):

the first term is the rounding allowance for ⟨∇_S L, θ_S⟩: its Cauchy–Schwarz bound times
rtol, the relative change accepted as rounding (on a float64 ResNet-18 the invariant tensors
measure 1e-19 to 1e-17 of that bound, the non-invariant ones 1e-6 and more); ‖∇L‖ is taken
over every trainable tensor, so that a tensor whose gradient is rounding noise (a bias removed
by BatchNorm) is not judged on that noise. A joint set is judged on its tensors outside I only
(each of I passed alone, at its own tolerance). The second term keeps, to first order in ln c,
every set the forward test would pass: a loss change within rtol·|L| over a factor c means an
average slope |dL/d ln c| ≤ rtol·|L| / |ln c|, and ten times that slope is let through at
c = 1. A tensor the screen lets through wrongly costs a confirmation, not a wrong verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .checks import EulerRows

__all__ = ["ENUMERATION_BUDGET", "Screen", "SearchResult", "search"]

#: the most removal sets the screen tries (smallest first) before it leaves the joint set to
#: greedy removal on forward passes
ENUMERATION_BUDGET = 1 << 18

#: a forward-pass violation of a set: (tensors invariant on their own, the rest of the set) -> float
Violation = Callable[[Sequence[str], Sequence[str]], float]


@dataclass(frozen=True)
class Screen:
    """Euler's identity as a test of sets: index arrays into ``rows.names``."""

    rows: EulerRows
    rtol: float
    slope_tol: float

    def scores(self, sums: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Scores of sets given their sums and squared norms, shape (K, ...) -> (...)."""
        r = self.rows
        shape = (-1,) + (1,) * (sums.ndim - 1)
        tol = np.maximum(
            self.rtol * r.grad_norms.reshape(shape) * np.sqrt(np.maximum(sq, 0.0)),
            self.slope_tol * np.abs(r.losses).reshape(shape),
        )
        return (np.abs(sums) / np.maximum(tol, 1e-300)).max(axis=0)

    def alone(self) -> np.ndarray:
        """Boolean per tensor: its own ⟨∇_W L, W⟩ vanishes at every point."""
        return self.scores(self.rows.dots, self.rows.sq_norms) <= 1.0


@dataclass(frozen=True)
class SearchResult:
    """``individual``: invariant on their own; ``members``: the maximal set M ⊇ individual;
    ``violation``: M's confirming violation; ``blind``: screened but not invariant on their own;
    ``alone``: the violations measured for single tensors scaled alone (group testing)."""

    individual: list[str]
    members: list[str]
    violation: float
    blind: list[str]
    alone: dict[str, float]


def greedy_fixed_point(
    candidates: Sequence[str],
    fixed: Sequence[str],
    passes: Callable[[list[str]], bool],
    violation: Callable[[list[str]], float],
    start: Sequence[str] | None = None,
) -> list[str]:
    """Greedy removal and add-back until the set passes and nothing more can join.

    ``violation(S)`` scores a set (smaller is better; ``passes(S)`` when small enough); the
    tensor dropped is the one whose removal leaves the smallest violation (the later one on a
    tie); ``start``: the set to start from (default: every candidate).
    """
    order = {n: i for i, n in enumerate(candidates)}
    members = list(candidates if start is None else start)
    fixed_set = set(fixed)

    def drop(current: list[str], removable: list[str]) -> str:
        scored = [(violation([m for m in current if m != n]), -order[n], n) for n in removable]
        return min(scored)[2]

    for _ in range(len(candidates) + 1):
        while not passes(members):
            removable = [n for n in members if n not in fixed_set]
            if not removable:
                members = [n for n in candidates if n in fixed_set]
                break
            members.remove(drop(members, removable))
        # add back: whole modules first (a weight with its bias), then single tensors
        removed = [n for n in candidates if n not in members]
        changed = False
        by_module: dict[str, list[str]] = {}
        for n in removed:
            by_module.setdefault(n.rsplit(".", 1)[0], []).append(n)
        for group in [*by_module.values(), *([n] for n in removed)]:
            if all(g in members for g in group):
                continue
            trial = members + [g for g in group if g not in members]
            if passes(trial):
                members = trial
                changed = True
        if not changed:
            break
    return sorted(members, key=order.__getitem__)


def _smallest_removal(screen: Screen, free: list[int], fixed: list[int]) -> list[int] | None:
    """The smallest subset R of ``free`` such that free \\ R passes the screen.

    The tensors in ``fixed`` passed the screen on their own, each at its own tolerance; leaving
    them out of the sum keeps their (large) norms out of the tolerance of the free ones, where
    they would let a small non-invariant tensor through.

    Removal sets are tried by size, 0, 1, 2, ..., all sets of one size at once (vectorised);
    among the passing sets of the smallest size the one with the smallest score wins. None
    when the sets tried would exceed ``ENUMERATION_BUDGET``.
    """
    del fixed  # each passed the screen alone: the sum is judged over the free tensors only
    r = screen.rows
    total = r.dots[:, free].sum(axis=1)[:, None]
    total_sq = r.sq_norms[:, free].sum(axis=1)[:, None]
    spent = 0
    for size in range(len(free) + 1):
        count = math.comb(len(free), size)
        spent += count
        if spent > ENUMERATION_BUDGET:
            return None
        combos = np.array(list(itertools.combinations(free, size)), dtype=np.int64).reshape(
            count, size
        )
        sums = total - r.dots[:, combos].sum(axis=2)
        sq = total_sq - r.sq_norms[:, combos].sum(axis=2)
        scores = screen.scores(sums, sq)
        if (scores <= 1.0).any():
            return [int(j) for j in combos[int(np.argmin(scores))]]
    return None


def _screened_set(screen: Screen, candidates: list[str], fixed: list[str]) -> list[str] | None:
    """The largest set with a vanishing Euler sum (the smallest removal, enumerated); None past
    the enumeration budget."""
    index = {n: i for i, n in enumerate(screen.rows.names)}
    free = [n for n in candidates if n not in fixed]
    removed = _smallest_removal(screen, [index[n] for n in free], [index[n] for n in fixed])
    if removed is None:
        return None
    gone = {screen.rows.names[j] for j in removed}
    return [n for n in candidates if n not in gone]


def _failing(items: list[str], passes: Callable[[list[str]], bool]) -> list[str]:
    """Group testing by halving: the items of a failing group that fail on their own."""
    if not items or passes(items):
        return []
    if len(items) == 1:
        return list(items)
    half = len(items) // 2
    return _failing(items[:half], passes) + _failing(items[half:], passes)


def search(
    rows: EulerRows,
    trainable: list[str],
    joinable: Callable[[str], bool],
    confirm: Violation,
    violation: Violation,
    *,
    rtol: float,
    scales: Sequence[float],
) -> SearchResult:
    """Screen, confirm and (if needed) repair: see the module docstring.

    ``joinable(name)``: whether a tensor may enter M without being invariant on its own (the
    audit keeps normaliser scales and shifts and weight-normalisation gains out).
    ``violation(singles, rest)``: the forward-pass violation with each of ``singles`` scaled by
    its own factor and ``rest`` by one common factor; ``confirm``: the same for the first
    confirmation (the caller may measure more there, the gradients, at the same passes).
    """
    slope_tol = 10.0 * rtol / min(abs(float(np.log(c))) for c in scales)
    screen = Screen(rows, rtol, slope_tol)
    individual = [n for n, ok in zip(rows.names, screen.alone()) if ok and n in trainable]

    def candidates(ind: list[str], exclude: list[str]) -> list[str]:
        return [n for n in trainable if n in ind or (joinable(n) and n not in exclude)]

    members = _screened_set(screen, candidates(individual, []), individual)
    if members is not None:
        joint = [n for n in members if n not in individual]
        v = confirm(individual, joint) if members else 0.0
        if v <= rtol:
            return SearchResult(individual, members, v, [], {})

    # repair: the screened tensors that are not invariant on their own, then M by forward tests
    alone: dict[str, float] = {}

    def alone_passes(items: list[str]) -> bool:
        v = violation(items, [])
        if len(items) == 1:
            alone[items[0]] = v
        return v <= rtol

    blind = _failing(individual, alone_passes)
    individual = [n for n in individual if n not in blind]
    cands = candidates(individual, blind)
    measured: dict[frozenset[str], float] = {}

    def set_violation(s: list[str]) -> float:
        key = frozenset(s)
        if not key:
            return 0.0  # nothing scaled, nothing changes
        if key not in measured:
            measured[key] = violation(
                [n for n in s if n in individual], [n for n in s if n not in individual]
            )
        return measured[key]

    members = _screened_set(screen, cands, individual)
    if members is None or set_violation(members) > rtol:
        members = greedy_fixed_point(
            cands, individual, lambda s: set_violation(s) <= rtol, set_violation, members
        )
    for b in blind:
        if joinable(b) and set_violation(members + [b]) <= rtol:
            members = members + [b]
    members = [n for n in trainable if n in members]
    return SearchResult(individual, members, set_violation(members), blind, alone)
