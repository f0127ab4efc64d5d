"""One invocation: load the data, train every seed, write ``results.json`` and the plots.

``results.json`` holds the config, versions, git commit, one record per seed
(per-epoch metrics, see :mod:`gpu_validation.train`), a summary over seeds
(mean ± std of the final test accuracies) and, with ``exact_check`` (the
smoke mode), the check (:func:`exact_check`): the no-WD recipes b and c must
equal θ_a / c_t in every conv tensor at every step within the project's error
model (``equivalence.noise_floor``: K·u·(t+1)), their outputs on the probe
batch likewise, with an LR drop inside the run. It is
rewritten after every epoch, so a run cut short by ``timeout`` leaves what it
had.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equivalence.verify.noise_floor import U32, U64, Trace, judge, trajectory_tol

from .config import Config
from .data import (
    REPO_ROOT,
    default_data_path,
    default_decode_cache,
    download_cifar10,
    load_cifar10,
)
from .train import Interrupted, train_seed

__all__ = ["run", "versions", "git_commit", "write_json", "exact_check"]


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the repository, or None when git or the repository is missing."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def versions(device: torch.device) -> dict[str, Any]:
    v: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
    }
    try:
        import equivalence

        v["equivalence"] = getattr(equivalence, "__version__", None)
    except Exception:  # pragma: no cover - the package is in the repo
        v["equivalence"] = None
    if device.type == "cuda":
        v["cuda"] = torch.version.cuda
        v["gpu"] = torch.cuda.get_device_name(device)
        v["cudnn"] = torch.backends.cudnn.version()
        v["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        v["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return v


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)  # JSON has no inf/nan
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(obj), f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def exact_check(cfg: Config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The smoke mode's pass/fail: b and c equal θ_a / c_t (and the same outputs).

    Judged by the project's error model (``equivalence.noise_floor.judge``) without a noise
    floor: the relative parameter error at every step t within K·u·(t+1) (the floor is not
    measured here, so the bound is never looser than the property suite's), and the probe
    outputs at the end of every epoch within K·u·(t+1) at that step; every error also within
    ``cfg.tolerance``. Also required: a completed run, an LR drop inside it, exact joint
    invariance with its negative control, and agreement of ``equivalence.audit``. Accuracy
    above chance is reported (``above_chance``), not required: a run of a few steps need not
    beat chance.
    """
    tol = cfg.tolerance
    failures: list[str] = []
    worst_param = 0.0
    worst_probe = 0.0
    for run in runs:
        s = run["summary"]
        if not run.get("completed"):
            failures.append(f"seed {run['seed']}: the run did not complete")
        per_check = run.get("param_rel_err_per_check", {})
        if per_check.get("check_every") != 1:
            failures.append(f"seed {run['seed']}: the exact check needs the error at every step")
        for k, errs in per_check.items():
            if k == "check_every":
                continue
            u = U64 if cfg.dtype == "float64" else U32
            verdict = judge(
                Trace(param=tuple(errs), train_out=(), eval_out=(), scales=(), unit_roundoff=u)
            )
            failures += [f"seed {run['seed']}: recipe {k} {r}" for r in verdict.reasons]
        for k, v in s.get("max_relative_parameter_error", {}).items():
            worst_param = max(worst_param, v)
            if not v <= tol:
                failures.append(
                    f"seed {run['seed']}: recipe {k} relative parameter error {v:.3g} > {tol:g}"
                )
        for ep in run["epochs"]:
            bound = min(
                tol, trajectory_tol(ep["step"] - 1, u=U64 if cfg.dtype == "float64" else U32)
            )
            for k, v in ep["vs_a"].items():
                probe = max(v["probe_train_rel"], v["probe_eval_rel"])
                worst_probe = max(worst_probe, probe)
                if not probe <= bound:
                    failures.append(
                        f"seed {run['seed']}: recipe {k} probe output distance {probe:.3g} > "
                        f"{bound:.3g} at step {ep['step']}"
                    )
        if not run["milestone_steps"] or max(run["milestone_steps"]) >= run["total_steps"]:
            failures.append(f"seed {run['seed']}: no LR drop inside the run")
        inv = run["invariance"]
        if not inv["all_convs"] <= tol:
            failures.append(
                f"seed {run['seed']}: joint scaling of the convs changes the output by "
                f"{inv['all_convs']:.3g}"
            )
        if not inv["stem_only_negative_control"] > 1e-3:
            failures.append(
                f"seed {run['seed']}: negative control failed (scaling the stem alone left the "
                "output unchanged)"
            )
        aud = run["audit"]
        if "skipped" not in aud and not (aud["invariant_agrees"] and aud["norm_layers_agree"]):
            failures.append(
                f"seed {run['seed']}: equivalence.audit disagrees with the conv weights / BN "
                f"modules (missing {aud['missing']}, unexpected {aud['unexpected']})"
            )
    return {
        "tolerance": tol,
        "error_model": "equivalence.noise_floor: err_t <= K·u·(t+1), K = 2^10 (no floor)",
        "max_relative_parameter_error": worst_param,
        "max_rel_param_error": worst_param,
        "max_probe_distance": worst_probe,
        "above_chance": all(
            a > 0.1 for r in runs for a in r["summary"].get("final_test_acc", {}).values()
        ),
        "failures": failures,
        "passed": not failures,
    }


def _over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accs: dict[str, list[float]] = {}
    for run in runs:
        for k, v in run["summary"].get("final_test_acc", {}).items():
            accs.setdefault(k, []).append(v)
    return {
        k: {
            "n": len(v),
            "mean": float(np.mean(v)),
            "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
            "values": v,
        }
        for k, v in accs.items()
    }


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM (``timeout``) into :class:`Interrupted` while a run trains (main thread only)."""

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_device(cfg: Config) -> torch.device:
    if cfg.device == "cuda" or (cfg.device is None and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError(
                "device = 'cuda' was requested but torch.cuda.is_available() is False"
            )
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_data(cfg: Config) -> Path:
    if cfg.download:
        root = Path(cfg.data) if cfg.data else None  # None: the download cache
        if root is not None and root.suffix == ".npz":
            raise ValueError(f"--download needs a directory for --data, got the file {root}")
        return download_cifar10(root)
    if cfg.data:
        p = Path(cfg.data)
        if not p.exists():
            raise FileNotFoundError(f"--data {p}: no such file or directory")
        return p
    found = default_data_path()
    if found is None:
        raise FileNotFoundError(
            "CIFAR-10 not found: looked for ../shared/data/cifar10_jpeg.npz beside the repository, then "
            "./data; pass --data (the .npz or a directory holding cifar-10-batches-py) or --download"
        )
    return found


def run(cfg: Config) -> dict[str, Any]:
    """Train every seed of ``cfg``, write ``<out>/results.json`` and plots; return the results."""
    t_start = time.perf_counter()
    device = resolve_device(cfg)
    data_path = resolve_data(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_decode_cache()
    t0 = time.perf_counter()
    data = load_cifar10(
        data_path,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        subset_seed=cfg.subset_seed,
        cache_dir=cache,
    )
    load_s = time.perf_counter() - t0
    results: dict[str, Any] = {
        "claim": "Li & Arora (ICLR 2020): step decay with WD (a), its exact no-WD exponential-LR "
        "equivalent (b) and TEXP (c) follow the same network functions on a scale-invariant net",
        "config": cfg.to_dict(),
        "data": {
            "path": str(data_path),
            "source": data.source,
            "load_s": load_s,
            "n_train": int(data.train_y.size),
            "n_test": int(data.test_y.size),
        },
        "versions": versions(device),
        "git_commit": git_commit(),
        "runs": [],
    }
    results_path = out / "results.json"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    interrupted = False
    with _threads(cfg.num_threads), _sigterm_raises():
        for seed in cfg.seeds:

            def on_epoch(rec: dict[str, Any]) -> None:
                write_json(
                    results_path, {**results, "runs": [*results["runs"], rec], "partial": True}
                )

            try:
                rec = train_seed(
                    cfg, data, seed, device, on_epoch=on_epoch, run_audit=not results["runs"]
                )
            except Interrupted:  # raised between epochs' bookkeeping
                interrupted = True
                break
            results["runs"].append(rec)
            if not rec["completed"]:
                interrupted = True
                break
    results["interrupted"] = interrupted
    if results["runs"]:
        results["final_test_acc"] = results["runs"][0]["summary"].get("final_test_acc", {})
    results["over_seeds"] = _over_seeds(results["runs"])
    if cfg.exact_check:
        results["check"] = exact_check(cfg, results["runs"])
    results["wall_s"] = time.perf_counter() - t_start
    write_json(results_path, results)
    try:
        from .report import plot_results

        results["plots"] = [str(p) for p in plot_results(results, out)]
    except Exception as e:  # plots are a by-product; the JSON record is the result
        results["plot_error"] = f"{type(e).__name__}: {e}"
    write_json(results_path, results)
    return results
