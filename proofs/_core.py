"""Shared machinery of the proofs: steps, checking, refutation, z3 bridge, LaTeX, registry.

Every proof module of this package has the same shape:

* a docstring with the statement and the name of the paper's result it proves;
* ``NAME``, ``RESULT`` (the paper's name for the result), ``STATEMENT`` and
  ``ASSUMPTIONS`` (LaTeX strings) and symbols created with their assumptions
  (``positive=True``);
* ``derive()`` -> tuple of :class:`Step` (name, lhs, rhs, justification);
* ``negative_control()`` -> a :class:`Step` holding a *false* claim, and
  ``NEGATIVE_WITNESS``, the exact point at which :func:`refute` shows it false;
* last, ``PROOF = Proof(...)``: the record of the result.

The record is all the rest of the package needs: :meth:`Proof.verify` checks every
step (or raises :class:`ProofError` naming the failing one),
:meth:`Proof.check_negative_control` proves the negative control false,
:meth:`Proof.to_latex` prints the result as a LaTeX section in which every
equation names the module (and the git commit) that produced it. The registry
(:data:`MODULE_NAMES`, :func:`get`, :func:`run_all`) finds the records, and the
command line (``python -m proofs``) is produced from them.

Vectors (parameters, momentum buffers, gradients) are noncommutative SymPy
symbols: every expression the proofs build is linear in them with commutative
(scalar) coefficients, so two vector expressions are equal iff the scalar
coefficients of every vector atom agree. :func:`vector_coefficients` enforces
that linearity, so a proof cannot silently multiply two vectors.
"""

from __future__ import annotations

import functools
import importlib
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import sympy as sp
import z3
from sympy.core.function import AppliedUndef

#: The proof modules, in dependency order. Other code refers to these names.
MODULE_NAMES: tuple[str, ...] = (
    "scale_invariance",
    "no_momentum",
    "closed_form",
    "general_schedule",
    "texp",
    "reverse_map",
    "rescaling",
    "toy_lemma",
    "normaliser_eps",
    "mid_run",
    "kappa_form",
    "adamw",
    "dampening",
    "nesterov",
    "lr_in_velocity",
    "adam_l2",
    "equilibrium",
)


class ProofError(AssertionError):
    """A proof step (or a negative control) did not check.

    ``module`` and ``step`` name where; the message says what failed.
    """

    def __init__(self, module: str, step: str, message: str) -> None:
        super().__init__(f"{module}: step '{step}': {message}")
        self.module = module
        self.step = step


@dataclass(frozen=True)
class Step:
    """One step of a derivation: ``lhs rel rhs`` because ``justification``.

    ``check`` (optional) replaces the default check (exact equality of ``lhs`` and
    ``rhs`` after targeted simplification); it must return ``True`` when the step
    holds. ``method`` names the engine that discharges the step ("sympy", "z3",
    "sympy+z3", "exact"), and is printed in the LaTeX.
    """

    name: str
    lhs: Any
    rhs: Any
    justification: str
    rel: str = "="
    method: str = "sympy"
    check: Callable[[], bool] | None = field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------------------
# Symbols with LaTeX names
# ---------------------------------------------------------------------------

#: Symbol -> LaTeX, used by :func:`tex` (SymPy's ``symbol_names``).
LATEX_NAMES: dict[sp.Symbol, str] = {}


def sym(name: str, latex: str | None = None, **assumptions: Any) -> sp.Symbol:
    """A scalar symbol with assumptions and (optionally) a LaTeX name."""
    s = sp.Symbol(name, **assumptions)
    if latex is not None:
        LATEX_NAMES[s] = latex
    return s


def vec(name: str, latex: str | None = None) -> sp.Symbol:
    """An abstract vector (a noncommutative symbol) of any dimension."""
    s = sp.Symbol(name, commutative=False)
    if latex is not None:
        LATEX_NAMES[s] = latex
    return s


def tex(expr: Any) -> str:
    """LaTeX of a SymPy object with the project's symbol names."""
    if isinstance(expr, str):
        return expr
    return sp.latex(expr, symbol_names=LATEX_NAMES)


# ---------------------------------------------------------------------------
# Exact checks
# ---------------------------------------------------------------------------


def vector_coefficients(expr: Any) -> dict[Any, sp.Expr]:
    """Split an expression linear in vector atoms into {atom: scalar coefficient}.

    Scalar terms (no vector) are keyed by ``1``. Raises ``ValueError`` when a
    term is a product of two vectors (the proofs never need one).
    """
    out: dict[Any, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        if term == 0:
            continue
        c, nc = term.args_cnc()
        if len(nc) > 1:
            raise ValueError(f"term {term} is not linear in the vectors")
        key = nc[0] if nc else sp.S.One
        out[key] = out.get(key, sp.S.Zero) + sp.Mul(*c)
    return out


def scalar_zero(expr: sp.Expr) -> bool:
    """Exact zero test of a rational function (``together`` then ``cancel``)."""
    e = sp.cancel(sp.together(sp.expand(expr)))
    return e == 0


def is_zero(expr: Any) -> bool:
    """Exact zero test for scalars, matrices and expressions linear in vectors."""
    if isinstance(expr, sp.MatrixBase):
        return all(is_zero(e) for e in expr)
    expr = sp.sympify(expr)
    if expr.is_commutative:
        return scalar_zero(expr)
    return all(scalar_zero(c) for c in vector_coefficients(expr).values())


def equal(lhs: Any, rhs: Any) -> bool:
    """Exact equality of two SymPy objects (see :func:`is_zero`)."""
    if isinstance(lhs, (sp.Tuple, tuple)) or isinstance(rhs, (sp.Tuple, tuple)):
        return len(lhs) == len(rhs) and all(equal(a, b) for a, b in zip(lhs, rhs))
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        return is_zero(sp.Matrix(lhs) - sp.Matrix(rhs))
    return is_zero(sp.sympify(lhs) - sp.sympify(rhs))


def zero_modulo(expr: sp.Expr, relations: Mapping[sp.Symbol, sp.Expr]) -> bool:
    """Is the numerator of ``expr`` zero modulo polynomial relations ``x = poly``?

    ``relations`` maps a symbol x to a polynomial p with the side relation
    ``x**d`` eliminated by repeated substitution of ``x**2`` etc. Used for a root
    α of a quadratic (``α**2 = b α - γ``) and for ``r = sqrt(S)`` (``r**2 = S``):
    the numerator is reduced by polynomial remainder with respect to
    ``x**2 - p`` for each relation.
    """
    # The numerator of ``together`` vanishing is enough: denominators are nonzero.
    num = sp.expand(sp.numer(sp.together(expr)))
    for x, p in relations.items():
        num = sp.rem(num, x**2 - p, x)
        num = sp.expand(num)
    return num == 0


def apply_homogeneity(expr: Any, func: sp.FunctionClass, degree: int) -> Any:
    """Rewrite ``func(k*x) -> k**degree * func(x)`` for every *positive* scalar k.

    This is how the proofs use a functional equation that SymPy cannot reason
    from: e.g. for a scale-invariant loss the gradient G = ∇L is homogeneous of
    degree -1, so ``G(θ/c) -> c G(θ)``. The rewrite refuses (ValueError) when the
    scalar is not known to be positive from the symbols' assumptions, because
    the identity is only true for c > 0.
    """

    def is_target(e: Any) -> bool:
        return isinstance(e, AppliedUndef) and e.func == func

    def rewrite(e: Any) -> Any:
        (arg,) = e.args
        arg = sp.expand(arg)
        c, nc = arg.args_cnc()
        if len(nc) != 1:
            raise ValueError(f"{func}({arg}): argument is not a scalar times one vector")
        k = sp.Mul(*c)
        if k == 1:
            return e
        if not k.is_positive:
            raise ValueError(f"{func}({arg}): scalar {k} is not known to be positive")
        return k**degree * func(nc[0])

    return sp.sympify(expr).replace(is_target, rewrite)


# ---------------------------------------------------------------------------
# z3 bridge (nonlinear real arithmetic)
# ---------------------------------------------------------------------------


def to_z3(expr: Any, env: dict[sp.Symbol, Any]) -> Any:
    """Translate a polynomial/rational SymPy expression or relation to z3."""
    expr = sp.sympify(expr)
    if isinstance(expr, sp.Symbol):
        if expr not in env:
            env[expr] = z3.Real(expr.name)
        return env[expr]
    if expr is sp.true or expr is sp.false:
        return z3.BoolVal(bool(expr))
    if expr.is_Rational:
        return z3.RealVal(f"{expr.p}/{expr.q}")
    if isinstance(expr, sp.Add):
        return z3.Sum(*[to_z3(a, env) for a in expr.args])
    if isinstance(expr, sp.Mul):
        out = to_z3(expr.args[0], env)
        for a in expr.args[1:]:
            out = out * to_z3(a, env)
        return out
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer:
        n = int(expr.exp)
        base = to_z3(expr.base, env)
        if n == 0:
            return z3.RealVal(1)
        p = base
        for _ in range(abs(n) - 1):
            p = p * base
        return p if n > 0 else 1 / p
    rels = {
        sp.StrictLessThan: lambda a, b: a < b,
        sp.LessThan: lambda a, b: a <= b,
        sp.StrictGreaterThan: lambda a, b: a > b,
        sp.GreaterThan: lambda a, b: a >= b,
        sp.Equality: lambda a, b: a == b,
        sp.Unequality: lambda a, b: a != b,
    }
    for cls, op in rels.items():
        if isinstance(expr, cls):
            return op(to_z3(expr.lhs, env), to_z3(expr.rhs, env))
    if isinstance(expr, sp.And):
        return z3.And(*[to_z3(a, env) for a in expr.args])
    if isinstance(expr, sp.Or):
        return z3.Or(*[to_z3(a, env) for a in expr.args])
    if isinstance(expr, sp.Not):
        return z3.Not(to_z3(expr.args[0], env))
    if isinstance(expr, sp.Implies):
        return z3.Implies(to_z3(expr.args[0], env), to_z3(expr.args[1], env))
    raise ValueError(f"cannot translate {expr!r} to z3")


def z3_prove(hypotheses: Iterable[Any], goal: Any, timeout_ms: int = 20000) -> bool:
    """True iff z3 shows ``hypotheses => goal`` over the reals (nlsat).

    Returns False on a counterexample; raises ``RuntimeError`` when z3 answers
    unknown (a proof that is neither found nor refuted is not a proof).
    """
    env: dict[sp.Symbol, Any] = {}
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    for h in hypotheses:
        s.add(to_z3(h, env))
    s.add(z3.Not(to_z3(goal, env)))
    r = s.check()
    if r == z3.unsat:
        return True
    if r == z3.sat:
        return False
    raise RuntimeError(f"z3 returned unknown for goal {goal}")


# ---------------------------------------------------------------------------
# Verification and refutation
# ---------------------------------------------------------------------------


def check_step(module: str, step: Step) -> None:
    """Raise :class:`ProofError` unless ``step`` holds."""
    try:
        ok = step.check() if step.check is not None else equal(step.lhs, step.rhs)
    except ProofError:
        raise
    except Exception as exc:  # a check that cannot run is a failed check
        raise ProofError(module, step.name, f"check raised {type(exc).__name__}: {exc}") from exc
    if not ok:
        raise ProofError(module, step.name, f"does not hold: {step.lhs} {step.rel} {step.rhs}")


def verify_steps(module: str, steps: Iterable[Step]) -> tuple[Step, ...]:
    """Check every step in order; return them, or raise naming the first failure."""
    steps = tuple(steps)
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ProofError(module, "<derive>", "step names are not unique")
    for s in steps:
        check_step(module, s)
    return steps


def refute(module: str, claim: Step, witness: Mapping[sp.Symbol, Any] | None = None) -> str:
    """Show that a false claim is false; return a one-line description of how.

    With a ``check``: the check must return False. Otherwise ``lhs - rhs`` is
    evaluated exactly at ``witness`` (positive rationals chosen by the module to
    satisfy its assumptions); some vector coefficient must be a nonzero number.
    Raises :class:`ProofError` if the claim cannot be refuted.
    """
    if claim.check is not None:
        if claim.check():
            raise ProofError(module, claim.name, "negative control unexpectedly holds")
        return f"{claim.name}: check fails as it must ({claim.method})"
    diff = (
        sp.sympify(claim.lhs) - sp.sympify(claim.rhs)
        if not isinstance(claim.lhs, sp.MatrixBase)
        else sp.Matrix(claim.lhs) - sp.Matrix(claim.rhs)
    )
    if witness is None:
        if is_zero(diff):
            raise ProofError(module, claim.name, "negative control unexpectedly holds")
        return f"{claim.name}: not identically zero"
    entries = list(diff) if isinstance(diff, sp.MatrixBase) else [diff]
    for e in entries:
        coeffs = vector_coefficients(e) if not e.is_commutative else {1: e}
        for atom, c in coeffs.items():
            val = sp.cancel(sp.together(c.subs(witness)))
            if val.is_number and val != 0:
                return f"{claim.name}: coefficient of {atom} is {val} != 0 at {dict(witness)}"
    raise ProofError(module, claim.name, f"no nonzero coefficient at witness {dict(witness)}")


# ---------------------------------------------------------------------------
# LaTeX
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """Short hash of HEAD of the repository holding this package, or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    h = out.stdout.strip()
    return h if out.returncode == 0 and h else None


def tt(text: str) -> str:
    """Escape plain text for LaTeX (inside \\texttt or running text)."""
    text = text.replace("\\", "\x00")
    for a, b in (
        ("_", r"\_"),
        ("#", r"\#"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("^", r"\^{}"),
        ("~", r"\~{}"),
    ):
        text = text.replace(a, b)
    return text.replace("\x00", r"\textbackslash{}")


def ttt(text: str) -> str:
    """``\\texttt`` of plain text; braces as character codes (OT1 typewriter has them)."""
    esc = tt(text).replace(r"\{", r"{\char123}").replace(r"\}", r"{\char125}")
    return r"\texttt{" + esc + "}"


def provenance(module: str) -> str:
    """The marker printed under every equation: module and commit."""
    c = git_commit()
    where = f"proofs.{module}" + (f" @ {c}" if c else " @ (no git commit)")
    return ttt(where)


def _rel_tex(rel: str) -> str:
    return {
        "=": "=",
        "<": "<",
        ">": ">",
        "<=": r"\le",
        ">=": r"\ge",
        "=>": r"\Longrightarrow",
        "<=>": r"\iff",
        "!=": r"\neq",
    }.get(rel, rel)


def step_latex(module: str, step: Step, tag: str) -> str:
    """One step: its name, justification, the display and the provenance marker."""
    lhs, rhs = tex(step.lhs), tex(step.rhs)
    rel = _rel_tex(step.rel)
    long = len(lhs) + len(rhs) > 160
    body = (
        rf"\begin{{multline*}}{lhs} \\ {rel} {rhs}\end{{multline*}}"
        if long
        else rf"\begin{{equation*}}{lhs} {rel} {rhs}\end{{equation*}}"
    )
    return "\n".join(
        [
            rf"\paragraph{{({tag}) {tt(step.name)}.}} {step.justification}",
            body,
            rf"\noindent{{\footnotesize [{provenance(module)}; step {ttt(step.name)};"
            rf" checked by {tt(step.method)}]}}",
            "",
        ]
    )


PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\title{Li \& Arora, ``An Exponential Learning Rate Schedule for Deep Learning'':\\
derivations checked by SymPy (and z3)}
\date{}
\begin{document}
\maketitle
"""


# ---------------------------------------------------------------------------
# Proof records and the registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """The record of one result; verify, negative control and LaTeX come from it.

    ``name``: the module's name (an entry of :data:`MODULE_NAMES`); ``result``: the
    paper's (or the project's) name for the result; ``statement`` and
    ``assumptions``: LaTeX; ``derive``: returns the steps of the derivation;
    ``negative_control``: returns a false claim; ``witness``: the exact point at
    which :func:`refute` shows that claim false (``None`` when the claim carries
    its own ``check``, or is refuted symbolically).
    """

    name: str
    result: str
    statement: str
    assumptions: tuple[str, ...]
    derive: Callable[[], tuple[Step, ...]]
    negative_control: Callable[[], Step]
    witness: Mapping[sp.Symbol, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name={self.name!r} must be a Python identifier (the module name)")
        for arg in ("result", "statement"):
            value = getattr(self, arg)
            if not isinstance(value, str) or not value.strip():
                raise TypeError(f"{arg}={value!r} must be a non-empty string (LaTeX)")
        if not isinstance(self.assumptions, tuple) or not all(
            isinstance(a, str) and a.strip() for a in self.assumptions
        ):
            raise TypeError(
                f"assumptions={self.assumptions!r} must be a tuple of non-empty strings (LaTeX)"
            )
        for arg in ("derive", "negative_control"):
            if not callable(getattr(self, arg)):
                raise TypeError(f"{arg}={getattr(self, arg)!r} must be callable")
        if self.witness is not None and not isinstance(self.witness, Mapping):
            raise TypeError(f"witness={self.witness!r} must be a mapping symbol -> value or None")

    def verify(self) -> tuple[Step, ...]:
        """Check every step in order; return them, or raise :class:`ProofError`."""
        return verify_steps(self.name, self.derive())

    def check_negative_control(self) -> str:
        """Prove the negative control false (see :func:`refute`); say how."""
        return refute(self.name, self.negative_control(), self.witness)

    def to_latex(
        self,
        kernel_checked: str | None = None,
        status: str | None = None,
        negative: str | None = None,
    ) -> str:
        """This result as a LaTeX section, every equation marked with its provenance.

        ``kernel_checked``: "File.v: theorem" when Coq checked the same result;
        ``status``: a line such as "all 12 steps checked in 0.8 s"; ``negative``: the
        outcome of the negative control when already computed (else it is run here).
        """
        name = self.name
        steps = self.derive()
        neg = self.negative_control()
        lines = [
            rf"\section{{{tt(name.replace('_', ' ').capitalize())}: {self.result}}}",
            rf"\label{{sec:{name}}}",
            rf"\noindent Produced by {provenance(name)}.",
        ]
        if status:
            lines.append(rf"\noindent Status: {status}.")
        if kernel_checked:
            lines.append(rf"\noindent\textbf{{Kernel-checked}} in Coq: {ttt(kernel_checked)}.")
        lines += [
            "",
            r"\paragraph{Statement.} " + self.statement,
            "",
            r"\paragraph{Assumptions.}",
            r"\begin{itemize}",
        ]
        lines += [rf"\item {a}" for a in self.assumptions]
        lines += [r"\end{itemize}", ""]
        for i, s in enumerate(steps, 1):
            lines.append(step_latex(name, s, str(i)))
        lines.append(r"\paragraph{Negative control (must fail).} " + neg.justification)
        lines.append(step_latex(name, neg, "NC").split("\n", 1)[1])
        outcome = negative if negative is not None else self.check_negative_control()
        lines.append(r"\noindent Result of the check: " + tt(outcome) + ".")
        lines.append("")
        return "\n".join(lines)


def load(name: str) -> ModuleType:
    """Import the module ``proofs.<name>`` (``name`` must be in :data:`MODULE_NAMES`)."""
    if name not in MODULE_NAMES:
        raise ValueError(f"name={name!r} is not a proof module; valid: {MODULE_NAMES}")
    return importlib.import_module(f"proofs.{name}")


def get(name: str) -> Proof:
    """The registered record of the result ``name`` (its module's ``PROOF``)."""
    record = getattr(load(name), "PROOF", None)
    if not isinstance(record, Proof):
        raise TypeError(f"proofs.{name}.PROOF = {record!r} is not a proofs._core.Proof")
    if record.name != name:
        raise ValueError(f"proofs.{name}.PROOF.name = {record.name!r}; expected {name!r}")
    return record


def registry() -> dict[str, Proof]:
    """Every registered record, in the order of :data:`MODULE_NAMES`."""
    return {name: get(name) for name in MODULE_NAMES}


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofResult:
    """Outcome of deriving and checking one result."""

    name: str
    ok: bool
    seconds: float
    error: str | None = None
    steps: int = 0
    negative_control: str | None = None


def run_one(name: str) -> ProofResult:
    """Derive, verify and run the negative control of one registered result."""
    t0 = time.perf_counter()
    try:
        record = get(name)
        steps = record.verify()
        neg = record.check_negative_control()
    except Exception as exc:  # a failed proof is reported in the table, not a crash
        return ProofResult(name, False, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
    return ProofResult(name, True, time.perf_counter() - t0, None, len(steps), neg)


def run_all(names: Iterable[str] | None = None) -> list[ProofResult]:
    """Derive and check every registered result (or those named); never raises."""
    return [run_one(n) for n in (MODULE_NAMES if names is None else names)]
