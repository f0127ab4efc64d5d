"""Float32: the equivalence holds to the noise floor of float32 training itself.

The equivalent run (``convert``, general form, power-of-two rescaling every
2^1) differs from the stock weight-decay run by rounding at *every* step: θ/c_t
is not bit-exact, nor is the update that carries it. Its divergence from the
stock run is compared with the divergence of the stock run from copies of
itself that differ from it only by rounding, measured in the same test.

Noise floor F_t (``strategies.noise_floor``): at each step, the largest
divergence of seven perturbed re-runs of the stock run, each of which differs
from it only by rounding, leaving out a re-run that saturates above 1e-3 (it
tipped over a discrete event, see below):

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
it would make the test vacuous, hence the saturation rule.

Envelope E_t = max_{s ≤ t} F_s. The test asserts divergence_t ≤ 2·E_t at every
one of 1,200 steps, for the parameters (θ̃ vs m_t θ), the train-mode outputs
and the eval-mode outputs; the factor 2 is the issue's, no constant is tuned.
Measured (CPU, float32): peak divergence / (2 E_t) = 0.12 (parameters), 0.20
(train-mode outputs), 0.25 (eval-mode outputs); divergences peak at 2.0e-6,
4.9e-6, 4.2e-6, the floor at 3.6e-5, 8.4e-5, 3.3e-5 (the four-ulp jitter twins
dominate it; the one-ulp twin alone peaks at 1.4e-6, 4.3e-6, 2.6e-6).

Regime: in a chaotic one (η = 0.1, λ = 5e-3, fresh batches) every divergence
saturates at O(1) within a few hundred steps, which makes any floor test
vacuous; the recipe below (η = 0.01, λ = 1e-2, γ = 0.9, c_t falls to ~e^-1.2
so the 2^1 rescaling fires) keeps them at ~1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from strategies import NetSpec, Recipe, noise_floor, run_pair, running_max

pytestmark = pytest.mark.usefixtures("single_thread")

STEPS = 1200
BATCH = 16
NET = NetSpec("mlp", "bn", "norm_act", 2, 8, "relu", True, "frozen", "frozen", 1e-300, 4, 3, 3, True, 3)
RECIPE = Recipe("constant", 0.01, 1e-2, 0.9, np.full(STEPS, 0.01), np.full(STEPS, 1e-2), None, False)
SERIES = ("param", "train_out", "eval_out")


def test_float32_equivalence_within_noise_floor(error_log):
    f32 = {"dtype": torch.float32, "batch": BATCH}
    # five jitter twins (not the property suite's thirteen): fewer twins can only lower the
    # floor, so this is the stricter test, and it keeps 1,200 float32 steps cheap
    floor = noise_floor(NET, RECIPE, batch=BATCH, dtype=torch.float32, jitter_twins=5)
    ulp = run_pair(NET, RECIPE, exp_side="stock", perturb_ulp=1, **f32)
    eq = run_pair(NET, RECIPE, form="general", rescale_log2=1.0, **f32)
    assert ulp.finite and eq.finite
    assert len(eq.param) == STEPS
    assert any(m != 1.0 for m in eq.scales) and all(1.0 <= m < 2.0 for m in eq.scales)  # m_t in [1, 2)
    failures = []
    for what in SERIES:
        e = getattr(eq, what)
        f_ulp = getattr(ulp, what)
        env = floor.envelope(what, exclude_saturated=True)  # raises if every twin saturates
        ratios = [x / (2.0 * v) if v > 0 else (0.0 if x == 0 else float("inf")) for x, v in zip(e, env)]
        worst = int(np.argmax(ratios))
        error_log.figure(f"float32 {what}: max divergence/(2 envelope)", ratios[worst])
        error_log.figure(f"float32 {what}: max divergence/(running-max one-ulp floor)",
                         max(x / v for x, v in zip(e, running_max(f_ulp)) if v > 0))
        error_log.figure(f"float32 {what}: max one-ulp floor", max(f_ulp))
        error_log.figure(f"float32 {what}: max floor", env[-1])
        error_log.figure(f"float32 {what}: max divergence", max(e))
        if ratios[worst] > 1.0:
            failures.append(f"{what}: divergence {e[worst]:.3e} is {2 * ratios[worst]:.3g}x the envelope "
                            f"{env[worst]:.3e} at step {worst}")
    assert not failures, "; ".join(failures)
