"""``python -m proofs --out DIR [--pdf] [--no-coq]``: derive, check and typeset every proof.

Writes DIR/<module>.tex for each result, DIR/proofs.tex (the combined document,
which ``\\input``s them), DIR/proofs.json (results, versions, commit) and, with
``--pdf`` and pdflatex installed, DIR/proofs.pdf. Prints a table of result,
status and seconds. Exit status is non-zero if any proof (or the PDF build)
fails. When Coq is installed (and ``--no-coq`` is not given) the Coq proofs of
proofs.coq_check are checked too and the results they cover are marked
kernel-checked in the table and the LaTeX.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from proofs._core import (
    MODULE_NAMES,
    PREAMBLE,
    ProofResult,
    git_commit,
    render,
    run_all,
    tt,
    ttt,
)


@dataclass(frozen=True)
class Config:
    """Command-line settings (defaults: write to out/proofs, run Coq if present)."""

    out: str = "out/proofs"
    pdf: bool = False
    coq: bool = True
    coq_timeout: float = 120.0
    only: tuple[str, ...] = MODULE_NAMES


def parse_args(argv: Sequence[str] | None) -> Config:
    p = argparse.ArgumentParser(prog="python -m proofs", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=Config.out, help="output directory (created)")
    p.add_argument("--pdf", action="store_true", help="build proofs.pdf with pdflatex")
    p.add_argument("--no-coq", action="store_true", help="skip the Coq kernel check")
    p.add_argument(
        "--coq-timeout",
        type=float,
        default=Config.coq_timeout,
        help="seconds for the whole Coq check (default 120)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=MODULE_NAMES,
        default=list(MODULE_NAMES),
        help="check only these results",
    )
    a = p.parse_args(argv)
    if a.coq_timeout <= 0:
        p.error(f"--coq-timeout must be > 0, got {a.coq_timeout}")
    return Config(a.out, a.pdf, not a.no_coq, a.coq_timeout, tuple(a.only))


def coq_marks(cfg: Config) -> tuple[dict[str, str], str, list[dict]]:
    """(module -> "File.v: theorem" for kernel-checked results, a status line, raw results)."""
    if not cfg.coq:
        return {}, "Coq check skipped (--no-coq)", []
    try:
        # optional; looked up through sys.modules so that it can be replaced or hidden
        coq_check = importlib.import_module("proofs.coq_check")
    except Exception as exc:  # ImportError, or an error inside the module
        return {}, f"Coq check unavailable (proofs.coq_check: {type(exc).__name__})", []
    try:
        if not coq_check.coq_available():
            return {}, "Coq not installed", []
        results = coq_check.check_all(timeout=cfg.coq_timeout)
        table = dict(getattr(coq_check, "KERNEL_CHECKED", {}))
    except Exception as exc:
        return {}, f"Coq check failed to run: {type(exc).__name__}: {exc}", []
    ok = {(Path(r.file).name, r.theorem) for r in results if r.ok}
    marks = {}
    for module, ref in table.items():
        file, _, theorem = ref.partition(":")
        if (Path(file.strip()).name, theorem.strip()) in ok:
            marks[module] = ref
    n_ok = sum(r.ok for r in results)
    raw = [
        {
            "file": r.file,
            "theorem": r.theorem,
            "ok": r.ok,
            "seconds": r.seconds,
            "assumptions": list(r.assumptions),
            "message": r.message,
        }
        for r in results
    ]
    return marks, f"Coq: {n_ok}/{len(results)} theorems kernel-checked", raw


def print_table(results: list[ProofResult], marks: dict[str, str], coq_line: str) -> None:
    w = max(len(n) for n in MODULE_NAMES)
    print(f"{'result':<{w}}  {'status':<6}  {'seconds':>7}  kernel-checked")
    for r in results:
        status = "ok" if r.ok else "FAILED"
        kernel = marks.get(r.name, "-")
        print(f"{r.name:<{w}}  {status:<6}  {r.seconds:7.2f}  {kernel}")
        if not r.ok:
            print(f"    {r.error}")
    print(f"{'total':<{w}}  {'':<6}  {sum(r.seconds for r in results):7.2f}")
    print(coq_line)


def summary_latex(results: list[ProofResult], marks: dict[str, str], coq_line: str) -> str:
    failed = r"\textbf{FAILED}"
    rows = [
        rf"{ttt(r.name)} & {'ok' if r.ok else failed} & {r.steps} & "
        rf"{r.seconds:.2f} & {tt(marks.get(r.name, '--'))} \\"
        for r in results
    ]
    c = git_commit()
    return "\n".join(
        [
            r"\section*{Summary}",
            rf"Commit: {ttt(c) if c else 'none (not a git checkout)'}. {tt(coq_line)}.",
            "Every equation below is marked with the module (and commit) that produced it, and the "
            "engine that checked it.",
            r"\begin{center}\begin{tabular}{llrrl}",
            r"result & status & steps & seconds & kernel-checked (Coq) \\ \hline",
            *rows,
            r"\end{tabular}\end{center}",
            "",
        ]
    )


def build_pdf(out: Path) -> tuple[bool, str]:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 iff every proof checks)."""
    cfg = parse_args(argv)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = run_all(cfg.only)
    marks, coq_line, coq_raw = coq_marks(cfg)
    print_table(results, marks, coq_line)
    for r in results:
        try:
            status = (
                f"all {r.steps} steps checked in {r.seconds:.2f} s; negative control fails "
                "as it must"
                if r.ok
                else "FAILED: " + tt(r.error or "")
            )
            body = render(r.name, marks.get(r.name), status, r.negative_control if r.ok else None)
        except Exception as exc:  # a failed proof may not even render: say so in the document
            body = (
                rf"\section{{{tt(r.name)}}}"
                + "\n"
                + r"\textbf{FAILED}: "
                + tt(f"{r.error or ''} (rendering: {type(exc).__name__}: {exc})")
                + "\n"
            )
        (out / f"{r.name}.tex").write_text(body, encoding="utf-8")
    doc = [PREAMBLE, summary_latex(results, marks, coq_line)]
    doc += [rf"\input{{{r.name}}}" for r in results]
    doc.append(r"\end{document}")
    (out / "proofs.tex").write_text("\n".join(doc) + "\n", encoding="utf-8")
    ok = all(r.ok for r in results)
    pdf_note = None
    if cfg.pdf:
        pdf_ok, pdf_note = build_pdf(out)
        print(pdf_note)
        ok = ok and (pdf_ok or shutil.which("pdflatex") is None)
    record = {
        "config": asdict(cfg),
        "commit": git_commit(),
        "versions": _versions(),
        "results": [asdict(r) for r in results],
        "coq": {"status": coq_line, "kernel_checked": marks, "results": coq_raw},
        "pdf": pdf_note,
        "seconds": time.perf_counter() - t0,
    }
    (out / "proofs.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    print(f"wrote {len(results)} .tex files and proofs.tex to {out}")
    return 0 if ok else 1


def _versions() -> dict[str, str]:
    import sympy

    v = {"python": platform.python_version(), "sympy": sympy.__version__}
    try:
        import z3

        v["z3"] = z3.get_version_string()
    except ImportError:
        v["z3"] = "missing"
    return v


if __name__ == "__main__":
    sys.exit(main())
