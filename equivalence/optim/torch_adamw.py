r"""AdamW with weight decay ≡ stock ``torch.optim.Adam`` without it, on scale-invariant weights.

PyTorch's AdamW step k = 1, 2, … (``torch.optim.AdamW``, ``amsgrad=False``), with
the live hyper-parameters η_k, λ_k, β1_k, β2_k, ε_k of the step and g_k = ∇L(θ_{k-1})::

    θ ← (1 − η_k λ_k) θ_{k-1}                                 (decoupled decay, first)
    m_k = β1_k m_{k-1} + (1 − β1_k) g_k,   v_k = β2_k v_{k-1} + (1 − β2_k) g_k²
    θ_k = θ − η_k / (1 − β1_k^k) · m_k / (√v_k / √(1 − β2_k^k) + ε_k)

On a set S of parameters in which the loss is scale invariant (∇L(θ/A) = A ∇L(θ)),
stock Adam without weight decay, started from the same θ_0 and zero buffers,
follows θ̃_k = θ_k / A_k exactly (proofs/adamw.py) when at step k it is given

    a_k = 1 − η_k λ_k,   A_k = a_1 ⋯ a_k   (A_0 = 1)
    ν_k = β1_k ν_{k-1} + (1 − β1_k)/A_{k-1},     σ_k = β2_k σ_{k-1} + (1 − β2_k)/A_{k-1}²,
    ν_0 = σ_0 = 1
    β̃1_k = β1_k ν_{k-1}/ν_k,   β̃2_k = β2_k σ_{k-1}/σ_k
    ε̃_k = ε_k √(1 − β2_k^k) / √(σ_k (1 − β̃2_k^k))
    η̃_k = η_k (ν_k/A_k) · √(1 − β2_k^k)(1 − β̃1_k^k) / ((1 − β1_k^k) √(σ_k (1 − β̃2_k^k)))

and then its buffers stay m̃_k = m_k/ν_k and ṽ_k = v_k/σ_k: no state is rewritten.
The bias corrections Adam computes with the *current* β̃ and the step count are
absorbed into η̃_k and ε̃_k. With ``amsgrad=True`` the map is exact with one state
rewrite per step: before step k the maximum buffer is multiplied by σ_{k-1}/σ_k
(= β̃2_k/β2_k), so that max̃_k = max(v^max_{k-1}, v_k)/σ_k. ``maximize`` flips the
sign of g in both runs and changes nothing. ``foreach`` and ``fused`` compute the
same real-number step (rounding differs) and are passed through; ``capturable``,
``differentiable`` and tensor-valued hyper-parameters are refused. Adam with
*coupled* L2 decay (``Adam(weight_decay=λ)``) has no such map (proofs/adam_l2.py)
and is refused.

Floating point: the map's running state (A, ν, σ) is carried at 40 decimal digits
(:class:`AdamMapState`), never in float64, and each step's η̃, ε̃ are the nearest floats to
their exact values; a float64 recurrence would put a few ulps of error into ν and σ at every
step, which the betas' ratio νₖ₋₁/νₖ turns into a systematic error of the EMAs (a contracting
network ended 13× above its noise floor that way). β̃1, β̃2 must be floats near 1, and an
error e in β̃ changes the EMA by e·(m̃ − g̃); rounded to nearest, e keeps one sign while β̃
settles and these add up over the EMA's memory, so the rounding error is fed back instead
(first-order noise shaping, :func:`_shaped_beta`): the EMA-weighted sum of all past errors
stays within half an ulp.

Design: the user's own ``AdamW`` is converted in place (:mod:`equivalence.optim.inplace`): its
parameter groups keep the stock hyper-parameters (lr, weight_decay, betas, eps) that the
user's schedulers read and write. A step pre-hook reads them, advances A, ν, σ and, for the
duration of the step, shows the optimizer a view of its groups in which the invariant parts
carry the converted values and no decay; a post-hook puts the user's groups back, corrects
eval-mode normaliser statistics (running mean × A_{k-1}/A_k, running var × its square),
rescales by powers of two, and sets each normaliser's eps to ε·m² (m = 1/A_k times the
rescalings), which keeps a normaliser with ε > 0 exact too. Parameters outside S keep
AdamW's step exactly.
"""

from __future__ import annotations

import decimal
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import torch
from torch import nn
from torch.optim import Adam, Optimizer

from .inplace import (
    ConversionError,
    InPlaceConversion,
    ScaleSet,
    as_sets,
    check_finite_hyper,
    iter_sets_groups,
    nonnegative,
)

__all__ = [
    "AdamMapState",
    "AdamWEquivalence",
    "AdamStepParams",
    "adamw_step_params",
    "adamw_equivalent_schedule",
    "convert_adamw",
]

_ADAM_L2_PROOF = "proofs/adam_l2.py"


#: The map's running state is held in decimal at this many significant digits (about 133
#: bits): its own rounding, ~1e-40 relative per step, is far below float64's.
_DIGITS = 40
_CTX = decimal.Context(prec=_DIGITS, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_ONE, _ZERO = Decimal(1), Decimal(0)


@dataclass(frozen=True)
class AdamMapState:
    """The map's running state after step k, held exactly (40 significant digits).

    ``scale``: A_k (divided by the power-of-two rescalings); ``nu``, ``sigma``: ν_k, σ_k;
    ``carry1``, ``carry2``: the noise-shaping carries of β̃1 and β̃2's rounding
    (:func:`adamw_step_params`). The float64 hyper-parameters given to Adam are rounded from
    these once per step; the state itself is never rounded to float64, so its error does
    not build up over the run.
    """

    scale: Decimal = _ONE
    nu: Decimal = _ONE
    sigma: Decimal = _ONE
    carry1: Decimal = _ZERO
    carry2: Decimal = _ZERO

    def rescaled(self, s: float) -> AdamMapState:
        """The state after multiplying the invariant weights by s (A → A/s, ν → sν, σ → s²σ)."""
        d = Decimal(s)
        with decimal.localcontext(_CTX):
            return replace(self, scale=self.scale / d, nu=self.nu * d, sigma=self.sigma * d * d)

    def to_dict(self) -> dict[str, str]:
        """Exact, JSON- and pickle-friendly: each field as its decimal string."""
        return {f: str(getattr(self, f)) for f in _STATE_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdamMapState:
        """Inverse of :meth:`to_dict`; float entries (older checkpoints) are taken exactly."""
        return cls(**{f: Decimal(d[f]) for f in _STATE_FIELDS if f in d})


_STATE_FIELDS = ("scale", "nu", "sigma", "carry1", "carry2")


@dataclass(frozen=True)
class AdamStepParams:
    """The converted Adam's hyper-parameters for one step and the new state of the map.

    ``lr``, ``beta1``, ``beta2``, ``eps``: η̃_k, β̃1_k, β̃2_k, ε̃_k as given to Adam;
    ``state``: the exact state after step k. ``scale``, ``nu``, ``sigma`` are A_k, ν_k, σ_k
    rounded to float (buffers m̃ = m/ν, ṽ = v/σ), for inspection.
    """

    lr: float
    beta1: float
    beta2: float
    eps: float
    state: AdamMapState

    @property
    def scale(self) -> float:
        return float(self.state.scale)

    @property
    def nu(self) -> float:
        return float(self.state.nu)

    @property
    def sigma(self) -> float:
        return float(self.state.sigma)


def _shaped_beta(exact: Decimal, carry: Decimal) -> tuple[float, Decimal]:
    """Round β̃ to a float with its rounding error fed back (first-order noise shaping).

    The EMA m̃_k = β̃ m̃_{k-1} + (1 − β̃) g̃_k turns an error e_k in β̃ into the error
    e_k (m̃_{k-1} − g̃_k) in m̃_k, which the following steps multiply by β̃. With the plain
    nearest float, e_k keeps one sign for as long as β̃ stays near one value (a constant
    ηλ makes β̃ constant), and the errors add up over the EMA's memory 1/(1 − β̃): several
    hundred ulps for β2 = 0.999. Here the float is chosen nearest to β̃ − β̃·E_{k-1}, with
    the carry E_k = β̃ E_{k-1} + e_k the EMA-weighted sum of all past errors; so
    |E_k| ≤ ulp/2 at every step, the accumulated error is E_k times the (slowly varying)
    factor m̃ − g̃ plus its variation, and each β̃ is within 1.5 ulps of the exact value.
    Runs in the map's decimal context (:func:`adamw_step_params`).
    """
    decayed = exact * carry
    f = float(exact - decayed)
    if f >= 1.0:  # never the case for β < 1 (β̃ < β); kept valid all the same
        f = math.nextafter(1.0, 0.0)
    elif f < 0.0:
        f = 0.0
    return f, decayed + (_exact(f) - exact)


def adamw_step_params(
    k: int,
    lr: float,
    weight_decay: float,
    beta1: float,
    beta2: float,
    eps: float,
    state: AdamMapState | None = None,
) -> AdamStepParams:
    """One step of the AdamW → Adam map (module docstring; derived in proofs/adamw.py).

    ``k`` ≥ 1 is Adam's step count, (lr, weight_decay, beta1, beta2, eps) the stock
    AdamW hyper-parameters of step k, ``state`` the map's state after step k − 1 (the
    start state A_0 = ν_0 = σ_0 = 1 when None).

    Floating point: A, ν, σ are carried at 40 digits from the stock run's own float
    factors (a_k = 1 − η_kλ_k evaluated in float, as AdamW does); η̃ and ε̃ are the nearest
    floats to their exact values, given the float β̃ that Adam's bias corrections
    1 − β̃^k use (evaluated in float, as Adam does); β̃1, β̃2 are rounded with their error
    fed back (:func:`_shaped_beta`).
    """
    if k < 1:
        raise ValueError(f"k = {k} is outside the valid range k >= 1 (Adam counts from 1)")
    state = AdamMapState() if state is None else state
    a = 1.0 - lr * weight_decay  # AdamW's own float factor: param.mul_(1 - lr * weight_decay)
    if not a > 0.0:
        raise ValueError(
            f"lr * weight_decay = {lr * weight_decay!r} at step {k} is outside the valid range "
            "[0, 1): the decay factor 1 - lr * weight_decay must stay positive"
        )
    with decimal.localcontext(_CTX):
        b1, c1 = _beta(beta1)  # β, 1 − β
        b2, c2 = _beta(beta2)
        inv = _ONE / state.scale  # 1/A_{k-1}
        scale = state.scale * _exact(a)
        n1, s1 = b1 * state.nu, b2 * state.sigma
        nu = n1 + c1 * inv
        sigma = s1 + c2 * inv * inv
        tb1, carry1 = _shaped_beta(n1 / nu, state.carry1)  # β̃ = βν_{k-1}/ν_k
        tb2, carry2 = _shaped_beta(s1 / sigma, state.carry2)
        # the bias corrections as the two optimizers compute them, in float
        q1, q2 = _exact(1.0 - tb1**k), _exact(1.0 - tb2**k)
        p1, p2 = _exact(1.0 - beta1**k), _exact(1.0 - beta2**k)
        bc2 = (p2 / (sigma * q2)).sqrt()
        lr_new = _exact(lr) * nu * q1 * bc2 / (scale * p1)
        eps_new = _exact(eps) * bc2
        return AdamStepParams(
            float(lr_new), tb1, tb2, float(eps_new), AdamMapState(scale, nu, sigma, carry1, carry2)
        )


@functools.lru_cache(maxsize=4096)
def _exact(x: float) -> Decimal:
    """The exact value of the float ``x``, as a Decimal (cached: most step values recur)."""
    return Decimal(x)


#: enough digits for 1 − β to be exact for any float β in [0, 1) (≤ 1,075 significant digits)
_EXACT_CTX = decimal.Context(prec=1100)


@functools.lru_cache(maxsize=64)
def _beta(beta: float) -> tuple[Decimal, Decimal]:
    """(β, 1 − β), both exact; betas change seldom, so they are cached."""
    b = _exact(beta)
    return b, _EXACT_CTX.subtract(_ONE, b)


def adamw_equivalent_schedule(
    lrs: Sequence[float],
    weight_decay: float | Sequence[float],
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> list[AdamStepParams]:
    """The converted Adam's per-step hyper-parameters for an AdamW LR schedule (no torch).

    ``lrs[k-1]`` is η_k, the LR of AdamW step k; ``weight_decay`` a constant or per step.
    """
    n = len(lrs)
    wds = (
        [float(weight_decay)] * n if isinstance(weight_decay, (int, float)) else list(weight_decay)
    )
    if len(wds) != n:
        raise ValueError(f"weight_decay has {len(wds)} entries; lrs has {n}")
    _check_betas(betas)
    out: list[AdamStepParams] = []
    state = AdamMapState()
    for k in range(1, n + 1):
        p = adamw_step_params(k, float(lrs[k - 1]), wds[k - 1], betas[0], betas[1], eps, state)
        out.append(p)
        state = p.state
    return out


def _check_betas(betas: Any) -> None:
    for i, b in enumerate(betas):
        if isinstance(b, torch.Tensor):
            raise TypeError(f"betas[{i}] is a Tensor; the converter needs float hyper-parameters")
        if not 0.0 <= float(b) < 1.0:
            raise ValueError(f"betas[{i}] = {b!r} is outside the valid range 0 <= beta < 1")


_STOCK_KEYS = ("lr", "weight_decay", "betas", "eps")


class AdamWEquivalence(InPlaceConversion):
    """The step hooks that make the user's ``AdamW`` follow the AdamW run without decay on S.

    In place (:mod:`equivalence.optim.inplace`): ``optimizer`` is the user's ``AdamW`` (or
    ``Adam(decoupled_weight_decay=True)``); between steps its groups hold the stock values,
    and for the duration of each step the invariant parts get η̃, β̃, ε̃ and no decay
    (module docstring). ``current_scale(s)`` is m with θ̃_k (this run) = m θ_k (the AdamW
    run) on set ``s``: m = 1/A_k times the power-of-two rescalings. The map's state rides in
    the optimizer's ``state_dict``.
    """

    STATE_KEY = "equivalence_adamw"
    NAME = "AdamWEquivalence"

    def __init__(
        self,
        optimizer: Adam,
        invariant: Any,
        norm_layers: Any = None,
        rescale_log2: float | None = 16.0,
        *,
        model: nn.Module | None = None,
        check: bool = True,
    ) -> None:
        if not isinstance(optimizer, Adam):
            raise TypeError(
                f"optimizer must be torch.optim.AdamW or Adam, got {type(optimizer).__name__}"
            )
        if rescale_log2 is not None and not (1.0 <= rescale_log2 <= 512.0):
            raise ValueError(f"rescale_log2 = {rescale_log2!r} is outside the valid range [1, 512]")
        sets = as_sets(invariant)
        self.rescale_log2 = rescale_log2
        self.log2_pow = 0  # sum of the rescalings' exponents -j (a record, first set)
        # per set: steps taken, and per user group the map's exact state (A_k, ν_k, σ_k, carries)
        self.steps: list[int] = [0 for _ in sets]
        self.states: list[dict[int, AdamMapState]] = [{} for _ in sets]
        self._pending: list[tuple[ScaleSet, Decimal, dict[int, AdamMapState]]] = []
        super().__init__(optimizer, sets, norm_layers, model=model, check=check)
        self._check_fresh_groups(_check_adamw_group, "torch.optim.AdamW")
        self._require_norm_info()
        self._set_norm_eps()

    @property
    def k(self) -> int:
        """Steps taken by the first set."""
        return self.steps[0] if self.steps else self.updates

    @property
    def invariant_groups(self) -> tuple[int, ...]:
        return tuple(gi for gi, (_, parts, _) in enumerate(self.layout()) if parts)

    def _new_set(self, s: ScaleSet) -> None:
        self.steps.append(0)
        self.states.append({})

    # -- hooks ------------------------------------------------------------------------------
    def _advance(self, opt: Optimizer, layout: Any) -> dict[tuple[int, int], dict[str, Any]]:
        groups_of = iter_sets_groups(layout)
        out: dict[tuple[int, int], dict[str, Any]] = {}
        pending = []
        for s in self.sets:
            if s.index in self.skipped:
                continue
            k = self.steps[s.index] + 1
            decay: float | None = None
            gi_ref = -1
            params: dict[int, AdamStepParams] = {}
            for gi in groups_of.get(s.index, []):
                g = layout[gi][0]
                _check_adamw_group(g, gi, k)
                lr = check_finite_hyper(g["lr"], "lr", gi, k, "0 <= lr < inf", nonnegative)
                wd = check_finite_hyper(
                    g["weight_decay"], "weight_decay", gi, k, "0 <= weight_decay < inf", nonnegative
                )
                if decay is None:
                    decay, gi_ref = lr * wd, gi
                elif lr * wd != decay:
                    raise ConversionError(
                        f"invariant set {s.index} spans param groups {gi_ref} and {gi}, whose lr * "
                        f"weight_decay differ at step {k} ({decay!r} vs {lr * wd!r}): the set is scaled "
                        "as a whole, so all of it needs the same decay factor. If each group's part is "
                        "invariant on its own, declare the parts as separate sets, invariant=[[...], [...]]"
                    )
                b1, b2 = (float(b) for b in g["betas"])
                state = self.states[s.index].get(gi)
                try:
                    params[gi] = adamw_step_params(k, lr, wd, b1, b2, float(g["eps"]), state)
                except ValueError as exc:
                    raise ConversionError(f"param_groups[{gi}]: {exc}") from None
            if not params:
                continue
            for gi, p in params.items():
                g = layout[gi][0]
                if g["amsgrad"]:  # the one state rewrite: max buffer × σ_{k-1}/σ_k
                    ps = next(q for kk, q in layout[gi][1] if kk == s.index)
                    bufs = [
                        st["max_exp_avg_sq"]
                        for st in (opt.state.get(q, {}) for q in ps)
                        if "max_exp_avg_sq" in st
                    ]
                    if bufs:
                        old = self.states[s.index].get(gi, AdamMapState())
                        with torch.no_grad():
                            torch._foreach_mul_(bufs, float(old.sigma / p.state.sigma))
                out[(s.index, gi)] = {
                    "lr": p.lr,
                    "betas": (p.beta1, p.beta2),
                    "eps": p.eps,
                    "weight_decay": 0.0,
                }
            pending.append((s, self._scale_of(s), {gi: p.state for gi, p in params.items()}))
        self._pending = pending
        return out

    def _commit(self, opt: Optimizer) -> None:
        pending, self._pending = self._pending, []
        for s, old_scale, new in pending:
            self.steps[s.index] += 1
            self.states[s.index].update(new)
            with decimal.localcontext(_CTX):
                ratio = float(old_scale / self._scale_of(s))  # A_{k-1}/A_k: θ̃ grew by this
            s.norms.correct(ratio)
            scale = float(self._scale_of(s))
            if self.rescale_log2 is not None and -math.log2(scale) >= self.rescale_log2:
                self._rescale(s, 1 - math.frexp(scale)[1])  # scale → [1, 2)
        if pending:
            self._set_norm_eps()

    def _set_norm_eps(self) -> None:
        """eps = ε_user · m² on every normaliser (m = current_scale())."""
        for s in self.sets:
            s.norms.set_scale(float(self._scale_of(s)))

    def _rescale(self, s: ScaleSet, j: int) -> None:
        """Exact rescaling by f = 2^-j (proofs/adamw.py, step "rescaling").

        The invariant weights become f·θ̃, the gradients there ∇L/f, so m̃ → m̃/f,
        ṽ → ṽ/f², A → A/f, ν → f·ν, σ → f²·σ, normaliser statistics → f·mean,
        f²·var: every later step is f times the unrescaled one, and as f is a power
        of two no mantissa changes.
        """
        f = math.ldexp(1.0, -j)
        opt = self.optimizer
        with torch.no_grad():
            for q in s.params:
                q.mul_(f)
                st = opt.state.get(q, {})
                if "exp_avg" in st:
                    st["exp_avg"].mul_(1.0 / f)
                for key in ("exp_avg_sq", "max_exp_avg_sq"):
                    if key in st:
                        st[key].mul_(1.0 / (f * f))
            self.states[s.index] = {gi: st.rescaled(f) for gi, st in self.states[s.index].items()}
        s.norms.correct(f)
        if s.index == 0:
            self.log2_pow -= j

    # -- queries and checkpoints ------------------------------------------------------------

    def _scale_of(self, s: ScaleSet) -> Decimal:
        for st in self.states[s.index].values():
            return st.scale  # every group of a set has the same decay, hence the same A
        return _ONE

    @property
    def scale(self) -> Decimal:
        """A_k of the first set divided by the rescalings' 2^-j (θ_AdamW = scale · θ̃), exact."""
        return self._scale_of(self.sets[0]) if self.sets else _ONE

    def set_scale(self, s: ScaleSet) -> float:
        return float(self._scale_of(s))

    def current_scale(self, s: int = 0) -> float:
        """m with θ̃ (this run) = m · θ (the AdamW run): 1/A_k times the rescalings' 2^-j."""
        if not self.sets:
            return 1.0
        with decimal.localcontext(_CTX):
            return float(_ONE / self._scale_of(self.sets[s]))

    def _stock_state(self, s: ScaleSet, p: torch.Tensor, state: dict[str, Any]) -> dict[str, Any]:
        """m = ν m̃, v = σ ṽ, max = σ m̃ax (proofs/adamw.py: the buffers are never rewritten)."""
        gi = next(
            i for i, g in enumerate(self.optimizer.param_groups) if any(q is p for q in g["params"])
        )
        st = self.states[s.index].get(gi)
        if st is None:
            return state
        out = dict(state)
        with torch.no_grad():
            if "exp_avg" in out:
                out["exp_avg"] = out["exp_avg"] * float(st.nu)
            for key in ("exp_avg_sq", "max_exp_avg_sq"):
                if key in out:
                    out[key] = out[key] * float(st.sigma)
        return out

    def _removed(self) -> None:
        self.states = [{} for _ in self.sets]

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 2,
            "steps": list(self.steps),
            "log2_pow": self.log2_pow,
            "sets": [{gi: st.to_dict() for gi, st in sts.items()} for sts in self.states],
            "set_sizes": self._set_sizes(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.log2_pow = int(state["log2_pow"])
        if state.get("format") == 2:
            self.steps = [int(k) for k in state["steps"]]
            self.states = [
                {int(gi): AdamMapState.from_dict(d) for gi, d in sts.items()}
                for sts in state["sets"]
            ]
        else:  # the first format: one set; its groups were the invariant groups of a split copy
            self.steps = [int(state["k"])]
            gis = list(self.invariant_groups)
            if "states" in state:
                old = [AdamMapState.from_dict(d) for _, d in sorted(state["states"].items())]
            else:  # before the exact state: float scale, ν, σ
                old = [
                    AdamMapState.from_dict(
                        {"scale": state["scale"], "nu": nu, "sigma": state["sigma"][i]}
                    )
                    for i, nu in sorted(state["nu"].items())
                ]
            self.states = [dict(zip(gis, old))]
        self._set_norm_eps()


def _check_adamw_group(g: dict[str, Any], i: int, k: int | None = None) -> None:
    when = "" if k is None else f" at step {k}"
    for key in ("lr", "eps", "weight_decay"):
        if isinstance(g[key], torch.Tensor):
            raise TypeError(
                f"param_groups[{i}]['{key}'] is a Tensor{when}; the converter needs floats"
            )
    _check_betas(g["betas"])
    for key in ("capturable", "differentiable"):
        if g.get(key, False):
            raise ValueError(
                f"param_groups[{i}] has {key}=True, which the converter does not support (it needs "
                "float hyper-parameters set between steps); use the default False"
            )
    if not g.get("decoupled_weight_decay", False) and g["weight_decay"] != 0:
        raise ValueError(
            f"param_groups[{i}]: Adam with coupled L2 weight_decay = {g['weight_decay']!r}{when} has no "
            "exact no-weight-decay equivalent: the decay term passes through Adam's "
            "per-coordinate normalisation (a sign flip of g + λθ that no schedule can "
            f"reproduce; see {_ADAM_L2_PROOF}). Use torch.optim.AdamW"
        )


def convert_adamw(
    optimizer: Optimizer,
    *,
    invariant: Any,
    norm_layers: Any = None,
    rescale_log2: float | None = 16.0,
    model: nn.Module | None = None,
    check: bool = True,
) -> AdamWEquivalence:
    """The no-weight-decay equivalent of a fresh ``torch.optim.AdamW``, converted **in place**.

    Returns an :class:`AdamWEquivalence` whose ``optimizer`` is ``optimizer`` itself: its
    groups keep the stock values that the schedulers attached to it read and write; inside
    each step the ``invariant`` members take the map of this module (proofs/adamw.py) and
    the rest plain AdamW steps. ``optimizer`` must be a ``torch.optim.AdamW`` (or
    ``Adam(decoupled_weight_decay=True)``) whose invariant parameters have not stepped. Adam
    with coupled L2 decay is refused: no exact map exists (proofs/adam_l2.py).
    """
    if not isinstance(optimizer, Adam):
        raise TypeError(f"optimizer must be torch.optim.AdamW, got {type(optimizer).__name__}")
    for i, g in enumerate(optimizer.param_groups):
        _check_adamw_group(g, i)
    return AdamWEquivalence(
        optimizer, invariant, norm_layers, rescale_log2, model=model, check=check
    )
