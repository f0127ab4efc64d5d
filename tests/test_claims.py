"""The table's columns tell the truth: every clause of every row names the tools that check it.

``exp_lr_verify.claims.CLAUSES`` splits each row of the main job's table into clauses and
names, per clause, the Coq theorems that state it, the SymPy results that derive it and
whether the main job measures it.  These tests read that registry against the Coq registry
(``proofs.coq_check``), the SymPy registry (``proofs``), the numeric checks and the
README's table: a cell may say "checked" (or "verified") only when its tool checks every
clause of the row.  The negative controls feed the same readers a row that claims more.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exp_lr_verify import job, report
from exp_lr_verify.claims import CLAIMS, CLAUSES, FURTHER_TEXT, GPU_CLAIM, Clause, Status
from proofs import coq_check
from proofs._core import MODULE_NAMES

README = Path(__file__).resolve().parents[1] / "README.md"
ROWS = {key: text for key, text, _ in CLAIMS} | {
    GPU_CLAIM[0]: GPU_CLAIM[1],
    "further_results": FURTHER_TEXT,
}
COLUMNS = ("symbolic", "kernel", "numeric")


def test_every_row_has_clauses() -> None:
    assert set(CLAUSES) == set(ROWS)
    assert all(CLAUSES[key] for key in ROWS)


def test_every_coq_reference_is_an_audited_theorem() -> None:
    audited = {f"{f}: {t}" for f, t in coq_check.all_theorems()}
    cited = {ref for clauses in CLAUSES.values() for c in clauses for ref in c.coq}
    assert cited - audited == set()


def test_every_sympy_reference_is_a_registered_result() -> None:
    cited = {r for clauses in CLAUSES.values() for c in clauses for r in c.sympy}
    assert cited <= set(MODULE_NAMES)
    # and every registered result backs some clause (none is run without a row)
    assert set(MODULE_NAMES) <= cited


def test_measured_clauses_match_the_numeric_checks() -> None:
    for key in ROWS:
        measured = any(c.measured for c in CLAUSES[key])
        has_check = key in job.CHECKS or key in ("toy", "cifar_smoke", "gpu")
        assert measured == has_check, key


def overclaims(markdown: str) -> list[str]:
    """Cells of the README's claims table that say more than the registry allows."""
    by_text = {text: key for key, text in ROWS.items()}
    problems = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        key = by_text.get(cells[0].replace("\\|", "|"))
        if key is None or len(cells) < 4:
            continue
        for column, cell in zip(COLUMNS, cells[1:4]):
            allowed = {
                report._word(Status.PASSED, column, CLAUSES[key]),
                *(s.value for s in Status if s is not Status.PASSED),
                "FAILED",
            }
            if cell not in allowed:
                problems.append(f"{key}/{column}: {cell!r} (allowed: {sorted(allowed)})")
    return problems


def test_readme_table_claims_no_more_than_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    assert overclaims(text) == []
    # every row of the table is in the README
    for key, row in ROWS.items():
        if key != "gpu":
            assert row in text, row


def test_a_row_that_claims_more_is_caught() -> None:
    """Negative control: the toy row with its Coq cell saying "checked" (the kernel checks
    one of its four clauses) is an overclaim."""
    toy = ROWS["toy"]
    row = f"| {toy} | checked | checked | verified | 1e-2 | 3.1 |"
    assert any(p.startswith("toy/kernel") for p in overclaims(row))
    assert any(p.startswith("toy/symbolic") for p in overclaims(row))


@pytest.mark.parametrize("column", COLUMNS)
def test_partial_coverage_is_counted_not_checked(column: str) -> None:
    clauses = (
        Clause("a", ("NoMomentum.v: no_momentum_equivalence",), ("no_momentum",), True),
        Clause("b"),
    )
    assert report._word(Status.PASSED, column, clauses) == "1 of 2 clauses"
    assert report._word(Status.PASSED, column, clauses[:1]) in ("checked", "verified")
    assert report._word(Status.FAILED, column, clauses) == "FAILED"


def test_report_lists_every_clause_with_its_tools() -> None:
    from exp_lr_verify.claims import Claim

    claims = [Claim(key, text, None) for key, text in ROWS.items()]
    lines = "\n".join(report.clause_lines(claims))
    for clauses in CLAUSES.values():
        for c in clauses:
            assert c.text in lines
    assert re.search(r"WD alone converges: measured", lines)
    assert "BN + WD has no stationary point with θ ≠ 0: Coq `ToyLemma.v" in lines
