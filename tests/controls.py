"""Negative controls as lockstep twins: wrong exponential-LR runs that must fail the harness.

Each is a :class:`equivalence.lockstep.Twin` built from a copy of the stock model, so the
harness runs it exactly as it runs the converted twin. Both give S (the invariant set) no
weight decay and every other trainable parameter the stock recipe's LR and weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

import equivalence
from equivalence.verify.lockstep import SGDRecipe, TwinFactory


class _WrongLR:
    def __init__(
        self, model: nn.Module, recipe: SGDRecipe, invariant: Sequence[str], steps: int, which: str
    ) -> None:
        named = dict(model.named_parameters())
        lrs, wds = recipe.per_step(steps)
        if which == "small_root":
            alpha = equivalence.alpha_root(recipe.lr, recipe.weight_decay, recipe.momentum)
            beta = recipe.momentum / alpha
            log_eq = math.log(recipe.lr) - (2.0 * np.arange(steps) + 1.0) * math.log(beta)
        else:
            log_eq = equivalence.ExpLRSchedule.general(lrs, wds, recipe.momentum).log_lrs
        self.model, self.which, self.lrs, self.wds = model, which, lrs, wds
        self.momentum = recipe.momentum
        self.eq_lrs = np.exp(log_eq)
        self.inv = [named[n] for n in invariant]
        inv_ids = {id(p) for p in self.inv}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in inv_ids]
        groups = [{"params": self.inv, "lr": float(self.eq_lrs[0]), "weight_decay": 0.0}]
        if rest:
            groups.append({"params": rest, "lr": recipe.lr, "weight_decay": float(wds[0])})
        self.optimizer = torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
        self.velocity = {id(p): torch.zeros_like(p) for p in self.inv}

    def order(self, n: int) -> torch.Tensor | None:
        return None

    def step(self, t: int) -> None:
        self.optimizer.param_groups[0]["lr"] = float(self.eq_lrs[t])
        if len(self.optimizer.param_groups) > 1:
            self.optimizer.param_groups[1]["lr"] = float(self.lrs[t])
            self.optimizer.param_groups[1]["weight_decay"] = float(self.wds[t])
        if self.which == "lr_inside":
            # Sutskever/Keras: v ← γ v + η̃_t g, θ ← θ − v (no weight decay on S)
            with torch.no_grad():
                for p in self.inv:
                    v = self.velocity[id(p)]
                    v.mul_(self.momentum).add_(p.grad, alpha=float(self.eq_lrs[t]))
                    p.sub_(v)
                    p.grad = None
        self.optimizer.step()  # the S group is a no-op for lr_inside (grads cleared)

    def scale(self) -> float | None:
        return None  # judged on the network function only


def small_root() -> TwinFactory:
    """η̃_t = η β^(−2t−1), β = γ/α (the other root of the characteristic equation), zero buffer."""
    return lambda model, recipe, inv, steps: _WrongLR(model, recipe, inv, steps, "small_root")


def lr_inside() -> TwinFactory:
    """The general form's η̃_t used the Sutskever/Keras way, v ← γv + η̃_t g, θ ← θ − v."""
    return lambda model, recipe, inv, steps: _WrongLR(model, recipe, inv, steps, "lr_inside")
