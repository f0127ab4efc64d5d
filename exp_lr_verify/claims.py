"""The claims of the paper the main job checks, as typed records.

A :class:`Claim` carries one :class:`Status` per kind of evidence (symbolic: SymPy; kernel:
Coq; numeric: a computation judged by its error model); the claim holds unless one of them is
:attr:`Status.FAILED`.

Each row of the table is split into :class:`Clause` records (:data:`CLAUSES`), each naming
the tools that check *that clause*: the Coq theorems that state it, the SymPy results that
derive it, and whether the main job measures it.  A column says "checked" only when every
clause of its row is checked by that column's tool, and "k of n clauses" otherwise
(:func:`coverage`); ``tests/test_claims.py`` reads this registry against the Coq registry
(``proofs.coq_check``) and the README's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    """The outcome of one kind of evidence for a claim."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  #: could have run here but was not asked for, or lacks its input
    NOT_RUN = "not run"  #: its tool is not installed
    NONE = "-"  #: this kind of evidence does not exist for the claim


@dataclass(frozen=True)
class Clause:
    """One clause of a claim and the tools that check it.

    ``coq``: the theorems stating it ("File.v: theorem", entries of
    ``proofs.coq_check.all_theorems()``); ``sympy``: the ``proofs`` results deriving it;
    ``measured``: the main job's numeric check of the row measures it.
    """

    text: str
    coq: tuple[str, ...] = ()
    sympy: tuple[str, ...] = ()
    measured: bool = False


@dataclass(frozen=True)
class Claim:
    """One claim and its evidence (``worst_error``: of the numeric check; ``detail``: in words)."""

    key: str
    text: str
    proof: str | None  #: the ``proofs`` result that derives it (None: no symbolic proof)
    symbolic: Status = Status.NONE
    kernel: Status = Status.NONE
    numeric: Status = Status.NONE
    worst_error: float | None = None
    seconds: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return Status.FAILED not in (self.symbolic, self.kernel, self.numeric)


#: (key, the claim in words, its proofs result)
CLAIMS: tuple[tuple[str, str, str | None], ...] = (
    ("lemmas", "Scale invariance: ⟨∇L,θ⟩=0, ∇L(cθ)=∇L(θ)/c, ∇²L(θ)θ=−∇L(θ)", "scale_invariance"),
    (
        "no_momentum",
        "Main theorem, no momentum: η̃_t = η(1−ηλ)^(−2t−1), θ̃_t = (1−ηλ)^(−t)θ_t",
        "no_momentum",
    ),
    (
        "closed_form",
        "Main theorem, momentum: η̃_t = ηα^(−2t−1) with its initial buffer",
        "closed_form",
    ),
    ("general", "General theorem: any LR/WD schedule, η̃_t = η_t/(c_t c_{t+1})", "general_schedule"),
    ("texp", "TEXP for step decay (exact with momentum-buffer shifts)", "texp"),
    ("reverse", "Reverse map: the WD recipe of an exponential-LR schedule", "reverse_map"),
    ("rescaling", "Exact power-of-two rescaling and eval-mode BatchNorm correction", "rescaling"),
    ("toy", "Toy: WD alone or BN alone converge, BN + WD never does", "toy_lemma"),
    ("cifar_smoke", "CIFAR-10, PreResNet: step decay ≡ exponential LR (CPU smoke, float64)", None),
    (
        "adamw",
        "AdamW ≡ stock Adam without decay, η̃, ε̃, β̃ per step (amsgrad: + one buffer rewrite)",
        "adamw",
    ),
    ("dampening", "SGD with dampening ≡ the same SGD without decay, LR only", "dampening"),
    ("nesterov", "SGD with Nesterov momentum: exact with one buffer rewrite per step", "nesterov"),
    (
        "lr_in_velocity",
        "LR inside the velocity (Keras/TF): exact with η̃ and γ̃ scheduled (numpy reference)",
        "lr_in_velocity",
    ),
    ("adam_l2", "Adam with coupled L2 decay: no exact map (refuted; refused)", "adam_l2"),
)

GPU_CLAIM = ("gpu", "CIFAR-10 on CUDA: recipes a, b (and c) agree in test accuracy", None)


def _c(text: str, coq: str = "", sympy: str = "", measured: bool = False) -> Clause:
    """A clause from space-separated "File.v:theorem" and result names."""
    refs = tuple(ref.replace(":", ": ") for ref in coq.split())
    return Clause(text, refs, tuple(sympy.split()), measured)


#: claim key -> its clauses (every row of :data:`CLAIMS`, the GPU row and the further results).
CLAUSES: dict[str, tuple[Clause, ...]] = {
    "lemmas": (
        _c("⟨∇L(θ), θ⟩ = 0", "ScaleInvariance.v:grad_orthogonal", "scale_invariance", True),
        _c("∇L(cθ) = ∇L(θ)/c", "ScaleInvariance.v:grad_homogeneous", "scale_invariance", True),
        _c("∇²L(θ)θ = −∇L(θ)", "ScaleInvariance.v:hessian_euler", "scale_invariance", True),
    ),
    "no_momentum": (
        _c(
            "θ̃_t = (1−ηλ)^(−t) θ_t under η̃_t = η(1−ηλ)^(−2t−1)",
            "NoMomentum.v:no_momentum_equivalence",
            "no_momentum",
            True,
        ),
    ),
    "closed_form": (
        _c(
            "θ̃_t = α^(−t) θ_t under η̃_t = ηα^(−2t−1) with its initial buffer",
            "ClosedForm.v:closed_form_equivalence",
            "closed_form",
            True,
        ),
    ),
    "general": (
        _c(
            "any LR/WD schedule, constant momentum: θ̃_t = θ_t/c_t under η̃_t = η_t/(c_t c_{t+1})",
            "GeneralSchedule.v:general_schedule_equivalence",
            "general_schedule",
            True,
        ),
        _c(
            "the same with a momentum schedule γ_t (OneCycleLR's momentum cycle)",
            "GeneralSchedule.v:general_schedule_equivalence",
            "",
            True,
        ),
    ),
    "texp": (
        _c(
            "TEXP with a buffer shift at each phase change",
            "Texp.v:texp_equivalence",
            "texp",
            True,
        ),
    ),
    "reverse": (
        _c(
            "forward ∘ reverse = identity on η̃",
            "ReverseMap.v:reverse_map_forward",
            "reverse_map",
            True,
        ),
        _c(
            "a WD recipe exists iff 1 − η̃_t c_t κ_t > 0",
            "ReverseMap.v:reverse_map_necessary ReverseMap.v:reverse_map_equivalence",
            "reverse_map",
        ),
    ),
    "rescaling": (
        _c(
            "rescaling by s > 0 commutes with the run (exact in ℝ)",
            "Rescaling.v:rescale_run",
            "rescaling",
        ),
        _c(
            "power-of-two rescaling of one SGD step is bit-exact in binary64 as the scalar "
            "kernel runs it (each product rounded)",
            "BitExact.v:sgd_vec_bit_exact BitExact64.v:sgd64_bit_exact",
        ),
        _c(
            "the same with a + α·b fused into one rounding, as the vectorised CPU kernels run "
            "it (AVX2, AVX-512, NEON), foreach included",
            "BitExactFma.v:sgd_gen_vec_bit_exact BitExactFma.v:sgd64_gen_bit_exact",
            "",
            True,
        ),
        _c(
            "eval-mode BatchNorm: running statistics and ε corrected, output unchanged",
            "Normaliser.v:running_stats_scaled Normaliser.v:eval_output_scaled",
            "rescaling normaliser_eps",
            True,
        ),
    ),
    "toy": (
        _c("WD alone converges", measured=True),
        _c("BN alone converges", measured=True),
        _c(
            "BN + WD never converges (the norm shrinks until the step is unstable)",
            sympy="toy_lemma",
            measured=True,
        ),
        _c(
            "BN + WD has no stationary point with θ ≠ 0",
            "ToyLemma.v:toy_stationary_point_zero",
            "toy_lemma",
        ),
    ),
    "cifar_smoke": (
        _c("PreResNet on CIFAR-10, step decay ≡ exponential LR (CPU, float64)", measured=True),
    ),
    "gpu": (_c("CIFAR-10 on CUDA: recipes a, b (and c) agree in test accuracy", measured=True),),
    "adamw": (
        _c(
            "AdamW ≡ stock Adam without decay with per-step η̃, ε̃, β̃",
            "AdamW.v:adamw_equivalence",
            "adamw",
            True,
        ),
        _c(
            "amsgrad: + one rewrite of the max buffer",
            "AdamW.v:adamw_amsgrad_equivalence",
            "adamw",
            True,
        ),
        _c("maximize", "AdamW.v:adamw_maximize_equivalence", "", True),
    ),
    "dampening": (
        _c(
            "SGD with dampening ≡ the same SGD without decay, LR only",
            "Dampening.v:dampening_equivalence",
            "dampening",
            True,
        ),
    ),
    "nesterov": (
        _c(
            "exact with one buffer rewrite per step",
            "Nesterov.v:nesterov_equivalence",
            "nesterov",
            True,
        ),
        _c(
            "no LR/momentum schedule alone works",
            "Nesterov.v:nesterov_no_hyperparameter_map",
            "nesterov",
        ),
    ),
    "lr_in_velocity": (
        _c(
            "exact with η̃ and γ̃ scheduled",
            "LrInVelocity.v:lr_in_velocity_equivalence",
            "lr_in_velocity",
            True,
        ),
        _c("the LR alone cannot work", "LrInVelocity.v:lr_only_refuted", "lr_in_velocity"),
    ),
    "adam_l2": (
        _c(
            "no η̃, ε̃, β̃ reproduce the first step",
            "AdamL2.v:adam_l2_no_hyperparameters",
            "adam_l2",
            True,
        ),
        _c("no linear buffer rewrite does either", sympy="adam_l2"),
    ),
    "further_results": (
        _c(
            "equilibrium: unique fixed point, cos Δ* = 1 − ηλ/(1+γ), the Jacobian's "
            "characteristic polynomial",
            "Equilibrium.v:equilibrium_steady_state Equilibrium.v:jacobian_charpoly",
            "equilibrium",
        ),
        _c(
            "equilibrium: linearly stable, every eigenvalue inside the unit disk, for "
            "ηλ ≠ 1+γ (at ηλ = 1+γ, −1 is one)",
            "EquilibriumStability.v:equilibrium_linearly_stable "
            "EquilibriumStability.v:jacobian_marginal",
        ),
        _c("equilibrium: relaxation rate and small-step limits", sympy="equilibrium"),
        _c(
            "AdamW equilibrium: expected weight norm and angular update (PyTorch's AdamW)",
            sympy="equilibrium",
        ),
        _c(
            "κ form: the scale recurrence without 1/η (LR 0 allowed), the stock buffer recovered",
            "KappaForm.v:kappa_form_equivalence KappaForm.v:kappa_form_buffer",
            "kappa_form",
        ),
        _c("mid-run start from any buffer", "MidRun.v:mid_run_equivalence", "mid_run"),
        _c(
            "normaliser: N_{εm²}(mx) = N_ε(x)",
            "Normaliser.v:normaliser_eps",
            "normaliser_eps",
        ),
        _c(
            "normaliser: a normalised network is jointly invariant, L(cθ; c²ε) = L(θ; ε), and "
            "the converted run with ε_t = ε/c_t² follows θ_t/c_t for every ε > 0",
            "NormaliserRun.v:normalised_network_joint_invariant "
            "NormaliserRun.v:normaliser_eps_training",
        ),
    ),
}

FURTHER_TEXT = "Further derived results: equilibrium, kappa_form, mid_run, normaliser_eps"


def coverage(clauses: tuple[Clause, ...], column: str) -> tuple[int, int]:
    """(clauses checked by ``column``'s tool, clauses): column is symbolic, kernel or numeric."""
    field = {"symbolic": "sympy", "kernel": "coq", "numeric": "measured"}[column]
    return sum(bool(getattr(c, field)) for c in clauses), len(clauses)


def results_cited(clauses: tuple[Clause, ...], column: str) -> tuple[str, ...]:
    """The ``proofs`` results whose status decides ``column`` (symbolic or kernel): the
    SymPy results the clauses name, or the results whose Coq theorems they cite."""
    from proofs import coq_check

    if column == "symbolic":
        return tuple(dict.fromkeys(r for c in clauses for r in c.sympy))
    owner = {
        f"{f}: {t}": name
        for registry in (coq_check.KERNEL_THEOREMS, coq_check.NEGATIONS)
        for name, pairs in registry.items()
        for f, t in pairs
    }
    return tuple(dict.fromkeys(owner[ref] for c in clauses for ref in c.coq))
