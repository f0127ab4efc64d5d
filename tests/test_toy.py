"""Tests of the toy counterexample (toy/): WD or BN alone converge, BN + WD never does.

Convergence criterion (toy.CONVERGENCE_CRITERION): over the last quarter of
the steps, max ‖∇(L + (λ/2)‖w‖²)‖ ≤ 1e-8 and max angle to the optimum ≤ 1e-6
rad. Tolerances are stated where used.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expit

from toy import (
    POPULATION_CURVATURE,
    SPIKE_ANGLE,
    PopulationObjective,
    ToyConfig,
    gauss_rule,
    gradient_descent,
    initial_point,
    population_reduced,
    predicted_threshold,
    run_regimes,
    sweep,
    tangent_hessian,
)
from toy.cli import main


@pytest.fixture(scope="module")
def default_run():
    return run_regimes(ToyConfig())


# --- the three behaviours ----------------------------------------------------------------------


def test_wd_only_and_bn_only_reach_a_global_minimum(default_run):
    cfg = default_run["config"]
    for name in ("wd_only", "bn_only"):
        v = default_run["verdicts"][name]
        assert v["converged"] is True, name
        assert v["tail_max_grad_norm"] <= cfg.grad_tol, name
        assert v["tail_max_angle"] <= cfg.angle_tol, name
        assert v["tail_spikes"] == 0, name
    # WD only: the iterate is the unique minimiser w* = a* e_1 of the regularised loss
    assert default_run["verdicts"]["wd_only"]["final_distance_to_optimum"] < 1e-9
    # BN only: the norm never decreases (‖w‖² grows by η²‖∇L‖² per step)
    norm = default_run["trajectories"]["bn_only"]["norm"]
    assert np.all(np.diff(norm) >= -1e-15 * norm[1:])


def test_bn_wd_does_not_converge(default_run):
    v = default_run["verdicts"]["bn_wd"]
    pred = default_run["predicted_threshold"]
    assert v["converged"] is False
    assert v["tail_spikes"] >= 5  # error spikes keep coming in the last quarter
    assert v["tail_max_grad_norm"] > 1e-2
    assert v["tail_norm_min"] < pred["norm"] < v["tail_norm_max"]  # cycles across the threshold


def test_bn_wd_keeps_oscillating_over_a_long_horizon():
    """24,000 steps (24/(ηλ)): every eighth of the run still has spikes and norm cycles."""
    cfg = ToyConfig()
    steps = 24_000
    objective = PopulationObjective(normalized=True)
    direction = np.eye(cfg.dim)[0]
    traj = gradient_descent(
        objective,
        initial_point(cfg),
        cfg.lr,
        cfg.weight_decay,
        steps,
        direction,
        rng=np.random.default_rng(1),
        jitter=cfg.jitter,
    )
    pred = predicted_threshold(cfg.lr, POPULATION_CURVATURE, cfg.weight_decay)
    edges = np.linspace(steps // 2, steps, 5).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        angle = traj["angle"][lo:hi]
        above = angle > SPIKE_ANGLE
        assert np.count_nonzero(above[1:] & ~above[:-1]) >= 5, (lo, hi)
        norm = traj["norm"][lo:hi]
        assert norm.min() < pred["norm"] < norm.max(), (lo, hi)
        assert (norm.max() - norm.min()) / norm.mean() > 0.1, (lo, hi)
        loss = traj["loss"][lo:hi]
        assert loss.max() - loss.min() > 1e-3, (lo, hi)  # the loss keeps spiking
    # no collapse towards w = 0 and no convergence of the regularised gradient
    assert traj["norm"][steps // 2 :].min() > 0.8 * pred["norm"]
    assert traj["grad_norm"][steps // 2 :].max() > 1e-2
    # the lemma along the whole run: ‖∇L + λw‖ ≥ λ‖w‖ > 0
    assert np.all(traj["grad_norm"] >= cfg.weight_decay * traj["norm"] * (1 - 1e-12))


def test_no_stationary_point_lemma_along_the_run(default_run):
    lem = default_run["lemma"]["bn_wd"]
    # ⟨∇L + λw, w⟩ = λ‖w‖²: float64 rounding of the inner products only
    assert lem["max_rel_dev_inner_vs_lambda_norm_sq"] < 1e-10
    assert lem["min_inner"] > 0
    assert lem["min_grad_norm_over_lambda_norm"] >= 1 - 1e-10
    assert default_run["lemma"]["bn_only"]["max_abs_radial_over_norm"] < 1e-14
    # WD only has a stationary point: the same inner product goes to 0
    assert abs(default_run["lemma"]["wd_only"]["final_inner"]) < 1e-10


# --- threshold: predicted vs measured ----------------------------------------------------------


def test_threshold_prediction_matches_measurement(default_run):
    pred = default_run["predicted_threshold"]
    meas = default_run["measured_threshold"]
    cfg = default_run["config"]
    assert pred["norm_sq"] == pytest.approx(cfg.lr * POPULATION_CURVATURE / 2, rel=1e-15)
    # the GD map's own loss of stability: finite differences (h = 1e-6) of one step, so
    # agreement to O(h²) + O(1e-16/h) ≈ 1e-10
    assert meas["map_norm_sq_ratio"] == pytest.approx(1.0, abs=1e-7)
    # time-averaged ‖w‖² of the cycles sits at the threshold: the cycle's asymmetry is
    # O(√(ηλ ln(1/ε))) ≈ 0.2 in ‖w‖², measured 1%; tolerance 5%
    assert meas["mean_norm_sq_ratio"] == pytest.approx(1.0, abs=0.05)
    # the first spike comes when predicted (crossing + growth from the rounding floor), 5%
    assert meas["first_spike_step"] == pytest.approx(meas["predicted_first_spike_step"], rel=0.05)
    # full-batch GD on a finite sample (n = 20000) cycles ‖w‖ between 0.125 and 0.163; the
    # population dynamics must land within 0.005 of that independent measurement
    half = meas["last_half"]
    assert half["norm_min"] == pytest.approx(0.125, abs=5e-3)
    assert half["norm_max"] == pytest.approx(0.163, abs=5e-3)


def test_curvature_closed_form():
    # k = E ℓ''(t) − E t ℓ'(t), t half-normal, by adaptive quadrature (independent of the Gauss rule)
    def density(t):
        return 2 * math.exp(-t * t / 2) / math.sqrt(2 * math.pi)

    e_second = quad(lambda t: density(t) * expit(t) * expit(-t), 0, np.inf, epsabs=1e-15)[0]
    e_first = quad(lambda t: density(t) * t * expit(-t), 0, np.inf, epsabs=1e-15)[0]
    assert e_second + e_first == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)
    assert POPULATION_CURVATURE == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-15)
    # the tangent Hessian of the BN population loss at e_1 (finite differences, h = 1e-5)
    eig = tangent_hessian(PopulationObjective(normalized=True), np.eye(5)[0])
    np.testing.assert_allclose(eig, POPULATION_CURVATURE, rtol=1e-8)


# --- the population gradient -------------------------------------------------------------------


def _points(rng, n=4, dim=5):
    out = []
    for _ in range(n):
        w = rng.standard_normal(dim)
        out.append(w / np.linalg.norm(w) * rng.uniform(0.3, 3.0))
    return out


@pytest.mark.parametrize("normalized", [False, True])
def test_population_gradient_matches_finite_differences(normalized):
    objective = PopulationObjective(normalized=normalized)
    h = 1e-5  # central differences: truncation O(h²)·L''' ≈ 1e-10, rounding 1e-16/h = 1e-11
    for w in _points(np.random.default_rng(3)):
        _, grad = objective.value_and_grad(w)
        fd = np.empty_like(w)
        for j in range(w.size):
            e = np.zeros_like(w)
            e[j] = h
            fd[j] = (objective.value_and_grad(w + e)[0] - objective.value_and_grad(w - e)[0]) / (
                2 * h
            )
        np.testing.assert_allclose(grad, fd, atol=1e-9)
        # the loop's evaluate() path gives the same numbers
        value, grad2, err = objective.evaluate(w)
        np.testing.assert_allclose(grad2, grad, rtol=1e-13, atol=1e-16)
        assert value == pytest.approx(float(objective.value_and_grad(w)[0]), rel=1e-14)
        assert err == pytest.approx(math.acos(w[0] / np.linalg.norm(w)) / math.pi, abs=1e-14)


@pytest.mark.parametrize("normalized", [False, True])
def test_population_gradient_matches_monte_carlo(normalized):
    """400,000 samples: loss and gradient within 5 standard errors, coordinate-wise."""
    rng = np.random.default_rng(11)
    n, dim = 400_000, 5
    x = rng.standard_normal((n, dim))
    y = np.where(x[:, 0] >= 0, 1.0, -1.0)
    objective = PopulationObjective(normalized=normalized)
    for w in _points(np.random.default_rng(5), n=2):
        r = np.linalg.norm(w)
        scale = r if normalized else 1.0
        s = y * (x @ w) / scale
        loss_i = np.logaddexp(0.0, -s)
        g = (-expit(-s) * y)[:, None] * x / scale
        if normalized:
            u = w / r
            g = g - (g @ u)[:, None] * u
        value, grad = objective.value_and_grad(w)
        assert abs(loss_i.mean() - value) < 5 * loss_i.std() / math.sqrt(n)
        assert np.all(np.abs(g.mean(axis=0) - grad) < 5 * g.std(axis=0) / math.sqrt(n) + 1e-12)


def test_quadrature_matches_a_finer_rule():
    fine = gauss_rule(200, 120, 9.5)
    for a, b in [(3.8, 0.3), (1.0, 0.0), (0.7, 0.7), (-0.5, 0.8), (2.0, 1.5)]:
        np.testing.assert_allclose(
            population_reduced(a, b), population_reduced(a, b, fine), rtol=0, atol=1e-12
        )


# --- sample mode, sweep, CLI, errors -----------------------------------------------------------


def test_sample_mode_shows_the_same_three_behaviours():
    # λ = 0.03 shortens every time scale (1/(ηλ) ≈ 330 steps), so 4000 steps suffice
    result = run_regimes(ToyConfig(mode="sample", n_samples=1000, weight_decay=0.03, steps=4000))
    v = result["verdicts"]
    assert v["wd_only"]["converged"] and v["bn_only"]["converged"]
    assert not v["bn_wd"]["converged"] and v["bn_wd"]["tail_spikes"] >= 3
    # the empirical curvature is close to the population's, and the map threshold to its prediction
    assert result["predicted_threshold"]["curvature"] == pytest.approx(
        POPULATION_CURVATURE, rel=0.1
    )
    assert result["measured_threshold"]["map_norm_sq_ratio"] == pytest.approx(1.0, abs=1e-6)


def test_sweep_agrees_with_predicted_boundary():
    res = sweep(ToyConfig(), lrs=[0.1, 1.0], weight_decays=[1e-4, 1e-2], steps=2500, progress=False)
    # (η, λ) = (0.1, 1e-2) spikes at ≈ 2100 < 2500; (0.1, 1e-4) needs ≈ 2e5 steps
    assert res["oscillates"].tolist() == [[False, True], [False, True]]
    assert res["agreement"] == 1.0


def test_cli_writes_json_and_pngs(tmp_path, capsys):
    out = tmp_path / "run"
    # λ = 0.05: the norm reaches the threshold after ≈ 400 steps, so 1500 steps show cycles
    argv = ["--out", str(out), "--steps", "1500", "--weight-decay", "0.05"]
    argv += ["--sweep", "--sweep-points", "2", "2"]
    argv += ["--sweep-steps", "600", "--no-progress"]
    assert main(argv) == 0
    record = json.loads((out / "toy.json").read_text())
    for name in ("wd_only", "bn_only", "bn_wd"):
        assert isinstance(record[name]["converged"], bool)
        assert {"final_grad_norm", "final_angle"} <= set(record[name])
    assert record["bn_wd"]["converged"] is False
    assert record["config"]["steps"] == 1500
    assert {"numpy", "scipy", "python"} <= set(record["versions"])
    assert record["predicted_threshold"]["norm_sq"] > 0
    assert "map_norm_sq" in record["measured_threshold"]
    for png in ("toy_trajectories.png", "toy_cycle.png", "toy_phase.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "bn_wd" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"lr": -0.1}, ["lr", "-0.1", "(0, inf)"]),
        ({"weight_decay": -1e-3}, ["weight_decay", "-0.001", "[0, inf)"]),
        ({"dim": 1}, ["dim", "1", "[2, inf)"]),
        ({"steps": 0}, ["steps", "0", "[1, inf)"]),
        ({"mode": "exact"}, ["mode", "exact"]),
        ({"lr": 10.0, "weight_decay": 0.5}, ["lr * weight_decay", "< 1"]),
    ],
)
def test_bad_config_raises_a_clear_error(kwargs, words):
    with pytest.raises(ValueError) as info:
        ToyConfig(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--lr", "-1"], "lr"),
        (["--dim", "1"], "dim"),
        (["--steps", "0"], "steps"),
        (["--weight-decay", "-2"], "weight_decay"),
    ],
)
def test_cli_bad_input_is_an_argparse_error(tmp_path, capsys, argv, word):
    with pytest.raises(SystemExit) as info:
        main(["--out", str(tmp_path)] + argv)
    assert info.value.code == 2
    assert word in capsys.readouterr().err
