"""The run: every claim's evidence gathered, in order, into typed :class:`Claim` records."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from gpu_validation.data import default_data_path

from .cifar import check_gpu, check_smoke
from .claims import CLAIMS, CLAUSES, FURTHER_TEXT, GPU_CLAIM, Claim, Status, results_cited
from .config import VerifyConfig
from .numeric import CHECKS as _CLAIM_CHECKS
from .numeric import NumericResult
from .optimizers import TABLE_CHECKS
from .symbolic import check_proofs
from .toy_check import check_toy


def combined(statuses: list[Status]) -> Status:
    """One column's status from the statuses of the results it cites: FAILED if any
    failed, PASSED if all passed, NONE if none is cited, else the first that did not run."""
    if not statuses:
        return Status.NONE
    if Status.FAILED in statuses:
        return Status.FAILED
    if all(st is Status.PASSED for st in statuses):
        return Status.PASSED
    return next(st for st in statuses if st is not Status.PASSED)


#: claim key -> its numeric check: the paper's claims, then the optimizer table's rows
CHECKS = {**_CLAIM_CHECKS, **TABLE_CHECKS}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread inside: the small networks run fastest (and reproducibly) so."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _numeric(claim: Claim, fn: Callable[[], NumericResult]) -> Claim:
    """``claim`` with the numeric evidence of ``fn`` (an exception is a failure, with its trace)."""
    t0 = time.perf_counter()
    try:
        res = fn()
        status, worst, detail = res.status, res.worst_error, res.detail
    except Exception as exc:  # a crashing check is a failed claim, reported, not a crashed job
        status, worst = Status.FAILED, None
        detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    return dataclasses.replace(
        claim,
        numeric=status,
        worst_error=worst,
        detail=detail,
        seconds=claim.seconds + time.perf_counter() - t0,
    )


def run(cfg: VerifyConfig) -> tuple[list[Claim], dict[str, Any]]:
    """Gather the evidence of every claim; returns the claims and the extras for the report."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    claims = {k: Claim(k, text, proof) for k, text, proof in CLAIMS}
    claims["further_results"] = Claim("further_results", FURTHER_TEXT, None)
    if cfg.gpu:
        claims["gpu"] = Claim(*GPU_CLAIM)
    extras: dict[str, Any] = {}
    data = Path(cfg.data) if cfg.data else default_data_path()

    def proofs_task() -> None:
        res = check_proofs(out / "proofs", coq=cfg.coq, pdf=cfg.pdf)
        extras["proofs"] = {
            "status": res.coq_status,
            "pdf": res.pdf_note,
            "seconds": res.total_seconds,
            "errors": res.errors,
        }
        for key, c in claims.items():
            clauses = CLAUSES.get(key, ())
            sym = [res.symbolic.get(r, Status.FAILED) for r in results_cited(clauses, "symbolic")]
            ker = [res.kernel.get(r, Status.NONE) for r in results_cited(clauses, "kernel")]
            cited = set(results_cited(clauses, "symbolic"))
            claims[key] = dataclasses.replace(
                c,
                symbolic=combined(sym),
                kernel=combined(ker),
                seconds=c.seconds + sum(res.seconds.get(r, 0.0) for r in cited),
            )
        # a registered result no clause cites: its own row, so that a failing one fails the job
        covered = {r for cl in CLAUSES.values() for r in results_cited(cl, "symbolic")}
        for name in sorted(n for n in res.symbolic if n not in covered):
            claims[name] = Claim(
                name,
                f"Derived result {name} (cited by no clause)",
                name,
                symbolic=res.symbolic[name],
                kernel=res.kernel.get(name, Status.NONE),
                seconds=res.seconds.get(name, 0.0),
                detail=res.errors.get(name, ""),
            )

    def numeric(key: str, fn: Callable[[], NumericResult]) -> Callable[[], None]:
        def task() -> None:
            claims[key] = _numeric(claims[key], fn)

        return task

    def toy_task() -> NumericResult:
        res = check_toy(out / "toy")
        extras["toy"] = dict(res.record)
        return res

    tasks: list[tuple[str, Callable[[], None]]] = [("proofs (SymPy, LaTeX, Coq)", proofs_task)]

    def on_one_thread(f: Callable[[VerifyConfig], NumericResult]) -> Callable[[], NumericResult]:
        def call() -> NumericResult:
            with one_thread():
                return f(cfg)

        return call

    tasks += [(key, numeric(key, on_one_thread(fn))) for key, fn in CHECKS.items()]
    tasks.append(("toy", numeric("toy", toy_task)))
    if cfg.smoke and data is not None and data.exists():
        tasks.append(
            (
                "CIFAR-10 smoke",
                numeric("cifar_smoke", lambda: check_smoke(out / "cifar10_smoke", data)),
            )
        )
    else:
        claims["cifar_smoke"] = dataclasses.replace(
            claims["cifar_smoke"],
            numeric=Status.SKIPPED,
            detail="no CIFAR-10 data found" if cfg.smoke else "not asked for",
        )
    if cfg.gpu:
        tasks.append(("GPU validation", numeric("gpu", lambda: check_gpu(out / "gpu", data))))

    bar = tqdm(tasks, desc="verify", unit="check", disable=not cfg.progress)
    for label, task in bar:
        bar.set_postfix_str(label)
        task()
    return list(claims.values()), extras
