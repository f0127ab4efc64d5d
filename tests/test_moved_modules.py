"""The old flat module names of ``equivalence`` after the move into its subpackages.

``import equivalence.<old>`` gives the module at its new place (the same object, so a
monkeypatch through either name reaches one module) with a ``DeprecationWarning`` naming
that place; ``equivalence.<old>`` as an attribute (``from equivalence import lockstep``)
resolves silently; the public names of ``equivalence.__all__`` are where they were. The
project itself imports only the new places: no module of its five packages triggers the
warning, and no source file (tests included) imports an old name.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import equivalence
from equivalence._moved import MOVED

from .test_layering import imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("equivalence", "exp_lr_verify", "gpu_validation", "toy", "proofs")


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_imports_the_new_module_with_a_deprecation_warning(old, monkeypatch):
    name, new = f"equivalence.{old}", f"equivalence.{MOVED[old]}"
    module = importlib.import_module(new)
    monkeypatch.delitem(sys.modules, name, raising=False)  # as on its first import
    with pytest.warns(DeprecationWarning, match=rf"{name} has moved to {new}"):
        alias = importlib.import_module(name)
    assert alias is module
    assert module.__name__ == new and module.__spec__.name == new  # its own spec kept


def test_from_an_old_module_path_import_a_name(monkeypatch):
    monkeypatch.delitem(sys.modules, "equivalence.inplace", raising=False)
    with pytest.warns(DeprecationWarning, match="equivalence.optim.inplace"):
        from equivalence.inplace import InvarianceCheckError
    from equivalence.optim.inplace import InvarianceCheckError as new

    assert InvarianceCheckError is new


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_name_is_a_silent_attribute(old):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(equivalence, old) is importlib.import_module(f"equivalence.{MOVED[old]}")


def test_a_monkeypatch_through_either_path_reaches_the_same_module(monkeypatch):
    from equivalence.invariance import search

    monkeypatch.setattr("equivalence.invariance_search.ENUMERATION_BUDGET", 7)  # attribute path
    assert search.ENUMERATION_BUDGET == 7
    monkeypatch.delitem(sys.modules, "equivalence.torch_adamw", raising=False)
    with pytest.warns(DeprecationWarning):
        import equivalence.torch_adamw as old
    from equivalence.optim import torch_adamw

    monkeypatch.setattr(old, "_DIGITS", 12)
    assert torch_adamw._DIGITS == 12


def test_the_public_names_are_unchanged():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in equivalence.__all__:
            assert getattr(equivalence, name) is not None, name
    assert callable(equivalence.audit) and equivalence.audit.__module__.startswith("equivalence.")
    from equivalence import lockstep, noise_floor, schedules, testing_nets

    assert (lockstep.__name__, noise_floor.__name__, testing_nets.__name__) == (
        "equivalence.verify.lockstep",
        "equivalence.verify.noise_floor",
        "equivalence.verify.testing_nets",
    )
    assert schedules.__name__ == "equivalence.schedule.schedules"


def test_importing_the_project_triggers_no_moved_module_warning():
    """Every module of the five packages, imported in a fresh interpreter with the old names'
    warning turned into an error."""
    code = (
        "import importlib, pkgutil, warnings\n"
        "warnings.filterwarnings('error', message='.* has moved to equivalence', "
        "category=DeprecationWarning)\n"
        f"for top in {PACKAGES!r}:\n"
        "    pkg = importlib.import_module(top)\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, top + '.'):\n"
        "        if not m.name.endswith('__main__'):\n"
        "            importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def old_imports(source: str, module: str) -> list[str]:
    """The imports in ``source`` (of ``module``) of an old module name: ``equivalence.<old>``,
    or ``from equivalence import <old>`` beyond the public names of ``equivalence.__all__``
    (``schedules``)."""
    old_paths = {f"equivalence.{old}" for old in MOVED}
    public = set(equivalence.__all__)
    bad = []
    for target, names in imports(source, module):
        if any(target == p or target.startswith(p + ".") for p in old_paths):
            bad.append(target)
        elif target == "equivalence":
            bad += [f"equivalence: {n}" for n in names if n in MOVED and n not in public]
    return bad


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import equivalence.converter", ["equivalence.converter"]),
        ("from equivalence.noise_floor import K", ["equivalence.noise_floor"]),
        ("from equivalence import lockstep, audit", ["equivalence: lockstep"]),
        ("from . import inplace", ["equivalence: inplace"]),
        ("from equivalence import schedules, audit", []),
        ("from equivalence.verify import lockstep", []),
        ("import equivalence.invariance.search", []),
    ],
)
def test_the_old_import_check_catches_each_form(source, found):
    module = "equivalence.x" if source.startswith("from .") else "tests.x"
    assert old_imports(source, module) == found


def test_no_source_file_imports_an_old_module_name():
    """Statically, every Python file of the project (tests and benchmarks included)."""
    bad = []
    for top in (*PACKAGES, "tests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == Path(__file__).resolve():  # this file imports the old names on purpose
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            source = path.read_text(encoding="utf-8")
            bad += [f"{path.relative_to(ROOT)}: {b}" for b in old_imports(source, module)]
    assert not bad, "\n".join(bad)


def test_the_new_tree_has_no_module_left_at_an_old_path():
    """The aliases stand in for moved files only: none of the old names is a file any more."""
    left = [old for old in MOVED if (ROOT / "equivalence" / f"{old}.py").exists()]
    assert not left, left
