"""Negative controls: each must break the equivalence by orders of magnitude more than its tolerance.

The divergence is measured on the network function (train-mode outputs on the
step's batch), which does not depend on what scale one assumes; the tolerance
is the float64 error model of the trajectory tests at the last step,
K·u·(T+1) with K = 2^10 (see test_properties_equivalence.py). Each test
asserts divergence / tolerance ≥ MARGIN = 10^4, and that the trajectory tests'
own verdict rejects the run: the divergence exceeds max(K·u·(t+1), 3 × the
measured noise floor) at some step before the predictability horizon, the
bound a run is held to once its error passes the linear model (a control that
only beat the linear model could still pass the suite on a chaotic example).

Recipes here make the scale move measurably (ηλT/(1−γ) ≥ 0.05): with the
paper's λ = 5e-4 and 30 steps c_t stays within 1e-3 of 1 and a control would
only fail by ~1e-4, still far above the 1e-11 tolerance but less clearly.
"""

from __future__ import annotations

import pytest
from conftest import examples
from controls import lr_inside, small_root
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pairs import noise_floor, run_pair
from strategies import net_specs, recipes

from equivalence.verify.noise_floor import K, floor_bound, trajectory_tol
from equivalence.verify.testing_nets import build, plain_mlp

pytestmark = pytest.mark.usefixtures("single_thread")

MARGIN = 1e4
T = 30


def moving(recipe) -> bool:
    return recipe.lr * recipe.weight_decay * recipe.steps / (1.0 - recipe.momentum) >= 0.05


controls = recipes(
    steps=T, kinds=("constant", "step", "cosine"), lr_range=(0.05, 0.3), wd_range=(1e-2, 0.5)
)


def _assert_breaks(tr, name, error_log, reference, recipe, series="train_out"):
    """Divergence ≥ MARGIN × K·u·(T+1), and the positive suite's own judge rejects the run.

    ``reference``: the stock run's network (a spec, or a callable building a fresh one),
    whose noise floor gives the bound the trajectory tests would apply.
    """
    errs = getattr(tr, series)
    div = max(errs)
    ratio = div / trajectory_tol(T, K)
    error_log.margin(name, ratio)
    assert ratio >= MARGIN, f"{name}: divergence {div:.3e} is only {ratio:.3g} x the tolerance"
    # judged by the bound test_properties_equivalence applies to a run whose error passes
    # K·u·(t+1) (``equivalence.noise_floor``): 3x the measured noise floor, up to the
    # predictability horizon
    floor = noise_floor(reference() if callable(reference) else reference, recipe)
    tols, horizon = floor_bound(floor, series, len(errs), K)
    over = max((e / b for e, b in zip(errs[:horizon], tols)), default=0.0)
    error_log.margin(f"{name} (vs the floor-based bound)", over)
    assert over > 1.0, f"{name}: within the floor-based bound (x{over:.3g}, horizon {horizon})"


@settings(max_examples=examples(10))
@given(
    spec=net_specs(families=("mlp", "cnn"), norms=("bn", "gn", "ln")),
    recipe=controls,
    which=st.sampled_from(("affine_into_next_layer", "free_output_layer")),
)
def test_non_invariant_parameters_break_equivalence(spec, recipe, which, error_log):
    """Declaring a trainable normaliser affine feeding the head, or the free head, as invariant."""
    assume(moving(recipe))
    net = build(spec)
    named = dict(net.model.named_parameters())
    mods = [n for n, m in net.model.named_modules() if hasattr(m, "eps") and n]
    head = [n for n in named if n.startswith(f"{len(net.model) - 1}.")]
    if which == "affine_into_next_layer":
        assume(spec.affine == "trainable" and spec.order == "norm_act")
        extra = [n for n in named if n.rsplit(".", 1)[0] == mods[-1]]
    else:
        assume(spec.head == "trainable")
        extra = head
    tr = run_pair(net, recipe, invariant=net.invariant + extra, norm_correct=False)
    _assert_breaks(tr, which, error_log, spec, recipe)


@settings(max_examples=examples(10))
@given(seed=st.integers(0, 2**31 - 1), recipe=controls)
def test_no_normalisation_breaks_equivalence(seed, recipe, error_log):
    """A plain MLP (no normaliser): nothing is scale invariant."""
    assume(moving(recipe))
    net = plain_mlp(seed)
    names = [n for n, _ in net.model.named_parameters()]
    tr = run_pair(net, recipe, invariant=names, norm_correct=False)
    _assert_breaks(tr, "no_normalisation", error_log, lambda: plain_mlp(seed), recipe)


@settings(max_examples=examples(10))
@given(
    spec=net_specs(),
    recipe=recipes(
        steps=T,
        kinds=("constant",),
        vary_wd=False,
        momentum=st.floats(0.5, 0.95),
        lr_range=(0.05, 0.3),
        wd_range=(1e-2, 0.5),
    ),
)
def test_smaller_root_with_zero_buffer_breaks_equivalence(spec, recipe, error_log):
    """η̃_t = η β^(−2t−1), β = γ/α (the other root of the characteristic equation), zero buffer."""
    assume(moving(recipe))
    tr = run_pair(spec, recipe, twin=small_root())
    _assert_breaks(tr, "smaller_root", error_log, spec, recipe)


@settings(max_examples=examples(10))
@given(
    spec=net_specs(),
    recipe=recipes(
        steps=T, momentum=st.floats(0.5, 0.95), lr_range=(0.05, 0.3), wd_range=(1e-2, 0.5)
    ),
)
def test_lr_inside_velocity_breaks_equivalence(spec, recipe, error_log):
    """The general form's η̃_t used the Sutskever/Keras way, v ← γv + η̃_t g, θ ← θ − v."""
    assume(moving(recipe))
    tr = run_pair(spec, recipe, twin=lr_inside())
    _assert_breaks(tr, "lr_inside_velocity", error_log, spec, recipe)


@settings(max_examples=examples(10))
@given(spec=net_specs(norms=("bn",)), recipe=controls)
def test_eval_mode_drifts_without_running_stat_correction(spec, recipe, error_log):
    """Without ``norm_layers`` the eval-mode outputs drift (the running statistics mix scales)."""
    assume(moving(recipe))
    tr = run_pair(spec, recipe, norm_correct=False)
    _assert_breaks(tr, "eval_without_norm_layers", error_log, spec, recipe, series="eval_out")
    # (the training-mode function is not asserted here: these strongly shrinking recipes,
    # ηλ up to ~0.1, drive the effective LR up 10-100x and make the dynamics chaotic, where
    # rounding grows exponentially and the linear error model does not apply)
