"""``exp-lr-verify`` / ``python -m exp_lr_verify``: the command line of the main job."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .config import VerifyConfig
from .job import run
from .report import print_table, schedule_plot, write_record, write_report


def build_parser() -> argparse.ArgumentParser:
    d = VerifyConfig()
    p = argparse.ArgumentParser(
        prog="exp-lr-verify",
        description="Verify the claims of Li & Arora (ICLR 2020) end to end: symbolic proofs (SymPy, "
        "and Coq when installed), numeric checks on small normalised networks against stock "
        "torch.optim.SGD, the toy counterexample, and CIFAR-10 (CPU smoke, or the full GPU "
        "run). Prints a table and writes OUT/report.md; exits 1 if any claim fails.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--out", default=d.out, help="directory for the report, LaTeX/PDF, plots and JSON"
    )
    p.add_argument(
        "--data",
        default=None,
        help="CIFAR-10: the cifar10_jpeg.npz file or a torchvision root (cifar-10-batches-py); "
        "default: ../shared/data/cifar10_jpeg.npz or ./data if present",
    )
    p.add_argument(
        "--gpu", action="store_true", help="also run the full CIFAR-10 validation on CUDA"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="reduced mode: shorter numeric runs, fewer noise-floor twins (a stricter floor), "
        "no CIFAR-10 smoke, no Coq, no PDF",
    )
    p.add_argument("--no-coq", action="store_true", help="skip the Coq kernel check")
    p.add_argument(
        "--no-pdf", action="store_true", help="do not build the PDF even if pdflatex exists"
    )
    p.add_argument("--no-smoke", action="store_true", help="skip the CIFAR-10 CPU smoke validation")
    p.add_argument(
        "--seed", type=int, default=d.seed, help="seed of the networks and batches (>= 0)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_config(argv: Sequence[str] | None = None) -> VerifyConfig:
    """The settings given by ``argv``; bad arguments exit with status 2 naming the argument."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed = {args.seed} is outside the valid range seed >= 0")
    if args.data is not None and not Path(args.data).exists():
        parser.error(f"--data {args.data}: no such file or directory")
    return VerifyConfig(
        out=args.out,
        data=args.data,
        gpu=args.gpu,
        quick=args.quick,
        coq=not (args.no_coq or args.quick),
        pdf=not (args.no_pdf or args.quick),
        smoke=not (args.no_smoke or args.quick),
        seed=args.seed,
        progress=not args.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the main job; 0 if every claim holds, 1 otherwise."""
    cfg = parse_config(argv)
    t0 = time.perf_counter()
    claims, extras = run(cfg)
    schedule_plot(Path(cfg.out))
    seconds = time.perf_counter() - t0
    print_table(claims)
    report = write_report(cfg, claims, extras, seconds)
    write_record(cfg, claims, extras, seconds)
    ok = all(c.ok for c in claims)
    print(
        f"\n{'ALL CLAIMS VERIFIED' if ok else 'SOME CLAIMS FAILED'} in {seconds:.1f} s; "
        f"report: {report}",
        file=sys.stdout,
    )
    return 0 if ok else 1
