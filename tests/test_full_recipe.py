"""The full-recipe machinery of ``gpu_validation.full_data`` on the CPU: smoke, presets,
checkpoint/resume, the on-device divergences, and c's negative control.

The full 160-epoch run needs a GPU (``gpu_validation/run_full_recipe.sh``); here:

- ``--smoke``: 8 steps on 256 images through the command line, all four runs (a, b, c, floor),
  the same code path and judgement;
- a run stopped after epoch 1 and resumed equals the uninterrupted 2-epoch run bit for bit
  (the same code path: every parameter, buffer, optimizer and scheduler state, the monitors'
  records and every recorded divergence compared with ``torch.equal`` / ``==``);
- :func:`~gpu_validation.full_data.max_rel_err` (fused, no host read) agrees with
  ``equivalence.verify.noise_floor.rel_err``'s maximum to the rounding of one float64
  division (the maxima of |·| are exact);
- negative control for c: TEXP of a constant LR (a's LR drops at steps 4 and 6) must fail
  the judgement while b passes (measured: c 14× its bound, b 0.11);
- ``--compile default`` on a tiny configuration (slow: Inductor's C++ build): one graph per
  normaliser kind, no recompilation, b within the floor.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from equivalence.verify.noise_floor import U64, rel_err
from gpu_validation.full_data import (
    CHECKPOINT,
    PAPER,
    SMOKE,
    FullDataConfig,
    config_from_args,
    main,
    max_rel_err,
    run_full_data,
)

from .test_full_data import DATA, needs_data

TINY = dict(
    n_train=64,
    n_test=32,
    batch_size=32,
    depth=8,
    width=4,
    check_every=1,
    probe_every=2,
    probe_size=16,
    threads=1,
    progress=False,
    plots=False,
    bench_iters=0,
)


def _quiet(s: str) -> None:
    pass


@needs_data
def test_smoke_command_line(tmp_path, capsys):
    """``--smoke``: exit 0 (b and c verified), four runs, the JSON and the checkpoint written."""
    rc = main(
        ["--smoke", "--data", str(DATA), "--out", str(tmp_path), "--threads", "1", "--no-plots"]
    )
    assert rc == 0, capsys.readouterr().out
    res = json.loads((tmp_path / "full_data.json").read_text())
    assert res["config"]["preset"] == "smoke" and res["runs"] == ["a", "b", "c", "floor"]
    assert res["steps"] == 8 and res["completed"] and res["verdict"]["status"] == "verified"
    assert (tmp_path / CHECKPOINT).is_file()
    assert "verdict on c" in capsys.readouterr().out


def test_paper_preset_and_overrides():
    cfg = config_from_args(["--paper", "--device", "cuda", "--compile", "reduce-overhead"])
    assert cfg == FullDataConfig.paper(device="cuda", compile="reduce-overhead")
    assert cfg.is_paper_recipe() and cfg.preset == "paper"
    assert (cfg.depth, cfg.width, cfg.batch_size, cfg.epochs) == (32, 16, 128, 160)
    assert cfg.n_train is None and cfg.n_test is None and cfg.dtype == "float32"
    # per-epoch MultiStepLR at epochs 80 and 120: the drops after 80 × 391 and 120 × 391 steps
    assert cfg.milestones(391) == [31_280, 46_920]
    assert not config_from_args(["--paper", "--width", "8"]).is_paper_recipe()
    assert config_from_args(["--smoke"]) == FullDataConfig(**SMOKE, preset="smoke")
    assert set(PAPER) <= {f for f in FullDataConfig.__dataclass_fields__}


def test_max_rel_err_is_rel_err():
    g = torch.Generator().manual_seed(0)
    a = [torch.randn(3, 4, generator=g), torch.randn(7, generator=g), torch.zeros(2)]
    b = [x + 1e-3 * torch.randn(x.shape, generator=g) for x in a[:2]] + [torch.zeros(2)]
    want = max(rel_err(x, y) for x, y in zip(a, b))
    # another code path: the same exact maxima, one correctly rounded division each
    assert math.isclose(float(max_rel_err(a, b)), want, rel_tol=2 * U64, abs_tol=0.0)
    assert float(max_rel_err([torch.ones(2)], [torch.zeros(2)])) == math.inf
    assert float(max_rel_err([torch.zeros(2)], [torch.zeros(2)])) == 0.0


def _tensors_equal(x, y, where=""):
    """Recursive equality: tensors with torch.equal, floats with == (NaN equal to NaN)."""
    if isinstance(x, torch.Tensor):
        assert isinstance(y, torch.Tensor) and torch.equal(x, y), where
    elif isinstance(x, dict):
        assert isinstance(y, dict) and set(x) == set(y), where
        for k in x:
            _tensors_equal(x[k], y[k], f"{where}/{k}")
    elif isinstance(x, (list, tuple)):
        assert isinstance(y, (list, tuple)) and len(x) == len(y), where
        for i, (a, b) in enumerate(zip(x, y)):
            _tensors_equal(a, b, f"{where}[{i}]")
    elif isinstance(x, float) and math.isnan(x):
        assert isinstance(y, float) and math.isnan(y), where
    elif hasattr(x, "__dict__") and not isinstance(x, type):
        _tensors_equal(vars(x), vars(y), where)
    else:
        assert x == y, where


@needs_data
def test_resume_is_bit_identical(tmp_path):
    """2 epochs in one go vs 1 epoch, checkpoint, resume for the 2nd: the same run bit for bit."""
    common = dict(TINY, data=str(DATA), epochs=2, milestone_epochs=(1,))
    whole = run_full_data(FullDataConfig(out=str(tmp_path / "whole"), **common), log=_quiet)
    part = tmp_path / "parts"
    first = run_full_data(FullDataConfig(out=str(part), stop_after_epochs=1, **common), log=_quiet)
    assert not first["completed"] and first["epochs_done"] == 1
    second = run_full_data(FullDataConfig(out=str(part), resume=True, **common), log=_quiet)
    assert second["completed"] and second["epochs_done"] == 2
    load = lambda p: torch.load(p / CHECKPOINT, map_location="cpu", weights_only=False)  # noqa: E731
    a, b = load(tmp_path / "whole"), load(part)
    assert a["step"] == b["step"] == 4 and a["epoch"] == b["epoch"] == 2
    for key in (
        "models",
        "optimizers",
        "schedulers",
        "floor_generators",
        "data_generator",
        "monitors",
    ):
        _tensors_equal(a[key], b[key], key)
    ra, rb = a["record"], b["record"]
    for key in ("series", "logged_steps", "trace", "probe"):
        _tensors_equal(ra[key], rb[key], key)
    for ea, eb in zip(ra["epochs"], rb["epochs"]):
        assert {k: v for k, v in ea.items() if k != "train_s"} == {
            k: v for k, v in eb.items() if k != "train_s"
        }
    assert len(rb["invocations"]) == 2 and len(ra["invocations"]) == 1
    assert whole["verdict"] == second["verdict"]
    assert whole["final_test_acc"] == second["final_test_acc"]
    assert whole["monitor"] == second["monitor"]


@needs_data
def test_resume_refuses_what_it_cannot_continue(tmp_path):
    common = dict(TINY, data=str(DATA), n_train=32, epochs=2)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_full_data(FullDataConfig(out=str(tmp_path), resume=True, **common), log=_quiet)
    run_full_data(FullDataConfig(out=str(tmp_path), stop_after_epochs=1, **common), log=_quiet)
    with pytest.raises(ValueError, match=r"lr = 0.1 \(checkpoint\) vs 0.05 \(this run\)"):
        run_full_data(
            FullDataConfig(out=str(tmp_path), resume=True, **{**common, "lr": 0.05}), log=_quiet
        )
    with pytest.raises(ValueError, match="stop_after_epochs = 1 but the checkpoint"):
        run_full_data(
            FullDataConfig(out=str(tmp_path), resume=True, stop_after_epochs=1, **common),
            log=_quiet,
        )


@needs_data
def test_verdict_rejects_texp_of_a_constant_lr(tmp_path):
    """Negative control for c: TEXP built from the constant LR η (a drops to η/10 at step 4
    and η/100 at step 6) must fail the judgement; b, in the same run, passes."""
    cfg = FullDataConfig(
        data=str(DATA),
        out=str(tmp_path),
        c_schedule="constant",
        **{**SMOKE, "threads": 1, "progress": False, "plots": False, "bench_iters": 0},
    )
    v = run_full_data(cfg, log=_quiet)["verdict"]
    print(f"\nc from a constant LR: {v['c']['status']} {v['c']['worst_ratio']:.3g}; b {v['b']}")
    assert v["b"]["status"] == "verified"
    assert v["c"]["status"] == "failed" and v["c"]["worst_ratio"] > 3
    assert not v["within_floor"]


@pytest.mark.slow
@needs_data
def test_compile_default_compiles_once_and_b_stays_within_the_floor(tmp_path):
    """``--compile default`` (Inductor) on a tiny configuration: two graphs (the stock
    normalisers of a and the floor, the traceable ones of b and c), no recompilation although
    b's and c's eps change every step, and b judged within the floor.

    c is reported, not asserted: compiled, this tiny float32 run is much less chaotic than
    eager (Inductor's BatchNorm; the floor stays near 1e-6 for 3 steps instead of reaching
    2e-5), and TEXP's float32 rounding then shows above 3× the floor (measured, 96 images,
    3 epochs: c 76× its bound from step 2, b 0.19; in float64, compiled, both stay below 1e-15,
    so it is rounding, not a compiled-code error).
    """
    from torch._dynamo.utils import counters

    counters.clear()
    cfg = FullDataConfig(
        data=str(DATA), out=str(tmp_path), compile="default", **{**TINY, "epochs": 2}
    )
    res = run_full_data(cfg, log=_quiet)
    graphs = int(counters["stats"]["unique_graphs"])
    recompiles = int(sum(counters["recompiles"].values()))
    v = res["verdict"]
    print(
        f"\ncompiled: {graphs} graphs, {recompiles} recompiles; b {v['b']['worst_ratio']:.3g}, "
        f"c {v['c']['status']} {v['c']['worst_ratio']:.3g}"
    )
    assert graphs <= 2 and recompiles == 0
    assert v["b"]["status"] == "verified", v
    assert math.isfinite(v["c"]["worst_ratio"])
    assert res["timing"]["invocations"][0]["compile"] == "default"


@pytest.mark.cuda
@needs_data
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_smoke_on_cuda(tmp_path):
    cfg = FullDataConfig(
        data=str(DATA), out=str(tmp_path), device="cuda", **{**SMOKE, "progress": False}
    )
    res = run_full_data(cfg, log=_quiet)
    assert res["verdict"]["status"] == "verified", res["verdict"]
    assert res["machine"]["gpu"]
