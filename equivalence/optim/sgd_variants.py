r"""The optimizer table's SGD rows: dampening, Nesterov momentum, and the LR inside the velocity.

* ``torch.optim.SGD(dampening=τ)`` with weight decay ≡ the same SGD without weight decay and
  η̃_t = η_t/(c_t c_{t+1}), the scale sequence modified by the dampening (proofs/dampening.py):
  c_1 = 1 − η_0λ_0, κ_1 = −λ_0 (PyTorch's first step is undampened), then
  c_{t+1} = (1 − (1 − τ)η_tλ_t)c_t + γη_tκ_t, κ_{t+1} = γκ_t − (1 − τ)λ_t c_t.
  Hyper-parameters only.
* ``torch.optim.SGD(nesterov=True)``: no LR/momentum schedule is exact; with one buffer rewrite
  per step it is (proofs/nesterov.py): c_{t+1} = (1 − η_tλ_t)c_t, η̃_t = η_t/(c_t c_{t+1}) and,
  before step t, ṽ ← (c_t/c_{t−1})ṽ + (c_t²λ_t/γ)θ̃_t (ṽ = (λ_0/γ)θ̃_0 at t = 0).
* The LR inside the velocity (Keras/TensorFlow: v ← γv − η(∇L + λθ); θ ← θ + v) is not a
  PyTorch optimizer; :func:`keras_equivalent_schedule` gives its exact no-WD schedules
  (proofs/lr_in_velocity.py): c_{t+1} = (1 + γ − η_tλ_t)c_t − γc_{t−1}, c_0 = c_{−1} = 1,
  η̃_t = η_t/(c_t c_{t+1}), γ̃_t = γ c_{t−1}/c_{t+1} (LR *and* momentum scheduled).

:func:`convert_sgd_variant` drives a stock ``SGD`` with the same hook design as the AdamW
converter: the groups keep the stock lr/weight_decay that schedulers set; a pre-hook sets the
converted values (and, for Nesterov, rewrites the buffer); a post-hook restores them and
corrects the normalisers' running statistics (× c_t/c_{t+1}, its square for the variance)
and sets their eps to ε·m² (m = 1/c_{t+1}).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import SGD, Optimizer

from ..schedule.exact import ScaleSequenceError
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
    "SGDVariantEquivalence",
    "convert_sgd_variant",
    "keras_equivalent_schedule",
    "keras_lockstep",
    "keras_reference_run",
]


def keras_equivalent_schedule(
    lrs: Sequence[float] | np.ndarray, weight_decay: float | Sequence[float], momentum: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(η̃_t, γ̃_t, c_t) for the LR-inside-the-velocity convention (proofs/lr_in_velocity.py).

    Returns arrays of length T (η̃, γ̃) and T + 1 (c_0 … c_T); θ̃_t = θ_t/c_t.
    """
    lr = np.asarray(lrs, dtype=np.float64)
    wd = np.broadcast_to(np.asarray(weight_decay, dtype=np.float64), lr.shape)
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"momentum = {momentum!r} is outside the valid range 0 < momentum < 1")
    n = lr.size
    # Computed through d_t = c_t/c_{t-1} − 1 (d_0 = 0, d_1 = −η_0λ_0), whose recursion
    # d_{t+1} = −η_tλ_t + γ d_t/(1 + d_t) contracts rounding errors by γ per step, and
    # log c_t = Σ log1p(d_s) summed with compensation: c_t keeps a relative error of a few
    # ulps instead of the t·u/(1 − γ) that the three-term recursion in c accumulates.
    d = np.empty(n + 1)
    d[0] = 0.0
    for t in range(n):
        d[t + 1] = -lr[t] * wd[t] + momentum * d[t] / (1.0 + d[t])
        if not d[t + 1] > -1.0:
            raise ValueError(
                f"the scale c_{t + 1} is not positive (step {t}): "
                f"c_{t + 1}/c_{t} = {1.0 + d[t + 1]!r}"
            )
    log1p = np.log1p(d)
    log_c = np.empty(n + 1)
    acc = comp = 0.0
    for t in range(n + 1):  # Kahan-Babuška summation of log c_t = Σ_{s≤t} log1p(d_s)
        x = float(log1p[t])
        s_ = acc + x
        comp += (acc - s_) + x if abs(acc) >= abs(x) else (x - s_) + acc
        acc = s_
        log_c[t] = acc + comp
    c = np.exp(log_c)
    eta = lr * np.exp(-(log_c[:-1] + log_c[1:]))
    gam = momentum * np.exp(-(log1p[:-1] + log1p[1:]))  # γ c_{t-1}/c_{t+1}
    return eta, gam, c


def keras_reference_run(
    theta0: np.ndarray,
    lrs: Sequence[float] | np.ndarray,
    weight_decays: Sequence[float] | np.ndarray,
    momenta: Sequence[float] | np.ndarray,
    grad: Callable[[np.ndarray], np.ndarray],
    jitter: np.random.Generator | None = None,
    jitter_ulps: int = 4,
) -> list[np.ndarray]:
    """A numpy reference of the LR-inside-the-velocity convention (Keras/TensorFlow's SGD):

        v ← γ_t v − η_t (∇L(θ) + λ_t θ),   θ ← θ + v      (from v = 0)

    Returns θ after every step. ``jitter``: move θ and v by ``jitter_ulps`` ulps in a random
    direction per entry after every step (a noise-floor twin). This is a reference of the
    convention, written here; it is not Keras's or TensorFlow's own code.
    """
    n = len(lrs)
    if len(weight_decays) != n or len(momenta) != n:
        raise ValueError(
            f"lrs, weight_decays and momenta have {n}, {len(weight_decays)} and {len(momenta)} "
            "entries: one per step each"
        )
    if jitter_ulps < 0:
        raise ValueError(f"jitter_ulps = {jitter_ulps} is outside the valid range >= 0")
    th, v = np.array(theta0, dtype=np.float64), np.zeros(np.shape(theta0))
    out = []
    for lr, wd, mom in zip(lrs, weight_decays, momenta):
        v = mom * v - lr * (grad(th) + wd * th)
        th = th + v
        if jitter is not None:
            for a in (th, v):
                target = np.where(jitter.random(a.shape) < 0.5, np.inf, -np.inf)
                for _ in range(jitter_ulps):
                    a[:] = np.nextafter(a, target)
        out.append(th.copy())
    return out


def keras_lockstep(
    theta0: np.ndarray,
    lrs: Sequence[float] | np.ndarray,
    weight_decay: float,
    momentum: float,
    grad: Callable[[np.ndarray], np.ndarray],
    *,
    jitter_seed: int = 0,
    momenta: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float, np.ndarray]:
    """The LR-inside-the-velocity reference against its converted run, and its noise floor.

    Runs :func:`keras_reference_run` with (``lrs``, λ, γ) from ``theta0``; the converted run
    without decay, with η̃_t, γ̃_t from :func:`keras_equivalent_schedule` (or the momenta
    ``momenta``: a negative control); and a floor twin from ``theta0`` one ulp up, jittered
    by four ulps per entry after every step (seed ``jitter_seed``). Returns (err, floor, c):
    err = max_t ‖c_{t+1} θ̃_t − θ_t‖/‖θ_t‖, floor = max_t ‖θ'_t − θ_t‖/‖θ_t‖ for the twin θ',
    and the scale sequence c_0 … c_T.
    """
    steps = len(lrs)
    wds, moms = [weight_decay] * steps, [momentum] * steps
    ref = np.array(keras_reference_run(theta0, lrs, wds, moms, grad))
    twin = keras_reference_run(
        np.nextafter(theta0, np.inf),
        lrs,
        wds,
        moms,
        grad,
        jitter=np.random.default_rng(jitter_seed),
    )
    eta, gam, c = keras_equivalent_schedule(lrs, weight_decay, momentum)
    conv = keras_reference_run(
        theta0, eta, [0.0] * steps, gam if momenta is None else momenta, grad
    )
    size = np.linalg.norm(ref, axis=1)
    err = float(np.max(np.linalg.norm(np.array(conv) * c[1:, None] - ref, axis=1) / size))
    floor = float(np.max(np.linalg.norm(np.array(twin) - ref, axis=1) / size))
    return err, floor, c


class SGDVariantEquivalence(InPlaceConversion):
    """Hooks driving the user's ``SGD`` (dampening > 0 or nesterov) through the exact map, in
    place (:mod:`equivalence.optim.inplace`). No power-of-two rescaling: c_t is a float."""

    STATE_KEY = "equivalence_sgd_variant"

    def __init__(
        self,
        optimizer: SGD,
        invariant: Any,
        norm_layers: Any = None,
        *,
        model: nn.Module | None = None,
        check: bool = True,
    ) -> None:
        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer must be a torch.optim.SGD, got {type(optimizer).__name__}")
        sets = as_sets(invariant)
        # per set: updates taken, c_{t-1}, c_t, κ_t
        self.vstate: list[list[float]] = [[0, 1.0, 1.0, 0.0] for _ in sets]
        self._next: list[tuple[ScaleSet, float, float]] = []
        super().__init__(optimizer, sets, norm_layers, model=model, check=check)
        self._check_fresh_groups(_check_variant_group, "torch.optim.SGD")
        self._require_norm_info()

    def _new_set(self, s: ScaleSet) -> None:
        self.vstate.append([0, 1.0, 1.0, 0.0])

    @property
    def t(self) -> int:
        return int(self.vstate[0][0]) if self.vstate else self.updates

    @property
    def c(self) -> float:
        return self.vstate[0][2] if self.vstate else 1.0

    @property
    def invariant_groups(self) -> tuple[int, ...]:
        return tuple(gi for gi, (_, parts, _) in enumerate(self.layout()) if parts)

    def _advance(self, opt: Optimizer, layout: Any) -> dict[tuple[int, int], dict[str, Any]]:
        groups_of = iter_sets_groups(layout)
        out: dict[tuple[int, int], dict[str, Any]] = {}
        self._next = []
        for s in self.sets:
            if s.index in self.skipped:
                continue
            t, c_prev, c, kappa = self.vstate[s.index]
            t = int(t)
            nxt: tuple[float, float] | None = None
            gi_ref = -1
            for gi in groups_of.get(s.index, []):
                g = layout[gi][0]
                _check_variant_group(g, gi, t)
                lr = check_finite_hyper(g["lr"], "lr", gi, t, "0 <= lr < inf", nonnegative)
                wd = check_finite_hyper(
                    g["weight_decay"], "weight_decay", gi, t, "0 <= weight_decay < inf", nonnegative
                )
                mom = check_finite_hyper(g["momentum"], "momentum", gi, t, "0 < momentum < 1")
                tau = float(g["dampening"])
                if g["nesterov"]:
                    c_next, kappa_next = (1.0 - lr * wd) * c, 0.0
                    ps = next(q for k, q in layout[gi][1] if k == s.index)
                    with torch.no_grad():
                        for p in ps:
                            st = opt.state[p]
                            buf = st.get("momentum_buffer")
                            add = (c * c * wd / mom) * p.detach()
                            if buf is None:
                                st["momentum_buffer"] = add.clone()
                            else:
                                buf.mul_(c / c_prev).add_(add)
                elif t == 0:
                    c_next, kappa_next = 1.0 - lr * wd, -wd
                else:
                    c_next = (1.0 - (1.0 - tau) * lr * wd) * c + mom * lr * kappa
                    kappa_next = mom * kappa - (1.0 - tau) * wd * c
                if not c_next > 0.0:
                    raise ScaleSequenceError(
                        f"the scale c_{t + 1} = {c_next!r} of invariant set {s.index} is not positive "
                        f"(update {t}, param group {gi})"
                    )
                if nxt is not None and nxt != (c_next, kappa_next):
                    raise ConversionError(
                        f"invariant set {s.index} spans param groups {gi_ref} and {gi}, which give "
                        f"different scales at update {t}: the set is scaled as a whole, so all of it "
                        "needs the same recipe; declare each group's part as its own set if it is "
                        "invariant on its own"
                    )
                nxt, gi_ref = (c_next, kappa_next), gi
                out[(s.index, gi)] = {"lr": lr / (c * c_next), "weight_decay": 0.0}
            if nxt is not None:
                self._next.append((s, *nxt))
        return out

    def _commit(self, opt: Optimizer) -> None:
        nxt, self._next = self._next, []
        for s, c_next, kappa_next in nxt:
            st = self.vstate[s.index]
            s.norms.correct(st[2] / c_next)  # running statistics follow the input's scale
            self.vstate[s.index] = [st[0] + 1, st[2], c_next, kappa_next]
            s.norms.set_scale(c_next)  # eps = ε_user · m², m = 1/c_t

    def set_scale(self, s: ScaleSet) -> float:
        return float(self.vstate[s.index][2])

    def current_scale(self, s: int = 0) -> float:
        """m with θ̃ = m θ: 1/c_t."""
        return 1.0 / self.vstate[s][2] if self.vstate else 1.0

    def _stock_state(self, s: ScaleSet, p: torch.Tensor, state: dict[str, Any]) -> dict[str, Any]:
        """Dampening: v = ṽ/c_t − κ_t θ̃ (as proofs/kappa_form.py); Nesterov: b = b̃/c_{t−1}."""
        b = state.get("momentum_buffer")
        if b is None:
            return state
        _, c_prev, c, kappa = self.vstate[s.index]
        g = next(g for g in self.optimizer.param_groups if any(q is p for q in g["params"]))
        with torch.no_grad():
            v = b / c_prev if g["nesterov"] else b / c - kappa * p.detach()
        return {**state, "momentum_buffer": v}

    def _removed(self) -> None:
        self.vstate = [[0, 1.0, 1.0, 0.0] for _ in self.sets]

    def state_dict(self) -> dict[str, Any]:
        return {"format": 2, "sets": [list(v) for v in self.vstate], "set_sizes": self._set_sizes()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") == 2:
            self.vstate = [
                [int(v[0]), float(v[1]), float(v[2]), float(v[3])] for v in state["sets"]
            ]
        else:
            self.vstate = [
                [int(state["t"]), float(state["c_prev"]), float(state["c"]), float(state["kappa"])]
            ]
        for s, v in zip(self.sets, self.vstate):
            s.norms.set_scale(v[2])


def _check_variant_group(g: dict[str, Any], i: int, t: int | None = None) -> None:
    when = "" if t is None else f" at update {t}"
    if not (g["momentum"] > 0 and (g["nesterov"] or g["dampening"] > 0)):
        raise ValueError(
            f"param_groups[{i}]: convert_sgd_variant handles momentum > 0 with dampening > 0 or "
            f"nesterov=True (got momentum={g['momentum']!r}, dampening={g['dampening']!r}, "
            f"nesterov={g['nesterov']!r}){when}; plain SGD goes through equivalence.convert_optimizer"
        )
    if not g["momentum"] < 1:
        raise ValueError(
            f"param_groups[{i}] has momentum = {g['momentum']!r}{when}, outside the valid range "
            "0 < momentum < 1"
        )
    for key in ("lr", "weight_decay"):
        if isinstance(g[key], torch.Tensor):
            raise TypeError(f"param_groups[{i}]['{key}'] is a Tensor; the converter needs floats")
    if g.get("maximize", False):
        raise ValueError(f"param_groups[{i}] has maximize=True, which the theorem does not cover")


def convert_sgd_variant(
    optimizer: SGD,
    *,
    invariant: Any,
    norm_layers: Any = None,
    model: nn.Module | None = None,
    check: bool = True,
) -> SGDVariantEquivalence:
    """Convert a fresh ``SGD`` with ``dampening > 0`` (hyper-parameters only) or
    ``nesterov=True`` (with the buffer rewrite) **in place**: ``.optimizer is optimizer``;
    the schedulers attached to it keep working; other parameters keep their recipe."""
    return SGDVariantEquivalence(optimizer, invariant, norm_layers, model=model, check=check)
