"""The main job (``exp-lr-verify``) in its reduced mode: exit status, table and report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpu_validation import verify


def test_reduced_main_job_verifies_every_claim(tmp_path, capsys):
    rc = verify.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "ALL CLAIMS VERIFIED" in out
    report = (tmp_path / "report.md").read_text()
    for header in verify.HEADER:
        assert header in report
    record = json.loads((tmp_path / "verify.json").read_text())
    claims = {c["key"]: c for c in record["claims"]}
    for key in ("lemmas", "no_momentum", "closed_form", "general", "texp", "reverse", "rescaling", "toy"):
        assert claims[key]["ok"], claims[key]
        assert claims[key]["symbolic"] == "checked"
        assert claims[key]["numeric"] == "verified"
    assert claims["general"]["worst_error"] < 1e-10
    assert (tmp_path / "proofs" / "proofs.tex").exists()
    assert (tmp_path / "toy" / "toy_trajectories.png").exists()
    assert "| claim of the paper |" in report


def test_a_failing_claim_fails_the_job(tmp_path, monkeypatch, capsys):
    """Negative control: a broken numeric check must turn into exit status 1."""
    passing = (1e-16, 1e-16, 0.0, "stand-in")
    for name in ("check_no_momentum", "check_closed_form", "check_texp"):
        monkeypatch.setattr(verify, name, lambda cfg: passing)
    monkeypatch.setattr(verify, "check_lemmas", lambda cfg: (1e-16, "stand-in"))
    monkeypatch.setattr(verify, "check_rescaling", lambda cfg: (0.0, "stand-in"))
    monkeypatch.setattr(verify, "_toy", lambda cfg, out, extras: (0.0, "stand-in"))
    monkeypatch.setattr(verify, "check_reverse", lambda cfg: (1e-3, "deliberately wrong"))
    monkeypatch.setattr(verify, "check_general", lambda cfg: (2e-3, 1e-16, 1e12, "deliberately wrong"))
    rc = verify.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "SOME CLAIMS FAILED" in out


def test_help_and_bad_arguments(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gpu_validation.verify", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for flag in ("--out", "--data", "--gpu", "--quick", "--no-coq", "--no-smoke"):
        assert flag in r.stdout
    with pytest.raises(SystemExit) as exc:
        verify.main(["--seed", "-1", "--out", str(tmp_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        verify.main(["--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path)])
