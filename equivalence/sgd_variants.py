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

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import SGD, Optimizer

from .checkpointing import StateDictHooks
from .normalisers import NormLayers

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


class SGDVariantEquivalence(StateDictHooks):
    """Hooks driving a stock ``SGD`` (dampening > 0 or nesterov) through the exact map."""

    def __init__(
        self, optimizer: SGD, invariant_groups: Sequence[int], norm_layers: Iterable[nn.Module] = ()
    ) -> None:
        if type(optimizer) is not SGD:
            raise TypeError(
                f"optimizer must be a stock torch.optim.SGD, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.invariant_groups = tuple(invariant_groups)
        self.norm_layers = list(norm_layers)
        self._norms = NormLayers(self.norm_layers)  # fed eps·m² as their input scales by m = 1/c_t
        self.t = 0
        self.c_prev = 1.0
        self.c = 1.0
        self.kappa = 0.0
        self._saved: dict[int, dict[str, Any]] = {}
        self._next: tuple[float, float] | None = None
        self._handles = [
            optimizer.register_step_pre_hook(self._pre),
            optimizer.register_step_post_hook(self._post),
            *self._register_state_dict_hooks(optimizer),
        ]

    def _pre(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        t, c = self.t, self.c
        nxt: tuple[float, float] | None = None
        for i in self.invariant_groups:
            g = opt.param_groups[i]
            lr, wd, mom = float(g["lr"]), float(g["weight_decay"]), float(g["momentum"])
            tau = float(g["dampening"])
            if g["nesterov"]:
                c_next, kappa_next = (1.0 - lr * wd) * c, 0.0
                with torch.no_grad():
                    for p in g["params"]:
                        st = opt.state[p]
                        buf = st.get("momentum_buffer")
                        add = (c * c * wd / mom) * p.detach()
                        if buf is None:
                            st["momentum_buffer"] = add.clone()
                        else:
                            buf.mul_(c / self.c_prev).add_(add)
            elif t == 0:
                c_next, kappa_next = 1.0 - lr * wd, -wd
            else:
                c_next = (1.0 - (1.0 - tau) * lr * wd) * c + mom * lr * self.kappa
                kappa_next = mom * self.kappa - (1.0 - tau) * wd * c
            if not c_next > 0.0:
                raise ValueError(f"the scale c_{t + 1} = {c_next!r} is not positive (step {t})")
            if nxt is not None and nxt != (c_next, kappa_next):
                raise ValueError(
                    f"invariant groups give different scales at step {t}: the invariant set is "
                    "scaled as a whole, so every invariant parameter needs the same recipe"
                )
            nxt = (c_next, kappa_next)
            self._saved[i] = {"lr": g["lr"], "weight_decay": g["weight_decay"]}
            g["lr"], g["weight_decay"] = lr / (c * c_next), 0.0
        self._next = nxt

    def _post(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        for i, saved in self._saved.items():
            opt.param_groups[i].update(saved)
        self._saved = {}
        if self._next is None:
            return
        c_next, kappa_next = self._next
        self._norms.correct(self.c / c_next)  # running statistics follow the input's scale
        self.c_prev, self.c, self.kappa = self.c, c_next, kappa_next
        self.t += 1
        self._norms.set_scale(self.c)  # eps = ε_user · m², m = 1/c_t

    def current_scale(self) -> float:
        """m with θ̃ = m θ: 1/c_t."""
        return 1.0 / self.c

    STATE_KEY = "equivalence_sgd_variant"  # optimizer.state_dict() carries the state
    SCALE_NAME = "the scale c_t"

    def state_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "c_prev": self.c_prev,
            "c": self.c,
            "kappa": self.kappa,
            "invariant_groups": list(self.invariant_groups),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["invariant_groups"]) != list(self.invariant_groups):
            raise ValueError(
                f"state_dict invariant_groups = {state['invariant_groups']!r} does "
                f"not match {list(self.invariant_groups)!r}"
            )
        self.t, self.c_prev = int(state["t"]), float(state["c_prev"])
        self.c, self.kappa = float(state["c"]), float(state["kappa"])
        self._norms.set_scale(self.c)


def convert_sgd_variant(
    optimizer: SGD, *, invariant: Iterable[torch.Tensor], norm_layers: Iterable[nn.Module] = ()
) -> SGDVariantEquivalence:
    """A stock ``SGD`` without weight decay on ``invariant``, exact for a fresh SGD with
    ``dampening > 0`` (hyper-parameters only) or ``nesterov=True`` (with the buffer rewrite).

    Attach the stock schedulers to ``.optimizer``; other parameters keep their recipe.
    """
    if type(optimizer) is not SGD:
        raise TypeError(f"optimizer must be torch.optim.SGD, got {type(optimizer).__name__}")
    if optimizer.state:
        raise ValueError("optimizer has already stepped; convert a fresh torch.optim.SGD")
    inv_ids = {id(p) for p in invariant}
    new_groups: list[dict[str, Any]] = []
    inv_groups: list[int] = []
    found: set[int] = set()
    for i, g in enumerate(optimizer.param_groups):
        if not (g["momentum"] > 0 and (g["nesterov"] or g["dampening"] > 0)):
            raise ValueError(
                f"group {i}: convert_sgd_variant handles momentum > 0 with dampening > 0 or "
                f"nesterov=True (got momentum={g['momentum']!r}, dampening={g['dampening']!r}, "
                f"nesterov={g['nesterov']!r}); plain SGD goes through equivalence.convert"
            )
        for key in ("lr", "weight_decay"):
            if isinstance(g[key], torch.Tensor):
                raise TypeError(f"group {i}: {key} is a Tensor; the converter needs floats")
        base = {k: v for k, v in g.items() if k not in ("params", "initial_lr")}
        inv = [p for p in g["params"] if id(p) in inv_ids]
        rest = [p for p in g["params"] if id(p) not in inv_ids]
        found.update(id(p) for p in inv)
        if inv:
            inv_groups.append(len(new_groups))
            new_groups.append({**base, "params": inv})
        if rest:
            new_groups.append({**base, "params": rest})
    if inv_ids - found:
        raise ValueError(
            f"{len(inv_ids - found)} tensor(s) in invariant are not among the optimizer's"
        )
    return SGDVariantEquivalence(SGD(new_groups), inv_groups, norm_layers)
