"""The error model that judges a converted run against its stock run: one measured noise floor.

A stock run (``torch.optim.SGD`` with weight decay, a stock scheduler) and its converted twin
(no weight decay on the scale-invariant set S, η̃_t = η_t / (c_t c_{t+1}): the general theorem,
``proofs.general_schedule``) compute the same network function in exact arithmetic, with
stored weights θ̃_t = m_t θ_t on S (m_t = ``scheduler.current_scale()``). In floating point
they round differently at every step (the stock run adds λθ to the gradient, the twin
multiplies by an LR c_t c_{t+1} times larger; m_t is exp of a rounded log). The divergence
err_t (the largest relative difference, at step t, of the parameters θ̃_t vs m_t θ_t, of the
train-mode outputs on the step's batch, or of the eval-mode outputs on a probe batch; a
:class:`Trace`) is judged against

    err_t ≤ max(K·u·(t+1), F · E_t)   for t < H,

- **linear term** K·u·(t+1), u the unit roundoff of the dtype: each step injects a few ulps
  of relative error into the iterate (≈ 4u from the update arithmetic) and on a short,
  non-chaotic run these add up linearly; K = 2^10 = 4 ulps per step × 2^8 for the condition
  number of the network function (depth ≤ 7 normalised layers, reductions over ≤ 16·200
  terms).
- **noise floor** E_t = max_{s≤t} F_s, F_s the largest divergence at step s among *twins* of
  the stock run that differ from it only by rounding (:class:`Floor`): its initial weights
  one ulp away; the samples of every batch in another order (every sum over the batch
  rounded differently, every step); and ``JITTER_TWINS`` runs with every weight moved by
  ``JITTER_ULPS`` = 4 ulps in a random direction after every step (the per-step rounding
  budget of the linear term, which is what the converted run carries; for Adam, whose step
  divides one buffer by the root of the other coordinate by coordinate, its buffers too). Training can be
  chaotic (large ηλ/(1−γ), tiny batches): the dynamics then amplify every rounding
  exponentially and no linear model holds; the floor measures that amplification instead of
  assuming it. F = 3 (``FLOOR_FACTOR``) allows for the converted run's per-step rounding being
  a few ulps rather than one. The floor is measured only when some error passes the linear
  term (the max then needs it; the verdict is the same as measuring it always).
- **predictability horizon** H (:meth:`Floor.horizon`): the first step at which some twin's
  divergence passes ``SATURATED`` = 1e-3. From there on a rounding-sized perturbation of the
  stock run has left rounding level (chaotic growth to O(1), or a ReLU tipped by a nudge),
  so the converted run, which receives such perturbations at every step, may be wherever a
  twin may be: no later step measures the equivalence.
- **ill-posed runs are rejected, not judged** (:attr:`Status.ILL_POSED`): the stock run's
  loss, weights or eval output overflow; a normaliser is fed a constant (a normalisation
  group whose input has std/rms below ``DEGENERATE`` = 1e-12: (x − mean)/std is then 0/0 and
  the two runs' rounding gives unrelated O(1) outputs); or H = 0.

The stricter variant for one fixed contracting run (``saturated="exclude"``): a twin whose
divergence ever passes ``SATURATED`` is left out of the floor altogether and every step is
judged (the converted run must not tip where one twin did). Fewer twins can only lower the
floor, so a caller that runs fewer of them (to save time) applies a stricter criterion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

import torch

__all__ = [
    "DEGENERATE",
    "FLOOR_FACTOR",
    "JITTER_TWINS",
    "JITTER_ULPS",
    "K",
    "SATURATED",
    "SERIES",
    "U32",
    "U64",
    "Floor",
    "SeriesVerdict",
    "Status",
    "Trace",
    "Verdict",
    "floor_bound",
    "judge",
    "rel_err",
    "running_max",
    "trajectory_tol",
]

U64 = 2.0**-53  #: unit roundoff of float64
U32 = 2.0**-24  #: unit roundoff of float32
#: ulps of the linear term per step times the network function's condition number (see above)
K = 2.0**10
#: the floor-based bound allows 3x the noise floor (the converted run's per-step rounding is a
#: few ulps rather than one)
FLOOR_FACTOR = 3.0
#: ulps by which a jitter twin moves every weight after every step: the per-step rounding
#: budget of the linear term (≈ 4u from the update arithmetic)
JITTER_ULPS = 4
#: jitter twins per noise floor: their divergences spike at different steps on ill-conditioned
#: nets, so the floor (their max) needs several to cover the envelope. Five were too few:
#: fuzzing found a BN ResNet (closed form, γ = 0) whose converted run was 1.03x 3 × the max of
#: seven twins at a step where the twins jumped 10x, yet inside the range of 20 further jitter
#: twins (their max 2.3e-10 vs its 2.1e-10): a draw from the same distribution, the max of
#: seven just under-sampling its tail.
JITTER_TWINS = 13
#: a twin whose relative divergence passes this has left rounding level
SATURATED = 1e-3
#: a normalisation group whose input has std below this fraction of its rms is constant to
#: ~12 digits: (x − mean)/std is rounding noise amplified by > 1e12 (0/0 in exact arithmetic)
DEGENERATE = 1e-12
#: the divergence series of a :class:`Trace`
SERIES = ("param", "train_out", "eval_out")
_WHAT = {"param": "params", "train_out": "train-mode output", "eval_out": "eval-mode output"}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖_∞ / ‖b‖_∞ (0 when both are zero, inf when only ``b`` is)."""
    den = float(b.abs().max()) if b.numel() else 0.0
    num = float((a - b).abs().max()) if b.numel() else 0.0
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def running_max(xs: list[float] | tuple[float, ...]) -> list[float]:
    """[max(xs[:1]), max(xs[:2]), ...] (0 for an empty prefix)."""
    out, m = [], 0.0
    for x in xs:
        m = max(m, x)
        out.append(m)
    return out


def trajectory_tol(t: int, k: float = K, u: float = U64) -> float:
    """The linear term of the error model at step t: K · u · (t + 1)."""
    return k * u * (t + 1)


@dataclass(frozen=True)
class Trace:
    """Per-step divergences of a twin from the stock run (one lockstep run).

    ``param``: max over the trainable parameters of rel(θ̃_t, m_t θ_t) (θ_t itself outside S;
    empty when the twin claims no scale); ``train_out``: train-mode outputs on the step's
    batch; ``eval_out``: eval-mode outputs on the probe batch (every ``eval_every`` steps and
    at the last one; empty without a probe); ``scales``: m_t. ``finite``: the stock run's
    loss, weights and eval outputs stayed finite. ``spread``: the smallest std/rms of any
    normalisation group's input in the stock run. ``unit_roundoff``: u of the runs' dtype.
    """

    param: tuple[float, ...]
    train_out: tuple[float, ...]
    eval_out: tuple[float, ...]
    scales: tuple[float, ...]
    finite: bool = True
    spread: float = math.inf
    unit_roundoff: float = U64
    exp_params: tuple[dict[str, torch.Tensor], ...] = field(default=(), repr=False)

    @property
    def well_posed(self) -> bool:
        """The stock run stayed finite and no normaliser was fed a constant."""
        return self.finite and self.spread > DEGENERATE

    def worst(self) -> float:
        """The largest divergence of any series at any step (0 for an empty trace)."""
        return max([*self.param, *self.train_out, *self.eval_out], default=0.0)


@dataclass(frozen=True)
class Floor:
    """The twins of a noise floor (see the module docstring) and the two ways of reading them."""

    twins: tuple[Trace, ...]

    def horizon(self) -> int:
        """H: the first step at which some twin's divergence (any series) passes ``SATURATED``.

        A series sampled n < T times over the T steps (the eval outputs, every few steps)
        has its sample i placed at step ⌊i·T/n⌋ (at or before the step it was taken at), so
        a sampled series never cuts the per-step ones short.
        """
        steps = max(len(getattr(tw, s)) for tw in self.twins for s in SERIES)
        h = steps
        for tw in self.twins:
            for s in SERIES:
                xs = getattr(tw, s)
                i = next((i for i, x in enumerate(xs) if x > SATURATED), None)
                if i is not None:
                    h = min(h, i if len(xs) == steps else (i * steps) // len(xs))
        return h

    def kept(self, exclude_saturated: bool) -> tuple[Trace, ...]:
        """All twins, or (``exclude_saturated``) those that never pass ``SATURATED``."""
        if not exclude_saturated:
            return self.twins
        return tuple(tw for tw in self.twins if max(tw.worst(), 0.0) <= SATURATED)

    def envelope(self, series: str, exclude_saturated: bool = False) -> list[float]:
        """E_t = max_{s ≤ t} F_s, F_s the max over the (kept) twins' divergences at step s."""
        twins = self.kept(exclude_saturated)
        if not twins:
            raise ValueError("every twin of the noise floor saturates: no floor can be measured")
        return running_max([max(v) for v in zip(*(getattr(tw, series) for tw in twins))])


def floor_bound(
    floor: Floor,
    series: str,
    n: int,
    k: float = K,
    u: float = U64,
    floor_factor: float = FLOOR_FACTOR,
    exclude_saturated: bool = False,
) -> tuple[list[float], int]:
    """The bound on the first ``n`` steps of ``series`` and the number of steps it judges.

    Returns (max(K·u·(t+1), F·E_t) for t < n, H), H = n with ``exclude_saturated``.
    """
    env = floor.envelope(series, exclude_saturated)
    tols = [max(trajectory_tol(t, k, u), floor_factor * f) for t, f in zip(range(n), env)]
    return tols, n if exclude_saturated else min(floor.horizon(), n)


def _ratio(err: float, bound: float) -> float:
    return err / bound if bound > 0 else (0.0 if err == 0 else math.inf)


class Status(Enum):
    """The verdict on a lockstep run."""

    VERIFIED = "verified"  #: every judged step within the bound
    FAILED = "failed"  #: some judged step above the bound
    ILL_POSED = "ill-posed"  #: the stock run itself is not a measurement (rejected, not judged)


@dataclass(frozen=True)
class SeriesVerdict:
    """One divergence series judged: its errors and bounds on the judged steps (t < H)."""

    series: str
    errors: tuple[float, ...]
    bounds: tuple[float, ...]
    envelope: tuple[float, ...]  #: E_t on the judged steps (empty if the floor was not needed)

    @property
    def worst_error(self) -> float:
        return max(self.errors, default=0.0)

    @property
    def worst_ratio(self) -> float:
        """max_t err_t / bound_t over the judged steps (0 when none)."""
        return max((_ratio(e, b) for e, b in zip(self.errors, self.bounds)), default=0.0)

    @property
    def first_failure(self) -> int | None:
        return next(
            (t for t, (e, b) in enumerate(zip(self.errors, self.bounds)) if not e <= b), None
        )


@dataclass(frozen=True)
class Verdict:
    """The judgement of one lockstep run (see the module docstring for the error model).

    ``worst_error``: the largest divergence on the judged steps; ``bound``: the bound at the
    step and series of the worst error/bound ratio (``worst_ratio``); ``floor``: the largest
    noise-floor envelope value on the judged steps (0 if the floor was not needed);
    ``horizon``: the number of judged steps H; ``steps``: the run's length; ``reasons``:
    why it failed or was rejected, in words.
    """

    status: Status
    worst_error: float
    bound: float
    worst_ratio: float
    floor: float
    horizon: int
    steps: int
    floor_measured: bool
    spread: float
    reasons: tuple[str, ...]
    series: tuple[SeriesVerdict, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.VERIFIED

    def of(self, series: str) -> SeriesVerdict:
        """The verdict on one series (``param``, ``train_out`` or ``eval_out``)."""
        for s in self.series:
            if s.series == series:
                return s
        raise KeyError(f"series = {series!r} is not one of {SERIES}")


def _rejected(trace: Trace, reason: str, floor_measured: bool = False) -> Verdict:
    return Verdict(
        Status.ILL_POSED,
        trace.worst(),
        math.nan,
        math.nan,
        0.0,
        0,
        max(len(getattr(trace, s)) for s in SERIES),
        floor_measured,
        trace.spread,
        (reason,),
    )


def judge(
    trace: Trace,
    floor: Floor | Callable[[], Floor] | None = None,
    *,
    k: float = K,
    floor_factor: float = FLOOR_FACTOR,
    saturated: Literal["horizon", "exclude", "keep"] = "horizon",
) -> Verdict:
    """Judge ``trace`` by err_t ≤ max(K·u·(t+1), F·E_t) for t < H (module docstring).

    ``floor``: the noise floor, or a callable measuring it (called only when some error
    passes K·u·(t+1)), or None (the linear term alone). ``saturated``: ``"horizon"`` (judge
    up to the predictability horizon), ``"exclude"`` (leave saturated twins out, judge
    every step) or ``"keep"`` (keep every twin, judge every step: for a long low-precision
    run whose floor itself leaves rounding level, the claim "no farther from the stock run
    than rounding alone carries it"). ``k = 0`` judges against the floor alone.
    """
    if k < 0 or not math.isfinite(k):
        raise ValueError(f"k = {k} is outside the valid range 0 <= k < inf")
    if floor_factor <= 0 or not math.isfinite(floor_factor):
        raise ValueError(f"floor_factor = {floor_factor} is outside the valid range 0 < f < inf")
    if saturated not in ("horizon", "exclude", "keep"):
        raise ValueError(f"saturated = {saturated!r} is not one of ('horizon', 'exclude', 'keep')")
    if not trace.finite:
        return _rejected(
            trace, "the stock run is not finite (its loss, weights or eval output overflow)"
        )
    if not trace.spread > DEGENERATE:
        return _rejected(
            trace,
            f"a normaliser is fed a constant in the stock run (std/rms "
            f"{trace.spread:.2e} <= {DEGENERATE:g}): its output is 0/0",
        )
    u = trace.unit_roundoff
    steps = max(len(getattr(trace, s)) for s in SERIES)
    present = [s for s in SERIES if getattr(trace, s)]
    needs_floor = floor is not None and any(
        e > trajectory_tol(t, k, u) for s in present for t, e in enumerate(getattr(trace, s))
    )
    measured: Floor | None = None
    horizon = steps
    if needs_floor and floor is not None:
        measured = floor() if callable(floor) else floor
        if saturated == "horizon":
            horizon = measured.horizon()
            if horizon == 0:
                return _rejected(
                    trace,
                    "a rounding-sized perturbation of the stock run leaves "
                    "rounding level at step 0: no step is predictable",
                    True,
                )
    verdicts = []
    for s in present:
        errs = getattr(trace, s)
        n = len(errs)
        if measured is not None:
            tols, judged = floor_bound(measured, s, n, k, u, floor_factor, saturated == "exclude")
            env = measured.envelope(s, saturated == "exclude")
            # eval series are sampled every few steps: cut them where the step count is cut
            judged = (
                n
                if saturated == "keep"
                else min(judged, n)
                if n == steps
                else min(n, math.ceil(n * horizon / max(steps, 1)))
            )
        else:
            tols, judged, env = [trajectory_tol(t, k, u) for t in range(n)], n, []
        verdicts.append(
            SeriesVerdict(s, tuple(errs[:judged]), tuple(tols[:judged]), tuple(env[:judged]))
        )
    reasons = []
    for v in verdicts:
        t = v.first_failure
        if t is not None:
            reasons.append(
                f"{_WHAT[v.series]} diverge at step {t}: {v.errors[t]:.3e} > "
                f"{v.bounds[t]:.3e} (K·u·(t+1) = {trajectory_tol(t, k, u):.3e})"
            )
    ratio, bound = 0.0, math.nan
    for v in verdicts:
        for e, b in zip(v.errors, v.bounds):
            r = _ratio(e, b)
            if r >= ratio:
                ratio, bound = r, b
    return Verdict(
        status=Status.FAILED if reasons else Status.VERIFIED,
        worst_error=max((v.worst_error for v in verdicts), default=0.0),
        bound=bound,
        worst_ratio=ratio,
        floor=max((max(v.envelope, default=0.0) for v in verdicts), default=0.0),
        horizon=horizon,
        steps=steps,
        floor_measured=measured is not None,
        spread=trace.spread,
        reasons=tuple(reasons),
        series=tuple(verdicts),
    )
