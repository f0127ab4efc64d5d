"""The packages' dependency directions, read from their import statements (``ast``).

``exp_lr_verify`` (the main job) sits above the four packages it orchestrates;
``gpu_validation`` builds on ``equivalence`` only; ``equivalence``, ``proofs`` and ``toy``
import none of the project's other packages. No private name (``_x``: a module or an object)
is imported across a package boundary.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package -> the project packages it may import
ALLOWED: dict[str, set[str]] = {
    "equivalence": set(),
    "proofs": set(),
    "toy": set(),
    "gpu_validation": {"equivalence"},
    "exp_lr_verify": {"equivalence", "proofs", "toy", "gpu_validation"},
}


def imports(source: str, module: str) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) of every import in ``source``, relative ones resolved.

    ``module``: the dotted name of the module holding ``source`` (``pkg.sub.mod``).
    """
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: -node.level]
                base = ".".join([*parts, base] if base else parts)
            out.append((base, [a.name for a in node.names]))
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source: str, module: str) -> list[str]:
    """Imports in ``source`` (of ``module``) that break the layering or cross with a private name."""
    own = module.split(".")[0]
    bad = []
    for target, names in imports(source, module):
        top = target.split(".")[0]
        if top not in ALLOWED or top == own:
            continue
        if top not in ALLOWED[own]:
            bad.append(
                f"{module} imports {target} ({own} may import {sorted(ALLOWED[own]) or 'none'})"
            )
        private = [p for p in [*target.split(".")[1:], *names] if _private(p)]
        if private:
            bad.append(f"{module} imports the private {private} of {target}")
    return bad


def _modules() -> list[tuple[str, Path]]:
    mods = []
    for pkg in ALLOWED:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1] + ["__init__"]
            mods.append((".".join(parts), path))
    return mods


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_dependency_directions_and_no_private_names_across_packages(pkg):
    found = [(m, p) for m, p in _modules() if m.split(".")[0] == pkg]
    assert found, f"no module found in {pkg}/"
    bad = [v for m, p in found for v in violations(p.read_text(encoding="utf-8"), m)]
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_main_job():
    bad = [
        m
        for m, p in _modules()
        if m.split(".")[0] != "exp_lr_verify"
        and any(t.split(".")[0] == "exp_lr_verify" for t, _ in imports(p.read_text(), m))
    ]
    assert not bad, bad


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import proofs", "gpu_validation.verify", "gpu_validation.verify imports proofs"),
        ("from toy.cli import main", "gpu_validation.x", "imports toy.cli"),
        ("from equivalence import lockstep", "proofs.x", "proofs.x imports equivalence"),
        ("from equivalence.cli import _plot", "exp_lr_verify.report", "private ['_plot']"),
        ("from proofs._core import run_all", "exp_lr_verify.symbolic", "private ['_core']"),
        (
            "from ..equivalence import x",
            "gpu_validation.sub.m",
            None,
        ),  # relative: gpu_validation.equivalence
    ],
)
def test_the_check_catches_each_kind_of_violation(source, module, expected):
    """Negative controls: each forbidden import is reported (and a relative one is resolved)."""
    found = violations(source, module)
    if expected is None:
        assert found == []
    else:
        assert any(expected in v for v in found), found


def test_relative_imports_resolve_within_the_package():
    assert imports("from .measure import rel", "gpu_validation.train") == [
        ("gpu_validation.measure", ["rel"])
    ]
    assert imports("from . import convert", "equivalence.lockstep") == [
        ("equivalence", ["convert"])
    ]
