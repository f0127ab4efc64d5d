"""``python -m proofs --out DIR [--pdf] [--no-coq] [--only NAME ...]``: check and typeset.

Writes DIR/<name>.tex for each registered result, DIR/proofs.tex (the combined
document, which ``\\input``s them), DIR/proofs.json (results, versions, commit)
and, with ``--pdf`` and pdflatex installed, DIR/proofs.pdf (see
:func:`proofs.document.build`). Prints a table of result, status and seconds;
``--steps`` also lists every checked step. Exit status is non-zero if any proof
(or the PDF build) fails. When Coq is installed (and ``--no-coq`` is not given)
the Coq proofs of proofs.coq_check are checked too and the results they cover
are marked kernel-checked in the table and the LaTeX. ``--only NAME`` checks one
result (or a few).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from proofs._core import MODULE_NAMES, get
from proofs.document import Config, Report, build


def parse_args(argv: Sequence[str] | None) -> tuple[Config, bool]:
    """(the build settings, whether to list the steps)."""
    p = argparse.ArgumentParser(prog="python -m proofs", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=Config.out, help="output directory (created)")
    p.add_argument("--pdf", action="store_true", help="build proofs.pdf with pdflatex")
    p.add_argument("--no-coq", action="store_true", help="skip the Coq kernel check")
    p.add_argument(
        "--coq-timeout",
        type=float,
        default=Config.coq_timeout,
        help="seconds for the whole Coq check (> 0, default 300)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=MODULE_NAMES,
        default=list(MODULE_NAMES),
        help="check only these results",
    )
    p.add_argument("--steps", action="store_true", help="list every checked step")
    a = p.parse_args(argv)
    if a.coq_timeout <= 0:
        p.error(f"--coq-timeout must be > 0 (seconds), got {a.coq_timeout}")
    return Config(a.out, a.pdf, not a.no_coq, a.coq_timeout, tuple(a.only)), a.steps


def print_table(report: Report, steps: bool = False) -> None:
    """The result table (and, with ``steps``, each checked step's name)."""
    w = max(len(n) for n in MODULE_NAMES)
    marks = report.coq.kernel_checked
    print(f"{'result':<{w}}  {'status':<6}  {'seconds':>7}  kernel-checked")
    for r in report.results:
        status = "ok" if r.ok else "FAILED"
        print(f"{r.name:<{w}}  {status:<6}  {r.seconds:7.2f}  {marks.get(r.name, '-')}")
        if not r.ok:
            print(f"    {r.error}")
        elif steps:
            for s in get(r.name).derive():
                print(f"    ok  {s.name}  ({s.method})")
            print(f"    negative control: {r.negative_control}")
    print(f"{'total':<{w}}  {'':<6}  {sum(r.seconds for r in report.results):7.2f}")
    print(report.coq.status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 iff every proof checks)."""
    cfg, steps = parse_args(argv)
    report = build(cfg)
    print_table(report, steps)
    if report.pdf_note is not None:
        print(report.pdf_note)
    print(f"wrote {len(report.results)} .tex files and proofs.tex to {cfg.out}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
