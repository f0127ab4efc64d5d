"""The main job's outputs: the table on stdout, OUT/report.md and OUT/verify.json."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from equivalence.cli import ScheduleConfig, plot_schedule, schedule_table

from .claims import CLAUSES, Claim, Clause, Status, coverage
from .config import VerifyConfig

REPO = Path(__file__).resolve().parents[1]
HEADER = [
    "claim of the paper",
    "symbolic (SymPy)",
    "kernel (Coq)",
    "numeric",
    "worst error",
    "time (s)",
]
_WORDS = {  # how each column words a passed status
    "symbolic": "checked",
    "kernel": "checked",
    "numeric": "verified",
}


def _word(status: Status, column: str, clauses: tuple[Clause, ...] = ()) -> str:
    """A column's cell: "checked"/"verified" only when every clause of the row is checked by
    the column's tool and it passed; "k of n clauses" when only some are."""
    if status is Status.PASSED:
        k, n = coverage(clauses, column) if clauses else (1, 1)
        return _WORDS[column] if k == n else f"{k} of {n} clauses"
    return "FAILED" if status is Status.FAILED else status.value


def clause_lines(claims: Sequence[Claim]) -> list[str]:
    """Markdown: per row, each clause and the tools that check it."""
    lines: list[str] = []
    for c in claims:
        clauses = CLAUSES.get(c.key, ())
        if not clauses:
            continue
        lines.append(f"- **{c.text}**")
        for cl in clauses:
            tools = []
            if cl.coq:
                tools.append("Coq " + ", ".join(f"`{ref}`" for ref in cl.coq))
            if cl.sympy:
                tools.append("SymPy " + ", ".join(f"`{r}`" for r in cl.sympy))
            if cl.measured:
                tools.append("measured")
            lines.append(f"  - {cl.text}: {'; '.join(tools) or 'not checked'}")
    return lines


def _fmt_err(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2e}"


def table_rows(claims: Sequence[Claim]) -> list[list[str]]:
    return [
        [
            c.text,
            _word(c.symbolic, "symbolic", CLAUSES.get(c.key, ())),
            _word(c.kernel, "kernel", CLAUSES.get(c.key, ())),
            _word(c.numeric, "numeric", CLAUSES.get(c.key, ())),
            _fmt_err(c.worst_error),
            f"{c.seconds:.1f}",
        ]
        for c in claims
    ]


def print_table(claims: Sequence[Claim]) -> None:
    rows = [HEADER, *table_rows(claims)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    for j, r in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def git_commit() -> str | None:
    try:
        r = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return r.stdout.strip() or None


def _versions() -> str:
    import sympy
    import torch

    return f"torch {torch.__version__}, numpy {np.__version__}, sympy {sympy.__version__}"


def schedule_plot(out: Path) -> Path:
    """The paper's recipe and its exponential-LR equivalent, plotted to OUT/schedule.png."""
    cfg = ScheduleConfig()
    _, sched = schedule_table(cfg)
    path = out / "schedule.png"
    plot_schedule(cfg, sched, str(path))
    return path


def write_report(
    cfg: VerifyConfig, claims: Sequence[Claim], extras: dict[str, Any], seconds: float
) -> Path:
    out = Path(cfg.out)
    lines = [
        "# Verification report: Li & Arora, *An Exponential Learning Rate Schedule for Deep Learning*",
        "",
        f"Commit `{git_commit() or 'unknown'}`, Python {platform.python_version()}, {_versions()}, "
        f"total {seconds:.1f} s. Training claims are judged by `equivalence.noise_floor.judge` "
        "(err_t ≤ max(K·u·(t+1), 3 × measured noise floor) up to the predictability horizon).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for r in table_rows(claims):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |")
    lines += [
        "",
        "## What each column checks, clause by clause",
        "",
        "A cell says checked (or verified) only when its tool checks every clause of the row; "
        "otherwise it counts the clauses its tool checks.",
        "",
        *clause_lines(claims),
    ]
    lines += ["", "## Details", ""]
    lines += [f"- **{c.text}**: {c.detail.strip()}" for c in claims if c.detail]
    proofs = extras.get("proofs", {})
    lines += [
        "",
        "## Proofs",
        "",
        "- LaTeX: [proofs/proofs.tex](proofs/proofs.tex), one file per result in [proofs/](proofs/)",
    ]
    if (out / "proofs" / "proofs.pdf").exists():
        lines.append("- PDF: [proofs/proofs.pdf](proofs/proofs.pdf)")
    if proofs:
        lines.append(f"- {proofs.get('status')}")
    lines += ["", "## Plots", ""]
    for rel, caption in (
        ("toy/toy_trajectories.png", "The toy: WD only, BN only, BN + WD"),
        ("schedule.png", "The paper's recipe and its exponential-LR equivalent"),
    ):
        if (out / rel).exists():
            lines += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
    smoke = out / "cifar10_smoke"
    for png in sorted(smoke.glob("*.png")) if smoke.exists() else []:
        lines += [f"![{png.stem}]({png.relative_to(out).as_posix()})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_record(
    cfg: VerifyConfig, claims: Sequence[Claim], extras: dict[str, Any], seconds: float
) -> Path:
    """OUT/verify.json: the settings, commit, time, every claim (statuses as words) and extras."""

    def claim_record(c: Claim) -> dict[str, Any]:
        d = dataclasses.asdict(c)
        for k in ("symbolic", "kernel", "numeric"):
            d[k] = getattr(c, k).value
        return d | {"ok": c.ok}

    record = {
        "config": dataclasses.asdict(cfg),
        "commit": git_commit(),
        "seconds": seconds,
        "claims": [claim_record(c) for c in claims],
        "extras": extras,
    }
    path = Path(cfg.out) / "verify.json"
    path.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return path
