"""Negative tests of the Coq checker itself (proofs/coq_check.py), on temporary copies.

Each case copies the files behind ``general_schedule`` (Vec, Momentum, GeneralSchedule,
its proved negation in Refutation.v, and the witness it is refuted on: Witness,
ScaleInvariance, WitnessGradient) into a temporary directory, points proofs.coq_check at
that copy and breaks it:

- ``admitted_second``: ``c_ex_1``, a lemma used by ``wrong_lr_refuted`` (the
  result's third theorem, in another file than its first), is Admitted;
- ``missing_theorem``: ``wrong_lr_refuted`` is renamed away;
- ``unused_admitted``: an Admitted lemma that no theorem uses is added to
  Refutation.v (``unused_admitted_elsewhere``: to a file no theorem imports, which
  fails the check and both exit statuses but leaves the mark of a result that
  does not rest on it);
- ``control_made_true``: the negated wrong claim of ``wrong_lr_refuted`` is made the
  right one (the run with the right LR), so its proof of the negation fails;
- ``not_a_negation``: ``wrong_lr_refuted`` is replaced by a true positive statement
  (the right LR on the same instance), which compiles but is not a negation;
- ``witness_admitted``: the proof that the witness is the gradient of its loss is
  Admitted (the refutation then rests on a witness outside the hypothesis class).

Each must turn the result red in the checker's report (:func:`kernel_checked`
and ``python -m proofs.coq_check``'s exit status), in ``python -m proofs``'s exit
status and table, and in the main job's kernel mark (exp_lr_verify).  The
untouched copy (``clean``) must be green everywhere.  The real files under
proofs/coq are never modified.  Each case compiles about 6 s of Coq.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from exp_lr_verify import report, symbolic
from exp_lr_verify.claims import Claim, Status
from proofs import coq_check, document
from proofs.__main__ import main as proofs_main
from proofs._core import ProofResult

RESULT = "general_schedule"
FILES = (
    "Vec.v",
    "Momentum.v",
    "GeneralSchedule.v",
    "Witness.v",
    "ScaleInvariance.v",
    "WitnessGradient.v",
    "Refutation.v",
)
TIMEOUT = 200.0

_MISSING = not coq_check.coq_available() or bool(coq_check.missing_libraries())
needs_coqc = pytest.mark.skipif(
    _MISSING and not os.environ.get("CI"),
    reason="coqc or Coquelicot/Flocq not installed "
    "(apt-get install coq libcoq-coquelicot libcoq-flocq)",
)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path.name, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def _admitted_second(coq: Path) -> None:
    _replace(
        coq / "Refutation.v",
        "Proof. simpl. unfold eta_ex, lam_ex. field. Qed.",
        "Proof. Admitted.",
    )


def _missing_theorem(coq: Path) -> None:
    _replace(coq / "Refutation.v", "Theorem wrong_lr_refuted :", "Theorem wrong_lr_refuted_gone :")


def _unused_admitted(coq: Path) -> None:
    with (coq / "Refutation.v").open("a", encoding="utf-8") as f:
        f.write("\nLemma unused_cheat : (1 = 2)%nat.\nProof. Admitted.\n")


def _unused_admitted_elsewhere(coq: Path) -> None:
    (coq / "Extra.v").write_text(
        "(* Extra.v -- imported by nothing. *)\nLemma unused_cheat : (1 = 2)%nat.\n"
        "Proof. Admitted.\n",
        encoding="utf-8",
    )


def _control_made_true(coq: Path) -> None:
    _replace(
        coq / "Refutation.v",
        "       fst (srun wG eta_ex (fun _ => 0) gam_ex (wone, vzero) t)\n",
        "       fst (exp_srun wG eta_ex lam_ex gam_ex wone t)\n",
    )


def _not_a_negation(coq: Path) -> None:
    _replace(coq / "Refutation.v", "Theorem wrong_lr_refuted :", "Theorem wrong_lr_old :")
    _replace(
        coq / "Refutation.v",
        "Lemma right_lr_instance (t : nat) :",
        "Theorem wrong_lr_refuted (t : nat) :",
    )


def _witness_admitted(coq: Path) -> None:
    text = (coq / "WitnessGradient.v").read_text(encoding="utf-8")
    start = text.index("Theorem witness_has_gradient")
    proof = text.index("Proof.", start)
    end = text.index("Qed.", proof) + len("Qed.")
    (coq / "WitnessGradient.v").write_text(
        text[:proof] + "Proof. Admitted." + text[end:], encoding="utf-8"
    )


CASES = {
    "clean": None,
    "admitted_second": _admitted_second,
    "missing_theorem": _missing_theorem,
    "unused_admitted": _unused_admitted,
    "unused_admitted_elsewhere": _unused_admitted_elsewhere,
    "control_made_true": _control_made_true,
    "not_a_negation": _not_a_negation,
    "witness_admitted": _witness_admitted,
}


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the files behind RESULT, with proofs.coq_check pointed at it."""
    coq = tmp_path / "coq"
    (coq / "negative").mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(coq_check.COQ_DIR / name, coq / name)
    monkeypatch.setattr(coq_check, "COQ_DIR", coq)
    monkeypatch.setattr(coq_check, "NEGATIVE_DIR", coq / "negative")
    monkeypatch.setattr(coq_check, "KERNEL_THEOREMS", {RESULT: coq_check.KERNEL_THEOREMS[RESULT]})
    monkeypatch.setattr(coq_check, "KERNEL_CHECKED", {RESULT: coq_check.KERNEL_CHECKED[RESULT]})
    monkeypatch.setattr(coq_check, "NEGATIONS", {RESULT: coq_check.NEGATIONS[RESULT]})
    return coq


@needs_coqc
@pytest.mark.parametrize("case", list(CASES))
def test_checker_turns_the_result_red(
    case: str,
    copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = _digest(Path(coq_check.__file__).resolve().parent / "coq")
    breaking = CASES[case]
    if breaking is not None:
        breaking(copy)
    green = breaking is None  # every check passes
    # An Admitted in a file no theorem of the result imports fails the check (the exit
    # statuses) but does not withdraw the mark of a result that does not rest on it.
    marked = green or case == "unused_admitted_elsewhere"

    # 1. the checker: its records, its marks, its command's exit status
    results = coq_check.check_all(timeout=TIMEOUT)
    negatives = coq_check.check_negative_controls(timeout=TIMEOUT)
    assert negatives == []  # no must-fail file: the controls are proved negations
    marks = coq_check.kernel_checked(results, negatives)
    assert (RESULT in marks) is marked, (case, results)
    # the first (main) theorem passes in every case: a mark read from it alone is wrong
    first = coq_check.KERNEL_THEOREMS[RESULT][0]
    assert next(r for r in results if (r.file, r.theorem) == first).ok
    if case == "unused_admitted_elsewhere":
        assert any(r.file == "Extra.v" and r.theorem == coq_check.SOURCE_AUDIT for r in results)
    negation = next(r for r in results if r.theorem == "wrong_lr_refuted")
    if case in ("clean", "control_made_true", "not_a_negation"):
        assert negation.ok is (case == "clean"), negation.message
    if case == "not_a_negation":
        assert "must state ~ (wrong claim)" in negation.message

    # Later steps reuse these records rather than compiling again.
    monkeypatch.setattr(coq_check, "check_all", lambda timeout=120.0: results)
    monkeypatch.setattr(
        coq_check, "check_negative_controls", lambda timeout=120.0, results_of=None: negatives
    )
    monkeypatch.setattr(coq_check, "reals_baseline", lambda timeout=60.0: ())
    assert (coq_check.main([]) == 0) is green
    capsys.readouterr()

    # 2. python -m proofs: exit status and the kernel-checked column
    out = tmp_path / "out"
    assert (proofs_main(["--out", str(out), "--only", RESULT]) == 0) is green
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(RESULT))
    assert row.split()[1] == "ok"  # the SymPy derivation itself is fine
    assert ("GeneralSchedule.v: general_schedule_equivalence" in row) is marked
    assert ("Kernel-checked" in (out / f"{RESULT}.tex").read_text(encoding="utf-8")) is marked

    # 3. the main job: its kernel status and the word in its report's table
    monkeypatch.setattr(
        document, "run_all", lambda names: [ProofResult(n, True, 0.0, steps=1) for n in names]
    )
    outcome = symbolic.check_proofs(tmp_path / "job", coq=True, pdf=False)
    assert outcome.kernel[RESULT] is (Status.PASSED if marked else Status.FAILED)
    claim = Claim("c", "claim", RESULT, symbolic=Status.PASSED, kernel=outcome.kernel[RESULT])
    assert report.table_rows([claim])[0][2] == ("checked" if marked else "FAILED")
    assert claim.ok is marked

    assert _digest(Path(coq_check.__file__).resolve().parent / "coq") == real


_TINY = """(* negative/WrongTiny.v -- a must-fail control of Li & Arora's results, for the test of
   the checker.  Corresponding SymPy module: proofs/texp.py. *)
From Coq Require Import Reals.
Open Scope R_scope.
Definition tiny_value : R := 3. (* FIX: 2. *)
Theorem wrong_tiny : tiny_value * tiny_value = 4.
Proof. unfold tiny_value. PROOF Qed.
"""


@needs_coqc
@pytest.mark.parametrize(
    ("proof", "value", "behaves"),
    [
        ("field.", "3", True),  # a false equation: rejected for the stated reason
        ("rewrite Rmult_1_l. field.", "3", False),  # a broken script, not a false equation
        ("field.", "2", False),  # the statement made true: coqc accepts it
    ],
)
def test_a_must_fail_control_needs_a_false_equation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proof: str, value: str, behaves: bool
) -> None:
    negative = tmp_path / "coq" / "negative"
    negative.mkdir(parents=True)
    text = _TINY.replace("PROOF", proof).replace(":= 3. (*", f":= {value}. (*")
    (negative / "WrongTiny.v").write_text(text, encoding="utf-8")
    monkeypatch.setattr(coq_check, "COQ_DIR", tmp_path / "coq")
    monkeypatch.setattr(coq_check, "NEGATIVE_DIR", negative)
    monkeypatch.setattr(coq_check, "NEGATIVE_CONTROLS", {"WrongTiny.v": "wrong_tiny"})
    monkeypatch.setattr(coq_check, "NEGATIVE_RESULTS", {"WrongTiny.v": "texp"})
    [result] = coq_check.check_negative_controls(timeout=TIMEOUT)
    assert result.ok is behaves, result.message
    if behaves:
        assert "a false equation" in result.message
