"""Settings of the main job."""

from __future__ import annotations

from dataclasses import dataclass

from equivalence.verify.noise_floor import JITTER_TWINS


@dataclass(frozen=True)
class VerifyConfig:
    """Settings of the main job; the defaults run everything that this machine allows.

    ``quick``: the reduced mode (shorter numeric runs, fewer noise-floor twins: never a weaker
    criterion, since fewer twins can only lower the floor). ``jitter_twins``: jitter twins of
    each noise floor (``None``: the property suite's number, 5 in the reduced mode).
    """

    out: str = "out/verify"
    data: str | None = None
    gpu: bool = False
    quick: bool = False
    coq: bool = True
    pdf: bool = True
    smoke: bool = True
    seed: int = 0
    progress: bool = True
    jitter_twins: int | None = None

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed = {self.seed} is outside the valid range seed >= 0")
        if self.jitter_twins is not None and self.jitter_twins < 0:
            raise ValueError(f"jitter_twins = {self.jitter_twins} is outside the valid range >= 0")

    @property
    def steps(self) -> int:
        """Training steps of each network comparison (the reduced mode runs half)."""
        return 100 if self.quick else 200

    @property
    def twins(self) -> int:
        """Jitter twins per noise floor."""
        if self.jitter_twins is not None:
            return self.jitter_twins
        return 5 if self.quick else JITTER_TWINS
