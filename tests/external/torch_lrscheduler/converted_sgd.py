"""pytest plugin for run.py: every ``SGD`` that PyTorch's LR-scheduler tests build, changed.

Loaded with ``-p converted_sgd`` (run.py puts this folder on PYTHONPATH). The mode comes from
the environment variable ``LRSCHED_SGD_MODE``:

- ``plain``: nothing changed (the test file as PyTorch runs it);
- ``stock``: stock ``torch.optim.SGD`` with weight decay added (``weight_decay = 1e-3`` in the
  defaults and in every group where the test gave 0 or nothing; kept otherwise): the reference;
- ``converted``: the same stock SGD with the same decay, then converted **in place** by
  ``equivalence.convert_optimizer(opt, invariant=<the first group's params>, norm_layers=(),
  check=False)``. The toy tensors of the tests are not scale invariant, hence ``check=False``;
  the tests check learning rates and momenta, not weights.

The replacement is a factory, not a subclass: the tests get a genuine ``torch.optim.SGD``
instance (as a user converting their own optimizer has). Only the name ``SGD`` in the test
module is replaced; ``torch.optim.SGD`` itself, Adam, AdamW and Rprop stay as they are. The
conversion object is kept alive by the hooks it registers on the optimizer and is not stored
anywhere else (storing the ``ConvertedRun``, which holds the optimizer strongly, on the
optimizer would create the reference cycle that ``test_no_cyclic_references`` looks for).

With ``LRSCHED_GRADS=zero`` (run.py's ``--grads zero``) each SGD built in ``stock`` or
``converted`` mode gets a step pre-hook that gives every parameter without a gradient a zero
``.grad`` for the duration of ``step()`` (a post-hook takes them away again, so that the Adam
optimizers some tests build on the same parameters never see them), in both modes alike. The
tests call ``optimizer.step()`` without any backward pass; stock SGD then skips every
parameter, and the converter refuses such a step (ConversionError: "found no gradient for the
invariant parameter"). Zero gradients let the comparison reach the rest of each test; the
reference sees the same zero gradients. The default, ``none``, leaves the tests as written.

With ``LRSCHED_REPORT=<path>`` each test's outcome (and for failures, the exception's one-line
message) is written to ``<path>`` as JSON when the session ends.
"""

from __future__ import annotations

import inspect
import json
import os
from functools import partial
from typing import Any

import torch

MODE_VAR = "LRSCHED_SGD_MODE"
REPORT_VAR = "LRSCHED_REPORT"
GRADS_VAR = "LRSCHED_GRADS"
MODES = ("plain", "stock", "converted")
GRADS = ("none", "zero")
ADDED_WEIGHT_DECAY = 1e-3

_StockSGD = torch.optim.SGD
_SIGNATURE = inspect.signature(_StockSGD.__init__)


def _with_decay(params: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``params`` and ``kwargs`` with weight decay added where the test gave none or 0."""
    kwargs = dict(kwargs)
    if not kwargs.get("weight_decay"):
        kwargs["weight_decay"] = ADDED_WEIGHT_DECAY
    if isinstance(params, torch.Tensor):
        return params, kwargs
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = []
        for g in params:
            g = dict(g)
            if "weight_decay" in g and not g["weight_decay"]:
                g["weight_decay"] = ADDED_WEIGHT_DECAY
            groups.append(g)
        params = groups
    return params, kwargs


COUNTS = {"built": 0, "converted": 0}


def _give_zero_grads(zeroed: list[torch.Tensor], opt: Any, args: Any, kwargs: Any) -> None:
    """Step pre-hook (registered before the conversion's): a zero .grad where there is none."""
    for g in opt.param_groups:
        for p in g["params"]:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
                zeroed.append(p)


def _take_zero_grads(zeroed: list[torch.Tensor], opt: Any, args: Any, kwargs: Any) -> None:
    """Step post-hook: the zero gradients go again, so that no other optimizer sees them."""
    for p in zeroed:
        p.grad = None
    zeroed.clear()


def make_sgd_factory(mode: str, grads: str = "none") -> Any:
    """The replacement for the test module's ``SGD`` in ``mode`` (and ``grads``)."""
    if mode not in MODES:
        raise ValueError(f"{MODE_VAR} must be one of {MODES}, got {mode!r}")
    if grads not in GRADS:
        raise ValueError(f"{GRADS_VAR} must be one of {GRADS}, got {grads!r}")

    def SGD(params: Any, *args: Any, **kwargs: Any) -> torch.optim.SGD:  # noqa: N802
        # SGD(params, 0.1): positional hyper-parameters by name, as the stock signature binds them
        bound = _SIGNATURE.bind(None, params, *args, **kwargs).arguments
        kwargs = {k: v for k, v in bound.items() if k not in ("self", "params")}
        params, kwargs = _with_decay(params, kwargs)
        opt = _StockSGD(params, **kwargs)
        COUNTS["built"] += 1
        if grads == "zero":
            zeroed: list[torch.Tensor] = []  # the hooks hold this list, never the optimizer
            opt.register_step_pre_hook(partial(_give_zero_grads, zeroed))
        if mode == "converted":
            from equivalence import convert_optimizer

            invariant = list(opt.param_groups[0]["params"])
            convert_optimizer(opt, invariant=invariant, norm_layers=(), check=False)
            COUNTS["converted"] += 1
        if grads == "zero":  # registered last: runs after the conversion's post-hook
            opt.register_step_post_hook(partial(_take_zero_grads, zeroed))
        return opt

    SGD.__doc__ = f"torch.optim.SGD for the LR-scheduler tests, mode {mode!r}, grads {grads!r}"
    return SGD


_results: dict[str, dict[str, str]] = {}


def pytest_configure(config: Any) -> None:
    mode = os.environ.get(MODE_VAR, "plain")
    if mode not in MODES:
        raise ValueError(f"{MODE_VAR} must be one of {MODES}, got {mode!r}")
    config._lrsched_mode = mode
    config._lrsched_grads = os.environ.get(GRADS_VAR, "none")


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Replace ``SGD`` in every collected test module (once the module is imported)."""
    mode = config._lrsched_mode
    if mode == "plain":
        return
    factory = make_sgd_factory(mode, config._lrsched_grads)
    seen = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is None or id(module) in seen:
            continue
        seen.add(id(module))
        if getattr(module, "SGD", None) is _StockSGD:
            module.SGD = factory


def _message(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def pytest_runtest_logreport(report: Any) -> None:
    name = report.nodeid
    entry = _results.setdefault(name, {"outcome": "passed", "message": ""})
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["message"] = _message(report)
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["message"] = _message(report)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(REPORT_VAR)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"tests": _results, "sgd": COUNTS}, f, indent=1, sort_keys=True)
