"""The claims of the paper the main job checks, as typed records.

A :class:`Claim` carries one :class:`Status` per kind of evidence (symbolic: SymPy; kernel:
Coq; numeric: a computation judged by its error model); the claim holds unless one of them is
:attr:`Status.FAILED`.
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
