"""Griffe extensions for the API reference (``mkdocs.yml`` loads both).

``LazyExports``: ``equivalence/__init__.py`` imports its PyTorch interface on first use (a
module ``__getattr__``), so a static reading of the package does not see
``equivalence.convert_optimizer`` and its kin. This extension imports the package, resolves
every name of ``equivalence.__all__`` that the static tree lacks, and adds it as an alias of
the object where it is defined, so that ``::: equivalence.<name>`` works for every public name
whichever submodule defines it.

``SphinxRoles``: the docstrings cite other objects with Sphinx roles (``:func:`x```); in
Markdown these render as the role's name followed by code, so the role is dropped and the
name kept as code (``~a.b.C`` shows ``C``, as Sphinx does); a paragraph ending in ``::``
(a reST literal block follows) ends in ``:``; the equilibrium's Δ* and ‖w*‖ keep their stars
(Markdown would read them as emphasis).
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const|math):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(\S)::$", re.MULTILINE)
_STAR = re.compile(r"Δ\*|\*(?=‖)")  # the equilibrium's Δ* and ‖w*‖: stars, not emphasis


class LazyExports(griffe.Extension):
    """Alias every lazily exported public name of a package to its defining object."""

    def __init__(self, packages: list[str] | None = None) -> None:
        super().__init__()
        self.packages = set(packages or ["equivalence"])

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.path not in self.packages:
            return
        module = importlib.import_module(pkg.path)
        public = list(getattr(module, "__all__", []))
        for name in public:
            if name in pkg.members:
                continue
            target = _path_of(getattr(module, name))
            if target is None:
                raise ValueError(f"{pkg.path}.{name}: cannot tell where it is defined")
            pkg.set_member(name, griffe.Alias(name, target, parent=pkg))
        pkg.exports = public


class SphinxRoles(griffe.Extension):
    """Render Sphinx cross-reference roles as code and ``::`` as ``:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _LITERAL.sub(r"\1:", _ROLE.sub(_code, obj.docstring.value))
            obj.docstring.value = _STAR.sub(lambda m: m.group().replace("*", "\\*"), text)


def _code(match: re.Match[str]) -> str:
    short, name = match.groups()
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


def _path_of(obj: Any) -> str | None:
    """``module.qualname`` of a class or function, or a module's own name."""
    if inspect.ismodule(obj):
        return str(obj.__name__)
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return None
