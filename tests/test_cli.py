"""``python -m equivalence schedule``: output formats, the paper's numbers, bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import equivalence as eq
from equivalence.cli import main


def run_cli(capsys, *args):
    rc = main(["schedule", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_paper_recipe_growth_per_epoch(capsys):
    rc, out, err = run_cli(capsys)
    assert rc == 0
    assert "x1.48123 per epoch" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 160
    assert {"step", "lr", "equivalent_lr"} <= set(rows[0])
    # measured growth between two first-phase epochs, from the CSV itself
    g = float(rows[60]["equivalent_lr"]) / float(rows[59]["equivalent_lr"])
    assert g == pytest.approx(1.48123, abs=5e-6)
    # log10 η̃ just before and after the first cut of the general form
    assert float(rows[79]["log10_equivalent_lr"]) > 12.3
    assert float(rows[80]["lr"]) == pytest.approx(0.01)


def test_per_step_csv_matches_library(capsys):
    rc, out, _ = run_cli(
        capsys,
        "--epochs",
        "3",
        "--steps-per-epoch",
        "10",
        "--milestones",
        "1",
        "2",
        "--per",
        "step",
    )
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["step"]) for r in rows] == list(range(30))
    lrs = np.repeat([0.1, 0.01, 0.001], 10)
    expect = eq.equivalent_lrs(lrs, 5e-4, 0.9)
    got = np.array([float(r["equivalent_lr"]) for r in rows])
    assert np.max(np.abs(got / expect - 1)) < 1e-15


def test_json_and_plot(capsys, tmp_path):
    png = tmp_path / "s.png"
    rc, out, _ = run_cli(
        capsys, "--format", "json", "--cosine", "--warmup-epochs", "5", "--plot", str(png)
    )
    assert rc == 0
    doc = json.loads(out)
    assert doc["config"]["cosine"] is True and len(doc["rows"]) == 160
    assert doc["summary"]["closed_form_growth_per_epoch"] == pytest.approx(1.48123, abs=5e-6)
    assert png.stat().st_size > 10_000


def test_huge_values_printed_in_log_form(capsys):
    rc, out, _ = run_cli(capsys, "--epochs", "2600", "--milestones")
    assert rc == 0
    last = list(csv.DictReader(io.StringIO(out)))[-1]
    assert "e+" in last["equivalent_lr"] and math.isinf(float("inf"))
    mant, exp = last["equivalent_lr"].split("e+")
    assert int(exp) > 308
    assert float(last["log10_equivalent_lr"]) == pytest.approx(
        int(exp) + math.log10(float(mant)), abs=1e-9
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "0"], "lr = 0 is outside the valid range 0 < lr < inf"),
        (["--lr=-1"], "lr = -1 is outside the valid range"),
        (["--lr", "nan"], "lr = nan is outside the valid range"),
        (["--momentum", "1"], "momentum = 1 is outside the valid range 0 <= momentum < 1"),
        (["--weight-decay=-1e-4"], "weight_decay = -1e-4 is outside the valid range"),
        (["--epochs", "0"], "epochs = 0 is outside the valid range epochs >= 1"),
        (
            [
                "--lr",
                "1",
                "--weight-decay",
                "2",
                "--momentum",
                "0",
                "--epochs",
                "2",
                "--milestones",
            ],
            "reaches zero or goes negative at step 1",
        ),
        (["--form", "closed_form"], "needs a constant lr"),
        (["--warmup-epochs", "200"], "warmup_epochs = 200 must be below epochs = 160"),
    ],
)
def test_bad_input_exits_with_a_clear_message(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["schedule", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_and_module_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "equivalence", "schedule", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for flag in (
        "--lr",
        "--weight-decay",
        "--momentum",
        "--milestones",
        "--gamma",
        "--steps-per-epoch",
        "--epochs",
        "--warmup-epochs",
        "--cosine",
        "--plot",
        "--format",
        "--per",
    ):
        assert flag in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--weight-decay", "-1e-4"],
            "weight_decay = -1e-4 is outside the valid range 0 <= weight_decay < inf",
        ),
        (["--lr", "-0.1"], "lr = -0.1 is outside the valid range 0 < lr < inf"),
        (["--momentum", "-.5"], "momentum = -.5 is outside the valid range 0 <= momentum < 1"),
        (["--milestones", "-5"], "milestones = -5 is outside the valid range milestones >= 0"),
        (["--epochs", "-3"], "epochs = -3 is outside the valid range epochs >= 1"),
    ],
)
def test_negative_values_in_the_separate_spelling_get_the_valid_range(capsys, args, message):
    """``--opt -1e-4`` (argparse alone: 'expected one argument') is parsed and refused with the range."""
    with pytest.raises(SystemExit) as exc:
        main(["schedule", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "expected one argument" not in err


def test_missing_output_folders_are_created(capsys, tmp_path):
    out = tmp_path / "new" / "deeper" / "s.csv"
    png = tmp_path / "plots" / "s.png"
    rc, _, _ = run_cli(
        capsys, "--epochs", "3", "--steps-per-epoch", "5", "-o", str(out), "--plot", str(png)
    )
    assert rc == 0
    assert len(out.read_text().splitlines()) == 4 and png.stat().st_size > 10_000


def test_output_folder_that_cannot_be_created_is_a_clear_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["schedule", "--epochs", "2", "-o", str(blocker / "sub" / "s.csv")])
    assert exc.value.code == 2
    assert f"cannot create the output folder {str(blocker / 'sub')!r}" in capsys.readouterr().err


def test_only_the_schedule_subcommand():
    """The CLI has no optional, silently missing subcommands."""
    from equivalence.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == ["schedule"]
