"""Float32: the equivalence holds to the noise floor of float32 training itself.

The equivalent run (``convert``, general form, power-of-two rescaling every
2^1) differs from the stock weight-decay run by rounding at *every* step: θ/c_t
is not bit-exact, nor is the update that carries it. Its divergence from the
stock run is compared with the divergence of the stock run from copies of
itself that differ from it only by rounding, measured in the same test.

Noise floor F_t (``equivalence.lockstep.measure_floor``): at each step, the largest
divergence of seven perturbed re-runs of the stock run, each of which differs
from it only by rounding, up to the first step at which one saturates above 1e-3
(it tipped over a discrete event, see below):

- every initial weight moved by one ulp (``torch.nextafter``): one rounding at
  step 0, carried by the dynamics;
- the samples of every batch fed in another (seeded) order: every sum over the
  batch rounded differently at every step;
- five runs (``jitter_twins=5``) with every weight moved by four ulps (``JITTER_ULPS``) in a random
  direction after every step: a fresh rounding-sized change of every update, as
  the equivalent run receives (θ̃_t c_t is not bit-exact and each update rounds
  differently; four ulps is the per-step budget of the float64 error model).

History, kept because it is the reason for this model: against the one-ulp
floor alone the divergence reached 3.66x (parameters), 2.46x / 2.21x (train- /
eval-mode outputs) — the initial perturbation is forgotten in this contracting
regime while the equivalent run keeps receiving fresh rounding. One jitter twin
tipped over a discrete event near step 500 and diverged to O(1) (0.46): left in,
it would make the test vacuous; steps from the first saturation on are therefore not
judged (the predictability horizon of equivalence.noise_floor).

Envelope E_t = max_{s ≤ t} F_s. The test asserts divergence_t ≤ 2·E_t at every
one of 1,200 steps, for the parameters (θ̃ vs m_t θ), the train-mode outputs
and the eval-mode outputs: ``equivalence.noise_floor.judge`` with K = 0 (the floor
alone), floor factor 2 (not the float64 suite's 3: stricter), up to the predictability
horizon (step 484 here, where a jitter twin tips; see the test); no constant is tuned.
Measured (CPU, float32, AVX-512 kernels, the first 484 steps): peak divergence / (2 E_t)
= 0.12 (parameters), 0.20 (train-mode outputs), 0.17 (eval-mode outputs); divergences peak
at 1.4e-6, 4.3e-6, 4.2e-6 (the one-ulp twin alone: 1.4e-6, 4.3e-6, 2.6e-6). With the scalar
kernels: 0.50, 0.50, 0.50.

Regime: in a chaotic one (η = 0.1, λ = 5e-3, fresh batches) every divergence
saturates at O(1) within a few hundred steps, which makes any floor test
vacuous; the recipe below (η = 0.01, λ = 1e-2, γ = 0.9, c_t falls to ~e^-1.2
so the 2^1 rescaling fires) keeps them at ~1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pairs import noise_floor, run_pair
from strategies import Recipe

from equivalence.verify.noise_floor import SERIES, Status, judge, running_max
from equivalence.verify.testing_nets import NetSpec

pytestmark = pytest.mark.usefixtures("single_thread")

STEPS = 1200
BATCH = 16
NET = NetSpec(
    "mlp", "bn", "norm_act", 2, 8, "relu", True, "frozen", "frozen", 1e-300, 4, 3, 3, True, 3
)
RECIPE = Recipe(
    "constant", 0.01, 1e-2, 0.9, np.full(STEPS, 0.01), np.full(STEPS, 1e-2), None, False
)


def test_float32_equivalence_within_noise_floor(error_log):
    f32 = {"dtype": torch.float32, "batch": BATCH}
    # five jitter twins (not the property suite's thirteen): fewer twins can only lower the
    # floor, so this is the stricter test, and it keeps 1,200 float32 steps cheap
    floor = noise_floor(NET, RECIPE, jitter_twins=5, **f32)
    ulp = floor.twins[0]  # the one-ulp twin
    eq = run_pair(NET, RECIPE, form="general", rescale_log2=1.0, **f32)
    assert len(eq.param) == STEPS
    assert any(m != 1.0 for m in eq.scales) and all(
        1.0 <= m < 2.0 for m in eq.scales
    )  # m_t in [1, 2)
    verdict = judge(eq, floor, k=0.0, floor_factor=2.0, saturated="horizon")
    assert verdict.status is not Status.ILL_POSED, verdict.reasons  # stock run finite
    # Judged up to the predictability horizon, the one error model's rule: one jitter twin
    # tips over a discrete event and passes 1e-3 at step 484 (with the SIMD kernels and with
    # PyTorch's scalar kernels, ATEN_CPU_CAPABILITY=default, alike); from there the stock run
    # itself is not reproducible at rounding level. With the scalar kernels the converted run
    # tips with it (leaving that twin out of the floor, as this test once did, then fails it at
    # step 454: 1.8x); with the SIMD kernels it does not. At least 300 steps (the rescaling has
    # fired, the divergence has built up) must be judged, or the test would say nothing.
    assert verdict.horizon >= 300, verdict.horizon
    error_log.figure("float32: steps judged (predictability horizon)", verdict.horizon)
    for what in SERIES:
        sv = verdict.of(what)
        e, f_ulp = sv.errors, getattr(ulp, what)
        error_log.figure(f"float32 {what}: max divergence/(2 envelope)", sv.worst_ratio)
        error_log.figure(
            f"float32 {what}: max divergence/(running-max one-ulp floor)",
            max(x / v for x, v in zip(e, running_max(f_ulp)) if v > 0),
        )
        error_log.figure(f"float32 {what}: max one-ulp floor", max(f_ulp))
        error_log.figure(f"float32 {what}: max floor", sv.envelope[-1])
        error_log.figure(f"float32 {what}: max divergence", max(e))
    assert verdict.status is Status.VERIFIED, "; ".join(verdict.reasons)
