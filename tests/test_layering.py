"""The packages' dependency directions, read from their import statements (``ast``).

``exp_lr_verify`` (the main job) sits above the four packages it orchestrates;
``gpu_validation`` builds on ``equivalence`` only; ``equivalence``, ``proofs`` and ``toy``
import none of the project's other packages. No private name (``_x``: a module or an object)
is imported across a package boundary.

Inside ``equivalence`` the same holds for its rooms (subpackages), in layer order
:data:`ROOMS`: ``schedule`` (numpy only: no torch), ``invariance``, ``optim``, ``monitor``,
``verify``, ``integrations`` (the training frameworks' adapters, which alone import
``transformers``, ``accelerate`` or Lightning); each imports only the rooms before it, none imports the package root or its
top-level modules (``cli``), and no private name crosses a room boundary. The modules of
``equivalence`` import one another without a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
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


# -- the rooms of equivalence/ ------------------------------------------------------------------

#: equivalence's rooms in layer order: each may import only the rooms before it (and itself);
#: ``integrations`` (the training frameworks' adapters) is last: nothing imports it
ROOMS = ("schedule", "invariance", "optim", "monitor", "verify", "integrations")
#: what the schedule room may not import at all
NO_TORCH = {"torch", "torchvision"}


def room_of(module: str) -> str | None:
    """The room of ``equivalence.<room>.…`` (None for another package or the top level)."""
    parts = module.split(".")
    if parts[0] != "equivalence" or len(parts) < 3 or parts[1] not in ROOMS:
        return None
    return parts[1]


def room_violations(source: str, module: str) -> list[str]:
    """Imports in ``source`` (of ``module``, in a room) that break the rooms' layering."""
    room = room_of(module)
    if room is None:
        return []
    allowed = set(ROOMS[: ROOMS.index(room) + 1])
    bad = []
    for target, names in imports(source, module):
        parts = target.split(".")
        if room == "schedule" and parts[0] in NO_TORCH:
            bad.append(f"{module} imports {target} (the schedule room is numpy only)")
        if parts[0] != "equivalence":
            continue
        # `from equivalence import optim` names rooms; anything else is the package root
        others = [parts[1]] if len(parts) > 1 else (names or ["equivalence"])
        for other in others:
            if other not in ROOMS:
                bad.append(
                    f"{module} imports equivalence's top level ({target}: {other}); "
                    "a room imports rooms only"
                )
            elif other not in allowed:
                bad.append(f"{module} imports {target} ({room} may import {sorted(allowed)})")
            elif other != room:
                private = [p for p in [*parts[2:], *names] if _private(p)]
                if private:
                    bad.append(f"{module} imports the private {private} of {target}")
    return bad


def _room_modules() -> list[tuple[str, Path]]:
    return [(m, p) for m, p in _modules() if room_of(m) is not None]


def test_every_room_exists_and_holds_modules():
    rooms = {room_of(m) for m, _ in _room_modules()}
    assert rooms == set(ROOMS), rooms
    top = sorted(p.name for p in (ROOT / "equivalence").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "_moved.py", "cli.py"], top


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_imports_only_the_rooms_before_it(room):
    bad = [
        v
        for m, p in _room_modules()
        if room_of(m) == room
        for v in room_violations(p.read_text(encoding="utf-8"), m)
    ]
    assert not bad, "\n".join(bad)


def test_no_module_of_equivalence_imports_the_other_packages():
    others = {"exp_lr_verify", "gpu_validation", "toy", "proofs"}
    bad = [
        f"{m} imports {t}"
        for m, p in _modules()
        if m.startswith("equivalence.")
        for t, _ in imports(p.read_text(encoding="utf-8"), m)
        if t.split(".")[0] in others
    ]
    assert not bad, bad


def test_the_package_root_and_the_schedule_room_load_without_torch():
    """``import equivalence`` and every module of the schedule room (and the command line,
    which is built on it) leave torch unimported."""
    mods = sorted(m for m, _ in _room_modules() if room_of(m) == "schedule")
    mods = [m.removesuffix(".__init__") for m in mods] + ["equivalence", "equivalence.cli"]
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'torchvision')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


#: the training frameworks the integrations adapt: imported only by their adapters
FRAMEWORKS = ("transformers", "accelerate", "pytorch_lightning", "lightning")


def test_nothing_outside_the_integrations_imports_them_or_a_framework():
    """No module of the project outside ``equivalence.integrations`` imports it or a training
    framework (inside functions too), and ``import equivalence`` with its PyTorch interface
    loads none of them."""
    bad = []
    for m, p in _modules():
        if m.startswith("equivalence.integrations."):
            continue
        for target, names in imports(p.read_text(encoding="utf-8"), m):
            parts = target.split(".")
            if parts[0] in FRAMEWORKS or target.startswith("equivalence.integrations"):
                bad.append(f"{m} imports {target}")
            elif target == "equivalence" and "integrations" in names:
                bad.append(f"{m} imports equivalence.integrations")
    assert not bad, bad
    code = (
        "import sys, equivalence\n"
        "equivalence.convert_optimizer, equivalence.Monitor, equivalence.audit\n"
        "import equivalence.integrations\n"
        f"print(sorted(k for k in sys.modules if k.split('.')[0] in {FRAMEWORKS!r}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import torch", "equivalence.schedule.exact", "numpy only"),
        ("from ..integrations import huggingface", "equivalence.verify.lockstep", "verify may"),
        ("from torch import nn", "equivalence.schedule.recipe", "numpy only"),
        ("from ..optim.run import ConvertedRun", "equivalence.schedule.x", "schedule may import"),
        ("from ..verify import lockstep", "equivalence.optim.converter", "optim may import"),
        ("from equivalence.verify.noise_floor import K", "equivalence.monitor.core", "monitor"),
        ("from ..verify.lockstep import x", "equivalence.invariance.core", "invariance may"),
        ("from .. import convert", "equivalence.verify.lockstep", "top level"),
        ("import equivalence", "equivalence.optim.x", "top level"),
        ("from ..cli import main", "equivalence.monitor.core", "top level"),
        ("from ..schedule.exact import _ratio_sequence", "equivalence.optim.x", "private"),
        ("from ..schedule import _checks", "equivalence.optim.x", "private"),
        ("from ..schedule.exact import ScaleSequenceError", "equivalence.optim.x", None),
        ("from .exact import _exp_or_overflow", "equivalence.schedule.recipe", None),
        ("from ..optim.converter import convert", "equivalence.verify.lockstep", None),
        ("import torch", "equivalence.optim.x", None),
    ],
)
def test_the_room_check_catches_each_kind_of_violation(source, module, expected):
    """Negative controls of the room rules (and imports they allow)."""
    found = room_violations(source, module)
    if expected is None:
        assert found == []
    else:
        assert any(expected in v for v in found), found


# -- no import cycle -----------------------------------------------------------------------------


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """module -> the modules of ``sources`` it imports (``pkg.__init__`` named ``pkg``).

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
    ``pkg``; imports anywhere in a module count (inside functions too).
    """

    def node(m: str) -> str:
        return m.removesuffix(".__init__")

    nodes = {node(m) for m in sources}
    graph: dict[str, set[str]] = {node(m): set() for m in sources}
    for m, src in sources.items():
        for target, names in imports(src, m):
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in nodes]
            if subs:
                graph[node(m)].update(subs)
            if target in nodes and len(subs) < len(names or [None]):
                graph[node(m)].add(target)
        graph[node(m)].discard(node(m))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_equivalence():
    sources = {
        m: p.read_text(encoding="utf-8") for m, p in _modules() if m.split(".")[0] == "equivalence"
    }
    graph = import_graph(sources)
    assert len(graph) > 30 and sum(map(len, graph.values())) > 50  # the graph is really read
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_and_resolves_imports():
    """Negative controls: the converter <-> precomputed-path cycle as it once was (one side
    importing inside a function), and a cycle through a package's ``__init__``, are found;
    ``from pkg import module`` is an edge to the module, ``from pkg import name`` to ``pkg``."""
    sources = {
        "eq.__init__": "from .optim import run\nfrom .optim import convert",
        "eq.optim.__init__": "from .converter import convert",
        "eq.optim.converter": "def f():\n    from .torch_sgd import convert_precomputed",
        "eq.optim.torch_sgd": "from .converter import ConvertedRun",
        "eq.optim.run": "from . import inplace",
        "eq.optim.inplace": "",
    }
    graph = import_graph(sources)
    assert graph["eq"] == {"eq.optim.run", "eq.optim"}
    assert graph["eq.optim.run"] == {"eq.optim.inplace"}
    assert cycles(graph) == [["eq.optim.converter", "eq.optim.torch_sgd"]]
    sources["eq.optim.torch_sgd"] = "from .run import ConvertedRun"  # the cut
    assert cycles(import_graph(sources)) == []
    sources["eq.optim.__init__"] = "from .run import ConvertedRun"  # the package re-exports run
    sources["eq.optim.run"] = "from . import convert"  # and run imports from the package
    assert cycles(import_graph(sources)) == [["eq.optim", "eq.optim.run"]]
