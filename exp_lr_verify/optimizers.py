"""The optimizer table's numeric checks, one per row (README, "Beyond SGD").

AdamW, SGD with dampening and SGD with Nesterov momentum run stock PyTorch (with
``weight_decay`` and stock schedulers) against their converted twins on the main job's
networks through ``equivalence.lockstep.verify``: the criterion of every training claim.
The LR inside the velocity (Keras/TensorFlow's convention, for which PyTorch has no
optimizer) runs a numpy reference of that convention (``equivalence.keras_lockstep``)
on a scale-invariant ratio of quadratics, judged against 3× the reference's own noise floor
(a twin one ulp away, jittered by four ulps per entry after every step). Adam with coupled
L2 decay has no exact map (``proofs.adam_l2``): its row passes when the refutation holds
numerically (the AdamW map applied to it misses by far more than rounding, more so as ηλ
grows) and ``convert_adamw`` refuses it. The negative controls of the exact rows (maps that
must fail) are in tests/test_adamw.py and tests/test_optimizer_table.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR

import equivalence
from equivalence.verify import lockstep
from equivalence.verify.testing_nets import batches, loss_fn, main_job_nets, ratio_of_quadratics

from .claims import Status
from .config import VerifyConfig
from .numeric import BATCH, NumericResult, lockstep_check

#: the bound of the numpy reference's check: 3× its measured floor
FLOOR_FACTOR = 3.0


def _multi(steps: int) -> Any:
    return lambda o: MultiStepLR(o, [steps // 2, 3 * steps // 4], 0.1)


def _cosine(steps: int) -> Any:
    return lambda o: CosineAnnealingLR(o, steps)


def check_adamw(cfg: VerifyConfig) -> NumericResult:
    """Stock AdamW ≡ stock Adam with η̃, ε̃, β̃ per step and no decay (``proofs.adamw``)."""
    steps = cfg.steps
    recipes = [
        lockstep.AdamWRecipe(1e-2, weight_decay=0.5, lr_scheduler=_cosine(steps)),
        lockstep.AdamWRecipe(1e-2, weight_decay=0.5, amsgrad=True, lr_scheduler=_multi(steps)),
        lockstep.AdamWRecipe(5e-3, (0.8, 0.99), 1e-6, 1.0, maximize=True),
    ]
    return lockstep_check(
        cfg,
        cfg.seed + 6,
        recipes,
        steps,
        "general",
        f"stock AdamW (cosine; MultiStepLR with amsgrad; constant, ε = 1e-6, maximize) vs the "
        f"converted "
        f"stock Adam, {steps} steps, 3 networks without biases before the normalisers",
        bias=False,
    )


def check_dampening(cfg: VerifyConfig) -> NumericResult:
    """SGD(dampening=τ) ≡ SGD(dampening=τ) without decay, LR only (``proofs.dampening``)."""
    steps = cfg.steps
    recipes = [
        lockstep.SGDRecipe(0.1, 0.9, 5e-3, lr_scheduler=s, dampening=d)
        for s, d in ((_multi(steps), 0.3), (_cosine(steps), 0.5), (None, 0.1))
    ]
    return lockstep_check(
        cfg,
        cfg.seed + 7,
        recipes,
        steps,
        "general",
        f"dampening 0.3 / 0.5 / 0.1 (MultiStepLR, cosine, constant), {steps} steps, 3 networks",
    )


def check_nesterov(cfg: VerifyConfig) -> NumericResult:
    """SGD(nesterov=True) ≡ Nesterov SGD without decay, one buffer rewrite per step."""
    steps = cfg.steps
    recipes = [
        lockstep.SGDRecipe(0.1, 0.9, 5e-3, lr_scheduler=s, nesterov=True)
        for s in (_multi(steps), _cosine(steps), None)
    ]
    return lockstep_check(
        cfg,
        cfg.seed + 8,
        recipes,
        steps,
        "general",
        f"Nesterov (MultiStepLR, cosine, constant), {steps} steps, 3 networks",
    )


def check_lr_in_velocity(cfg: VerifyConfig) -> NumericResult:
    """v ← γv − η(g + λθ), θ ← θ + v: exact with η̃ and γ̃ scheduled (``proofs.lr_in_velocity``).

    numpy reference of the convention, 10 coordinates, 10·steps steps, three LR schedules;
    error: max_t ‖c_t θ̃_t − θ_t‖/‖θ_t‖, judged against 3× the reference's floor.
    """
    steps, n = 10 * cfg.steps, 10
    grad = ratio_of_quadratics(n, cfg.seed + 1)
    k = np.arange(steps)
    base, wd, mom = 0.01, 0.01, 0.9  # ηλ = 1e-4 < (1 − √γ)²: c_t stays positive
    theta0 = np.random.default_rng(cfg.seed + 2).standard_normal(n)
    worst, ratio = 0.0, 0.0
    for lrs in (
        np.full(steps, base),
        base * 0.1 ** (k // (steps // 3)),
        base * 0.5 * (1 + np.cos(np.pi * k / steps)),
    ):
        err, floor, _ = equivalence.keras_lockstep(
            theta0, lrs, wd, mom, grad, jitter_seed=cfg.seed + 3
        )
        worst, ratio = max(worst, err), max(ratio, err / (FLOOR_FACTOR * floor))
    ok = np.isfinite(worst) and ratio <= 1.0
    return NumericResult(
        Status.PASSED if ok else Status.FAILED,
        worst,
        f"numpy reference of the convention, {steps} steps, constant/step/cosine LR; "
        f"error/bound {ratio:.2g} (bound 3·noise floor of the reference)",
    )


def check_adam_l2(cfg: VerifyConfig) -> NumericResult:
    """Adam(weight_decay=λ) (coupled L2) has no exact map (``proofs.adam_l2``): refused, and
    the AdamW map applied to it misses by far more than rounding, more as ηλ grows."""
    _, net = main_job_nets(cfg.seed + 9, bias=False)[0]
    steps = cfg.steps
    data = batches(net.spec, steps, BATCH, cfg.seed)
    residuals = []
    for wd in (1e-3, 1e-2, 1e-1):
        trace = lockstep.run(
            net.model,
            data,
            _AdamL2(1e-2, wd),
            loss_fn=loss_fn(net.spec),
            invariant=net.invariant,
            twin=_adamw_map_twin(1e-2, wd),
        )
        residuals.append(max(trace.param))
    try:
        equivalence.convert_adamw(
            torch.optim.Adam([torch.zeros(1)], weight_decay=1e-2),
            invariant=[],
            norm_layers=(),
        )
        refused = False
    except ValueError:
        refused = True
    grows = all(a < b for a, b in zip(residuals, residuals[1:]))
    ok = refused and grows and residuals[0] > 1e-6
    words = ", ".join(f"{r:.2g}" for r in residuals)
    return NumericResult(
        Status.PASSED if ok else Status.FAILED,
        residuals[0],
        f"refuted: the AdamW map applied to Adam + L2 misses by {words} at ηλ = 1e-5, 1e-4, "
        f"1e-3 ({steps} steps); convert_adamw {'refuses' if refused else 'does NOT refuse'} it",
    )


class _AdamL2:
    """A stock recipe for the harness: ``torch.optim.Adam(lr, weight_decay=λ)`` (coupled L2)."""

    jittered_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr: float, weight_decay: float) -> None:
        self.lr, self.weight_decay = lr, weight_decay

    def stock(self, params: Any) -> tuple[torch.optim.Optimizer, Any]:
        return torch.optim.Adam(list(params), lr=self.lr, weight_decay=self.weight_decay), None

    def set_step(self, opt: torch.optim.Optimizer, t: int) -> None:
        """Nothing set by hand."""


def _adamw_map_twin(lr: float, wd: float) -> lockstep.TwinFactory:
    """The converted twin of AdamW(lr, λ): the candidate map for Adam + L2 (it must miss)."""

    def make(model: Any, recipe: Any, invariant: Any, steps: int) -> lockstep.Twin:
        return lockstep.ConvertedAdamWTwin(
            model, lockstep.AdamWRecipe(lr, weight_decay=wd), invariant, 16.0, True
        )

    return make


#: claim key -> its numeric check
TABLE_CHECKS = {
    "adamw": check_adamw,
    "dampening": check_dampening,
    "nesterov": check_nesterov,
    "lr_in_velocity": check_lr_in_velocity,
    "adam_l2": check_adam_l2,
}
