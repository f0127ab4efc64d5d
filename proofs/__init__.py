"""SymPy derivations of Li & Arora's exponential-LR equivalence, checked and printed as LaTeX.

One module per result (see :data:`MODULE_NAMES`); each states its assumptions,
derives the result with SymPy (z3 for sign and bound side conditions), checks
every step, carries a negative control that must fail, and prints itself as
LaTeX. ``python -m proofs --out DIR [--pdf]`` writes the documents;
:func:`run_all` is the Python entry point for a project-wide verify command.
"""

from proofs._core import MODULE_NAMES, ProofError, ProofResult, Step, load, run_all, run_one

__all__ = ["MODULE_NAMES", "ProofError", "ProofResult", "Step", "load", "run_all", "run_one"]
