"""CIFAR-10 evidence through ``gpu_validation``'s Python API: the CPU smoke run and the GPU run."""

from __future__ import annotations

import math
from pathlib import Path

import torch

import gpu_validation
from gpu_validation.runner import run as run_validation

from .claims import Status
from .numeric import NumericResult


def check_smoke(out: Path, data: Path) -> NumericResult:
    """PreResNet (smoke size) on real CIFAR-10, float64: recipes b, c against a."""
    res = gpu_validation.smoke(data, out, progress=False)
    check = res["check"]
    worst = float(check.get("max_relative_parameter_error", math.nan))
    accs = res["runs"][0]["summary"].get("final_test_acc", {}) if res["runs"] else {}
    detail = f"PreResNet (smoke size) on real CIFAR-10, float64, final test accuracy {accs}"
    if not check["passed"]:
        detail += "; " + "; ".join(check["failures"])
    return NumericResult(Status.PASSED if check["passed"] else Status.FAILED, worst, detail)


def check_gpu(out: Path, data: Path | None) -> NumericResult:
    """The full CIFAR-10 run on CUDA, recipes a and b (SKIPPED without a CUDA device)."""
    if not torch.cuda.is_available():
        return NumericResult(Status.SKIPPED, math.nan, "no CUDA device")
    cfg = gpu_validation.Config(
        device="cuda",
        recipes=("a", "b"),
        out=str(out),
        data=None if data is None else str(data),
        progress=False,
    )
    res = run_validation(cfg)
    acc = res.get("final_test_acc", {})
    ok = not res.get("interrupted") and (res.get("check") is None or res["check"]["passed"])
    detail = f"final test accuracy {acc}, {res.get('wall_s', math.nan):.0f} s"
    return NumericResult(Status.PASSED if ok else Status.FAILED, math.nan, detail)
