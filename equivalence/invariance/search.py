r"""The largest scale-invariant set: screened by Euler's identity, confirmed by scaling.

Invariant sets are closed under disjoint union: if scaling A leaves L unchanged and so does
scaling a disjoint B, scaling A ∪ B does too. So the union I of the tensors invariant on their
own is invariant, and I lies in every maximal invariant set. The search builds a maximal set
M ⊇ I in four stages.

1. *Screen* (no extra pass). A set S invariant at every θ has Σ_{W∈S} ⟨∇_W L, W⟩ = 0 at every
   θ (Euler's identity for degree-0 homogeneity: differentiate L(c·θ_S) = L(θ) at c = 1), and
   conversely a set whose sum vanishes at every θ is invariant (the derivative of
   c ↦ L(c·θ_S) is that sum at c·θ_S, divided by c). The numbers ⟨∇_W L, W⟩ at K test points
   (one backward pass each) therefore test every candidate set at once: a tensor whose value
   vanishes at every point is a candidate for I, and the joint set is the largest subset of
   the candidates whose sum vanishes: the removal sets are tried smallest first (all of one
   size in a few vectorised array operations; the non-invariant candidates are usually few).
   Past ``ENUMERATION_BUDGET`` removal sets (``PROPOSAL_ENUMERATION_BUDGET`` when stage 2 can
   run) the joint set is left to stage 2.
2. *Propose* (no extra pass). The degrees of the traced first pass
   (:mod:`equivalence.invariance.degrees`) give the largest joint set the ops allow: in a
   transformer or a ConvNeXt every tensor that writes into a normalised residual stream
   (hundreds of tensors, removal sets far past any enumeration) in one go. Its parts, the
   subsets whose scales never meet before a normaliser, are confirmed each on its own.
3. *Confirm* (forward passes). Euler's identity at K points is necessary only: a scale
   derivative can vanish by accident (a quantised layer, ReLUs dead on this batch). The loss is
   evaluated at random joint scalings, each tensor of I by its own factor and the rest of M by
   one common factor (one per part); a loss unchanged under independent factors is invariant
   in each unit, so one test confirms I (each tensor on its own) and M (the set as a whole)
   together. The same backward passes give Euler's identity at the scaled points, per unit:
   a unit that only looked invariant at the unscaled points fails there.
4. *Repair* (only when a confirmation fails). The tensors of I whose Euler sums failed at the
   scaled points leave I; group testing (halving) finds any other screened tensor that is not
   invariant on its own (the screen is blind to them: their Euler numbers vanish). Then M is
   sought again among the others (screen, proposal); without a proposal each blind tensor is
   offered to M by a forward test of its own. If M still fails, greedy removal (drop the
   tensor whose removal leaves the smallest violation) and add-back (whole modules, then
   single tensors) run to a fixed point on the forward-pass violation, up to
   ``GREEDY_LIMIT`` candidates; past it, a passing set is grown by halving (:func:`_shrink`).
   The set returned always passes its forward test.

A violation is max |L(scaled) − L(θ)| / |L(θ)| over the scales and the test points; a set
passes when it is at most ``rtol``. The screen's tolerance, per point k, is

    tol_k(S) = max(r · ‖∇L‖ · ‖θ_S‖,  2 · rtol · |L| / max_c |ln c|),   r = min(rtol, 1e-11):

the first term is the rounding allowance for ⟨∇_S L, θ_S⟩: its Cauchy–Schwarz bound times r
(``SCREEN_RTOL``; on a float64 ResNet-18 the invariant tensors measure 1e-19 to 1e-17 of that
bound, the non-invariant ones 1e-6 and more; on Swin-T at initialisation the keys' biases,
invariant, 1e-21, the queries' biases, nearly but not quite invariant, 1e-9 to 1e-8); ‖∇L‖ is
taken over every trainable tensor, so that a tensor whose gradient is rounding noise (a bias
removed by BatchNorm) is not judged on that noise. A joint set is judged on its tensors outside
I only (each of I passed alone, at its own tolerance). The second term lets through, with a
margin of 2 (``SLOPE_MARGIN``), every slope that the forward test would pass to first order in
ln c: a loss change within rtol·|L| up to the largest factor c means |dL/d ln c| ≤
rtol·|L| / max |ln c|. A tensor nearly invariant at the test points (an attention query at
initialisation, its softmax almost uniform) measures a few times that; let through, it would
cost a confirmation and group tests, never a wrong verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .checks import EulerRows

__all__ = [
    "ENUMERATION_BUDGET",
    "GREEDY_LIMIT",
    "PROPOSAL_ENUMERATION_BUDGET",
    "SCREEN_RTOL",
    "Screen",
    "SearchResult",
    "search",
]

#: the most removal sets the screen tries (smallest first) before it leaves the joint set to
#: greedy removal on forward passes
ENUMERATION_BUDGET = 1 << 18

#: the screen's rounding allowance for ⟨∇_S L, θ_S⟩ relative to its Cauchy–Schwarz bound (rtol
#: when smaller): float64 rounding measures 1e-22 to 1e-14 of the bound; a tensor only nearly
#: invariant at the test points (an attention query's bias at initialisation, the softmax almost
#: uniform) 1e-10 to 1e-8, and would cost confirmations and group tests if let through
SCREEN_RTOL = 1e-11

#: the screen lets through a slope |dL/d ln c| up to this many times the one that would move
#: the loss by rtol·|L| over the largest factor tested (the forward test's own threshold)
SLOPE_MARGIN = 2.0

#: the enumeration budget when the degrees of a traced pass propose a set too (they find the
#: large joint sets, where enumeration would run out of budget anyway)
PROPOSAL_ENUMERATION_BUDGET = 1 << 12

#: up to this many tensors named by the scaled points' Euler numbers are also measured alone
#: (a forward test each); more are taken as named
MEASURED_FLAGS = 4

#: the most candidates greedy removal runs on (it costs len(candidates)^2 forward tests); past
#: it a passing set is grown by halving (:func:`_shrink`)
GREEDY_LIMIT = 24

#: a forward-pass violation of a set: (tensors invariant on their own, the rest of the set[, the
#: rest in parts, each scaled by its own factor]) -> float
Violation = Callable[..., float]


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
    ``alone``: the violations measured for single tensors scaled alone (group testing);
    ``parts``: the tensors of M outside ``individual``, in parts that were confirmed each on its
    own (one part when the set could not be split)."""

    individual: list[str]
    members: list[str]
    violation: float
    blind: list[str]
    alone: dict[str, float]
    parts: list[list[str]] = field(default_factory=list)


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


def _smallest_removal(
    screen: Screen, free: list[int], fixed: list[int], budget: int | None = None
) -> list[int] | None:
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
    budget = ENUMERATION_BUDGET if budget is None else budget
    for size in range(len(free) + 1):
        count = math.comb(len(free), size)
        spent += count
        if spent > budget:
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


def _screened_set(
    screen: Screen, candidates: list[str], fixed: list[str], budget: int | None = None
) -> list[str] | None:
    """The largest set with a vanishing Euler sum (the smallest removal, enumerated); None past
    the enumeration budget."""
    index = {n: i for i, n in enumerate(screen.rows.names)}
    free = [n for n in candidates if n not in fixed]
    removed = _smallest_removal(screen, [index[n] for n in free], [index[n] for n in fixed], budget)
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


def _shrink(members: Sequence[str], passes: Callable[[list[str]], bool]) -> list[str]:
    """A subset of ``members`` that passes: groups are added while the union passes, a group
    that breaks it is halved (so one culprit costs about log2(len(members)) tests)."""
    kept: list[str] = []

    def add(group: list[str]) -> None:
        if not group:
            return
        if passes(kept + group):
            kept.extend(group)
        elif len(group) > 1:
            half = len(group) // 2
            add(group[:half])
            add(group[half:])

    add(list(members))
    return [n for n in members if n in kept]


def search(
    rows: EulerRows,
    trainable: list[str],
    joinable: Callable[[str], bool],
    confirm: Violation,
    violation: Violation,
    *,
    rtol: float,
    scales: Sequence[float],
    propose: Callable[[list[str]], list[str]] | None = None,
    split: Callable[[list[str]], list[list[str]]] | None = None,
    suspects: Callable[[], set[str]] | None = None,
) -> SearchResult:
    """Screen, confirm and (if needed) repair: see the module docstring.

    ``joinable(name)``: whether a tensor may enter M without being invariant on its own (the
    audit keeps normaliser scales and shifts and weight-normalisation gains out).
    ``violation(singles, rest)``: the forward-pass violation with each of ``singles`` scaled by
    its own factor and ``rest`` by one common factor; ``confirm``: the same for the first
    confirmation (the caller may measure more there, the gradients, at the same passes).
    ``propose(candidates)``: a joint set among ``candidates`` from the degrees of a traced pass
    (:func:`equivalence.invariance.degrees.propose`), tried when the screen's set is past the
    enumeration budget or fails; ``split(joint)``: its independent parts. With ``split``,
    ``confirm`` and ``violation`` take a third argument, the parts, each scaled by its own
    factor (one test confirms each part on its own). ``suspects()``: after a failed
    confirmation, the tensors whose Euler sums did not vanish at its scaled points
    (:meth:`equivalence.invariance.checks.ScaledLoss.check`); those of ``individual`` are taken
    as not invariant on their own without group testing.
    """
    slope_tol = SLOPE_MARGIN * rtol / max(abs(float(np.log(c))) for c in scales)
    screen = Screen(rows, min(rtol, SCREEN_RTOL), slope_tol)
    individual = [n for n, ok in zip(rows.names, screen.alone()) if ok and n in trainable]
    budget = ENUMERATION_BUDGET if propose is None else PROPOSAL_ENUMERATION_BUDGET
    alone: dict[str, float] = {}
    blind: list[str] = []

    def candidates(ind: list[str], exclude: list[str]) -> list[str]:
        return [n for n in trainable if n in ind or (joinable(n) and n not in exclude)]

    def split_of(joint: list[str]) -> list[list[str]]:
        if not joint:
            return []
        return split(joint) if split is not None and len(joint) > 1 else [list(joint)]

    def alone_passes(items: list[str]) -> bool:
        v = violation(items, [])
        if len(items) == 1:
            alone[items[0]] = v
        return v <= rtol

    def flagged(ind: list[str]) -> list[str]:
        """After a failed confirmation: the tensors of ``ind`` its scaled points refuted."""
        named = (suspects() if suspects is not None else set()) & set(ind)
        if len(named) <= MEASURED_FLAGS:  # few: measure each alone (the report shows it)
            named = {n for n in named if not alone_passes([n])}
        return [n for n in ind if n in named]

    def attempt(ind: list[str], joint: list[str]) -> tuple[float, list[list[str]]]:
        """Confirm ind + joint, the joint set in its parts when it has several (then, unless the
        failure named tensors of ``ind``, once more as one part)."""
        parts = split_of(joint)
        if len(parts) > 1:
            v = confirm(ind, joint, parts)
            if v <= rtol or (suspects is not None and suspects() & set(ind)):
                return v, parts
        return (confirm(ind, joint) if ind or joint else 0.0), ([list(joint)] if joint else [])

    def joints(ind: list[str], exclude: list[str]) -> list[list[str]]:
        """The joint sets to try: the screen's (enumerated), then the degrees' proposal."""
        found = []
        screened = _screened_set(screen, candidates(ind, exclude), ind, budget)
        if screened is not None:
            found.append([n for n in screened if n not in ind])
        if propose is not None:
            pool = [n for n in trainable if n not in ind and joinable(n)]  # blind ones too
            found.append(propose(pool))
        return found

    # screen, propose, confirm; a failure that names tensors of I: without them, once more
    tried: set[frozenset[str]] = set()
    for _ in range(3):
        retry = False
        for joint in joints(individual, blind):
            key = frozenset(individual + joint)
            if key in tried:
                continue
            tried.add(key)
            v, parts = attempt(individual, joint)
            if v <= rtol:
                confirmed = [n for n in trainable if n in key]
                return SearchResult(individual, confirmed, v, blind, alone, parts)
            named = flagged(individual)
            if named:
                blind += named
                individual = [n for n in individual if n not in named]
                retry = True
                break
        if not retry:
            break

    # repair by forward tests: group testing for the blind ones, then M
    found_blind = _failing(individual, alone_passes)
    blind += found_blind
    individual = [n for n in individual if n not in found_blind]
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

    def passes(s: list[str]) -> bool:
        return set_violation(s) <= rtol

    members: list[str] | None = None
    last: list[str] = []
    for joint in joints(individual, blind):
        last = joint
        if passes(individual + joint):
            members = individual + joint
            break
    if members is None:
        screened = _screened_set(screen, cands, individual, budget)
        if len(cands) <= GREEDY_LIMIT:
            members = greedy_fixed_point(cands, individual, passes, set_violation, screened)
        else:  # greedy removal costs len(cands)^2 tests: grow a passing set by halving instead
            members = _shrink(individual + [n for n in last if n not in individual], passes)
    for b in blind if propose is None else []:  # with a proposal, the degrees had them
        if joinable(b) and passes(members + [b]):
            members = members + [b]
    if not passes(members):  # invariant alone, not together (a violation under rtol each)
        members = _shrink([n for n in cands + blind if n in members], passes)
    members = [n for n in trainable if n in members]
    individual = [n for n in individual if n in members]
    joint = [n for n in members if n not in individual]
    parts = [joint] if joint else []
    candidate_parts = split_of(joint)
    if len(candidate_parts) > 1 and violation(individual, joint, candidate_parts) <= rtol:
        parts = candidate_parts
    return SearchResult(individual, members, set_violation(members), blind, alone, parts)
