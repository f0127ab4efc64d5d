"""Kernel-checked proofs: compile the Coq formalisation and audit its axioms.

The Coq sources under ``proofs/coq/`` formalise the results of Li & Arora,
"An Exponential Learning Rate Schedule for Deep Learning" (ICLR 2020), and the
project's own derivations, over an abstract parameter space (vectors I -> R).
Every result name of the proof registry has a Coq counterpart:

==================  ==========================================================
result              Coq file: main theorem (kernel-checked)
==================  ==========================================================
scale_invariance    ScaleInvariance.v (Coquelicot): a differentiable L with
                    L(c theta) = L(theta) has g(c theta) = g(theta)/c and
                    <g(theta), theta> = 0; the general theorem for such an L
no_momentum         NoMomentum.v: main theorem without momentum
general_schedule    GeneralSchedule.v: momentum, any LR / WD schedule
closed_form         ClosedForm.v: eta~_t = eta alpha^(-2t-1)
texp                Texp.v: TEXP with the boundary buffer shift
reverse_map         ReverseMap.v: from eta~ back to eta (forward o reverse = id)
rescaling           Rescaling.v (exact in R), BitExact.v (Flocq: binary64
                    rounding, nearest-even, one PyTorch SGD step bit-exact
                    under 2^k) and BitExact64.v (the same on IEEE binary64
                    values, overflow modelled)
toy_lemma           ToyLemma.v: g + lambda theta = 0 => 0
normaliser_eps      Normaliser.v: m x with eps m^2, running statistics
mid_run             MidRun.v: any initial buffer, copied as is
kappa_form          KappaForm.v: the scale recurrence without 1/eta (LR 0
                    allowed at any step), momentum schedule, any buffer; the
                    stock buffer recovered; agrees with GeneralSchedule.v
                    where eta > 0, which fails at eta_0 = 0 (concrete instance)
adamw               AdamW.v: AdamW == stock Adam without WD, per-step schedules
dampening           Dampening.v: SGD with dampening, LR alone, modified scales
nesterov            Nesterov.v: Nesterov SGD, exact with one buffer rewrite per
                    step; no hyper-parameter-only map (concrete instance)
lr_in_velocity      LrInVelocity.v: LR inside the velocity (Keras), exact with
                    LR and momentum schedules; the LR alone refuted
adam_l2             AdamL2.v: Adam with coupled L2, no hyper-parameters of the
                    converted run reproduce its first step (refuted)
equilibrium         Equilibrium.v: second-moment steady state of SGD + momentum
                    + WD (unique fixed point, cos Delta* = 1 - eta lambda /
                    (1 + gamma), Jacobian spectrum), the moment map derived
                    from the vector recurrence
==================  ==========================================================

:data:`KERNEL_CHECKED` maps each result to its main theorem ("File.v: name"),
:data:`KERNEL_THEOREMS` to every theorem that backs it, and
:func:`kernel_checked` returns the results all of whose theorems passed.

``check_all`` compiles every ``proofs/coq/*.v`` in dependency order inside a
temporary directory (no ``.vo`` file is written next to the sources), then runs
``Print Assumptions`` on each main theorem.  A theorem is accepted when its
file compiles, its sources contain no ``Admitted``/``admit``/``Axiom``/
``Parameter`` (Section ``Variable``/``Hypothesis`` are allowed: they become
explicit premises when the Section closes) and every assumption Coq reports is
in :func:`allowed_axioms` of its file.

What is honest to allow: Coq's standard library builds the real numbers on
the two axioms of ``ClassicalDedekindReals`` (``sig_forall_dec``,
``sig_not_dec``) and uses ``functional_extensionality_dep`` in that
construction, so even ``Rle_0_sqr`` of the standard library depends on them.
Those, and functional extensionality (which the vector equalities use), are
allowed everywhere (Coquelicot adds no axiom to the lemmas used here).  The
standard library's logarithm ``ln`` rests on ``Classical_Prop.classic``, and
Flocq's magnitude function ``mag`` is built on ``ln``: for files that load
Flocq (and only those) ``classic`` is allowed too.  Anything else is reported
as a failure.

Negative controls.  Each result has *proved negations* (:data:`NEGATIONS`): theorems
whose statement is ``~ (wrong claim)``, the result with one specific error, proved on a
concrete witness inside the result's own hypothesis class (``Witness.v``: the gradient of
the scale-invariant loss x1^2/(x1^2 + x2^2), shown to be one in ``WitnessGradient.v``;
concrete reals where the result has no gradient).  They are audited like every other
theorem, and :func:`check_all` also requires each one's type, as ``Check`` prints it, to be
a negation ``~ P`` (asked of Coq by an Ltac match on the type): a wrong claim made true no longer has a proof of its
negation, so the check fails.  Must-fail files under ``proofs/coq/negative/`` are kept only
where a negation cannot be stated: ``check_negative_controls`` compiles each and requires
coqc to reject it inside its wrong theorem with an error of :data:`FALSE_EQUATION_ERRORS` (a
false field or ring equation, not a broken script), and requires the file to compile once
its single line marked ``(* FIX: ... *)`` is replaced by the right statement.  A control
that compiles fails.  :func:`kernel_checked` withdraws a result's mark when one of its
theorems, proved negations, the witness's theorems (:data:`WITNESS`) or (when run) its
must-fail controls fails; any source file with an ``Admitted``/axiom fails the check, used
or not.

Needs coqc >= 8.16 (the proofs use the total forms of ``Rinv_inv`` and
``Rinv_mult``) with Coquelicot and Flocq (Debian: libcoq-coquelicot,
libcoq-flocq).  ``python -m proofs.coq_check`` prints a table and returns 0
when everything is accepted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

COQ_DIR: Path = Path(__file__).resolve().parent / "coq"
NEGATIVE_DIR: Path = COQ_DIR / "negative"
LOGICAL_ROOT = "ExpLR"

#: result name -> every (file, theorem) that backs it; the first is the main one.
KERNEL_THEOREMS: dict[str, tuple[tuple[str, str], ...]] = {
    "scale_invariance": (
        ("ScaleInvariance.v", "scale_invariant_general_schedule"),
        ("ScaleInvariance.v", "scale_invariant_general_schedule_const"),
        ("ScaleInvariance.v", "grad_homogeneous"),
        ("ScaleInvariance.v", "grad_orthogonal"),
        ("ScaleInvariance.v", "grad_homogeneous_m1"),
        ("ScaleInvariance.v", "hessian_homogeneous"),
        ("ScaleInvariance.v", "hessian_euler"),
    ),
    "no_momentum": (("NoMomentum.v", "no_momentum_equivalence"),),
    "general_schedule": (
        ("GeneralSchedule.v", "general_schedule_equivalence"),
        ("Momentum.v", "step_invariant"),
        ("GeneralSchedule.v", "general_schedule_equivalence_const"),
        ("Momentum.v", "srun_constant"),
    ),
    "closed_form": (("ClosedForm.v", "closed_form_equivalence"),),
    "texp": (("Texp.v", "texp_equivalence"), ("Texp.v", "texp_lr_ratio")),
    "reverse_map": (
        ("ReverseMap.v", "reverse_map_equivalence"),
        ("ReverseMap.v", "reverse_map_forward"),
        ("ReverseMap.v", "reverse_map_necessary"),
    ),
    "rescaling": (
        ("Rescaling.v", "rescale_step_commutes"),
        ("Rescaling.v", "rescale_run"),
        ("BitExact.v", "rnd64_mult_bpow"),
        ("BitExact.v", "sgd_step_bit_exact"),
        ("BitExact.v", "sgd_vec_bit_exact"),
        ("BitExact.v", "rescale_by_three_not_exact"),
        ("BitExact64.v", "sgd64_value"),
        ("BitExact64.v", "sgd64_bit_exact"),
        ("BitExactFma.v", "sgd_gen_bit_exact"),
        ("BitExactFma.v", "sgd_fma_bit_exact"),
        ("BitExactFma.v", "sgd_gen_vec_bit_exact"),
        ("BitExactFma.v", "sgd64_gen_value"),
        ("BitExactFma.v", "sgd64_gen_bit_exact"),
    ),
    "toy_lemma": (("ToyLemma.v", "toy_stationary_point_zero"),),
    "normaliser_eps": (
        ("Normaliser.v", "normaliser_eps"),
        ("Normaliser.v", "running_stats_scaled"),
        ("Normaliser.v", "eval_output_scaled"),
        ("NormaliserRun.v", "normaliser_eps_training"),
        ("NormaliserRun.v", "normalised_network_joint_invariant"),
        ("NormaliserRun.v", "grad_joint_homogeneous"),
        ("NormaliserRun.v", "normalised_network_training"),
        ("RefuteNormaliser.v", "normaliser_eps_unique"),
    ),
    "mid_run": (("MidRun.v", "mid_run_equivalence"), ("MidRun.v", "mid_run_equivalence_const")),
    "kappa_form": (
        ("KappaForm.v", "kappa_form_equivalence"),
        ("KappaForm.v", "kappa_step_invariant"),
        ("KappaForm.v", "kappa_form_buffer"),
        ("KappaForm.v", "kappa_form_paper_recurrence"),
        ("KappaForm.v", "kappa_form_agrees_with_general_schedule"),
        ("KappaForm.v", "kappa_form_agrees_with_general_schedule_const"),
    ),
    "adamw": (
        ("AdamW.v", "adamw_equivalence"),
        ("AdamW.v", "adam_coord"),
        ("AdamW.v", "adamw_maximize_equivalence"),
        ("AdamW.v", "adamw_amsgrad_equivalence"),
    ),
    "dampening": (
        ("Dampening.v", "dampening_equivalence"),
        ("Dampening.v", "damp_step_invariant"),
        ("Dampening.v", "dampening_equivalence_const"),
    ),
    "nesterov": (
        ("Nesterov.v", "nesterov_equivalence"),
        ("Nesterov.v", "nesterov_step_invariant"),
        ("Nesterov.v", "nesterov_no_hyperparameter_map"),
        ("Nesterov.v", "nesterov_equivalence_const"),
    ),
    "lr_in_velocity": (
        ("LrInVelocity.v", "lr_in_velocity_equivalence"),
        ("LrInVelocity.v", "keras_step_invariant"),
        ("LrInVelocity.v", "lr_only_refuted"),
    ),
    "adam_l2": (
        ("AdamL2.v", "adam_l2_refuted"),
        ("AdamL2.v", "adam_l2_no_hyperparameters"),
    ),
    "equilibrium": (
        ("Equilibrium.v", "equilibrium_steady_state"),
        ("Equilibrium.v", "moment_step"),
        ("Equilibrium.v", "moment_map_derived"),
        ("Equilibrium.v", "jacobian_entries"),
        ("Equilibrium.v", "jacobian_charpoly"),
        ("EquilibriumStability.v", "equilibrium_linearly_stable"),
        ("EquilibriumStability.v", "charpoly_complex"),
        ("EquilibriumStability.v", "jacobian_marginal"),
    ),
}

#: result name -> its proved negations: theorems whose statement is ``~ (wrong claim)``,
#: the result with one specific error, refuted on a witness inside the result's own
#: hypothesis class (``Witness.v``: the gradient of a scale-invariant loss).  A result is
#: marked only when these pass too, and :func:`check_all` requires each one's type to be
#: a negation ``~ P`` (Coq decides, :func:`_negation_shapes`).
NEGATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "scale_invariance": (("RefuteHomogeneity.v", "wrong_homogeneity_refuted"),),
    "general_schedule": (("Refutation.v", "wrong_lr_refuted"),),
    "mid_run": (("RefuteMidRun.v", "wrong_mid_run_buffer_refuted"),),
    "kappa_form": (
        ("KappaForm.v", "wrong_kappa_buffer_refuted"),
        ("KappaForm.v", "buffer_without_kappa_refuted"),
        ("KappaForm.v", "paper_recurrence_refuted_at_zero_lr"),
    ),
    "dampening": (("RefuteDampening.v", "wrong_damp_scale_refuted"),),
    "nesterov": (("RefuteNesterov.v", "wrong_nesterov_buffer_refuted"),),
    "no_momentum": (("RefuteNoMomentum.v", "growth_one_plus_refuted"),),
    "closed_form": (("RefuteClosedForm.v", "exponent_off_by_one_refuted"),),
    "texp": (("RefuteTexp.v", "texp_no_shift_refuted"),),
    "reverse_map": (("RefuteReverseMap.v", "reverse_sign_refuted"),),
    "lr_in_velocity": (("RefuteLrInVelocity.v", "keras_momentum_kept_refuted"),),
    "equilibrium": (("RefuteEquilibrium.v", "equilibrium_no_momentum_refuted"),),
    "toy_lemma": (("RefuteToyLemma.v", "toy_no_weight_decay_refuted"),),
    "rescaling": (
        ("RefuteRescaling.v", "wrong_factor_commutes_refuted"),
        ("RefuteRescaling.v", "wrong_mult64_refuted"),
    ),
    "adamw": (
        ("RefuteAdamW.v", "lr_only_refuted"),
        ("RefuteAdamW.v", "lr_only_run_refuted"),
    ),
    "normaliser_eps": (
        ("RefuteNormaliser.v", "wrong_normaliser_eps_refuted"),
        ("RefuteNormaliser.v", "unscaled_eps_refuted"),
        ("RefuteNormaliser.v", "fixed_eps_training_refuted"),
    ),
    "adam_l2": (
        ("RefuteAdamL2.v", "l2_map_refuted"),
        ("RefuteAdamL2.v", "l2_map_refuted_witness"),
    ),
}

#: The witness of the proved negations is inside the theorems' hypothesis class: its loss is
#: scale invariant and ``wgrad`` is its gradient (``WitnessGradient.v``), homogeneous of
#: degree -1 (``Witness.v``).  Every result with a proved negation needs these to pass too.
WITNESS: tuple[tuple[str, str], ...] = (
    ("Witness.v", "witness_homogeneous"),
    ("WitnessGradient.v", "witness_scale_invariant_loss"),
    ("WitnessGradient.v", "witness_has_gradient"),
)

#: The theorem name of the extra row :func:`check_all` adds for a source file
#: that fails :func:`audit_source` (an ``Admitted`` no listed theorem uses, ...).
SOURCE_AUDIT = "(source audit)"


def all_theorems() -> list[tuple[str, str]]:
    """Every (file, theorem) :func:`check_all` audits: the theorems of
    :data:`KERNEL_THEOREMS`, then the proved negations of :data:`NEGATIONS`."""
    out = [pair for pairs in KERNEL_THEOREMS.values() for pair in pairs]
    for pairs in (*NEGATIONS.values(), WITNESS):
        out += [pair for pair in pairs if pair not in out]
    return out


#: (file, theorem) pairs whose axioms are audited by :func:`check_all`.
MAIN_THEOREMS: tuple[tuple[str, str], ...] = tuple(all_theorems())

#: result name -> its main Coq theorem, "File.v: theorem".
KERNEL_CHECKED: dict[str, str] = {
    name: f"{pairs[0][0]}: {pairs[0][1]}" for name, pairs in KERNEL_THEOREMS.items()
}

#: Must-fail controls, kept only for a wrong claim that cannot be stated as a negation:
#: file under proofs/coq/negative/ -> the theorem coqc must reject.  None is needed today:
#: every result's controls are proved negations (:data:`NEGATIONS`).
NEGATIVE_CONTROLS: dict[str, str] = {}

#: Must-fail control -> the result it guards (its header's "Corresponding SymPy module"):
#: a control that does not behave withdraws that result's mark.
NEGATIVE_RESULTS: dict[str, str] = {}

#: The only reasons a must-fail control may be rejected for: a false equation.  Any other
#: error (a tactic that no longer matches, a type mismatch) is a broken script, which a
#: true statement could break the same way, so it fails the control.
FALSE_EQUATION_ERRORS: tuple[str, ...] = ("not a valid field equation", "not a valid ring equation")

#: Axioms of Coq's standard-library reals, plus functional extensionality.
ALLOWED_AXIOMS: frozenset[str] = frozenset(
    {
        "ClassicalDedekindReals.sig_forall_dec",
        "ClassicalDedekindReals.sig_not_dec",
        "FunctionalExtensionality.functional_extensionality_dep",
    }
)

#: Allowed in addition for files that load Flocq: the standard library's ``ln``
#: (under Flocq's ``mag``) rests on the excluded middle.
FLOCQ_AXIOMS: frozenset[str] = frozenset({"Classical_Prop.classic"})

#: A standard-library lemma about R whose assumptions show the Reals baseline.
REALS_BASELINE_LEMMA = "Coq.Reals.RIneq.Rle_0_sqr"

_FORBIDDEN = re.compile(
    r"\b(Admitted|admit|give_up|Axiom|Axioms|Parameter|Parameters|Conjecture)\b"
    r"|Unset\s+(Guard|Positivity|Universe)\s+Checking|bypass_check"
)
_FLOCQ = re.compile(r"From\s+Flocq\s+Require")
_SECTION_ONLY = re.compile(r"\b(Variable|Variables|Hypothesis|Hypotheses|Context)\b")
_IMPORT = re.compile(rf"From\s+{LOGICAL_ROOT}\s+Require\s+(?:Import\s+|Export\s+)?([^.]*)\.")
_FIX = re.compile(r"^(?P<indent>.*?)(?P<wrong>\S.*?)\s*\(\*\s*FIX:\s*(?P<fix>.*?)\s*\*\)\s*$")
_LOCATION = re.compile(r'File "[^"]*", line (\d+), characters')
_NOT_A_PROOF_FAILURE = re.compile(
    r"Syntax error|was not found in the current environment|Unable to locate library"
    r"|Cannot find a physical path|The reference .* was not found|Unknown interpretation"
)


@dataclass(frozen=True)
class CoqResult:
    """Outcome of checking one Coq theorem (or one negative control)."""

    file: str
    theorem: str
    ok: bool
    assumptions: tuple[str, ...]
    seconds: float
    message: str


def coq_available() -> bool:
    """True when a working ``coqc`` is on the PATH."""
    exe = shutil.which("coqc")
    if exe is None:
        return False
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


#: Coq libraries the sources load, as directories under ``coqc -where``/user-contrib.
REQUIRED_LIBRARIES: tuple[str, ...] = ("Coquelicot", "Flocq")


def missing_libraries() -> list[str]:
    """The libraries of :data:`REQUIRED_LIBRARIES` that coqc cannot find
    (all of them when coqc is absent)."""
    exe = shutil.which("coqc")
    if exe is None:
        return list(REQUIRED_LIBRARIES)
    try:
        proc = subprocess.run([exe, "-where"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return list(REQUIRED_LIBRARIES)
    contrib = Path(proc.stdout.strip()) / "user-contrib"
    return [lib for lib in REQUIRED_LIBRARIES if not (contrib / lib).is_dir()]


def coq_version() -> str:
    """The first line of ``coqc --version`` (empty when coqc is absent)."""
    exe = shutil.which("coqc")
    if exe is None:
        return ""
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    return proc.stdout.splitlines()[0] if proc.stdout else ""


# --------------------------------------------------------------------------
# Source audit


def strip_comments(text: str) -> str:
    """Remove (nested) Coq comments and string literals, keeping line breaks."""
    out: list[str] = []
    depth = 0
    i = 0
    in_string = False
    while i < len(text):
        two = text[i : i + 2]
        ch = text[i]
        if in_string:
            if ch == '"':
                in_string = False
            out.append("\n" if ch == "\n" else " ")
            i += 1
        elif two == "(*":
            depth += 1
            out.append("  ")
            i += 2
        elif two == "*)" and depth > 0:
            depth -= 1
            out.append("  ")
            i += 2
        elif depth > 0:
            out.append("\n" if ch == "\n" else " ")
            i += 1
        elif ch == '"':
            in_string = True
            out.append(" ")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def audit_source(path: Path) -> list[str]:
    """Problems in one .v file: admitted proofs, axioms, or section-only
    declarations (Variable/Hypothesis) outside a Section."""
    problems: list[str] = []
    code = strip_comments(path.read_text(encoding="utf-8"))
    sections: list[str] = []
    for lineno, line in enumerate(code.splitlines(), start=1):
        for match in _FORBIDDEN.finditer(line):
            problems.append(f"{path.name}:{lineno}: forbidden '{match.group(0)}'")
        opened = re.match(r"\s*Section\s+(\w+)\s*\.", line)
        if opened:
            sections.append(opened.group(1))
        closed = re.match(r"\s*End\s+(\w+)\s*\.", line)
        if closed and sections and sections[-1] == closed.group(1):
            sections.pop()
        if _SECTION_ONLY.search(line) and not sections:
            word = _SECTION_ONLY.search(line)
            assert word is not None
            problems.append(f"{path.name}:{lineno}: '{word.group(0)}' outside a Section")
    if sections:
        problems.append(f"{path.name}: Section {sections[-1]} is never closed")
    return problems


def source_files() -> list[Path]:
    """The positive Coq sources, proofs/coq/*.v."""
    return sorted(COQ_DIR.glob("*.v"))


def negative_files() -> list[Path]:
    """The negative controls, proofs/coq/negative/*.v."""
    return sorted(NEGATIVE_DIR.glob("*.v"))


def uses_flocq(path: Path) -> bool:
    """True when ``path`` or a project file it imports (transitively) loads Flocq."""
    by_name = {p.stem: p for p in source_files()}
    seen: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if _FLOCQ.search(strip_comments(current.read_text(encoding="utf-8"))):
            return True
        for dep in imports(current):
            if dep not in seen and dep in by_name:
                seen.add(dep)
                todo.append(by_name[dep])
    return False


def allowed_axioms(file: str) -> frozenset[str]:
    """Axioms a theorem of ``proofs/coq/<file>`` may rest on (see module docstring)."""
    path = COQ_DIR / file
    if path.exists() and uses_flocq(path):
        return ALLOWED_AXIOMS | FLOCQ_AXIOMS
    return ALLOWED_AXIOMS


def audit_sources() -> list[str]:
    """Problems found by :func:`audit_source` in every positive source."""
    return [p for path in source_files() for p in audit_source(path)]


# --------------------------------------------------------------------------
# Building


def imports(path: Path) -> list[str]:
    """Project modules a .v file imports (``From ExpLR Require Import ...``)."""
    code = strip_comments(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for match in _IMPORT.finditer(code):
        names.extend(match.group(1).split())
    return names


def dependency_order(paths: Sequence[Path]) -> list[Path]:
    """Topological order of ``paths`` by their project imports."""
    by_name = {p.stem: p for p in paths}
    order: list[Path] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"import cycle among Coq files: {' -> '.join(chain + (name,))}")
        if name not in by_name:
            raise ValueError(f"{chain[-1]}.v imports {LOGICAL_ROOT}.{name}, which has no .v file")
        state[name] = 1
        for dep in imports(by_name[name]):
            visit(dep, chain + (name,))
        state[name] = 2
        order.append(by_name[name])

    for name in sorted(by_name):
        visit(name, ())
    return order


@dataclass(frozen=True)
class _Compiled:
    ok: bool
    seconds: float
    output: str


def _run_coqc(build: Path, vfile: Path, timeout: float) -> _Compiled:
    exe = shutil.which("coqc")
    if exe is None:
        return _Compiled(False, 0.0, "coqc not found")
    if timeout <= 0:
        return _Compiled(False, 0.0, "time budget exhausted before this file")
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [exe, "-q", "-Q", str(build), LOGICAL_ROOT, str(vfile)],
            cwd=build,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return _Compiled(False, time.perf_counter() - start, f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - start
    return _Compiled(proc.returncode == 0, seconds, (proc.stdout + proc.stderr).strip())


def _needed(roots: Sequence[Path]) -> set[str]:
    """Stems of the positive sources that ``roots`` import, transitively."""
    by_name = {p.stem: p for p in source_files()}
    needed: set[str] = set()
    todo = [name for root in roots for name in imports(root)]
    while todo:
        name = todo.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        todo.extend(imports(by_name[name]))
    return needed


def _build_all(build: Path, deadline: float, only: set[str] | None = None) -> dict[str, _Compiled]:
    """Copy the positive sources into ``build`` and compile them in order
    (only the stems in ``only`` and what they import, when given)."""
    results: dict[str, _Compiled] = {}
    for path in dependency_order(source_files()):
        if only is not None and path.stem not in only:
            continue
        target = build / path.name
        shutil.copyfile(path, target)
        failed = [d for d in imports(path) if not results[f"{d}.v"].ok]
        if failed:
            results[path.name] = _Compiled(False, 0.0, f"dependency failed: {', '.join(failed)}")
            continue
        results[path.name] = _run_coqc(build, target, deadline - time.perf_counter())
    return results


def parse_assumptions(output: str) -> tuple[str, ...] | None:
    """Names listed by one ``Print Assumptions`` (None if not recognised)."""
    lines = output.strip().splitlines()
    if not lines:
        return None
    if lines[0].startswith("Closed under the global context"):
        return ()
    names: list[str] = []
    seen_header = False
    for line in lines:
        if not line.strip() or line[0].isspace():
            continue  # a continuation of a type
        if re.fullmatch(r"[A-Z][A-Za-z ]*:", line.strip()):
            seen_header = True  # "Axioms:", "Section Variables:", ...
            continue
        names.append(line.split(" :", 1)[0].strip())
    return tuple(names) if seen_header else None


def _print_assumptions(
    build: Path, groups: Mapping[str, Sequence[str]], deadline: float
) -> tuple[dict[str, tuple[str, ...] | None], str]:
    """Run ``Print Assumptions`` once per group of fully qualified theorems, in one coqc.

    A group of several theorems is audited as the tuple of their proofs, whose
    assumptions are the union of theirs (one traversal of the libraries under them
    instead of one per theorem: the per-theorem form costs about 0.7 s each).  Returns
    group label -> its axioms (None where Coq gave no parsable answer), and coqc's output.
    """
    names = [n for group in groups.values() for n in group]
    modules = sorted({t.rsplit(".", 2)[1] for t in names})
    lines = [f"From {LOGICAL_ROOT} Require {' '.join(modules)}."]
    for i, (label, group) in enumerate(groups.items()):
        target = group[0]
        if len(group) > 1:
            target = f"explr_audit_{i}"
            lines.append(f"Definition {target} := ({', '.join('@' + n for n in group)}).")
        lines.append(f'Goal True. idtac "@@BEGIN {label}". Abort.')
        lines.append(f"Print Assumptions {target}.")
    script = build / "AuditAssumptions.v"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    compiled = _run_coqc(build, script, deadline - time.perf_counter())
    found: dict[str, tuple[str, ...] | None] = {label: None for label in groups}
    if compiled.ok:
        chunks = compiled.output.split("@@BEGIN ")[1:]
        for chunk in chunks:
            label, _, body = chunk.partition("\n")
            found[label.strip()] = parse_assumptions(body)
    return found, compiled.output


#: Ltac that prints whether a type is a negation (``~ P``, which includes ``a <> b``).
_NEGATION_SHAPE = (
    "Ltac explr_negation_shape T := lazymatch T with "
    '| ~ _ => idtac "@@NEGATION" | _ => idtac "@@NOT-A-NEGATION" end.'
)


def _negation_shapes(
    build: Path, theorems: Sequence[str], deadline: float
) -> dict[str, bool | None]:
    """Whether each fully qualified theorem's type is a negation ``~ P`` (``a <> b``
    included), asked of Coq itself in one coqc run; None where Coq gave no answer."""
    found: dict[str, bool | None] = {name: None for name in theorems}
    if not theorems:
        return found
    modules = sorted({t.rsplit(".", 2)[1] for t in theorems})
    lines = [f"From {LOGICAL_ROOT} Require {' '.join(modules)}.", _NEGATION_SHAPE]
    for name in theorems:
        lines.append(
            f'Goal True. idtac "@@BEGIN {name}". '
            f"let T := type of {name} in explr_negation_shape T. Abort."
        )
    script = build / "AuditNegations.v"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    compiled = _run_coqc(build, script, deadline - time.perf_counter())
    if compiled.ok:
        for chunk in compiled.output.split("@@BEGIN ")[1:]:
            name, _, body = chunk.partition("\n")
            if "@@NEGATION" in body:
                found[name.strip()] = True
            elif "@@NOT-A-NEGATION" in body:
                found[name.strip()] = False
    return found


def reals_baseline(timeout: float = 60.0) -> tuple[str, ...]:
    """Axioms behind a plain standard-library lemma about R (informational)."""
    with tempfile.TemporaryDirectory(prefix="coq_baseline_") as tmp:
        build = Path(tmp)
        script = build / "Baseline.v"
        script.write_text(
            f"From Coq Require Import Reals.\nPrint Assumptions {REALS_BASELINE_LEMMA}.\n",
            encoding="utf-8",
        )
        compiled = _run_coqc(build, script, timeout)
        parsed = parse_assumptions(compiled.output) if compiled.ok else None
    return parsed or ()


def check_all(timeout: float = 120.0) -> list[CoqResult]:
    """Compile every proofs/coq/*.v and audit each main theorem's axioms.

    ``timeout`` bounds the whole check (seconds).  One :class:`CoqResult` per
    entry of :func:`all_theorems` (in that order); its ``assumptions`` are those of
    ``Print Assumptions`` on the tuple of its file's audited theorems (their union),
    checked against what that file is allowed;
    ``seconds`` is the compile time of the theorem's file.  A theorem fails when
    its file or a file it imports fails :func:`audit_source`; besides, each
    source file that fails the audit adds a failing row (theorem
    :data:`SOURCE_AUDIT`), so an unused ``Admitted`` fails the check too.
    """
    deadline = time.perf_counter() + timeout
    main_theorems = all_theorems()
    negations = {pair for pairs in NEGATIONS.values() for pair in pairs}
    if not coq_available():
        return [CoqResult(f, t, False, (), 0.0, "coqc is not available") for f, t in main_theorems]
    with tempfile.TemporaryDirectory(prefix="coq_check_") as tmp:
        build = Path(tmp)
        compiled = _build_all(build, deadline)
        qualified = {
            (f, t): f"{LOGICAL_ROOT}.{Path(f).stem}.{t}"
            for f, t in main_theorems
            if compiled.get(f) is not None and compiled[f].ok
        }
        # One audit per file (its theorems' union: what the file is allowed is per file).
        by_file: dict[str, list[str]] = {}
        for (f, _), name in qualified.items():
            by_file.setdefault(f, []).append(name)
        per_file, pa_output = _print_assumptions(build, by_file, deadline)
        assumptions = {name: per_file[f] for (f, _), name in qualified.items()}
        if qualified and not any(v is not None for v in per_file.values()):
            # The combined audit failed (e.g. a theorem is missing): redo one by one.
            for name in qualified.values():
                single, _ = _print_assumptions(build, {name: [name]}, deadline)
                assumptions[name] = single[name]
        shapes = _negation_shapes(
            build, [qualified[p] for p in negations if p in qualified], deadline
        )
    audit = {path.name: audit_source(path) for path in source_files()}
    results: list[CoqResult] = []
    for file, theorem in main_theorems:
        comp = compiled.get(file)
        if comp is None:
            results.append(CoqResult(file, theorem, False, (), 0.0, "no such file"))
            continue
        if not comp.ok:
            results.append(CoqResult(file, theorem, False, (), comp.seconds, comp.output[-2000:]))
            continue
        names = assumptions.get(qualified[(file, theorem)])
        # the source audit of the theorem's file and of every file it imports
        closure = [file] + sorted(f"{stem}.v" for stem in _needed([COQ_DIR / file]))
        problems = [p for f in closure for p in audit.get(f, [])]
        if names is None:
            problems.append(f"Print Assumptions gave no parsable answer: {pa_output[-500:]}")
            names = ()
        extra = sorted(set(names) - allowed_axioms(file))
        if extra:
            problems.append(f"axioms beyond stdlib Reals + functional extensionality: {extra}")
        if (file, theorem) in negations and not shapes.get(qualified[(file, theorem)]):
            problems.append("a proved negation must state ~ (wrong claim); Coq says it does not")
        ok = not problems
        message = "kernel-checked" if ok else "; ".join(problems)
        results.append(CoqResult(file, theorem, ok, tuple(names), comp.seconds, message))
    # An Admitted (or axiom) anywhere fails the check, even where no theorem uses it.
    for file, problems in audit.items():
        if problems:
            results.append(CoqResult(file, SOURCE_AUDIT, False, (), 0.0, "; ".join(problems)))
    return results


def kernel_checked(
    results: Sequence[CoqResult], negatives: Sequence[CoqResult] | None = None
) -> dict[str, str]:
    """Result name -> its main theorem, for the results ALL of whose theorems
    in :data:`KERNEL_THEOREMS` and proved negations in :data:`NEGATIONS` were accepted in ``results`` (compiled, found,
    assumptions audited) and, when ``negatives`` is given, all of whose
    negative controls (:data:`NEGATIVE_RESULTS`) are in ``negatives`` and
    behaved."""
    ok = {(r.file, r.theorem) for r in results if r.ok}
    neg_ok = {r.file for r in negatives or () if r.ok}
    marks = {}
    for name, pairs in KERNEL_THEOREMS.items():
        negations = NEGATIONS.get(name, ())
        needed = (*pairs, *negations, *(WITNESS if negations else ()))
        if not all(pair in ok for pair in needed):
            continue
        controls = [f"negative/{f}" for f, res in NEGATIVE_RESULTS.items() if res == name]
        if negatives is not None and not all(c in neg_ok for c in controls):
            continue
        marks[name] = f"{pairs[0][0]}: {pairs[0][1]}"
    return marks


def _theorem_line(text: str, theorem: str) -> int | None:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*(Theorem|Lemma)\s+{re.escape(theorem)}\b", line):
            return lineno
    return None


def _apply_fix(text: str) -> str | None:
    """Replace the line marked ``(* FIX: right *)`` by the right statement."""
    lines = text.splitlines()
    marked = [i for i, line in enumerate(lines) if "(* FIX:" in line]
    if len(marked) != 1:
        return None
    match = _FIX.match(lines[marked[0]])
    if match is None:
        return None
    wrong = match.group("wrong")
    # The wrong line is "<prefix> := <wrong value>." ; keep the prefix.
    prefix, sep, _ = wrong.partition(":=")
    if not sep:
        return None
    lines[marked[0]] = f"{match.group('indent')}{prefix}:= {match.group('fix')}"
    return "\n".join(lines) + "\n"


def check_negative_controls(
    timeout: float = 120.0, results_of: Collection[str] | None = None
) -> list[CoqResult]:
    """Each must-fail control must be rejected inside its wrong theorem, with
    an error of :data:`FALSE_EQUATION_ERRORS`, and compile once
    its marked line is fixed.  A control that compiles (its statement made
    true) fails.  ``ok`` means "behaved as a negative control should".
    ``results_of``: check only the controls of these results."""
    deadline = time.perf_counter() + timeout
    controls = {
        f: t
        for f, t in NEGATIVE_CONTROLS.items()
        if results_of is None or NEGATIVE_RESULTS.get(f) in results_of
    }
    if not coq_available():
        return [
            CoqResult(f"negative/{f}", t, False, (), 0.0, "coqc is not available")
            for f, t in controls.items()
        ]
    if not controls:
        return []
    results: list[CoqResult] = []
    with tempfile.TemporaryDirectory(prefix="coq_negative_") as tmp:
        build = Path(tmp)
        roots = [NEGATIVE_DIR / f for f in controls if (NEGATIVE_DIR / f).exists()]
        compiled = _build_all(build, deadline, only=_needed(roots))
        broken = [name for name, comp in compiled.items() if not comp.ok]
        for file, theorem in controls.items():
            label = f"negative/{file}"
            source = NEGATIVE_DIR / file
            if broken:
                results.append(
                    CoqResult(label, theorem, False, (), 0.0, f"positive files fail: {broken}")
                )
                continue
            if not source.exists():
                results.append(CoqResult(label, theorem, False, (), 0.0, "no such file"))
                continue
            text = source.read_text(encoding="utf-8")
            decl = _theorem_line(text, theorem)
            target = build / f"Negative{source.stem}.v"
            target.write_text(text, encoding="utf-8")
            wrong = _run_coqc(build, target, deadline - time.perf_counter())
            problems: list[str] = []
            if wrong.ok:
                problems.append("coqc ACCEPTED the wrong statement")
            else:
                where = _LOCATION.search(wrong.output)
                line = int(where.group(1)) if where else None
                if _NOT_A_PROOF_FAILURE.search(wrong.output):
                    problems.append(
                        f"rejected for a non-mathematical reason: {wrong.output[-300:]}"
                    )
                elif decl is None:
                    problems.append(f"theorem {theorem} not declared in {file}")
                elif line is None or line < decl:
                    problems.append(f"rejected at line {line}, before {theorem} (line {decl})")
                said = " ".join(wrong.output.split())
                if not any(reason in said for reason in FALSE_EQUATION_ERRORS):
                    problems.append(
                        f"rejected, but not for a false equation {FALSE_EQUATION_ERRORS}: "
                        f"{wrong.output[-300:]}"
                    )
            fixed_text = _apply_fix(text)
            if fixed_text is None:
                problems.append("no single line marked (* FIX: ... *)")
            else:
                fixed = build / f"Fixed{source.stem}.v"
                fixed.write_text(fixed_text, encoding="utf-8")
                repaired = _run_coqc(build, fixed, deadline - time.perf_counter())
                if not repaired.ok:
                    problems.append(f"the FIXed file does not compile: {repaired.output[-300:]}")
            error = wrong.output.strip().splitlines()[-1] if wrong.output.strip() else ""
            message = (
                f"rejected as expected, a false equation ({error})"
                if not problems
                else "; ".join(problems)
            )
            results.append(CoqResult(label, theorem, not problems, (), wrong.seconds, message))
    return results


# --------------------------------------------------------------------------
# Command line


def _table(results: Sequence[CoqResult]) -> str:
    rows = [("file", "theorem", "ok", "seconds", "assumptions / message")]
    for r in results:
        if r.ok and r.assumptions:
            detail = ", ".join(r.assumptions)
        else:
            detail = r.message.splitlines()[0] if r.message else ""
        rows.append((r.file, r.theorem, "yes" if r.ok else "NO", f"{r.seconds:.2f}", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4] for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m proofs.coq_check``: compile, audit, print a table."""
    parser = argparse.ArgumentParser(
        prog="python -m proofs.coq_check",
        description="Compile the Coq proofs (Li & Arora, ICLR 2020) and audit their axioms.",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for each phase")
    parser.add_argument("--no-negative", action="store_true", help="skip the negative controls")
    args = parser.parse_args(argv)
    if not coq_available():
        print("coqc not found: install Coq >= 8.16 (e.g. apt-get install coq)", file=sys.stderr)
        return 2
    missing = missing_libraries()
    if missing:
        print(
            f"Coq libraries not found: {', '.join(missing)} "
            "(apt-get install libcoq-coquelicot libcoq-flocq); their files will fail",
            file=sys.stderr,
        )
    print(coq_version())
    start = time.perf_counter()
    results = check_all(timeout=args.timeout)
    checked = time.perf_counter() - start
    print(_table(results))
    print(f"\ncompiled and audited {len(source_files())} files in {checked:.1f} s")
    print(f"allowed axioms: {', '.join(sorted(ALLOWED_AXIOMS))}")
    print(f"allowed in files that load Flocq: {', '.join(sorted(FLOCQ_AXIOMS))}")
    print(f"stdlib Reals baseline ({REALS_BASELINE_LEMMA}): {', '.join(reals_baseline())}")
    negatives: list[CoqResult] = []
    if not args.no_negative:
        negatives = check_negative_controls(timeout=args.timeout)
        print("\nnegative controls (must be rejected):")
        print(_table(negatives))
    marks = kernel_checked(results, None if args.no_negative else negatives)
    print(
        "\nresult -> main Coq theorem (kernel-checked: every theorem backing it passed"
        + ("" if args.no_negative else ", and every negative control of it")
        + "):"
    )
    for module, where in KERNEL_CHECKED.items():
        mark = "yes" if module in marks else "NO"
        print(f"  {module:<17} {mark:<4} {where}")
    return 0 if all(r.ok for r in results + negatives) else 1


if __name__ == "__main__":
    sys.exit(main())
