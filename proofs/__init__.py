"""SymPy derivations of Li & Arora's exponential-LR equivalence, checked and printed as LaTeX.

One record (:class:`Proof`) per result, registered by module name in
:data:`MODULE_NAMES`; each states its assumptions, derives the result with SymPy
(z3 for sign and bound side conditions), checks every step, carries a negative
control that must fail, and prints itself as LaTeX. :func:`get` returns a
result's record, :func:`run_all` checks them all, :func:`build` writes the
documents (``python -m proofs --out DIR [--pdf]`` on the command line).
"""

from proofs._core import (
    MODULE_NAMES,
    Proof,
    ProofError,
    ProofResult,
    Step,
    get,
    registry,
    run_all,
    run_one,
)
from proofs.document import Config, Report, build

__all__ = [
    "MODULE_NAMES",
    "Config",
    "Proof",
    "ProofError",
    "ProofResult",
    "Report",
    "Step",
    "build",
    "get",
    "registry",
    "run_all",
    "run_one",
]
