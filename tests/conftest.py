"""Hypothesis profiles, shared fixtures and the float64 error record of the property suite.

Profiles (choose with ``HYPOTHESIS_PROFILE``; default ``ci``):

- ``dev``: few examples, quick feedback;
- ``ci``: derandomized, no deadline, failing examples printed as blobs;
- ``fuzz``: ``ci`` with 10x the examples and fresh randomness.

Each property test sets its own ``max_examples`` for ``ci``; the profile's
multiplier :data:`EXAMPLE_FACTOR` scales it (``dev`` 0.2, ``fuzz`` 10).

The worst float64 relative error (and its ratio to the error-model tolerance)
seen by the equivalence tests is recorded through the ``error_log`` fixture,
printed at the end of the session and written to the pytest cache
(``.pytest_cache/v/equivalence/worst_errors``).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
EXAMPLE_FACTOR = {"dev": 0.2, "ci": 1.0, "fuzz": 10.0}.get(PROFILE, 1.0)


def examples(n: int) -> int:
    """``n`` examples under ``ci``, scaled by the active profile (at least 2)."""
    return max(2, int(round(n * EXAMPLE_FACTOR)))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running tests (more than about 20 s)")


class ErrorLog:
    """Worst relative error per property, with the tolerance it was held to."""

    def __init__(self) -> None:
        self.worst: dict[str, dict[str, float]] = {}
        self.margins: dict[str, float] = {}
        self.figures: dict[str, float] = {}
        self.kinds: dict[str, str] = {}  # how a figure combines across pytest-xdist workers
        self.samples: dict[str, list[float]] = {}

    def record(self, name: str, error: float, tol: float) -> None:
        cur = self.worst.get(name)
        ratio = error / tol if tol > 0 else float("inf")
        if cur is None or ratio > cur["ratio"] or error > cur["error"]:
            self.worst[name] = {
                "error": max(error, cur["error"]) if cur else error,
                "tol": tol,
                "ratio": max(ratio, cur["ratio"]) if cur else ratio,
            }

    def margin(self, name: str, ratio: float) -> None:
        """Smallest (divergence / tolerance) ratio of a negative control."""
        self.margins[name] = min(ratio, self.margins.get(name, float("inf")))

    def figure(self, name: str, value: float) -> None:
        self.figures[name], self.kinds[name] = value, "set"

    def figure_max(self, name: str, value: float) -> None:
        self.figures[name], self.kinds[name] = max(value, self.figures.get(name, -math.inf)), "max"

    def figure_min(self, name: str, value: float) -> None:
        self.figures[name], self.kinds[name] = min(value, self.figures.get(name, math.inf)), "min"

    def sample(self, name: str, value: float) -> None:
        """One draw of a distribution (summarised as n, median, 90th percentile, max)."""
        self.samples.setdefault(name, []).append(value)

    def count(self, name: str) -> None:
        self.figures[name], self.kinds[name] = self.figures.get(name, 0) + 1, "sum"

    def state(self) -> dict[str, Any]:
        return {
            "worst": self.worst,
            "margins": self.margins,
            "figures": self.figures,
            "kinds": self.kinds,
            "samples": self.samples,
        }

    def merge(self, other: dict[str, Any]) -> None:
        """Fold in another process's :meth:`state` (a pytest-xdist worker's)."""
        for name, v in other["worst"].items():
            cur = self.worst.get(name)
            if cur is None or v["ratio"] > cur["ratio"] or v["error"] > cur["error"]:
                self.worst[name] = {
                    "error": max(v["error"], cur["error"]) if cur else v["error"],
                    "tol": v["tol"],
                    "ratio": max(v["ratio"], cur["ratio"]) if cur else v["ratio"],
                }
        for name, r in other["margins"].items():
            self.margin(name, r)
        for name, val in other["figures"].items():
            kind = other["kinds"].get(name, "set")
            if name not in self.figures or kind == "set":
                self.figures[name] = val
            elif kind == "max":
                self.figures[name] = max(self.figures[name], val)
            elif kind == "min":
                self.figures[name] = min(self.figures[name], val)
            else:
                self.figures[name] += val
            self.kinds[name] = kind
        for name, vals in other["samples"].items():
            self.samples.setdefault(name, []).extend(vals)

    def as_dict(self) -> dict[str, object]:
        worst = max((v["error"] for v in self.worst.values()), default=float("nan"))
        return {
            "profile": PROFILE,
            "worst_float64_relative_error": worst,
            "per_property": self.worst,
            "negative_control_margins": self.margins,
            "figures": self.figures,
            "samples": self.samples,
        }


_LOG = ErrorLog()


@pytest.fixture(scope="session")
def error_log() -> ErrorLog:
    return _LOG


@pytest.fixture(scope="module")
def single_thread():
    """Tiny float64 networks run fastest (and reproducibly) on one thread."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not (_LOG.worst or _LOG.margins or _LOG.figures or _LOG.samples):
        return
    tr = terminalreporter
    tr.section("scale-invariance property suite: error record")
    for name, v in sorted(_LOG.worst.items()):
        tr.write_line(f"{name:45s} worst rel err {v['error']:.3e}  worst err/tol {v['ratio']:.3e}")
    for name, r in sorted(_LOG.margins.items()):
        tr.write_line(f"negative control {name:28s} divergence/tol >= {r:.3e}")
    for name, val in sorted(_LOG.figures.items()):
        tr.write_line(f"{name:45s} {val:.4e}")
    for name, vals in sorted(_LOG.samples.items()):
        v = sorted(vals)
        p90 = v[max(0, math.ceil(0.9 * len(v)) - 1)]
        tr.write_line(
            f"{name:45s} n={len(v)} median {statistics.median(v):.3g} 90% {p90:.3g} max {v[-1]:.3g}"
        )
    d = _LOG.as_dict()
    tr.write_line(
        f"worst float64 relative error over the suite: {d['worst_float64_relative_error']:.3e}"
    )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist controller: merge each worker's error record."""
    data = getattr(node, "workeroutput", {}).get("error_log")
    if data:
        _LOG.merge(json.loads(data))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: hand the record to the controller
        worker_output["error_log"] = json.dumps(_LOG.state())
        return
    if not (_LOG.worst or _LOG.margins or _LOG.figures or _LOG.samples):
        return
    cache = getattr(session.config, "cache", None)
    if cache is not None:
        cache.set("equivalence/worst_errors", _LOG.as_dict())
