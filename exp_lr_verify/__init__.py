"""The main job: every claim of Li & Arora (ICLR 2020) checked end to end, with a report.

``exp-lr-verify`` (or ``python -m exp_lr_verify``) runs, in order: the SymPy derivations of
every mapping and the Coq kernel check (``proofs``), a numeric check of each theorem on small
normalised networks (``equivalence.lockstep``: the stock recipe against its converted twin,
judged by ``equivalence.noise_floor``, the criterion of the property suite), the toy
counterexample (``toy``) and the CIFAR-10 validation (``gpu_validation``); then prints a table
and writes ``OUT/report.md`` and ``OUT/verify.json``. Exit status 1 if any claim fails.

This package sits above the four it orchestrates and calls them through their Python APIs;
none of them imports it. Modules: :mod:`.claims` (the typed claim records), :mod:`.config`,
:mod:`.numeric` (the numeric checks), :mod:`.symbolic` (proofs and Coq), :mod:`.toy_check`,
:mod:`.cifar` (CIFAR-10), :mod:`.job` (the run), :mod:`.report` (table, Markdown, JSON),
:mod:`.cli` (the command line).
"""

from __future__ import annotations

from .claims import Claim, Status
from .cli import main
from .config import VerifyConfig
from .job import run

__all__ = ["Claim", "Status", "VerifyConfig", "main", "run"]
