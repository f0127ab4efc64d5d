"""The public lockstep harness on a user's model and data: verdicts, negative controls, bad input.

``equivalence.lockstep.verify`` answers "does my converted run equal my stock run?" with a
frozen :class:`equivalence.noise_floor.Verdict`; the property suite
(tests/test_properties_equivalence.py) exercises it on drawn networks and recipes.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.optim.lr_scheduler import MultiStepLR

import equivalence
from equivalence.verify import lockstep
from equivalence.verify.noise_floor import Status, Trace, judge
from equivalence.verify.testing_nets import (
    InvariantMLP,
    batches,
    loss_fn,
    main_job_nets,
    make_batches,
    make_pair,
    plain_mlp,
)

pytestmark = pytest.mark.usefixtures("single_thread")

STEPS = 60
RECIPE = lockstep.SGDRecipe(0.1, 0.9, 5e-3, lr_scheduler=lambda o: MultiStepLR(o, [30], 0.1))


def _data(steps: int = STEPS, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = make_batches(steps, seed)
    return list(zip(x, y))


def test_verify_on_a_users_model_with_the_audits_invariant_set():
    model, _ = make_pair(0)
    data = _data()
    report = equivalence.audit(model, data[0][0])
    verdict = lockstep.verify(
        model,
        data,
        RECIPE,
        loss_fn=torch.nn.functional.cross_entropy,
        invariant=report.invariant_parameters(),
        probe=data[0][0],
    )
    assert verdict.status is Status.VERIFIED, verdict.reasons
    assert verdict.ok and verdict.horizon == verdict.steps == STEPS
    assert 0.0 < verdict.worst_error < 1e-12 and verdict.worst_ratio < 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.status = Status.FAILED  # type: ignore[misc]
    # the model itself is not trained
    fresh, _ = make_pair(0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), fresh.parameters()))


def test_a_wrong_invariant_set_fails_with_reasons():
    """Negative control: a plain MLP (no normaliser) declared invariant fails, even against its floor."""
    net = plain_mlp(3, in_dim=6, out_dim=3)
    verdict = lockstep.verify(
        net.model,
        _data(),
        RECIPE,
        loss_fn=torch.nn.functional.cross_entropy,
        invariant=net.not_invariant,
        probe=_data(1, 9)[0][0],
        jitter_twins=2,
    )
    assert verdict.status is Status.FAILED
    assert verdict.floor_measured and verdict.worst_ratio > 1e3
    assert verdict.reasons and "diverge at step" in verdict.reasons[0]


def test_a_normaliser_fed_a_constant_is_rejected_not_judged():
    model, _ = make_pair(1)
    # every sample the same up to 1e-14: each BatchNorm channel's input is constant to 14 digits
    data = [(torch.ones(16, 6, dtype=torch.float64) + 1e-14 * x, y) for x, y in _data(5)]
    trace = lockstep.run(
        model, data, RECIPE, loss_fn=torch.nn.functional.cross_entropy, invariant=model.invariant()
    )
    verdict = judge(trace)
    assert verdict.status is Status.ILL_POSED
    assert "constant" in verdict.reasons[0]


def test_an_unperturbed_stock_twin_is_bit_identical():
    """The same code path on both sides (the stock recipe twice): zero divergence, exactly."""
    model, _ = make_pair(2)
    record = lockstep.StockRecord()
    kw = dict(
        loss_fn=torch.nn.functional.cross_entropy,
        invariant=model.invariant(),
        probe=_data(1, 9)[0][0],
        twin=lockstep.perturbed(),
    )
    fresh = lockstep.run(model, _data(20), RECIPE, reference=record, **kw)
    replayed = lockstep.run(model, _data(20), RECIPE, reference=record, **kw)
    for tr in (fresh, replayed):
        assert tr.worst() == 0.0
    jittered = lockstep.run(
        model,
        _data(20),
        RECIPE,
        reference=record,
        **{**kw, "twin": lockstep.perturbed(jitter_seed=0)},
    )
    assert 0.0 < jittered.worst() < 1e-12


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="lr = 0"):
        lockstep.SGDRecipe(0.0)
    with pytest.raises(ValueError, match="momentum = 1"):
        lockstep.SGDRecipe(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay = -1"):
        lockstep.SGDRecipe(0.1, weight_decay=-1.0)
    model = InvariantMLP().double()
    kw = dict(loss_fn=torch.nn.functional.cross_entropy)
    with pytest.raises(ValueError, match="'nope' is not a parameter name"):
        lockstep.run(model, _data(2), RECIPE, invariant=["nope"], **kw)
    with pytest.raises(ValueError, match="eval_every = 0"):
        lockstep.run(model, _data(2), RECIPE, invariant=[], eval_every=0, **kw)
    with pytest.raises(ValueError, match="jitter_twins = -1"):
        lockstep.measure_floor(model, _data(2), RECIPE, invariant=[], jitter_twins=-1, **kw)
    with pytest.raises(ValueError, match="ulp = 2"):
        lockstep.perturbed(ulp=2)
    with pytest.raises(ValueError, match="k = -1"):
        judge(Trace((), (0.0,), (), (1.0,)), k=-1.0)


@pytest.mark.parametrize("form", ["closed_form", "texp"])
def test_precomputed_forms_accept_normalisers_without_running_statistics(form):
    """LayerNorm/GroupNorm handed to convert with the precomputed forms (no running statistics)."""
    for _, net in main_job_nets(0)[1:]:  # the GroupNorm CNN and the LayerNorm MLP
        data = batches(net.spec, 20, 16, 0)
        recipe = lockstep.SGDRecipe(0.1, 0.9, 5e-4)
        verdict = lockstep.verify(
            net.model,
            data,
            recipe,
            loss_fn=loss_fn(net.spec),
            invariant=net.invariant,
            probe=data[0][0],
            form=form,
            jitter_twins=1,
        )
        assert verdict.ok, verdict.reasons


def test_horizon_with_a_sampled_eval_series() -> None:
    """An eval series sampled every few steps places its samples in steps, not in indices.

    Negative control: a per-step series saturating at step 5 still cuts the horizon there.
    """
    from equivalence.verify.noise_floor import SATURATED, Floor, Trace

    small = SATURATED / 10
    quiet = Trace((small,) * 8, (small,) * 8, (small,) * 2, ())
    assert Floor((quiet,)).horizon() == 8  # not 2 (the number of eval samples)
    late_eval = Trace((small,) * 8, (small,) * 8, (small, 2 * SATURATED), ())
    assert Floor((quiet, late_eval)).horizon() == 4  # sample 1 of 2 over 8 steps: step 4
    tipped = Trace((small,) * 5 + (2 * SATURATED,) * 3, (small,) * 8, (small,) * 2, ())
    assert Floor((quiet, tipped)).horizon() == 5


def test_the_readme_example_runs_as_written():
    """The README's harness example, extracted from README.md and run on a small model."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Does my converted run equal my stock run?") :]
    start = section.index("```python\n") + len("```python\n")
    code = section[start : section.index("\n```", start)]
    model, _ = make_pair(0)
    batches = _data(steps=12)
    namespace = {
        "model": model,
        "batches": batches,
        "x": batches[0][0],
        "equivalence": equivalence,
        "F": torch.nn.functional,
        "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR,
        "print": lambda *a: None,
    }
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert namespace["verdict"].status is Status.VERIFIED, namespace["verdict"].reasons


def test_adamw_recipe_verified_and_validated() -> None:
    """An AdamW recipe runs through the same harness: its converted twin is convert_adamw's
    stock Adam, and its floor twins move Adam's buffers too; bad values are named."""
    from torch.optim.lr_scheduler import CosineAnnealingLR

    from equivalence.verify.testing_nets import batches, loss_fn, main_job_nets

    _, net = main_job_nets(0)[2]  # the LayerNorm MLP
    data = batches(net.spec, 60, 16, 0)
    recipe = lockstep.AdamWRecipe(
        1e-2, weight_decay=0.5, lr_scheduler=lambda o: CosineAnnealingLR(o, 60)
    )
    args = dict(loss_fn=loss_fn(net.spec), invariant=net.invariant, probe=data[0][0])
    v = lockstep.verify(net.model, data, recipe, **args)
    assert v.ok, v.reasons
    trace = lockstep.run(net.model, data, recipe, **args)
    assert trace.scales[-1] > 1.1  # the decay acted: m = 1/A_k
    # a jitter twin moves the Adam buffers as well as the weights
    twin = lockstep.perturbed(jitter_seed=1)(net.model, recipe, net.invariant, 60)
    stock, _ = recipe.stock([p for p in twin.model.parameters() if p.requires_grad])
    x, y = data[0]
    for opt in (twin.optimizer, stock):
        opt.zero_grad()
        loss_fn(net.spec)(twin.model(x), y).backward()
    buf = lambda o: [o.state[p]["exp_avg_sq"].clone() for p in o.param_groups[0]["params"]]  # noqa: E731
    stock.step()
    twin.step(0)
    assert any(not torch.equal(a, b) for a, b in zip(buf(twin.optimizer), buf(stock)))
    assert all(bool((b >= 0).all()) for b in buf(twin.optimizer))
    with pytest.raises(ValueError, match=r"betas\[1\] = 1.0 is outside the valid range"):
        lockstep.AdamWRecipe(1e-3, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"lr = -0.1 is outside the valid range"):
        lockstep.AdamWRecipe(-0.1)
    with pytest.raises(ValueError, match="an AdamW recipe has one converted form"):
        lockstep.run(net.model, data[:2], recipe, twin=lockstep.converted("texp"), **args)
