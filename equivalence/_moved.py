"""The modules that moved into the subpackages, still importable under their old names.

``import equivalence.converter`` (or ``from equivalence.inplace import X``) gives the module at
its new place, :data:`MOVED`, with a ``DeprecationWarning`` naming that place: the same module
object, so a monkeypatch through either name reaches the same module. As attributes of the
package (``from equivalence import lockstep``, ``equivalence.noise_floor``) the old names
resolve silently (``equivalence.__getattr__``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["MOVED", "install"]

#: old module name (under ``equivalence.``) -> its new name (under ``equivalence.``)
MOVED: dict[str, str] = {
    # the schedule mathematics
    "_checks": "schedule.validation",
    "exact": "schedule.exact",
    "closed_form": "schedule.closed_form",
    "schedules": "schedule.schedules",
    "recipe": "schedule.recipe",
    # the PyTorch optimizer conversions
    "converter": "optim.converter",
    "inplace": "optim.inplace",
    "torch_sgd": "optim.torch_sgd",
    "torch_adamw": "optim.torch_adamw",
    "sgd_variants": "optim.sgd_variants",
    "normalisers": "optim.normalisers",
    "compile_norms": "optim.compile_norms",
    # the scale-invariance audit
    "invariance_checks": "invariance.checks",
    "invariance_report": "invariance.report",
    "invariance_reasons": "invariance.reasons",
    "invariance_search": "invariance.search",
    "make_invariant": "invariance.make_invariant",
    "layer_kinds": "invariance.layer_kinds",
    # the verification harness
    "lockstep": "verify.lockstep",
    "noise_floor": "verify.noise_floor",
    "testing_nets": "verify.testing_nets",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``<package>.<old>`` and loads it as the module ``<package>.<new>``."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        pkg, _, old = fullname.rpartition(".")
        if pkg != self.package or old not in MOVED:
            return None
        new = f"{self.package}.{MOVED[old]}"
        warnings.warn(
            f"{fullname} has moved to {new}; import it from there",
            DeprecationWarning,
            stacklevel=2,  # the importing code (the import system's own frames are skipped)
        )
        return ModuleSpec(fullname, self, loader_state=new)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(spec.loader_state)
        spec.loader_state = module.__spec__  # the module's own spec, given back in exec_module
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system has just set the alias's spec on the module: give it back its own
        alias = module.__spec__
        if alias is not None and isinstance(alias.loader_state, ModuleSpec):
            module.__spec__ = alias.loader_state


def install(package: str) -> None:
    """Make the old names under ``package`` importable (once per process)."""
    if not any(isinstance(f, _Alias) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_Alias(package))
