"""The property suite's adapter to the lockstep harness: a NetSpec and a Recipe in, a Trace out.

Everything is run by :mod:`equivalence.lockstep` and judged by :mod:`equivalence.noise_floor`
(the error model is documented there); this module only turns a drawn network and recipe into
the harness's arguments: the model (built from its spec, cast to ``dtype``), ``steps`` seeded
batches of ``batch`` samples (seed ``data_seed``), a probe batch (seed ``data_seed + 10_007``)
and the loss.
"""

from __future__ import annotations

from typing import Any

import torch
from strategies import Recipe

from equivalence.verify import lockstep
from equivalence.verify.noise_floor import JITTER_TWINS, Floor, Trace
from equivalence.verify.testing_nets import DTYPE, Net, NetSpec, batches, build, loss_fn


def harness_args(
    spec: NetSpec | Net,
    recipe: Recipe,
    *,
    batch: int = 8,
    data_seed: int = 0,
    dtype: torch.dtype = DTYPE,
    invariant: list[str] | None = None,
    eval_every: int = 1,
) -> dict[str, Any]:
    """The harness's arguments for ``spec`` (built) or ``net`` (copied by the harness)."""
    net = spec if isinstance(spec, Net) else build(spec)
    model = net.model if dtype == DTYPE else net.model.to(dtype)
    sp = net.spec

    def cast(y: torch.Tensor) -> torch.Tensor:
        return y.to(dtype) if y.is_floating_point() else y

    data = [(x.to(dtype), cast(y)) for x, y in batches(sp, recipe.steps, batch, data_seed)]
    probe = batches(sp, 1, batch, data_seed + 10_007)[0][0].to(dtype)
    return dict(
        model=model,
        batches=data,
        recipe=recipe.sgd,
        loss_fn=loss_fn(sp),
        invariant=net.invariant if invariant is None else invariant,
        probe=probe,
        eval_every=eval_every,
    )


def run_pair(
    spec: NetSpec | Net,
    recipe: Recipe,
    *,
    form: str = "general",
    rescale_log2: float | None = 16.0,
    norm_correct: bool = True,
    twin: lockstep.TwinFactory | None = None,
    keep_params: bool = False,
    **setup: Any,
) -> Trace:
    """The stock run of ``recipe`` and its converted twin (or ``twin``) on ``spec``."""
    factory = twin or lockstep.converted(form, rescale_log2, norm_correct)
    return lockstep.run(
        **harness_args(spec, recipe, **setup), twin=factory, keep_params=keep_params
    )


def noise_floor(
    spec: NetSpec | Net, recipe: Recipe, *, jitter_twins: int = JITTER_TWINS, **setup: Any
) -> Floor:
    """The measured noise floor of the stock run of ``recipe`` on ``spec``."""
    args = harness_args(spec, recipe, **setup)
    return lockstep.measure_floor(**args, jitter_twins=jitter_twins, seed=setup.get("data_seed", 0))
