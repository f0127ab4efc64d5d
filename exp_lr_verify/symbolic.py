"""The symbolic evidence: the ``proofs`` package's derivations, LaTeX/PDF and Coq check.

The one place the main job calls ``proofs`` (:func:`check_proofs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import proofs
from proofs import coq_check

from .claims import Status


@dataclass(frozen=True)
class ProofsOutcome:
    """Per result: symbolic and kernel status, seconds, error; plus Coq's and the PDF's notes."""

    symbolic: dict[str, Status]
    kernel: dict[str, Status]
    seconds: dict[str, float]
    errors: dict[str, str]
    coq_status: str
    pdf_note: str | None
    total_seconds: float


def check_proofs(out: Path, *, coq: bool, pdf: bool) -> ProofsOutcome:
    """Derive and check every registered result, write OUT/*.tex (and the PDF), run Coq."""
    report = proofs.build(proofs.Config(out=str(out), pdf=pdf, coq=coq))
    coq_ran = report.coq.ran
    symbolic = {r.name: Status.PASSED if r.ok else Status.FAILED for r in report.results}
    kernel = {}
    for name in coq_check.KERNEL_CHECKED:
        if name in report.coq.kernel_checked:
            kernel[name] = Status.PASSED
        elif coq_ran:
            kernel[name] = Status.FAILED
        else:
            kernel[name] = Status.NOT_RUN if coq else Status.SKIPPED
    return ProofsOutcome(
        symbolic=symbolic,
        kernel=kernel,
        seconds={r.name: r.seconds for r in report.results},
        errors={r.name: r.error or "" for r in report.results if not r.ok},
        coq_status=report.coq.status,
        pdf_note=report.pdf_note,
        total_seconds=report.seconds,
    )
