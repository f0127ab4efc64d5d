"""Hugging Face ``transformers.Trainer``, converted: one callback.

::

    from equivalence.integrations.huggingface import ExpLRCallback

    trainer = Trainer(model, args, train_dataset=ds, callbacks=[ExpLRCallback(invariant=inv)])
    trainer.train()  # equals the stock Trainer run; trainer.model is in stock units after it

At ``on_train_begin`` the callback converts the optimizer the Trainer built (its AdamW with the
no-decay groups for biases and LayerNorm weights, or the one passed in ``optimizers=``) in
place, with the invariant tensors' gradients kept in stock units between backward and step
(``stock_grads=True``): the Trainer's ``max_grad_norm`` clipping (``accelerator.clip_grad_norm_``)
and its logged ``grad_norm`` are the stock run's. The Trainer's scheduler, built before, keeps
driving the converted optimizer. At ``on_train_end`` the conversion is removed
(``restore_stock=True``): the model's weights, running statistics and eps and the optimizer's
state are put in stock units, so ``trainer.save_model()``, ``trainer.evaluate()`` and a further
``trainer.train()`` see the stock run's model.

Refused, with the reason: resuming a Trainer checkpoint (its optimizer state is loaded before
any callback runs, without the conversion's state) and ``load_best_model_at_end`` (it loads a
checkpoint written at another scale before ``on_train_end``). Checkpoints written during
training hold the converted weights (scale m = ``callback.run.current_scale()``).
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from ..optim.run import ConvertedRun
from .common import check_callback_arguments, convert_framework_optimizer

__all__ = ["ExpLRCallback"]


class ExpLRCallback(TrainerCallback):
    """Convert the Trainer's optimizer in place at the start of training (see the module).

    Args:
        invariant: the scale-invariant parameters (one set, or a sequence of sets), or a
            callable ``model -> those``, e.g. ``lambda m: equivalence.audit(m, batch,
            loss_fn=lambda o: o.loss).invariant_parameters()``.
        norm_layers: the normalisers they feed (or a callable ``model -> those``); omitted,
            they are found by the probe at the first update (the Trainer's model is given as
            ``model=``).
        restore_stock: remove the conversion at ``on_train_end`` (model and optimizer in stock
            units).
        **convert_kwargs: passed to :func:`equivalence.convert_optimizer` (``check``,
            ``rescale_log2``).

    ``run`` is the :class:`~equivalence.ConvertedRun` once training has begun
    (``run.export(model)``, ``run.current_scale()``).
    """

    def __init__(
        self,
        invariant: Any,
        *,
        norm_layers: Any = None,
        restore_stock: bool = True,
        **convert_kwargs: Any,
    ) -> None:
        check_callback_arguments(invariant, convert_kwargs, "model")
        self.invariant = invariant
        self.norm_layers = norm_layers
        self.restore_stock = bool(restore_stock)
        self.convert_kwargs = convert_kwargs
        self.run: ConvertedRun | None = None

    def on_train_begin(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        optimizer: Any = None,
        **kw: Any,
    ) -> None:
        if model is None or optimizer is None:
            raise RuntimeError("the Trainer gave the callback no model or optimizer")
        if state.global_step > 0:
            raise RuntimeError(
                f"ExpLRCallback cannot resume a Trainer checkpoint (global step "
                f"{state.global_step}): the Trainer loads the optimizer state before callbacks run, "
                "without the conversion's state. Resume with the converted optimizer built before "
                "the Trainer: run = equivalence.convert_optimizer(opt, ..., stock_grads=True) and "
                "Trainer(..., optimizers=(opt, scheduler))"
            )
        if getattr(args, "load_best_model_at_end", False):
            raise RuntimeError(
                "ExpLRCallback does not support load_best_model_at_end: the best checkpoint holds "
                "weights at the scale of its own step. Keep the best stock model with "
                "callback.run.export(model) in your own callback, or train without it"
            )
        run = convert_framework_optimizer(
            optimizer,
            model,
            self.invariant,
            self.norm_layers,
            probe_model=model,
            **self.convert_kwargs,
        )
        if run is None:
            raise ValueError("none of the invariant parameters is among the optimizer's parameters")
        self.run = run

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        if self.restore_stock and self.run is not None and model is not None:
            self.run.remove(model)
