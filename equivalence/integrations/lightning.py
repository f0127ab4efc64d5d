"""Lightning, converted: one callback, ``Trainer(callbacks=[ExpLRCallback(invariant=...)])``.

At ``on_fit_start`` (after ``configure_optimizers``, before a checkpoint's optimizer state is
restored) :class:`ExpLRCallback` converts each optimizer holding invariant parameters in place
(:func:`equivalence.convert_optimizer`), with the invariant tensors' gradients kept in stock
units between backward and step (``stock_grads=True``). Lightning steps through
``optimizer.step(closure)`` and clips (``gradient_clip_val``, ``gradient_clip_algorithm``)
inside the closure with PyTorch's functions; the conversion evaluates the closure before every
step hook, so the clipping sees the stock gradients and the update gets them in converted
units. The schedulers of ``configure_optimizers``, built before, keep driving the converted
optimizers, and a checkpoint written during training resumes exactly (``ckpt_path=``: the
conversion's state travels in the optimizer's state).

It also attaches a :class:`~equivalence.Monitor` to each converted run and sends its scalars
(``monitor/<group>/<field>``: weight norms in stored and stock units, effective LR, angular
update, the equilibrium predictions) to the trainer's loggers every ``log_every_n_steps``
optimizer steps, one row per step (one host read per ``log_every_n_steps`` steps).

At ``on_fit_end`` (``restore_stock=True``) the conversion is removed: the module's weights,
running statistics and eps, and the optimizers' state, are the stock run's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..monitor.core import Monitor
from ..optim.run import ConvertedRun
from .common import check_callback_arguments, convert_framework_optimizer, resolve

if "lightning.pytorch" in sys.modules and "pytorch_lightning" not in sys.modules:
    import lightning.pytorch as pl
else:
    try:
        import pytorch_lightning as pl
    except ImportError:  # the unified package only
        import lightning.pytorch as pl

__all__ = ["ExpLRCallback", "monitor_groups"]


class ExpLRCallback(pl.Callback):
    """Convert the LightningModule's optimizers in place at ``on_fit_start`` (see the module).

    Args:
        invariant: the scale-invariant parameters (one set, or a sequence of sets), or a
            callable ``pl_module -> those``, e.g. ``lambda m: equivalence.audit(m.net,
            x).invariant_parameters()``.
        norm_layers: the normalisers they feed (or a callable); omitted, the probe finds them
            at the first update, on the inputs of the last training call of ``probe_model``.
        probe_model: the module the probe calls (or a callable ``pl_module -> module``;
            default the LightningModule itself, right when ``training_step`` calls
            ``self(x)``); ``None`` with ``norm_layers`` given skips the probe.
        monitor: attach an :class:`equivalence.Monitor` and log its scalars (default on).
        monitor_groups: name -> tensors (or a callable ``pl_module -> that``); default
            :func:`monitor_groups` of each run.
        log_every_n_steps: optimizer steps between two sends to the loggers (default the
            trainer's ``log_every_n_steps``; 0: never).
        restore_stock: remove the conversions at ``on_fit_end``.
        **convert_kwargs: passed to :func:`equivalence.convert_optimizer` (``check``,
            ``rescale_log2``).

    ``runs`` holds the :class:`~equivalence.ConvertedRun` of each converted optimizer,
    ``monitors`` their monitors.
    """

    _DEFAULT_PROBE = object()

    def __init__(
        self,
        invariant: Any,
        *,
        norm_layers: Any = None,
        probe_model: Any = _DEFAULT_PROBE,
        monitor: bool = True,
        monitor_groups: Any = None,
        log_every_n_steps: int | None = None,
        restore_stock: bool = True,
        **convert_kwargs: Any,
    ) -> None:
        super().__init__()
        check_callback_arguments(invariant, convert_kwargs, "pl_module")
        if log_every_n_steps is not None and (
            isinstance(log_every_n_steps, bool)
            or not isinstance(log_every_n_steps, int)
            or log_every_n_steps < 0
        ):
            raise ValueError(f"log_every_n_steps = {log_every_n_steps!r}: give an integer >= 0")
        self.invariant = invariant
        self.norm_layers = norm_layers
        self.probe_model = probe_model
        self.monitor = bool(monitor)
        self.monitor_groups = monitor_groups
        self.log_every_n_steps = log_every_n_steps
        self.restore_stock = bool(restore_stock)
        self.convert_kwargs = convert_kwargs
        self.runs: list[ConvertedRun] = []
        self.monitors: list[Monitor] = []
        self._logged: list[int] = []
        self._last_sent = -1

    # -- conversion ------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: nn.Module) -> None:
        self._close_monitors()
        self.runs, self.monitors, self._logged = [], [], []
        probe = pl_module if self.probe_model is self._DEFAULT_PROBE else self.probe_model
        probe = resolve(probe, pl_module)
        for opt in trainer.optimizers:
            run = convert_framework_optimizer(
                opt, pl_module, self.invariant, self.norm_layers, probe, **self.convert_kwargs
            )
            if run is None:
                continue
            self.runs.append(run)
            if self.monitor:
                groups = resolve(self.monitor_groups, pl_module)
                if groups is not None and len(self.runs) > 1:
                    raise ValueError(
                        "monitor_groups names one monitor's groups, but several optimizers were "
                        "converted: leave it out (one monitor per run, its sets as groups)"
                    )
                self.monitors.append(Monitor.for_run(run, groups or monitor_groups(run)))
                self._logged.append(-1)
        if not self.runs:
            raise ValueError(
                "ExpLRCallback: none of the invariant parameters is among the parameters of the "
                "optimizers of configure_optimizers"
            )

    # -- logging -----------------------------------------------------------------------------------
    def _every(self, trainer: Any) -> int:
        n = self.log_every_n_steps
        return int(trainer.log_every_n_steps if n is None else n)

    def on_train_batch_end(
        self, trainer: Any, pl_module: nn.Module, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = self._every(trainer)
        step = int(trainer.global_step)
        if every and self.monitors and step != self._last_sent and step % every == 0:
            self._send(trainer)
            self._last_sent = step

    def _send(self, trainer: Any) -> None:
        """Every recorded step not sent yet, one ``log_metrics`` row per step and logger."""
        loggers = list(getattr(trainer, "loggers", None) or [])
        for i, mon in enumerate(self.monitors):
            prefix = "monitor" if len(self.monitors) == 1 else f"monitor{i}"
            for t, scalars in mon.iter_scalars(prefix, start=self._logged[i] + 1):
                for lg in loggers:
                    lg.log_metrics(scalars, step=t)
                self._logged[i] = t

    def on_fit_end(self, trainer: Any, pl_module: nn.Module) -> None:
        if self.monitors and self._every(trainer):
            self._send(trainer)
        self._close_monitors()
        if self.restore_stock:
            for run in self.runs:
                run.remove(pl_module)

    def _close_monitors(self) -> None:
        for mon in self.monitors:
            mon.close()


def monitor_groups(run: ConvertedRun) -> dict[str, list[torch.Tensor]]:
    """One monitor group per invariant set of ``run`` (``set0``, ``set1``, ...), split by param
    group where a set spans several (``set0.group1``): a monitor group needs one learning rate."""
    conv = run.converter
    sets: Sequence[Any] = getattr(conv, "sets", [])
    where = {id(p): gi for gi, g in enumerate(run.optimizer.param_groups) for p in g["params"]}
    out: dict[str, list[torch.Tensor]] = {}
    for s in sets:
        by_group: dict[int, list[torch.Tensor]] = {}
        for p in s.params:
            by_group.setdefault(where[id(p)], []).append(p)
        if len(by_group) == 1:
            out[f"set{s.index}"] = next(iter(by_group.values()))
        else:
            out.update({f"set{s.index}.group{gi}": ps for gi, ps in by_group.items()})
    return out
