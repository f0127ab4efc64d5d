"""Kernel-checked proofs: the Coq formalisation under proofs/coq/.

What is checked (Li & Arora, ICLR 2020; see proofs/coq_check.py):
- the sources contain no Admitted/admit/Axiom/Parameter, and Section-only
  declarations (Variable/Hypothesis) appear only inside Sections (runs
  without coqc);
- with coqc: every file compiles, every main theorem's ``Print Assumptions``
  lists only the axioms of Coq's standard-library reals and functional
  extensionality, and every proved negation (each result's negative controls:
  ``~ (wrong claim)`` on a witness inside the hypothesis class) is a negation.
The compile-based tests skip when coqc or its libraries (Coquelicot, Flocq)
are absent, except under CI (the environment variable CI set), where they run
and fail.  tests/test_coq_checker.py tests the checker itself.  Budget: about 75 s of CPU on one
core (one build of 42 files and the assumption audit of their theorems, one
``Print Assumptions`` per file); the wall time is longer on a loaded machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from proofs import coq_check
from proofs._core import MODULE_NAMES

#: Every result name of the proof registry: each must be kernel-checked.
RESULTS = set(MODULE_NAMES)

#: Whole-check time limit (seconds of wall time; a loaded machine is slow).
TIMEOUT = 400.0

#: coqc or one of its libraries is missing here.
COQ_MISSING = not coq_check.coq_available() or bool(coq_check.missing_libraries())

needs_coqc = pytest.mark.skipif(
    COQ_MISSING and not os.environ.get("CI"),
    reason="coqc or Coquelicot/Flocq not installed "
    "(apt-get install coq libcoq-coquelicot libcoq-flocq)",
)


# ---------------------------------------------------------------- no coqc


def test_ci_has_coq() -> None:
    if not os.environ.get("CI"):
        pytest.skip("CI not set: the Coq tests may skip without coqc")
    assert coq_check.coq_available(), "CI: coqc not installed"
    assert coq_check.missing_libraries() == [], "CI: Coq libraries missing"


def test_every_result_has_a_proved_negation() -> None:
    """Every result's negative control is a proved negation; no must-fail file is needed."""
    assert set(coq_check.NEGATIONS) == RESULTS
    assert all(coq_check.NEGATIONS[name] for name in RESULTS)
    assert coq_check.NEGATIVE_CONTROLS == {} and coq_check.negative_files() == []
    assert set(coq_check.NEGATIVE_RESULTS) == set(coq_check.NEGATIVE_CONTROLS)


def test_negations_are_declared_as_negations_in_the_sources() -> None:
    """(Without coqc.)  Each proved negation's statement starts with ``~`` or is an
    inequation; check_all asks Coq itself (test_a_positive_statement_is_not_a_negation)."""
    for file, theorem in {p for pairs in coq_check.NEGATIONS.values() for p in pairs}:
        text = coq_check.strip_comments((coq_check.COQ_DIR / file).read_text(encoding="utf-8"))
        match = re.search(rf"Theorem\s+{theorem}\b(.*?)Proof\.", text, re.S)
        assert match is not None, (file, theorem)
        statement = match.group(1).split(":", 1)[1]
        assert re.match(r"\s*~", statement) or "<>" in statement, (file, theorem, statement)


def test_kernel_checked_needs_every_negation_and_the_witness() -> None:
    every = [coq_check.CoqResult(f, t, True, (), 0.0, "") for f, t in coq_check.MAIN_THEOREMS]
    assert coq_check.kernel_checked(every) == coq_check.KERNEL_CHECKED
    negation = coq_check.NEGATIONS["texp"][0]
    marks = coq_check.kernel_checked([r for r in every if (r.file, r.theorem) != negation])
    assert set(marks) == RESULTS - {"texp"}
    # a witness theorem failing withdraws the mark of every result refuted on it
    witness = coq_check.WITNESS[-1]
    marks = coq_check.kernel_checked([r for r in every if (r.file, r.theorem) != witness])
    assert marks == {}


def test_must_fail_reasons_are_false_equations_only() -> None:
    assert coq_check.FALSE_EQUATION_ERRORS == (
        "not a valid field equation",
        "not a valid ring equation",
    )


def test_every_result_has_kernel_checked_theorems() -> None:
    assert set(coq_check.KERNEL_CHECKED) == RESULTS
    assert set(coq_check.KERNEL_THEOREMS) == RESULTS
    audited = set(coq_check.MAIN_THEOREMS)
    listed = [p for pairs in coq_check.KERNEL_THEOREMS.values() for p in pairs] + [
        p for pairs in coq_check.NEGATIONS.values() for p in pairs
    ]
    assert len(set(listed)) == len(listed)  # no pair listed twice
    for module, pairs in {
        name: coq_check.KERNEL_THEOREMS[name] + coq_check.NEGATIONS[name] for name in RESULTS
    }.items():
        assert coq_check.KERNEL_CHECKED[module] == f"{pairs[0][0]}: {pairs[0][1]}"
        for file, theorem in pairs:
            assert (file, theorem) in audited
            text = (coq_check.COQ_DIR / file).read_text(encoding="utf-8")
            assert coq_check._theorem_line(text, theorem) is not None, (file, theorem)
            # the header comment names the corresponding SymPy module
            header = text.split("*)", 1)[0]
            assert f"proofs/{module}.py" in header, (file, module)


def test_every_source_file_backs_a_result() -> None:
    backing = {file for file, _ in coq_check.all_theorems()}
    assert {p.name for p in coq_check.source_files()} - backing == {"Vec.v"}


def test_kernel_checked_needs_every_theorem_of_a_result() -> None:
    def result(pair: tuple[str, str], ok: bool) -> coq_check.CoqResult:
        return coq_check.CoqResult(pair[0], pair[1], ok, (), 0.0, "")

    every = [result(pair, True) for pair in coq_check.MAIN_THEOREMS]
    assert coq_check.kernel_checked(every) == coq_check.KERNEL_CHECKED
    # one failing secondary theorem (BitExact.v) withdraws the mark of its result only
    failing = ("BitExact.v", "sgd_step_bit_exact")
    assert failing in coq_check.KERNEL_THEOREMS["rescaling"][1:]
    marks = coq_check.kernel_checked(
        [result(pair, pair != failing) for pair in coq_check.MAIN_THEOREMS]
    )
    assert set(marks) == RESULTS - {"rescaling"}


def test_classic_is_allowed_only_where_flocq_is_loaded() -> None:
    flocq = {p.name for p in coq_check.source_files() if coq_check.uses_flocq(p)}
    assert flocq == {"BitExact.v", "BitExact64.v", "BitExactFma.v", "RefuteRescaling.v"}
    for path in coq_check.source_files():
        allowed = coq_check.allowed_axioms(path.name)
        assert ("Classical_Prop.classic" in allowed) == (path.name in flocq), path.name
        assert coq_check.ALLOWED_AXIOMS <= allowed


def test_every_source_has_a_header_naming_its_result() -> None:
    for path in coq_check.source_files() + coq_check.negative_files():
        text = path.read_text(encoding="utf-8")
        label = f"negative/{path.name}" if path.parent == coq_check.NEGATIVE_DIR else path.name
        assert text.startswith(f"(* {label} -- "), path
        assert "Li & Arora" in text.split("*)", 1)[0], path


def test_sources_have_no_admitted_or_axioms() -> None:
    assert coq_check.audit_sources() == []


def test_audit_catches_admitted_axioms_and_stray_hypotheses(tmp_path: Path) -> None:
    bad = tmp_path / "Bad.v"
    bad.write_text(
        "(* Admitted in a comment (* nested Axiom *) is fine *)\n"
        'Definition s := "admit".\n'
        "Axiom cheat : False.\n"
        "Hypothesis stray : False.\n"
        "Section S.\nVariable x : nat.\nHypothesis ok : x = x.\nEnd S.\n"
        "Lemma l : False. Proof. admit. Admitted.\n",
        encoding="utf-8",
    )
    problems = coq_check.audit_source(bad)
    assert any("'Axiom'" in p and ":3:" in p for p in problems), problems
    assert any("'Hypothesis' outside a Section" in p and ":4:" in p for p in problems), problems
    assert any("'admit'" in p for p in problems), problems
    assert any("'Admitted'" in p and ":9:" in p for p in problems), problems
    assert not any(":1:" in p or ":2:" in p or ":6:" in p or ":7:" in p for p in problems)


def test_dependency_order_puts_imports_first() -> None:
    order = [p.stem for p in coq_check.dependency_order(coq_check.source_files())]
    for path in coq_check.source_files():
        for dep in coq_check.imports(path):
            assert order.index(dep) < order.index(path.stem), (dep, path.stem)


def test_parse_assumptions() -> None:
    closed = "Closed under the global context\n"
    assert coq_check.parse_assumptions(closed) == ()
    axioms = (
        "Axioms:\nClassicalDedekindReals.sig_forall_dec\n  : forall P : nat -> Prop,\n"
        "    {n : nat | ~ P n} + {forall n : nat, P n}\n"
        "Classical_Prop.classic : forall P : Prop, P \\/ ~ P\n"
    )
    assert coq_check.parse_assumptions(axioms) == (
        "ClassicalDedekindReals.sig_forall_dec",
        "Classical_Prop.classic",
    )
    assert coq_check.parse_assumptions("Error: nonsense") is None


# ------------------------------------------------------------- with coqc


@pytest.fixture(scope="module")
def results() -> list[coq_check.CoqResult]:
    return coq_check.check_all(timeout=TIMEOUT)


@needs_coqc
def test_all_main_theorems_are_kernel_checked(results: list[coq_check.CoqResult]) -> None:
    assert [(r.file, r.theorem) for r in results] == list(coq_check.MAIN_THEOREMS)
    failed = [(r.file, r.theorem, r.message) for r in results if not r.ok]
    assert failed == []


@needs_coqc
def test_assumptions_are_stdlib_reals_and_funext_only(
    results: list[coq_check.CoqResult],
) -> None:
    for r in results:
        assert r.assumptions, f"{r.theorem}: Print Assumptions not parsed"
        assert set(r.assumptions) <= coq_check.allowed_axioms(r.file), (r.theorem, r.assumptions)
        if not coq_check.uses_flocq(coq_check.COQ_DIR / r.file):
            assert not any("classic" in a.lower().split(".")[-1] for a in r.assumptions)


@needs_coqc
def test_every_result_is_kernel_checked(results: list[coq_check.CoqResult]) -> None:
    assert coq_check.kernel_checked(results) == coq_check.KERNEL_CHECKED


@needs_coqc
def test_no_build_products_in_the_source_tree(results: list[coq_check.CoqResult]) -> None:
    assert results
    leftovers = [
        p
        for pattern in ("*.vo", "*.vok", "*.vos", "*.glob", ".*.aux")
        for p in coq_check.COQ_DIR.rglob(pattern)
    ]
    assert leftovers == []


@needs_coqc
def test_every_negation_is_checked_as_a_negation(results: list[coq_check.CoqResult]) -> None:
    negations = {p for pairs in coq_check.NEGATIONS.values() for p in pairs}
    checked = [r for r in results if (r.file, r.theorem) in negations]
    assert len(checked) == len(negations) and all(r.ok for r in checked)


@needs_coqc
def test_main_prints_the_table(
    results: list[coq_check.CoqResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Reuse the fixture's results rather than compiling everything again.
    monkeypatch.setattr(coq_check, "check_all", lambda timeout=120.0: results)
    monkeypatch.setattr(coq_check, "reals_baseline", lambda timeout=60.0: ())
    assert coq_check.main(["--no-negative"]) == 0
    out = capsys.readouterr().out
    for where in coq_check.KERNEL_CHECKED.values():
        assert where.split(": ")[1] in out
