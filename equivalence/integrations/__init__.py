"""Training frameworks, converted with one line: Hugging Face, Accelerate, Lightning.

- :mod:`equivalence.integrations.huggingface`: :class:`~.huggingface.ExpLRCallback`, a
  ``transformers.TrainerCallback`` that converts the Trainer's own optimizer (AdamW with its
  no-decay groups, or the one given in ``optimizers=``) at the start of training, so the
  Trainer's ``max_grad_norm`` clipping, schedulers and logging see the stock run.
- :mod:`equivalence.integrations.lightning`: :class:`~.lightning.ExpLRCallback`, a Lightning
  ``Callback`` that converts the optimizers of ``configure_optimizers`` at ``on_fit_start``
  (``gradient_clip_val`` exact) and sends the :class:`~equivalence.Monitor`'s scalars to the
  trainer's loggers.
- Accelerate needs no adapter: convert the optimizer with ``stock_grads=True`` before (or
  after) ``accelerator.prepare``; ``accelerator.clip_grad_norm_`` and ``accelerator.accumulate``
  then give the stock run (:func:`equivalence.convert_optimizer`).

Each adapter imports its framework when it is imported itself; ``import equivalence`` and this
package import none of them. All of them keep the invariant tensors' ``.grad`` in stock units
between backward and step (``stock_grads=True``,
:meth:`equivalence.optim.inplace.InPlaceConversion.set_stock_grads`): the frameworks clip and
log gradients with PyTorch's own functions, which would otherwise measure the converted
gradients g/m. Nothing in ``equivalence`` imports this package (``tests/test_layering.py``).
"""

from __future__ import annotations

__all__: list[str] = []
