"""``python -m gpu_validation``: the command line, and the smoke check as a Python call."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from .config import SMOKE, Config, parse_config
from .runner import run

__all__ = ["main", "smoke"]


def _print_summary(results: dict[str, Any]) -> None:
    for r in results["runs"]:
        s = r["summary"]
        acc = ", ".join(f"{k} {v:.4f}" for k, v in s.get("final_test_acc", {}).items())
        err = ", ".join(
            f"{k} {v:.2e}" for k, v in s.get("max_relative_parameter_error", {}).items()
        )
        print(
            f"seed {r['seed']}: {s.get('epochs_done')} epochs, test acc {acc}"
            + (f"; max rel. param error vs a: {err}" if err else "")
            + f"; median epoch {s.get('epoch_train_s_median', float('nan')):.2f} s"
        )
    chk = results.get("check")
    if chk is not None:
        print(
            f"exact check: {'PASSED' if chk['passed'] else 'FAILED'} (max relative parameter error "
            f"{chk['max_relative_parameter_error']:.2e}, max probe distance {chk['max_probe_distance']:.2e}, "
            f"tolerance {chk['tolerance']:g})"
        )
        for f in chk["failures"]:
            print(f"  - {f}")
    print(f"wrote {Path(results['config']['out']) / 'results.json'} ({results['wall_s']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    """Run the configuration given by ``argv``; 0 on success, 1 if the exact check fails, 3 if interrupted.

    Bad arguments exit with status 2 and a message naming the argument. ``--full-data`` runs
    the CPU full-data mode instead (:mod:`gpu_validation.full_data`, its own options).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if "--full-data" in args:
        from .full_data import main as full_data_main

        return full_data_main([a for a in args if a != "--full-data"])
    cfg = parse_config(args)
    try:
        results = run(cfg)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"python -m gpu_validation: error: {e}", file=sys.stderr)
        return 2
    _print_summary(results)
    if results.get("interrupted"):
        return 3
    chk = results.get("check")
    return 0 if chk is None or chk["passed"] else 1


def smoke(data_path: str | Path, out_dir: str | Path, **overrides: Any) -> dict[str, Any]:
    """The CPU smoke check as a function: train recipes a, b, c on a CIFAR-10 subset, check exactness.

    Returns the results (also written to ``out_dir/results.json``);
    ``results["check"]["passed"]`` is the verdict. ``overrides`` replace
    fields of the smoke configuration (e.g. ``epochs=2``, ``progress=False``).
    """
    fields = {f.name for f in dataclasses.fields(Config) if f.init}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise TypeError(f"smoke() got unknown settings {bad}; valid: {sorted(fields)}")
    settings = {**SMOKE, "device": "cpu", "data": str(data_path), "out": str(out_dir), **overrides}
    return run(Config(**settings))
