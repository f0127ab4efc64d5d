"""A regular (non-editable) install carries everything the main job reads.

The wheel is built from this checkout (``pip wheel . --no-deps --no-build-isolation``) and
unpacked into a temporary folder that replaces the checkout on ``sys.path`` (PYTHONPATH
comes before the editable install's finder; each test asserts the packages load from the
wheel).  The main job then runs from another folder:

- ``test_wheel_carries_every_runtime_file``: every tracked Python file of the five packages
  and every Coq source (``proofs/coq/*.v``) is in the wheel; the Coq checker, imported from
  the wheel, finds all the files its registry names.
- ``test_installed_main_job_runs_from_another_folder`` (``--quick``, about 30 s);
- ``test_installed_main_job_checks_every_claim`` (slow): Coq included, every row's kernel
  column as in the editable install, no claim failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from proofs import coq_check

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("equivalence", "proofs", "toy", "gpu_validation", "exp_lr_verify")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, unpacked."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation"]
        + ["-q", "-w", str(tmp)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp.glob("*.whl")
    out = tmp / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(out)
    return out


def _run(site: Path, cwd: Path, *code_or_module: str, timeout: float) -> str:
    env = {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, *code_or_module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _tracked(pattern: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", pattern], cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_wheel_carries_every_runtime_file(site: Path, tmp_path: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    wanted = [
        f
        for package in PACKAGES
        for f in _tracked(f"{package}/*.py") + _tracked(f"{package}/**/*.py")
    ] + _tracked("proofs/coq/*.v")
    missing = sorted({f for f in wanted if not (site / f).is_file()})
    assert missing == []
    code = (
        "import proofs.coq_check as c, pathlib, json; "
        "names = {f for f, _ in c.all_theorems()}; "
        "print(json.dumps([str(c.COQ_DIR), sorted(n for n in names if not (c.COQ_DIR / n).is_file())]))"
    )
    coq_dir, absent = json.loads(_run(site, tmp_path, "-c", code, timeout=120))
    assert Path(coq_dir).is_relative_to(site) and absent == []


def test_installed_main_job_runs_from_another_folder(site: Path, tmp_path: Path) -> None:
    out = _run(
        site,
        tmp_path,
        "-m",
        "exp_lr_verify",
        "--quick",
        "--out",
        str(tmp_path / "v"),
        "--no-progress",
        timeout=600,
    )
    assert "SOME CLAIMS FAILED" not in out
    record = json.loads((tmp_path / "v" / "verify.json").read_text())
    assert all(c["ok"] for c in record["claims"])
    assert (tmp_path / "v" / "proofs" / "proofs.tex").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    not coq_check.coq_available() and not os.environ.get("CI"), reason="coqc not installed"
)
def test_installed_main_job_checks_every_claim(site: Path, tmp_path: Path) -> None:
    """Coq (its proved negations included) from the installed package, from another folder."""
    out = _run(
        site,
        tmp_path,
        "-m",
        "exp_lr_verify",
        "--no-smoke",
        "--no-pdf",
        "--out",
        str(tmp_path / "v"),
        "--no-progress",
        timeout=1200,
    )
    assert "SOME CLAIMS FAILED" not in out
    claims = json.loads((tmp_path / "v" / "verify.json").read_text())["claims"]
    from exp_lr_verify.claims import CLAIMS, CLAUSES

    keys = {c["key"] for c in claims}
    assert {k for k, _, _ in CLAIMS} <= keys
    for c in claims:
        cites_coq = any(cl.coq for cl in CLAUSES.get(c["key"], ()))
        assert c["kernel"] == ("passed" if cites_coq else "-"), c
