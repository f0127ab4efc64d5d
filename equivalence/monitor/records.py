"""The monitor's records and what is made of them: series, logger scalars, summaries, files.

:class:`Records` holds one row per recorded (step, group), with ``step``, ``group`` and the
:data:`FIELDS`; :class:`~equivalence.monitor.core.Monitor` fills it and hands its views on
(:meth:`Records.series`, :meth:`Records.scalars`, :meth:`Records.iter_scalars`,
:meth:`Records.summary`) and writes it (:meth:`Records.to_csv`, :meth:`Records.to_json`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIELDS", "Records"]

#: The per-step, per-group fields of a record (besides ``step`` and ``group``).
FIELDS = (
    "lr",
    "weight_norm",
    "weight_norm_stock",
    "effective_lr",
    "angular_update",
    "grad_norm_unit",
    "predicted_angular_update",
    "predicted_weight_norm",
    "relaxation_steps",
    "steps_to_equilibrium",
)


class Records:
    """The rows of a monitor, one per recorded (step, group), in recording order."""

    def __init__(self, group_names: Sequence[str]) -> None:
        self.group_names = list(group_names)
        self.rows: list[dict[str, Any]] = []

    def series(self, group: str, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one field of one group."""
        if group not in self.group_names:
            raise ValueError(f"group = {group!r} is not one of {self.group_names}")
        if field not in FIELDS:
            raise ValueError(f"field = {field!r} is not one of {FIELDS}")
        rows = [r for r in self.rows if r["group"] == group]
        return np.array([r["step"] for r in rows]), np.array([r[field] for r in rows], dtype=float)

    def scalars(self, prefix: str = "monitor") -> dict[str, float]:
        """The latest recorded step as ``{"prefix/group/field": value}`` (for a logger's add_scalar)."""
        recs = self.rows
        if not recs:
            return {}
        last = recs[-1]["step"]
        out: dict[str, float] = {}
        for r in reversed(recs):
            if r["step"] != last:
                break
            for f in FIELDS:
                out[f"{prefix}/{r['group']}/{f}"] = float(r[f])
        return out

    def iter_scalars(
        self, prefix: str = "monitor", start: int = 0
    ) -> Iterator[tuple[int, dict[str, float]]]:
        """(step, {"prefix/group/field": value}) for every recorded step from ``start`` on.

        For a TensorBoard-style logger::

            for step, d in mon.iter_scalars(start=last_logged + 1):
                for k, v in d.items():
                    writer.add_scalar(k, v, step)
        """
        out: dict[str, float] = {}
        current: int | None = None
        for r in self.rows:
            if r["step"] < start:
                continue
            if current is not None and r["step"] != current:
                yield current, out
                out = {}
            current = r["step"]
            for f in FIELDS:
                out[f"{prefix}/{r['group']}/{f}"] = float(r[f])
        if current is not None:
            yield current, out

    def summary(self, last_fraction: float = 0.25) -> dict[str, dict[str, float]]:
        """Per group: means over the last ``last_fraction`` of the records, measured vs predicted."""
        if not 0 < last_fraction <= 1:
            raise ValueError(f"last_fraction = {last_fraction!r} is outside the valid range (0, 1]")
        out: dict[str, dict[str, float]] = {}
        for gname in self.group_names:
            rows = [r for r in self.rows if r["group"] == gname]
            if not rows:
                continue
            tail = rows[int(len(rows) * (1 - last_fraction)) :] or rows[-1:]

            def mean(f: str, rows: list[dict[str, Any]] = tail) -> float:
                return float(np.nanmean([r[f] for r in rows])) if rows else math.nan

            out[gname] = {
                "steps": float(len(rows)),
                "final_weight_norm": rows[-1]["weight_norm"],
                "final_weight_norm_stock": rows[-1]["weight_norm_stock"],
                "final_effective_lr": rows[-1]["effective_lr"],
                "mean_angular_update": mean("angular_update"),
                "predicted_angular_update": mean("predicted_angular_update"),
                "mean_weight_norm_stock": mean("weight_norm_stock"),
                "predicted_weight_norm": mean("predicted_weight_norm"),
                "relaxation_steps": rows[-1]["relaxation_steps"],
            }
        return out

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per (step, group) with the columns ``step, group`` + :data:`FIELDS`."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=["step", "group", *FIELDS])
            wr.writeheader()
            for r in self.rows:
                wr.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        return p

    def to_dict(self) -> dict[str, Any]:
        """Columns per group: ``{"groups": {name: {"step": [...], field: [...]}}, "summary": ...}``."""
        cols: dict[str, dict[str, list[Any]]] = {}
        for gname in self.group_names:
            rows = [r for r in self.rows if r["group"] == gname]
            cols[gname] = {"step": [r["step"] for r in rows]}
            for f in FIELDS:
                cols[gname][f] = [_finite_or_none(r[f]) for r in rows]
        return {"fields": list(FIELDS), "groups": cols, "summary": _jsonable(self.summary())}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (non-finite values as ``null``)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict()))
        return p


def _finite_or_none(x: Any) -> Any:
    return x if not isinstance(x, float) or math.isfinite(x) else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return _finite_or_none(obj)
