"""The recipes trained side by side: the stock recipe and its converted twins.

All recipes start from one θ_0 and take the same batch at every step (see
:mod:`gpu_validation.train`):

- ``a``: step decay with weight decay, the stock recipe (``equivalence.lockstep.SGDRecipe``:
  stock ``torch.optim.SGD(weight_decay=λ)`` and a stock ``MultiStepLR`` at the milestone steps);
- ``b``: its exact no-WD equivalent (the general theorem, ``proofs.general_schedule``) and
- ``c``: TEXP (the paper's tapered exponential, exact with buffer corrections), both the
  lockstep harness's converted twin (``equivalence.lockstep.converted``) of recipe a.

By the general theorem the twins' stored weights are θ_b = m_t · θ_a with
m_t = ``twin.run.current_scale()`` (= 2^k / c_t), so the network functions are equal.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

from equivalence.verify.lockstep import ConvertedTwin, SGDRecipe, converted

from .config import Config
from .model import conv_weights

__all__ = ["Recipe", "build_recipes", "stock_recipe"]


@dataclass
class Recipe:
    """One recipe's model, optimizer and per-step schedule, and its running sums."""

    name: str
    model: nn.Module
    step_model: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    params: list[torch.Tensor]
    twin: ConvertedTwin | None = None  #: None for the stock recipe a
    loss_sum: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    seen: int = 0
    prev_params: list[torch.Tensor] = field(default_factory=list)
    #: ln of the LR the last update used, unrescaled: η_t for a, η̃_t = η_t/(c_t c_{t+1}) for
    #: the twins (read from the converted run, never from the param groups, which hold the
    #: stock η between updates under the online converter)
    last_log_lr: float = math.nan

    def step(self) -> None:
        """One optimizer update and one scheduler step; records the LR that update used."""
        if self.twin is None:
            lr = float(self.optimizer.param_groups[0]["lr"])  # the stock η_t of this update
            self.optimizer.step()
            self.scheduler.step()
            self.last_log_lr = math.log(lr)
            return
        self.optimizer.step()
        self.scheduler.step()
        log_lr = self.twin.run.last_log_equivalent_lr()
        self.last_log_lr = math.nan if log_lr is None else log_lr

    @property
    def log2_scale(self) -> int:
        """k of the power-of-two rescaling (stored θ = 2^k θ̃); 0 for recipe a."""
        return self.twin.run.log2_rescale() if self.twin is not None else 0

    def scale(self) -> float:
        """m with stored θ = m · θ_a (1 for recipe a)."""
        return self.twin.run.current_scale() if self.twin is not None else 1.0


def stock_recipe(cfg: Config, steps_per_epoch: int) -> SGDRecipe:
    """Recipe a: stock SGD with weight decay, ``MultiStepLR`` stepped per step at the milestones."""
    milestones = [m * steps_per_epoch for m in cfg.milestones]
    return SGDRecipe(
        cfg.lr,
        cfg.momentum,
        cfg.weight_decay,
        lr_scheduler=lambda o: MultiStepLR(o, milestones=milestones, gamma=cfg.lr_gamma),
    )


def build_recipes(cfg: Config, base: nn.Module, steps_per_epoch: int) -> list[Recipe]:
    """Copies of ``base`` with their optimizers: a (stock), b (general), c (TEXP)."""
    total = cfg.epochs * steps_per_epoch
    stock = stock_recipe(cfg, steps_per_epoch)
    out = []
    for name in cfg.recipes:
        model = copy.deepcopy(base)
        params = conv_weights(model)
        if name == "a":
            opt, sched = stock.stock(params)
            out.append(Recipe(name, model, model, opt, sched, params))
            continue
        names = {id(p): n for n, p in model.named_parameters()}
        form = "general" if name == "b" else "texp"
        twin = converted(form, cfg.rescale_log2)(
            model, stock, [names[id(p)] for p in params], total
        )
        if len(twin.optimizer.param_groups) != 1:
            raise RuntimeError("expected one param group (all conv weights are invariant)")
        out.append(Recipe(name, model, model, twin.optimizer, twin.run.scheduler, params, twin))
    return out
