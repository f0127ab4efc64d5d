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

Design: the returned optimizer is a stock ``torch.optim.Adam`` whose parameter
groups keep the stock hyper-parameters (lr, weight_decay, betas, eps) that the
user's stock schedulers read and write. A step pre-hook reads them, advances
A, ν, σ and sets the converted values for the step; a post-hook restores the
stock values, corrects eval-mode normaliser statistics (running mean × A_{k-1}/A_k,
running var × its square), rescales by powers of two, and sets each normaliser's eps to
ε·m² (m = 1/A_k times the rescalings), which keeps a normaliser with ε > 0 exact too.
Parameters outside S keep AdamW's step exactly (``decoupled_weight_decay=True``).
"""

from __future__ import annotations

import decimal
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import torch
from torch import nn
from torch.optim import Adam, Optimizer

from .checkpointing import StateDictHooks
from .normalisers import NormLayers

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


class AdamWEquivalence(StateDictHooks):
    """The step hooks that make a stock ``Adam`` follow an AdamW run on the invariant groups.

    Attributes: ``optimizer`` (the stock Adam), ``invariant_groups`` (indices of its
    groups holding scale-invariant parameters). ``current_scale()`` is m with
    θ̃_k (this run) = m θ_k (the AdamW run): m = 1/A_k times the power-of-two
    rescalings. Use ``state_dict``/``load_state_dict`` next to the optimizer's and
    scheduler's for checkpoints. Between steps the invariant groups hold the stock
    AdamW values (``weight_decay`` = λ with ``decoupled_weight_decay=False``): the
    hooks own them, so step this optimizer only with the hooks attached.
    """

    def __init__(
        self,
        optimizer: Adam,
        invariant_groups: Sequence[int],
        norm_layers: Iterable[nn.Module] = (),
        rescale_log2: float | None = 16.0,
    ) -> None:
        if type(optimizer) is not Adam:
            raise TypeError(
                f"optimizer must be a stock torch.optim.Adam, got {type(optimizer).__name__}"
            )
        if rescale_log2 is not None and not (1.0 <= rescale_log2 <= 512.0):
            raise ValueError(f"rescale_log2 = {rescale_log2!r} is outside the valid range [1, 512]")
        self.optimizer = optimizer
        self.invariant_groups = tuple(int(i) for i in invariant_groups)
        for i in self.invariant_groups:
            if not 0 <= i < len(optimizer.param_groups):
                raise ValueError(
                    f"invariant group {i} is outside [0, {len(optimizer.param_groups)})"
                )
            _check_group(optimizer.param_groups[i], i)
        self.norm_layers = list(norm_layers)
        # the normalisers fed by the invariant set get ε·m² (proofs/normaliser_eps.py) and
        # their running statistics follow the input's scale
        self._norms = NormLayers(self.norm_layers)
        self.rescale_log2 = rescale_log2
        self.k = 0  # steps taken
        self.log2_pow = 0  # sum of the rescalings' exponents -j (a record)
        # per invariant group: A_k (divided by the rescalings' 2^-j; θ_AdamW = A_k · θ̃), ν_k,
        # σ_k and the rounding carries, held exactly (AdamMapState)
        self.states = {i: AdamMapState() for i in self.invariant_groups}
        self._stock: dict[int, dict[str, Any]] = {}
        self._pending: tuple[Decimal, dict[int, AdamStepParams]] | None = None
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_hook),
            optimizer.register_step_post_hook(self._post_hook),
            *self._register_state_dict_hooks(optimizer),
        ]

    # -- hooks ------------------------------------------------------------------------------

    def _pre_hook(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        k = self.k + 1
        params: dict[int, AdamStepParams] = {}
        decay: float | None = None
        for i in self.invariant_groups:
            g = opt.param_groups[i]
            _check_group(g, i)
            for p in g["params"]:
                if p.grad is None:
                    raise ValueError(
                        f"parameter of invariant group {i} has no gradient at step {k}: the "
                        "invariant set is scaled as a whole, so every member must step"
                    )
            lr, wd = float(g["lr"]), float(g["weight_decay"])
            if decay is None:
                decay = lr * wd
            elif lr * wd != decay:
                raise ValueError(
                    f"invariant groups have different lr * weight_decay at step {k} "
                    f"({decay!r} vs {lr * wd!r} in group {i}): the invariant set is scaled as a "
                    "whole, so every invariant parameter needs the same decay factor"
                )
            b1, b2 = (float(b) for b in g["betas"])
            params[i] = adamw_step_params(k, lr, wd, b1, b2, float(g["eps"]), self.states[i])
        for i, p in params.items():
            g = opt.param_groups[i]
            self._stock[i] = {key: g[key] for key in _STOCK_KEYS}
            if g["amsgrad"]:  # the one state rewrite: max buffer × σ_{k-1}/σ_k
                bufs = [
                    st["max_exp_avg_sq"]
                    for st in (opt.state.get(q, {}) for q in g["params"])
                    if "max_exp_avg_sq" in st
                ]
                if bufs:
                    with torch.no_grad():
                        ratio = self.states[i].sigma / p.state.sigma
                        torch._foreach_mul_(bufs, float(ratio))
            g["lr"], g["betas"], g["eps"], g["weight_decay"] = p.lr, (p.beta1, p.beta2), p.eps, 0.0
        self._pending = (self.scale, params)

    def _post_hook(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        if self._pending is None:
            raise RuntimeError("step post-hook ran without its pre-hook")
        old_scale, params = self._pending
        self._pending = None
        for i, saved in self._stock.items():
            opt.param_groups[i].update(saved)
        self._stock = {}
        self.k += 1
        for i, p in params.items():
            self.states[i] = p.state
        if not params:
            return
        with decimal.localcontext(_CTX):
            ratio = float(old_scale / self.scale)  # A_{k-1}/A_k: θ̃ grew by this factor
        self._scale_norm_stats(ratio)
        scale = float(self.scale)
        if self.rescale_log2 is not None and -math.log2(scale) >= self.rescale_log2:
            self._rescale(1 - math.frexp(scale)[1])  # scale → [1, 2)
        self._set_norm_eps()

    def _set_norm_eps(self) -> None:
        """eps = ε_user · m² on every normaliser (m = current_scale())."""
        self._norms.set_scale(1.0 / self.current_scale())

    def _scale_norm_stats(self, r: float) -> None:
        """Running mean × r, running var × r² (the normaliser's input scaled by r)."""
        self._norms.correct(r)

    def _rescale(self, j: int) -> None:
        """Exact rescaling by s = 2^-j (proofs/adamw.py, step "rescaling").

        The invariant weights become s·θ̃, the gradients there ∇L/s, so m̃ → m̃/s,
        ṽ → ṽ/s², A → A/s, ν → s·ν, σ → s²·σ, normaliser statistics → s·mean,
        s²·var: every later step is s times the unrescaled one, and as s is a power
        of two no mantissa changes.
        """
        s = math.ldexp(1.0, -j)
        opt = self.optimizer
        with torch.no_grad():
            for i in self.invariant_groups:
                for q in opt.param_groups[i]["params"]:
                    q.mul_(s)
                    st = opt.state.get(q, {})
                    if "exp_avg" in st:
                        st["exp_avg"].mul_(1.0 / s)
                    for key in ("exp_avg_sq", "max_exp_avg_sq"):
                        if key in st:
                            st[key].mul_(1.0 / (s * s))
                self.states[i] = self.states[i].rescaled(s)
        self._scale_norm_stats(s)
        self.log2_pow -= j

    # -- queries and checkpoints ------------------------------------------------------------

    STATE_KEY = "equivalence_adamw"  # optimizer.state_dict() carries the converter's state
    SCALE_NAME = "the scale A_k"

    @property
    def scale(self) -> Decimal:
        """A_k divided by the rescalings' 2^-j (θ_AdamW = scale · θ̃), exact; 1 before step 1."""
        for st in self.states.values():
            return st.scale  # every invariant group has the same decay, hence the same A
        return _ONE

    def current_scale(self) -> float:
        """m with θ̃ (this run) = m · θ (the AdamW run): 1/A_k times the rescalings' 2^-j."""
        with decimal.localcontext(_CTX):
            return float(_ONE / self.scale)

    def state_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "log2_pow": self.log2_pow,
            "states": {i: st.to_dict() for i, st in self.states.items()},
            "invariant_groups": list(self.invariant_groups),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["invariant_groups"]) != list(self.invariant_groups):
            raise ValueError(
                f"state_dict invariant_groups = {state['invariant_groups']!r} does not match "
                f"{list(self.invariant_groups)!r}"
            )
        self.k = int(state["k"])
        self.log2_pow = int(state["log2_pow"])
        if "states" in state:
            self.states = {int(i): AdamMapState.from_dict(d) for i, d in state["states"].items()}
        else:  # a checkpoint from before the exact state: float scale, ν, σ
            self.states = {
                int(i): AdamMapState.from_dict(
                    {"scale": state["scale"], "nu": nu, "sigma": state["sigma"][i]}
                )
                for i, nu in state["nu"].items()
            }
        self._set_norm_eps()

    def remove(self) -> None:
        """Detach the hooks; the invariant groups become decoupled (AdamW) groups again.

        Without the hooks a group with ``decoupled_weight_decay=False`` and the stock λ
        would apply coupled L2 decay; it is switched back to AdamW's decoupled decay.
        """
        for h in self._handles:
            h.remove()
        for i in self.invariant_groups:
            self.optimizer.param_groups[i]["decoupled_weight_decay"] = True
        self._norms.restore_eps()


def _check_group(g: dict[str, Any], i: int) -> None:
    for key in ("lr", "eps", "weight_decay"):
        if isinstance(g[key], torch.Tensor):
            raise TypeError(f"group {i}: {key} is a Tensor; the converter needs float values")
    _check_betas(g["betas"])
    for key in ("capturable", "differentiable"):
        if g.get(key, False):
            raise ValueError(
                f"group {i}: {key}=True is not supported by the converter (it needs float "
                "hyper-parameters set between steps); use the default False"
            )


def convert_adamw(
    optimizer: Optimizer,
    *,
    invariant: Iterable[torch.Tensor],
    norm_layers: Iterable[nn.Module] = (),
    rescale_log2: float | None = 16.0,
) -> AdamWEquivalence:
    """The no-weight-decay equivalent of a fresh ``torch.optim.AdamW`` on scale-invariant weights.

    Returns an :class:`AdamWEquivalence` whose ``optimizer`` is a new stock
    ``torch.optim.Adam`` over the same parameters: each group of ``optimizer`` is
    split into its ``invariant`` members (stepped through the map of this module,
    proofs/adamw.py) and the rest (plain AdamW steps, ``decoupled_weight_decay=True``).
    Attach the stock schedulers to ``.optimizer`` as you would to the AdamW.

    ``optimizer`` must be a ``torch.optim.AdamW`` (or ``Adam(decoupled_weight_decay=True)``)
    that has not stepped. ``Adam`` with coupled L2 decay is refused: no exact map
    exists (proofs/adam_l2.py).
    """
    if not isinstance(optimizer, Adam):
        raise TypeError(f"optimizer must be torch.optim.AdamW, got {type(optimizer).__name__}")
    if len(optimizer.state) != 0:
        raise ValueError("optimizer has already stepped; convert a fresh torch.optim.AdamW")
    groups = optimizer.param_groups
    for i, g in enumerate(groups):
        if not g.get("decoupled_weight_decay", False) and g["weight_decay"] != 0:
            raise ValueError(
                f"group {i}: Adam with coupled L2 weight_decay = {g['weight_decay']!r} has no "
                "exact no-weight-decay equivalent: the decay term passes through Adam's "
                "per-coordinate normalisation (a sign flip of g + λθ that no schedule can "
                f"reproduce; see {_ADAM_L2_PROOF}). Use torch.optim.AdamW"
            )
        _check_group(g, i)
    inv_ids = {id(p) for p in invariant}
    found: set[int] = set()
    new_groups: list[dict[str, Any]] = []
    inv_groups: list[int] = []
    for g in groups:
        base = {k: v for k, v in g.items() if k not in ("params", "initial_lr")}
        inv = [p for p in g["params"] if id(p) in inv_ids]
        rest = [p for p in g["params"] if id(p) not in inv_ids]
        found.update(id(p) for p in inv)
        if inv:
            inv_groups.append(len(new_groups))
            new_groups.append({**base, "params": inv, "decoupled_weight_decay": False})
        if rest:
            new_groups.append({**base, "params": rest, "decoupled_weight_decay": True})
    missing = inv_ids - found
    if missing:
        raise ValueError(f"{len(missing)} tensor(s) in invariant are not among the optimizer's")
    opt = Adam(new_groups)
    return AdamWEquivalence(opt, inv_groups, norm_layers=norm_layers, rescale_log2=rescale_log2)
