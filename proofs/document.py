"""Derive, check and typeset the registered results: the Python API behind ``python -m proofs``.

:func:`build` runs every registered :class:`proofs._core.Proof` (or those named),
asks Coq (``proofs.coq_check``) which of them are kernel-checked, and writes

* ``OUT/<name>.tex``: one LaTeX section per result (:meth:`Proof.to_latex`);
* ``OUT/proofs.tex``: the combined document, a summary table then ``\\input`` of each;
* ``OUT/proofs.json``: the settings, commit, versions, results and Coq outcome;
* ``OUT/proofs.pdf`` with ``pdf=True`` when pdflatex is installed.

It returns a :class:`Report` (frozen) that callers branch on; nothing is printed.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mpmath
import sympy
import z3

from proofs import coq_check
from proofs._core import (
    MODULE_NAMES,
    PREAMBLE,
    ProofResult,
    get,
    git_commit,
    run_all,
    tt,
    ttt,
)


@dataclass(frozen=True)
class Config:
    """Settings of :func:`build` (defaults: write to out/proofs, run Coq if present).

    ``only`` names the results to check (entries of :data:`MODULE_NAMES`);
    ``coq_timeout`` (seconds, > 0) bounds the whole Coq check.
    """

    out: str = "out/proofs"
    pdf: bool = False
    coq: bool = True
    coq_timeout: float = 300.0
    only: tuple[str, ...] = MODULE_NAMES

    def __post_init__(self) -> None:
        if not self.coq_timeout > 0:
            raise ValueError(f"coq_timeout={self.coq_timeout} must be > 0 (seconds)")
        unknown = [n for n in self.only if n not in MODULE_NAMES]
        if unknown or not self.only:
            raise ValueError(f"only={self.only!r}: give one or more of {MODULE_NAMES}")


@dataclass(frozen=True)
class CoqOutcome:
    """What Coq said: result name -> "File.v: theorem" for each kernel-checked result,
    a one-line status, the raw per-theorem and per-control records (empty when Coq did
    not run), whether Coq ran, and the checks that failed ("file: theorem")."""

    kernel_checked: dict[str, str]
    status: str
    results: tuple[dict, ...] = ()
    ran: bool = False
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """Outcome of :func:`build`: the results, Coq's marks, the PDF note, the time."""

    config: Config
    results: tuple[ProofResult, ...]
    coq: CoqOutcome
    pdf_ok: bool | None
    pdf_note: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Every result checked, every Coq check passed (when Coq ran) and the PDF
        built (when asked and pdflatex exists)."""
        pdf_fine = self.pdf_ok is not False or shutil.which("pdflatex") is None
        return all(r.ok for r in self.results) and not self.coq.failed and pdf_fine


def coq_outcome(cfg: Config) -> CoqOutcome:
    """Run the Coq check (unless ``cfg.coq`` is off) and mark the results it covers.

    A result of ``cfg.only`` is marked only when every theorem backing it passed and
    every negative control of it behaved (:func:`proofs.coq_check.kernel_checked`).
    Any failed check (a theorem, an Admitted anywhere, a negative control, sources
    that cannot be ordered) is listed in ``failed``, which fails the build.
    """
    if not cfg.coq:
        return CoqOutcome({}, "Coq check skipped (--no-coq)")
    if not coq_check.coq_available():
        return CoqOutcome({}, "Coq not installed")
    start = time.perf_counter()
    try:
        results = coq_check.check_all(timeout=cfg.coq_timeout)
        left = max(cfg.coq_timeout - (time.perf_counter() - start), 1.0)
        negatives = coq_check.check_negative_controls(timeout=left, results_of=cfg.only)
    except ValueError as exc:  # the Coq sources' imports are broken (cycle, missing file)
        return CoqOutcome({}, f"Coq check failed to run: {exc}", ran=True, failed=("Coq sources",))
    checked = coq_check.kernel_checked(results, negatives)
    marks = {name: ref for name, ref in checked.items() if name in cfg.only}
    failed = tuple(f"{r.file}: {r.theorem}" for r in [*results, *negatives] if not r.ok)
    raw = tuple(
        {
            "file": r.file,
            "theorem": r.theorem,
            "ok": r.ok,
            "seconds": r.seconds,
            "assumptions": list(r.assumptions),
            "message": r.message,
        }
        for r in [*results, *negatives]
    )
    n_ok = sum(r.ok for r in results)
    status = f"Coq: {n_ok}/{len(results)} theorems kernel-checked"
    if negatives:
        status += f", {sum(r.ok for r in negatives)}/{len(negatives)} negative controls rejected"
    if failed:
        status += "; FAILED: " + ", ".join(failed)
    return CoqOutcome(marks, status, raw, ran=True, failed=failed)


def summary_latex(results: tuple[ProofResult, ...], coq: CoqOutcome) -> str:
    """The summary section of proofs.tex: one row per result."""
    failed = r"\textbf{FAILED}"
    rows = [
        rf"{ttt(r.name)} & {'ok' if r.ok else failed} & {r.steps} & "
        rf"{r.seconds:.2f} & {tt(coq.kernel_checked.get(r.name, '--'))} \\"
        for r in results
    ]
    c = git_commit()
    return "\n".join(
        [
            r"\section*{Summary}",
            rf"Commit: {ttt(c) if c else 'none (not a git checkout)'}. {tt(coq.status)}.",
            "Every equation below is marked with the module (and commit) that produced it, and the "
            "engine that checked it.",
            r"\begin{center}\begin{tabular}{llrrl}",
            r"result & status & steps & seconds & kernel-checked (Coq) \\ \hline",
            *rows,
            r"\end{tabular}\end{center}",
            "",
        ]
    )


def section_latex(result: ProofResult, kernel_checked: str | None) -> str:
    """The LaTeX section of one result; a failed result that cannot render says so."""
    if result.ok:
        status = (
            f"all {result.steps} steps checked in {result.seconds:.2f} s; negative control "
            "fails as it must"
        )
        return get(result.name).to_latex(kernel_checked, status, result.negative_control)
    try:
        return get(result.name).to_latex(kernel_checked, "FAILED: " + tt(result.error or ""))
    except Exception as exc:  # the failure that failed the proof may stop the rendering too
        why = f"{result.error or ''} (rendering: {type(exc).__name__}: {exc})"
        return rf"\section{{{tt(result.name)}}}" + "\n" + r"\textbf{FAILED}: " + tt(why) + "\n"


def build_pdf(out: Path) -> tuple[bool, str]:
    """Run pdflatex twice on OUT/proofs.tex; (success, a one-line note or the log tail)."""
    exe = shutil.which("pdflatex")
    if exe is None:
        return False, "pdflatex not found: PDF not built"
    for _ in range(2):  # twice: the summary's references settle on the second run
        try:
            r = subprocess.run(
                [exe, "-interaction=nonstopmode", "-halt-on-error", "proofs.tex"],
                cwd=out,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"pdflatex did not run: {exc}"
        if r.returncode != 0:
            return False, "pdflatex failed:\n" + r.stdout[-3000:]
    return True, f"wrote {out / 'proofs.pdf'}"


def versions() -> dict[str, str]:
    """Versions of the engines that checked the proofs."""
    return {
        "python": platform.python_version(),
        "sympy": sympy.__version__,
        "z3": z3.get_version_string(),
        "mpmath": mpmath.__version__,
    }


def build(cfg: Config | None = None) -> Report:
    """Check the results of ``cfg.only``, write their LaTeX (and PDF) and proofs.json."""
    cfg = Config() if cfg is None else cfg
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = tuple(run_all(cfg.only))
    coq = coq_outcome(cfg)
    for r in results:
        body = section_latex(r, coq.kernel_checked.get(r.name))
        (out / f"{r.name}.tex").write_text(body, encoding="utf-8")
    doc = [PREAMBLE, summary_latex(results, coq)]
    doc += [rf"\input{{{r.name}}}" for r in results]
    doc.append(r"\end{document}")
    (out / "proofs.tex").write_text("\n".join(doc) + "\n", encoding="utf-8")
    pdf_ok, pdf_note = build_pdf(out) if cfg.pdf else (None, None)
    report = Report(cfg, results, coq, pdf_ok, pdf_note, time.perf_counter() - t0)
    record = {
        "config": asdict(cfg),
        "commit": git_commit(),
        "versions": versions(),
        "results": [asdict(r) for r in results],
        "coq": {"status": coq.status, "kernel_checked": coq.kernel_checked, "results": coq.results},
        "pdf": pdf_note,
        "seconds": report.seconds,
    }
    (out / "proofs.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return report
