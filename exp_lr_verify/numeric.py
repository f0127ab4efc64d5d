"""The numeric checks, one per claim, on the small networks of ``equivalence.testing_nets``.

The training claims (main theorem without and with momentum, the general theorem, TEXP) run
the stock recipe (stock ``torch.optim.SGD(weight_decay=λ)`` and stock PyTorch schedulers)
against its converted twin with ``equivalence.lockstep.verify``, judged by
``equivalence.noise_floor.judge``: err_t ≤ max(K·u·(t+1), 3·E_t) up to the predictability
horizon, the criterion the property suite (tests/test_properties_equivalence.py) applies to
every drawn network and recipe. The other checks are not trajectories: the lemmas and the
reverse map are held to ``TOL`` (relative, float64: a handful of roundings, amplified by the
condition number of a normalised network, stays many orders below it), the power-of-two
rescaling to bit identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    SequentialLR,
)

import equivalence
from equivalence import schedules
from equivalence.verify import lockstep
from equivalence.verify.noise_floor import Verdict
from equivalence.verify.testing_nets import Net, batches, loss_fn, main_job_nets

from .claims import Status
from .config import VerifyConfig

TOL = 1e-10
BATCH = 16


@dataclass(frozen=True)
class NumericResult:
    """The outcome of one numeric check: its status, worst error, what it ran, its verdicts.

    ``record``: what the report keeps of it beyond the table (e.g. the toy's regimes).
    """

    status: Status
    worst_error: float
    detail: str
    verdicts: tuple[Verdict, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)


def _data(net: Net, steps: int, seed: int) -> tuple[list, torch.Tensor]:
    return batches(net.spec, steps, BATCH, seed), batches(net.spec, 1, 2 * BATCH, seed + 10_007)[0][
        0
    ]


def lockstep_check(
    cfg: VerifyConfig,
    nets_seed: int,
    recipes: Sequence[lockstep.Recipe],
    steps: int,
    form: str,
    what: str,
    bias: bool = True,
) -> NumericResult:
    """The converted twin of ``recipes[i]`` against its stock run on the i-th main-job network
    (``bias``: :func:`~equivalence.testing_nets.main_job_nets`'s)."""
    verdicts = []
    for i, (_, net) in enumerate(main_job_nets(nets_seed, bias)):
        data, probe = _data(net, steps, cfg.seed + i)
        verdicts.append(
            lockstep.verify(
                net.model,
                data,
                recipes[i],
                loss_fn=loss_fn(net.spec),
                invariant=net.invariant,
                probe=probe,
                form=form,
                jitter_twins=cfg.twins,
                seed=cfg.seed + i,
            )
        )
    return summarise(verdicts, what)


def summarise(verdicts: list[Verdict], what: str) -> NumericResult:
    """PASSED iff every verdict is VERIFIED; the worst error and bound ratio in words."""
    worst = max(v.worst_error for v in verdicts)
    ratio = max(v.worst_ratio for v in verdicts)
    floor = max(v.floor for v in verdicts)
    judged = min(v.horizon for v in verdicts)
    reasons = [r for v in verdicts for r in v.reasons]
    ok = all(v.ok for v in verdicts)
    measured = sum(v.floor_measured for v in verdicts)
    floor_words = (
        f"noise floor measured for {measured} of {len(verdicts)} runs, at most {floor:.2e}"
        if measured
        else "every error within K·u·(t+1), so no noise floor was needed"
    )
    detail = (
        f"{what}; error/bound {ratio:.2g} (bound max(K·u·(t+1), 3·noise floor)), "
        f"{floor_words}, shortest judged run {judged} steps"
    )
    if reasons:
        detail += "; " + "; ".join(reasons)
    return NumericResult(Status.PASSED if ok else Status.FAILED, worst, detail, tuple(verdicts))


def check_no_momentum(cfg: VerifyConfig) -> NumericResult:
    """Main theorem without momentum (``proofs.no_momentum``): η̃_t = η(1−ηλ)^(−2t−1)."""
    recipe = lockstep.SGDRecipe(0.05, 0.0, 1e-3)
    return lockstep_check(
        cfg,
        cfg.seed + 1,
        [recipe] * 3,
        cfg.steps,
        "closed_form",
        f"η̃_t = η(1−ηλ)^(−2t−1), η=0.05, λ=1e-3, {cfg.steps} steps, 3 networks",
    )


def check_closed_form(cfg: VerifyConfig) -> NumericResult:
    """Main theorem with momentum (``proofs.closed_form``): η̃_t = η α^(−2t−1), its buffer."""
    recipe = lockstep.SGDRecipe(0.1, 0.9, 5e-4)
    return lockstep_check(
        cfg,
        cfg.seed + 2,
        [recipe] * 3,
        cfg.steps,
        "closed_form",
        "η̃_t = η α^(−2t−1) with ṽ_0 = −(1−α)θ_0/(αη), η=0.1, λ=5e-4, γ=0.9",
    )


def check_general(cfg: VerifyConfig) -> NumericResult:
    """General theorem (``proofs.general_schedule``): η̃_t = η_t/(c_t c_{t+1}), stock schedulers."""
    steps = 2 * cfg.steps

    def warm_cos(o: torch.optim.Optimizer) -> SequentialLR:
        return SequentialLR(
            o,
            [LinearLR(o, 0.1, total_iters=50), CosineAnnealingLR(o, steps - 49, 1e-3)],
            milestones=[50],
        )

    def multi(o: torch.optim.Optimizer) -> MultiStepLR:
        return MultiStepLR(o, [steps // 2, 3 * steps // 4], 0.1)

    def one_cycle(o: torch.optim.Optimizer) -> OneCycleLR:  # momentum cycled 0.95 → 0.85 → 0.95
        return OneCycleLR(o, max_lr=0.1, total_steps=steps, cycle_momentum=True)

    recipes = [
        lockstep.SGDRecipe(0.1, 0.9, 5e-4, lr_scheduler=s) for s in (multi, warm_cos, one_cycle)
    ]
    return lockstep_check(
        cfg,
        cfg.seed + 3,
        recipes,
        steps,
        "general",
        f"MultiStepLR, LinearLR→CosineAnnealingLR (SequentialLR) and OneCycleLR with its "
        f"momentum cycle (γ_t), {steps} steps, 3 networks",
    )


def check_texp(cfg: VerifyConfig) -> NumericResult:
    """TEXP (``proofs.texp``) for step decay, exact with the buffer shifts at each phase change."""
    steps = cfg.steps

    def multi(o: torch.optim.Optimizer) -> MultiStepLR:
        return MultiStepLR(o, [steps // 2, 3 * steps // 4], 0.1)

    recipe = lockstep.SGDRecipe(0.1, 0.9, 5e-4, lr_scheduler=multi)
    dev = equivalence.texp_deviation(
        np.repeat([0.1, 0.01, 0.001], [80 * 391, 40 * 391, 40 * 391]), 5e-4, 0.9
    )
    return lockstep_check(
        cfg,
        cfg.seed + 4,
        [recipe] * 3,
        steps,
        "texp",
        f"exact with the buffer shifts; without them (zero buffers) TEXP's LR is off "
        f"by up to {100 * dev['max_relative_lr_error']:.2f}% on the paper's recipe",
    )


def _loss_grad(
    net: Net,
    params: list[torch.Tensor],
    base: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    c: float,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Loss and gradient (with graph) at the invariant parameters scaled to c·θ."""
    with torch.no_grad():
        for p, p0 in zip(params, base):
            p.copy_(c * p0)
    loss = loss_fn(net.spec)(net.model(x), y)
    return loss, torch.autograd.grad(loss, params, create_graph=True)


def check_lemmas(cfg: VerifyConfig) -> NumericResult:
    """Loss degree 0, gradient degree −1, ⟨∇L,θ⟩ = 0 and ∇²L θ = −∇L, each within ``TOL``."""
    worst = 0.0
    for _, net in main_job_nets(cfg.seed):
        params = net.params(net.invariant)
        x, y = batches(net.spec, 1, BATCH, cfg.seed)[0]
        base = [p.detach().clone() for p in params]
        l1, g1 = _loss_grad(net, params, base, x, y, 1.0)
        flat = torch.cat([gg.reshape(-1) for gg in g1])
        grad = flat.detach()
        theta = torch.cat([p.reshape(-1) for p in base])
        inner = float(grad @ theta / (grad.norm() * theta.norm()))
        hvp = torch.cat([h.reshape(-1) for h in torch.autograd.grad(flat @ theta, params)])
        errs = [abs(inner), float((hvp + grad).norm() / grad.norm())]
        for c in (1e-3, 1e3):
            lc, gc = _loss_grad(net, params, base, x, y, c)
            errs.append(abs(float(lc.detach() - l1.detach())) / abs(float(l1.detach())))
            gcf = torch.cat([gg.reshape(-1) for gg in gc]).detach()
            errs.append(float((gcf * c - grad).norm() / grad.norm()))
        worst = max(worst, *errs)
    ok = math.isfinite(worst) and worst <= TOL
    return NumericResult(
        Status.PASSED if ok else Status.FAILED,
        worst,
        "loss, gradient (degree −1), ⟨∇L,θ⟩, ∇²Lθ = −∇L on 3 networks, "
        f"c ∈ {{1e-3, 1e3}}, within {TOL:g}",
    )


def check_reverse(cfg: VerifyConfig) -> NumericResult:
    """``original_lrs(equivalent_lrs(η)) = η`` within ``TOL`` on 20 random step schedules."""
    rng = np.random.default_rng(cfg.seed)
    worst = 0.0
    for _ in range(20):
        n = int(rng.integers(10, 2000))
        lrs = schedules.materialize(
            schedules.multistep(
                float(rng.uniform(0.01, 0.5)), sorted(rng.integers(1, n, 2).tolist()), 0.1
            ),
            n,
        )
        wd = float(rng.uniform(0, 1e-3))
        g = float(rng.choice([0.0, 0.5, 0.9]))
        back = equivalence.original_lrs(equivalence.equivalent_lrs(lrs, wd, g), wd, g)
        worst = max(worst, float(np.max(np.abs(back / lrs - 1))))
    ok = math.isfinite(worst) and worst <= TOL
    return NumericResult(
        Status.PASSED if ok else Status.FAILED,
        worst,
        f"original_lrs(equivalent_lrs(η)) = η on 20 random step schedules, within {TOL:g}",
    )


def check_rescaling(cfg: VerifyConfig) -> NumericResult:
    """The converted run rescaled by 2^k every 4 binades vs never: bit-identical after the factor."""
    _, net = main_job_nets(cfg.seed + 5)[0]
    steps = 400
    data, probe = _data(net, steps, cfg.seed)
    recipe = lockstep.SGDRecipe(0.1, 0.9, 2e-2)
    runs = [
        lockstep.run(
            net.model,
            data,
            recipe,
            loss_fn=loss_fn(net.spec),
            invariant=net.invariant,
            probe=probe,
            twin=lockstep.converted("general", r),
            keep_params=True,
        )
        for r in (2.0, None)
    ]
    a, b = runs
    inv = set(net.invariant)
    worst, k_min, identical = 0.0, 0, True
    for t, (pa, pb) in enumerate(zip(a.exp_params, b.exp_params)):
        k = round(math.log2(a.scales[t] / b.scales[t]))
        k_min = min(k_min, k)
        for n in pa:
            back = torch.ldexp(pa[n], torch.tensor(-k)) if n in inv else pa[n]
            identical = identical and torch.equal(back, pb[n])
            worst = max(worst, float((back - pb[n]).abs().max() / pb[n].abs().max()))
    identical = identical and a.eval_out == b.eval_out
    ok = identical and k_min <= -10
    note = "" if k_min <= -10 else f"; the run rescaled only by 2^{k_min}: rescaling not exercised"
    return NumericResult(
        Status.PASSED if ok else Status.FAILED,
        worst,
        f"rescaled by 2^{k_min} in steps of 4 vs never: bit-identical weights and "
        f"eval outputs{note}",
    )


#: claim key -> its numeric check
CHECKS: dict[str, Callable[[VerifyConfig], NumericResult]] = {
    "lemmas": check_lemmas,
    "no_momentum": check_no_momentum,
    "closed_form": check_closed_form,
    "general": check_general,
    "texp": check_texp,
    "reverse": check_reverse,
    "rescaling": check_rescaling,
}
