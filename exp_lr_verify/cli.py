"""``exp-lr-verify`` / ``python -m exp_lr_verify``: the command line of the main job."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .claims import Claim, Status
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
        "default: ../shared/data/cifar10_jpeg.npz, ./data or the download cache if present",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch CIFAR-10 first (the standard archive, checked against its published MD5; "
        "torchvision's downloader where it imports) into --data if it names a directory, "
        "else into the cache folder ($XDG_CACHE_HOME/exp-lr-equivalence/cifar10)",
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
    if args.download:
        if args.data is not None and Path(args.data).is_file():
            parser.error(f"--download needs a directory for --data, got the file {args.data}")
        from gpu_validation.data import download_cifar10

        args.data = str(download_cifar10(args.data, progress=not args.no_progress))
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
    print(f"\n{verdict(claims)} in {seconds:.1f} s; report: {report}", file=sys.stdout)
    return 0 if ok else 1


def _skip_reason(c: Claim) -> str:
    """Why a claim was not checked in full, with what to do about it."""
    if c.key == "cifar_smoke" and c.numeric is Status.SKIPPED and "no CIFAR-10" in c.detail:
        return "no CIFAR-10: pass --data PATH or --download"
    if c.kernel is Status.NOT_RUN:
        return "Coq not installed: apt-get install coq libcoq-coquelicot libcoq-flocq"
    if c.kernel is Status.SKIPPED:
        return "Coq check skipped by --quick or --no-coq"
    if c.key == "cifar_smoke" and c.numeric is Status.SKIPPED:
        return "CIFAR-10 smoke skipped by --quick or --no-smoke"
    if c.numeric is Status.SKIPPED:
        return f"{c.key}: {c.detail or 'skipped'}"
    return f"{c.key}: a check did not run"


def verdict(claims: Sequence[Claim]) -> str:
    """The last line's words: ALL CLAIMS VERIFIED only for a run that checked everything.

    A claim any of whose checks failed makes it SOME CLAIMS FAILED; one with a check skipped
    or not run (but none failed) is counted as skipped, with the reason and the remedy.
    """
    failed = [c for c in claims if not c.ok]
    incomplete = (Status.SKIPPED, Status.NOT_RUN)
    skipped = [
        c
        for c in claims
        if c.ok and any(s in incomplete for s in (c.symbolic, c.kernel, c.numeric))
    ]
    if failed:
        return f"SOME CLAIMS FAILED ({', '.join(c.key for c in failed)})"
    if not skipped:
        return "ALL CLAIMS VERIFIED"
    reasons = "; ".join(dict.fromkeys(_skip_reason(c) for c in skipped))
    return f"{len(claims) - len(skipped)} verified, {len(skipped)} skipped ({reasons})"
