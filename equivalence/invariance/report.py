"""What the scale-invariance audit found: :class:`ParamCheck` per tensor, :class:`AuditReport`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["AuditReport", "ParamCheck"]


@dataclass(frozen=True)
class ParamCheck:
    """The audit's findings for one parameter tensor.

    ``status``: ``"individual"`` (invariant on its own), ``"joint"`` (invariant
    only together with the rest of the invariant set), ``"not"`` or
    ``"frozen"``. The numbers are worst cases over the scales and both test
    points. ``loss_error`` = max |L(scaled) − L(θ)|/|L(θ)|: for the tensors of
    S, at the random joint scalings that confirmed S (each individual tensor
    by its own factor, the joint ones by one common factor); for a tensor not
    in S, scaling it alone when a forward test measured that (a tensor whose
    Euler number vanished but that failed the confirmation), else NaN (its
    Euler number, nonzero, is the evidence). ``grad_error`` = max
    ‖c_p ∇_p L(scaled) − ∇_p L(θ)‖ / ‖∇L(θ)‖ (degree −1, each scaling at one
    of the two points; NaN outside S).
    ``euler`` = |⟨∇_p L, θ_p⟩| / (‖∇L‖ ‖θ_p‖), ‖∇L‖ over every trainable
    tensor (the set's value for joint ones). ``reason_kind``: the reason's
    kind, a key of :data:`equivalence.invariance.reasons.KINDS` (for counting reasons).
    """

    name: str
    shape: tuple[int, ...]
    status: str
    loss_error: float
    grad_error: float = float("nan")
    euler: float = float("nan")
    reason: str = ""
    reason_kind: str = ""


@dataclass
class AuditReport:
    """What :func:`audit` found; ``report.is_invariant[name]`` says whether a parameter is in S.

    ``invariant_parameters()`` gives the tensors of S (of the audited model,
    ready for ``convert(invariant=...)``), ``norm_layers()`` the modules with
    running statistics whose inputs scale with S (for ``convert(norm_layers=...)``).
    ``joint_sets``: the tensors invariant only jointly, in the parts that the audit
    confirmed each on its own (each part can carry its own scale); one part when
    it could not split them.
    """

    model: nn.Module = field(repr=False)
    checks: dict[str, ParamCheck]
    norm_input_degrees: dict[str, float | None]
    scales: list[float]
    rtol: float
    grad_rtol: float
    set_loss_error: float
    set_grad_error: float
    set_euler: float
    eps_effect: float
    eps_values: dict[str, float]
    respect_eps: bool
    notes: list[str] = field(default_factory=list)
    joint_sets: list[list[str]] = field(default_factory=list)

    # -- the classification ---------------------------------------------------------
    @property
    def is_invariant(self) -> dict[str, bool]:
        """name -> whether the parameter belongs to the scale-invariant set S."""
        return {n: c.status in ("individual", "joint") for n, c in self.checks.items()}

    @property
    def individually_invariant(self) -> dict[str, bool]:
        return {n: c.status == "individual" for n, c in self.checks.items()}

    @property
    def invariant_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status in ("individual", "joint")]

    @property
    def individual_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "individual"]

    @property
    def joint_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "joint"]

    @property
    def not_invariant_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "not"]

    @property
    def frozen_names(self) -> list[str]:
        return [n for n, c in self.checks.items() if c.status == "frozen"]

    @property
    def reasons(self) -> dict[str, str]:
        """name -> what breaks invariance, for the parameters outside S."""
        return {n: c.reason for n, c in self.checks.items() if c.status == "not"}

    @property
    def fully_invariant(self) -> bool:
        """True when every trainable parameter is in S (the paper's setting)."""
        return not self.not_invariant_names and bool(self.invariant_names)

    @property
    def norm_layer_names(self) -> list[str]:
        """Normalisers (BatchNorm, GroupNorm, LayerNorm, InstanceNorm, RMSNorm) whose input is
        homogeneous of degree 1 in S: the converter keeps their eps at ε·m² and, where they track
        running statistics, rescales those."""
        return [n for n, d in self.norm_input_degrees.items() if d == 1.0]

    def invariant_parameters(self) -> list[torch.Tensor]:
        named = dict(self.model.named_parameters())
        return [named[n] for n in self.invariant_names]

    def norm_layers(self) -> list[nn.Module]:
        mods = dict(self.model.named_modules())
        return [mods[n] for n in self.norm_layer_names]

    # -- display ----------------------------------------------------------------------
    def __str__(self) -> str:
        rows = [("parameter", "shape", "status", "loss err", "grad err", "<g,θ>", "reason")]
        for c in self.checks.values():
            rows.append(
                (
                    c.name,
                    "x".join(map(str, c.shape)) or "scalar",
                    c.status,
                    _fmt(c.loss_error),
                    _fmt(c.grad_error),
                    _fmt(c.euler),
                    c.reason,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [
            f"Scale-invariance audit: {len(self.invariant_names)} invariant "
            f"({len(self.individual_names)} on their own, {len(self.joint_names)} only jointly), "
            f"{len(self.not_invariant_names)} not invariant, {len(self.frozen_names)} frozen; "
            f"scales c in [{min(self.scales):.3g}, {max(self.scales):.3g}], rtol {self.rtol:g}"
        ]
        for i, r in enumerate(rows):
            lines.append(
                "  ".join(r[k].ljust(widths[k]) for k in range(6)) + ("  " + r[6] if r[6] else "")
            )
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.joint_sets:
            sizes = ", ".join(str(len(p)) for p in self.joint_sets)
            lines.append(
                f"joint sets (each invariant on its own): {len(self.joint_sets)}, of {sizes} "
                "tensors"
            )
        lines.append(
            f"invariant set S: max loss change {_fmt(self.set_loss_error)}, gradient degree -1 "
            f"error {_fmt(self.set_grad_error)}, |<grad_S L, θ_S>|/(|grad||θ|) "
            f"{_fmt(self.set_euler)}"
        )
        degs = ", ".join(f"{n} ({_deg(d)})" for n, d in self.norm_input_degrees.items()) or "none"
        lines.append(f"running-statistics layers and the degree of their input in S: {degs}")
        lines.append(f"norm_layers() for convert(): {', '.join(self.norm_layer_names) or 'none'}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1e}"


def _deg(d: float | None) -> str:
    return "not homogeneous" if d is None else f"degree {d:g}"
