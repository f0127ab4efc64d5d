"""The main job (``exp-lr-verify``, ``python -m exp_lr_verify``): exit status, table and report.

Its training claims are the lockstep harness's verdicts (``equivalence.lockstep.verify``,
judged by ``equivalence.noise_floor.judge``), the criterion the property suite applies
(tests/test_properties_equivalence.py); the reduced mode runs shorter runs and fewer
noise-floor twins (a lower floor: stricter), never a weaker bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import equivalence
import exp_lr_verify
from equivalence.optim import sgd_variants
from equivalence.verify import lockstep
from equivalence.verify.noise_floor import Status as NoiseStatus
from exp_lr_verify import job, numeric, optimizers, report
from exp_lr_verify.claims import CLAIMS, Status
from exp_lr_verify.numeric import NumericResult
from exp_lr_verify.symbolic import ProofsOutcome
from proofs._core import MODULE_NAMES

pytestmark = pytest.mark.usefixtures("single_thread")


def test_reduced_main_job_verifies_every_claim(tmp_path, capsys):
    rc = exp_lr_verify.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    # --quick skips Coq and the smoke run: the last line says so rather than "all verified"
    assert "ALL CLAIMS VERIFIED" not in out
    assert "skipped (Coq check skipped by --quick or --no-coq" in out
    assert "CIFAR-10 smoke skipped by --quick or --no-smoke" in out
    text = (tmp_path / "report.md").read_text()
    for header in report.HEADER:
        assert header in text
    record = json.loads((tmp_path / "verify.json").read_text())
    claims = {c["key"]: c for c in record["claims"]}
    for key in (
        "lemmas",
        "no_momentum",
        "closed_form",
        "general",
        "texp",
        "reverse",
        "rescaling",
        "toy",
    ):
        assert claims[key]["ok"], claims[key]
        assert claims[key]["symbolic"] == Status.PASSED.value
        assert claims[key]["numeric"] == Status.PASSED.value
    assert claims["general"]["worst_error"] < 1e-10
    assert claims["cifar_smoke"]["numeric"] == Status.SKIPPED.value  # --quick: no smoke
    assert (tmp_path / "proofs" / "proofs.tex").exists()
    assert (tmp_path / "toy" / "toy_trajectories.png").exists()
    assert (tmp_path / "schedule.png").exists()
    assert "| claim of the paper |" in text


def _stand_ins(monkeypatch, failing: str | None) -> None:
    """Every check replaced by a passing stand-in (``failing``: one that fails)."""

    def result(key):
        status = Status.FAILED if key == failing else Status.PASSED
        return lambda cfg: NumericResult(
            status, 1e-3 if status is Status.FAILED else 1e-16, "stand-in"
        )

    monkeypatch.setattr(job, "CHECKS", {k: result(k) for k in job.CHECKS})
    monkeypatch.setattr(job, "check_toy", lambda out: result("toy")(None))
    bad = next((proof for key, _, proof in CLAIMS if key == failing), None)
    outcome = ProofsOutcome(
        symbolic={p: Status.FAILED if p == bad else Status.PASSED for p in MODULE_NAMES},
        kernel={},
        seconds={},
        errors={},
        coq_status="stand-in",
        pdf_note=None,
        total_seconds=0.0,
    )
    monkeypatch.setattr(job, "check_proofs", lambda out, coq, pdf: outcome)


@pytest.mark.parametrize("failing", ["general", "reverse", "toy"])
def test_a_failing_claim_fails_the_job(tmp_path, monkeypatch, capsys, failing):
    """Negative control: one failed check turns into exit status 1 and a FAILED row."""
    _stand_ins(monkeypatch, failing)
    rc = exp_lr_verify.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "SOME CLAIMS FAILED" in out
    record = json.loads((tmp_path / "verify.json").read_text())
    bad = [c["key"] for c in record["claims"] if not c["ok"]]
    assert bad == [failing]


def test_stand_ins_pass_and_a_crashing_check_fails(tmp_path, monkeypatch, capsys):
    """The stand-ins alone pass (so the test above tests the failure); a crash is a failure."""
    _stand_ins(monkeypatch, None)
    assert exp_lr_verify.main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 0

    def crash(cfg):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(job, "CHECKS", {**job.CHECKS, "texp": crash})
    assert exp_lr_verify.main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 1
    record = json.loads((tmp_path / "verify.json").read_text())
    texp = next(c for c in record["claims"] if c["key"] == "texp")
    assert texp["numeric"] == "failed" and "deliberately broken" in texp["detail"]
    assert capsys.readouterr().out.count("FAILED") >= 1


def test_lockstep_claims_fail_on_a_wrong_recipe(monkeypatch):
    """Negative control of the numeric check itself: a twin converting the wrong recipe fails."""
    real = lockstep.converted

    def wrong(*args, **kw):  # the converted twin of a 2x larger weight decay
        make = real(*args, **kw)
        return lambda m, r, inv, steps: make(
            m, replace(r, weight_decay=2 * r.weight_decay), inv, steps
        )

    monkeypatch.setattr(lockstep, "converted", wrong)
    res = numeric.check_closed_form(exp_lr_verify.VerifyConfig(quick=True, jitter_twins=1))
    assert res.status is Status.FAILED
    assert all(v.status is NoiseStatus.FAILED for v in res.verdicts)
    assert res.worst_error > 1e-6


@pytest.mark.parametrize("row", ["adamw", "dampening", "nesterov"])
def test_optimizer_table_rows_fail_on_a_wrong_recipe(monkeypatch, row):
    """The table's PyTorch rows: a twin converting a 2x larger weight decay fails the check."""
    real = lockstep.converted

    def wrong(*args, **kw):
        make = real(*args, **kw)
        return lambda m, r, inv, steps: make(
            m, replace(r, weight_decay=2 * r.weight_decay), inv, steps
        )

    monkeypatch.setattr(lockstep, "converted", wrong)
    res = optimizers.TABLE_CHECKS[row](exp_lr_verify.VerifyConfig(quick=True, jitter_twins=1))
    assert res.status is Status.FAILED
    assert res.worst_error > 1e-6


def test_lr_in_velocity_row_fails_with_the_momentum_unscheduled(monkeypatch):
    """The numpy row: with γ̃ left at γ (the LR schedule alone) it fails."""
    real = sgd_variants.keras_equivalent_schedule

    def lr_only(lrs, wd, mom):
        eta, gam, c = real(lrs, wd, mom)
        return eta, np.full_like(gam, mom), c

    monkeypatch.setattr(sgd_variants, "keras_equivalent_schedule", lr_only)
    res = optimizers.check_lr_in_velocity(exp_lr_verify.VerifyConfig(quick=True))
    assert res.status is Status.FAILED and res.worst_error > 1e-6


def test_adam_l2_row_fails_if_convert_adamw_accepts_it(monkeypatch):
    """The refuted row passes only while the refusal holds."""
    monkeypatch.setattr(
        equivalence, "convert_adamw", lambda *a, **k: None
    )  # a converter that accepts Adam + L2
    res = optimizers.check_adam_l2(exp_lr_verify.VerifyConfig(quick=True))
    assert res.status is Status.FAILED and "does NOT refuse" in res.detail


def test_help_and_bad_arguments(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "exp_lr_verify", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    for flag in ("--out", "--data", "--gpu", "--quick", "--no-coq", "--no-smoke"):
        assert flag in r.stdout
    with pytest.raises(SystemExit) as exc:
        exp_lr_verify.main(["--seed", "-1", "--out", str(tmp_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        exp_lr_verify.main(["--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="seed = -1"):
        exp_lr_verify.VerifyConfig(seed=-1)


def test_a_failing_further_result_fails_the_job(tmp_path, monkeypatch, capsys):
    """A registered result no clause cites (a new proof) still counts: it gets a row of its own,
    and failing, it fails the job."""
    _stand_ins(monkeypatch, None)
    passing = job.check_proofs(tmp_path, coq=False, pdf=False)
    outcome = replace(
        passing,
        symbolic={**passing.symbolic, "new_result": Status.FAILED},
        errors={"new_result": "ProofError: deliberately wrong"},
    )
    monkeypatch.setattr(job, "check_proofs", lambda out, coq, pdf: outcome)
    assert exp_lr_verify.main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 1
    record = json.loads((tmp_path / "verify.json").read_text())
    bad = [c for c in record["claims"] if not c["ok"]]
    assert [c["key"] for c in bad] == ["new_result"]
    assert "deliberately wrong" in bad[0]["detail"]
    capsys.readouterr()


def _claims(**statuses: Status) -> list:
    from exp_lr_verify.claims import Claim

    out = [
        Claim(k, t, p, symbolic=Status.PASSED, kernel=Status.PASSED, numeric=Status.PASSED)
        for k, t, p in CLAIMS
    ]
    return [
        replace(c, numeric=statuses[c.key], detail="no CIFAR-10 data found")
        if c.key in statuses
        else c
        for c in out
    ]


def test_the_last_line_names_a_skipped_claim_and_its_remedy():
    from exp_lr_verify.cli import verdict

    assert verdict(_claims()) == "ALL CLAIMS VERIFIED"
    line = verdict(_claims(cifar_smoke=Status.SKIPPED))
    assert line == (
        f"{len(CLAIMS) - 1} verified, 1 skipped (no CIFAR-10: pass --data PATH or --download)"
    )
    # negative control: a failed claim is a failure whatever else was skipped
    assert verdict(_claims(cifar_smoke=Status.SKIPPED, texp=Status.FAILED)).startswith(
        "SOME CLAIMS FAILED (texp)"
    )


def test_download_flag_fetches_into_the_given_folder(tmp_path, monkeypatch):
    from exp_lr_verify import cli
    from gpu_validation import data

    calls = []

    def fake(root, progress=True):
        calls.append(root)
        (tmp_path / "d" / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
        return tmp_path / "d"

    monkeypatch.setattr(data, "download_cifar10", fake)
    cfg = cli.parse_config(["--download", "--data", str(tmp_path / "d"), "--no-progress"])
    assert calls == [str(tmp_path / "d")] and cfg.data == str(tmp_path / "d")
    with pytest.raises(SystemExit):  # a file is not a download folder
        (tmp_path / "f.npz").write_bytes(b"")
        cli.parse_config(["--download", "--data", str(tmp_path / "f.npz")])
