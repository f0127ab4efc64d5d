"""Run a stock SGD or AdamW recipe and its converted twin side by side, and judge them.

"Does my converted run really equal my stock run, on my model and my data?"::

    from equivalence.verify.lockstep import SGDRecipe, verify

    recipe = SGDRecipe(lr=0.1, momentum=0.9, weight_decay=5e-4,
                       lr_scheduler=lambda o: MultiStepLR(o, [100, 150], 0.1))
    verdict = verify(model, batches, recipe, loss_fn=F.cross_entropy,
                     invariant=equivalence.audit(model, x).invariant_parameters(), probe=x)
    assert verdict.ok, verdict.reasons

:func:`run` trains, from copies of ``model``, the stock recipe (stock ``torch.optim.SGD``
with ``weight_decay``, the recipe's stock scheduler or per-step LR and weight decay set by
hand) and a *twin* on the same batches, and records their divergence at every step (a
:class:`~equivalence.verify.noise_floor.Trace`): the converted run (:func:`converted`, through
``equivalence.convert``: the general theorem, ``proofs.general_schedule``), or a
rounding-level perturbation of the stock run itself (:func:`perturbed`, the noise-floor
twins), or any object with the :class:`Twin` protocol (a negative control). An
:class:`AdamWRecipe` (stock ``torch.optim.AdamW``) runs the same way, its converted twin
being ``equivalence.convert_adamw``'s stock Adam (``proofs.adamw``).
:func:`measure_floor` runs the noise-floor twins against one recorded stock run, and
:func:`verify` runs the converted twin and judges it with
:func:`equivalence.verify.noise_floor.judge` (the error model is documented there).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from ..invariance.layer_kinds import NORM_CLASSES
from ..optim.converter import convert
from ..optim.sgd_variants import SGDVariantEquivalence, convert_sgd_variant
from ..optim.torch_adamw import AdamWEquivalence, convert_adamw
from .noise_floor import JITTER_TWINS, JITTER_ULPS, Floor, K, Trace, Verdict, judge, rel_err

__all__ = [
    "AdamWRecipe",
    "ConvertedAdamWTwin",
    "ConvertedTwin",
    "ConvertedVariantTwin",
    "Recipe",
    "SGDRecipe",
    "StockRecord",
    "Twin",
    "TwinFactory",
    "converted",
    "measure_floor",
    "normaliser_spread",
    "perturbed",
    "run",
    "verify",
]

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_lr_wd(lr: float, weight_decay: float) -> None:
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr = {lr} is outside the valid range 0 < lr < inf")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise ValueError(f"weight_decay = {weight_decay} is outside the valid range 0 <= wd < inf")


@dataclass(frozen=True)
class SGDRecipe:
    """A stock recipe: ``torch.optim.SGD(lr, momentum, weight_decay)`` and how its LR moves.

    ``dampening`` > 0 or ``nesterov``: the SGD variants, converted by
    ``equivalence.convert_sgd_variant`` (proofs/dampening.py, proofs/nesterov.py).
    ``lr_scheduler``: a stock PyTorch scheduler factory (optimizer -> LRScheduler), stepped
    once per training step; or ``lrs``: the per-step LR, set by hand on the stock optimizer
    before each step (and handed to ``convert`` as the schedule); or neither (constant).
    ``weight_decays``: a per-step weight decay, set by hand likewise (``weight_decay`` is
    then its first value).
    """

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    lrs: np.ndarray | None = field(default=None, repr=False)
    weight_decays: np.ndarray | None = field(default=None, repr=False)
    dampening: float = 0.0
    nesterov: bool = False

    #: optimizer state the noise-floor jitter twins move besides the weights (none: the
    #: momentum buffer enters the weights only through the update, rounded with it)
    jittered_state: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        _check_lr_wd(self.lr, self.weight_decay)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(
                f"momentum = {self.momentum} is outside the valid range 0 <= momentum < 1"
            )
        if self.lr_scheduler is not None and self.lrs is not None:
            raise ValueError("lr_scheduler and lrs are two ways of giving the LR: pass one of them")
        if not 0.0 <= self.dampening <= 1.0:
            raise ValueError(
                f"dampening = {self.dampening} is outside the valid range 0 <= dampening <= 1"
            )
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0 (got momentum = "
                f"{self.momentum}, dampening = {self.dampening}), as torch.optim.SGD does"
            )

    @property
    def variant(self) -> bool:
        """Dampening or Nesterov momentum (``convert_sgd_variant``'s maps)."""
        return self.momentum > 0 and (self.dampening > 0 or self.nesterov)

    def stock(self, params: Sequence[torch.Tensor]) -> tuple[torch.optim.SGD, Any]:
        """Stock ``torch.optim.SGD`` over ``params`` and its stock scheduler (or None)."""
        opt = torch.optim.SGD(
            list(params),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            dampening=self.dampening,
            nesterov=self.nesterov,
        )
        return opt, (self.lr_scheduler(opt) if self.lr_scheduler is not None else None)

    def per_step(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(LR, weight decay) at steps 0 .. steps−1, as the stock optimizer sees them.

        Read from a stock SGD over a dummy parameter driven by the recipe's own scheduler.
        """
        opt, sched = self.stock([torch.zeros(1)])
        lrs, wds = np.empty(steps), np.empty(steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in range(steps):
                self.set_step(opt, t)
                lrs[t] = opt.param_groups[0]["lr"]
                wds[t] = opt.param_groups[0]["weight_decay"]
                if sched is not None:
                    sched.step()
        return lrs, wds

    def set_step(self, opt: torch.optim.Optimizer, t: int) -> None:
        """Set step ``t``'s LR and weight decay by hand on a stock optimizer (when per step)."""
        for g in opt.param_groups:
            if self.lrs is not None:
                g["lr"] = float(self.lrs[t])
            if self.weight_decays is not None:
                g["weight_decay"] = float(self.weight_decays[t])


@dataclass(frozen=True)
class AdamWRecipe:
    """A stock recipe: ``torch.optim.AdamW(lr, betas, eps, weight_decay, amsgrad, ...)``.

    ``lr_scheduler``: a stock PyTorch scheduler factory (optimizer -> LRScheduler), stepped
    once per training step (OneCycleLR may cycle β1 too), or None (constant). The converted
    twin is ``equivalence.convert_adamw``'s stock Adam (proofs/adamw.py).
    """

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    amsgrad: bool = False
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    maximize: bool = False
    foreach: bool | None = None
    fused: bool | None = None

    #: optimizer state the noise-floor jitter twins move too: Adam divides the first moment
    #: by the root of the second coordinate by coordinate, so a rounding of either buffer
    #: changes that coordinate's step at first order, as the weights' rounding does
    jittered_state: ClassVar[tuple[str, ...]] = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __post_init__(self) -> None:
        _check_lr_wd(self.lr, self.weight_decay)
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}] = {b} is outside the valid range 0 <= beta < 1")
        if not (self.eps >= 0 and math.isfinite(self.eps)):
            raise ValueError(f"eps = {self.eps} is outside the valid range 0 <= eps < inf")

    def stock(self, params: Sequence[torch.Tensor]) -> tuple[torch.optim.AdamW, Any]:
        """Stock ``torch.optim.AdamW`` over ``params`` and its stock scheduler (or None)."""
        opt = torch.optim.AdamW(
            list(params),
            lr=self.lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            amsgrad=self.amsgrad,
            maximize=self.maximize,
            foreach=self.foreach,
            fused=self.fused,
        )
        return opt, (self.lr_scheduler(opt) if self.lr_scheduler is not None else None)

    def set_step(self, opt: torch.optim.Optimizer, t: int) -> None:
        """Nothing is set by hand: the LR moves through ``lr_scheduler`` only."""


class Recipe(Protocol):
    """What the harness needs of a stock recipe (:class:`SGDRecipe`, :class:`AdamWRecipe`, or
    a caller's own: a stock run is then compared with a twin the caller builds).

    ``stock(params)``: the stock optimizer over ``params`` and its scheduler (or None);
    ``set_step(opt, t)``: what is set by hand before step t; ``jittered_state``: the
    optimizer-state entries the noise-floor jitter twins move besides the weights.
    """

    jittered_state: ClassVar[tuple[str, ...]]

    def stock(self, params: Sequence[torch.Tensor]) -> tuple[torch.optim.Optimizer, Any]: ...

    def set_step(self, opt: torch.optim.Optimizer, t: int) -> None: ...


class Twin(Protocol):
    """The run compared with the stock run, one step at a time.

    ``model``: its network (a copy of the stock model); ``optimizer``: zeroed before every
    backward pass. After the backward pass of step t, :meth:`step` updates the weights;
    :meth:`scale` is then m_t with stored invariant weights = m_t × the stock run's (None:
    the twin claims no scale and its parameters are not compared); :meth:`order` is the
    order in which it is fed the samples of a batch of ``n`` (None: as given).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer

    def order(self, n: int) -> torch.Tensor | None: ...

    def step(self, t: int) -> None: ...

    def scale(self) -> float | None: ...


#: builds a twin from (a copy of the model, the stock recipe, the invariant parameters' names,
#: the number of steps)
TwinFactory = Callable[[nn.Module, Recipe, Sequence[str], int], Twin]


class ConvertedTwin:
    """``equivalence.convert``'s optimizer and scheduler (``run``: the ConvertedRun) on ``model``.

    Every trainable parameter of ``model`` is handed to ``convert``; those named in
    ``invariant`` form the scale-invariant set S.
    """

    def __init__(
        self,
        model: nn.Module,
        recipe: SGDRecipe,
        invariant: Sequence[str],
        steps: int,
        form: str,
        rescale_log2: float | None,
        correct_norm_layers: bool,
        adjust_eps: bool = True,
    ) -> None:
        named = dict(model.named_parameters())
        self.model = model
        self.has_invariant = bool(invariant)
        self.run = convert(
            [p for p in model.parameters() if p.requires_grad],
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            steps=steps,
            invariant=[named[n] for n in invariant],
            lr_scheduler=recipe.lr_scheduler if recipe.lr_scheduler is not None else recipe.lrs,
            weight_decay_schedule=recipe.weight_decays,
            norm_layers=[m for m in model.modules() if isinstance(m, NORM_CLASSES)]
            if correct_norm_layers
            else (),
            form=form,
            rescale_log2=rescale_log2,
            adjust_eps=adjust_eps,
            check=False,  # the harness judges the run itself, wrong sets included
        )
        self.optimizer = self.run.optimizer

    def order(self, n: int) -> torch.Tensor | None:
        return None

    def step(self, t: int) -> None:
        self.run.optimizer.step()
        self.run.scheduler.step()

    def scale(self) -> float | None:
        return self.run.current_scale() if self.has_invariant else 1.0


class _HookedTwin:
    """A converter that wraps the recipe's own stock optimizer, on ``model``.

    The stock optimizer of ``recipe`` over every trainable parameter of ``model`` is handed
    to ``convert`` (a ``convert_*`` function of the package); those named in ``invariant``
    form the scale-invariant set S, and every normaliser of ``model`` is handed over
    (``correct_norm_layers``) so that its eps and running statistics follow the scale. The
    recipe's scheduler is attached to the converted optimizer, as a user attaches theirs.
    """

    def __init__(
        self,
        model: nn.Module,
        recipe: Any,
        invariant: Sequence[str],
        correct_norm_layers: bool,
        convert: Callable[..., Any],
        **options: Any,
    ) -> None:
        named = dict(model.named_parameters())
        self.model, self.recipe = model, recipe
        self.has_invariant = bool(invariant)
        stock, _ = recipe.stock([p for p in model.parameters() if p.requires_grad])
        self.run = convert(
            stock,
            invariant=[named[n] for n in invariant],
            norm_layers=[m for m in model.modules() if isinstance(m, NORM_CLASSES)]
            if correct_norm_layers
            else (),
            check=False,  # the harness judges the run itself, wrong sets included
            **options,
        )
        self.optimizer: torch.optim.Optimizer = self.run.optimizer
        self.scheduler = (
            recipe.lr_scheduler(self.optimizer) if recipe.lr_scheduler is not None else None
        )

    def order(self, n: int) -> torch.Tensor | None:
        return None

    def step(self, t: int) -> None:
        self.recipe.set_step(self.optimizer, t)  # the hooks read the stock values by hand too
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()

    def scale(self) -> float | None:
        return self.run.current_scale() if self.has_invariant else 1.0


class ConvertedVariantTwin(_HookedTwin):
    """``equivalence.convert_sgd_variant``'s stock SGD (``run``) on ``model``: the recipe's SGD
    with dampening or Nesterov momentum, converted."""

    run: SGDVariantEquivalence

    def __init__(
        self,
        model: nn.Module,
        recipe: SGDRecipe,
        invariant: Sequence[str],
        correct_norm_layers: bool,
    ) -> None:
        super().__init__(model, recipe, invariant, correct_norm_layers, convert_sgd_variant)


class ConvertedAdamWTwin(_HookedTwin):
    """``equivalence.convert_adamw``'s stock Adam (``run``: the AdamWEquivalence) on ``model``:
    the recipe's AdamW, converted."""

    run: AdamWEquivalence

    def __init__(
        self,
        model: nn.Module,
        recipe: AdamWRecipe,
        invariant: Sequence[str],
        rescale_log2: float | None,
        correct_norm_layers: bool,
    ) -> None:
        super().__init__(
            model, recipe, invariant, correct_norm_layers, convert_adamw, rescale_log2=rescale_log2
        )


def converted(
    form: str = "general",
    rescale_log2: float | None = 16.0,
    correct_norm_layers: bool = True,
    adjust_eps: bool = True,
) -> TwinFactory:
    """The converted twin: ``equivalence.convert`` with the stock recipe's LR, momentum and WD
    (an :class:`AdamWRecipe`: ``equivalence.convert_adamw``, :class:`ConvertedAdamWTwin`).

    ``form``: ``"general"`` (η̃_t = η_t / (c_t c_{t+1})), ``"closed_form"`` (η α^(−2t−1) with
    its initial buffer) or ``"texp"``; ``rescale_log2``: the power-of-two rescaling period;
    ``correct_norm_layers``: hand every normaliser to ``convert`` (running statistics and eps
    follow the scale: eval mode and eps > 0 stay exact); ``adjust_eps=False`` keeps the
    normalisers' eps (a negative control: exact only for eps = 0).
    """

    def make(model: nn.Module, recipe: Recipe, invariant: Sequence[str], steps: int) -> Twin:
        if isinstance(recipe, AdamWRecipe):
            if form != "general" or not adjust_eps:
                raise ValueError(
                    f"form = {form!r}, adjust_eps = {adjust_eps!r}: an AdamW recipe has one "
                    "converted form (form='general', adjust_eps=True)"
                )
            return ConvertedAdamWTwin(model, recipe, invariant, rescale_log2, correct_norm_layers)
        if not isinstance(recipe, SGDRecipe):
            raise TypeError(
                f"recipe is a {type(recipe).__name__}: the converted twin is built for an "
                "SGDRecipe or an AdamWRecipe; pass your own twin factory for other recipes"
            )
        if recipe.variant:
            if form != "general" or not adjust_eps:
                raise ValueError(
                    f"form = {form!r}, adjust_eps = {adjust_eps!r}: SGD with dampening or "
                    "Nesterov momentum has one converted form (form='general', adjust_eps=True)"
                )
            return ConvertedVariantTwin(model, recipe, invariant, correct_norm_layers)
        return ConvertedTwin(
            model, recipe, invariant, steps, form, rescale_log2, correct_norm_layers, adjust_eps
        )

    return make


def jitter_(tensors: Sequence[torch.Tensor], ulps: float, generator: torch.Generator) -> None:
    """x ← x + (2s − 1)·J·ulp(|x|) coordinate by coordinate, in place, for every tensor.

    s ∈ {0, 1} uniform from ``generator`` (one draw per coordinate, the tensors in order, each
    in its logical index order), J = ``ulps``, ulp(x) = nextafter(x, ∞) − x: a rounding-sized
    change of every coordinate. The draws are made on the generator's device, in one pass over
    all the tensors (a constant number of kernels per step on a GPU).
    """
    xs = [x.detach() for x in tensors]
    if not xs:
        return
    with torch.no_grad():
        flat = torch.cat([x.reshape(-1) for x in xs])
        a = flat.abs()
        ulp = torch.nextafter(a, torch.full_like(a, math.inf)) - a
        sign = torch.randint(0, 2, flat.shape, generator=generator, device=generator.device)
        step = (sign.to(flat.dtype) * 2 - 1) * ulps * ulp
        parts = step.split([x.numel() for x in xs])
        torch._foreach_add_(xs, [d.view(x.shape) for d, x in zip(parts, xs)])


class _Perturbed:
    """The stock recipe again, perturbed by rounding only (a noise-floor twin).

    Its generators (``perm``, ``jitter``) live on the model's device, so the twin runs on a GPU
    as it does on the CPU; their states are what a checkpoint of the twin needs besides the
    model, optimizer and scheduler.
    """

    def __init__(
        self,
        model: nn.Module,
        recipe: Recipe,
        ulp: int,
        permute_seed: int | None,
        jitter_seed: int | None,
        jitter_ulps: float,
    ) -> None:
        self.model, self.recipe, self.jitter_ulps = model, recipe, jitter_ulps
        if ulp:
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(torch.nextafter(p, torch.full_like(p, math.inf * ulp)))
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer: torch.optim.Optimizer
        self.optimizer, self.scheduler = recipe.stock(self.trainable)
        dev = next(model.parameters()).device
        self.perm = (
            torch.Generator(device=dev).manual_seed(permute_seed)
            if permute_seed is not None
            else None
        )
        self.jitter = (
            torch.Generator(device=dev).manual_seed(jitter_seed)
            if jitter_seed is not None
            else None
        )

    def order(self, n: int) -> torch.Tensor | None:
        if self.perm is None:
            return None
        return torch.randperm(n, generator=self.perm, device=self.perm.device)

    def step(self, t: int) -> None:
        self.recipe.set_step(self.optimizer, t)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.jitter is not None:
            moved = []
            for p in self.trainable:  # each weight, then its jittered optimizer state
                state = self.optimizer.state.get(p, {})
                moved += [p, *(state[k] for k in self.recipe.jittered_state if k in state)]
            jitter_(moved, self.jitter_ulps, self.jitter)
            with torch.no_grad():
                for p in self.trainable:
                    state = self.optimizer.state.get(p, {})
                    for k in ("exp_avg_sq", "max_exp_avg_sq"):  # second moments stay >= 0
                        if k in state and k in self.recipe.jittered_state:
                            state[k].clamp_(min=0.0)

    def scale(self) -> float | None:
        return 1.0


def perturbed(
    ulp: int = 0,
    permute_seed: int | None = None,
    jitter_seed: int | None = None,
    jitter_ulps: float = JITTER_ULPS,
) -> TwinFactory:
    """A noise-floor twin: the stock run again, changed by rounding only.

    ``ulp`` = ±1: every initial weight one ulp up / down (one rounding at step 0, carried by
    the dynamics); ``permute_seed``: the samples of every batch fed in a seeded random order
    (every sum over the batch rounded differently, every step; outputs are put back in order
    before comparing); ``jitter_seed``: every trainable weight moved by ``jitter_ulps`` ulps
    in a seeded random direction after every step (a fresh rounding-sized change of every
    update, as the converted run receives).
    """
    if ulp not in (-1, 0, 1):
        raise ValueError(f"ulp = {ulp} is not one of -1, 0, 1")

    def make(model: nn.Module, recipe: Recipe, invariant: Sequence[str], steps: int) -> Twin:
        return _Perturbed(model, recipe, ulp, permute_seed, jitter_seed, jitter_ulps)

    return make


@dataclass
class StockRecord:
    """The stock run recorded once (outputs, trainable weights, eval outputs per step).

    Pass an empty one to :func:`run` to fill it; a filled one is replayed instead of
    training the stock run again (every noise-floor twin compares with the same stock run).
    """

    outputs: list[torch.Tensor] = field(default_factory=list)
    params: list[dict[str, torch.Tensor]] = field(default_factory=list)
    evals: dict[int, torch.Tensor] = field(default_factory=dict)
    finite: bool = True
    spread: float = math.inf

    @property
    def recorded(self) -> bool:
        return bool(self.outputs)


def _norm_groups(m: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """``x`` as (normalisation groups, members) for the normaliser ``m``; None without batch statistics."""
    if isinstance(m, nn.GroupNorm):
        return x.reshape(x.shape[0] * m.num_groups, -1)
    if isinstance(m, nn.LayerNorm):
        return x.reshape(-1, math.prod(m.normalized_shape))
    if isinstance(m, nn.modules.instancenorm._InstanceNorm):
        return (
            x.reshape(x.shape[0] * x.shape[1], -1)
            if (m.training or not m.track_running_stats)
            else None
        )
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        if m.training or not m.track_running_stats:
            return x.transpose(0, 1).reshape(x.shape[1], -1)
    return None


def normaliser_spread(model: nn.Module, spread: list[float]) -> list[Any]:
    """Forward pre-hooks recording, in ``spread[0]``, the smallest std/rms over normalisation groups.

    Returns the hook handles (``remove()`` them when done).
    """

    def hook(m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        g = _norm_groups(m, args[0].detach())
        if g is None or g.shape[1] < 2:
            return
        var = g.var(dim=1, unbiased=False)
        ms = g.pow(2).mean(dim=1)
        rel = torch.where(ms > 0, (var / ms).clamp(min=0).sqrt(), torch.zeros_like(ms))
        spread[0] = min(spread[0], float(rel.min()))

    kinds = (
        nn.GroupNorm,
        nn.LayerNorm,
        nn.modules.instancenorm._InstanceNorm,
        nn.modules.batchnorm._BatchNorm,
    )
    return [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, kinds)]


def _names(model: nn.Module, invariant: Sequence[str | torch.Tensor]) -> list[str]:
    """Invariant parameters given as names or tensors of ``model``, as names."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    names = dict(model.named_parameters())
    out = []
    for p in invariant:
        if isinstance(p, str):
            if p not in names:
                raise ValueError(f"invariant: {p!r} is not a parameter name of the model")
            out.append(p)
        elif id(p) in by_id:
            out.append(by_id[id(p)])
        else:
            raise ValueError(
                f"invariant: a tensor of shape {tuple(p.shape)} is not a parameter of the model"
            )
    return out


def run(
    model: nn.Module,
    batches: Sequence[Batch],
    recipe: Recipe,
    *,
    loss_fn: LossFn,
    invariant: Sequence[str | torch.Tensor],
    twin: TwinFactory | None = None,
    probe: torch.Tensor | None = None,
    eval_every: int = 1,
    keep_params: bool = False,
    reference: StockRecord | None = None,
) -> Trace:
    """Train the stock recipe and ``twin`` (default :func:`converted`) side by side from ``model``.

    Both start from deep copies of ``model`` (left untouched) and take ``batches[t]`` at step
    t (one step per batch). Recorded per step (see :class:`~equivalence.verify.noise_floor.Trace`):
    the parameter divergence rel(θ̃_t, m_t θ_t) (θ_t outside ``invariant``), the train-mode
    output divergence on the step's batch, and every ``eval_every`` steps (and at the last)
    the eval-mode output divergence on ``probe``. ``keep_params``: keep the twin's weights
    after every step. ``reference``: see :class:`StockRecord`.
    """
    if eval_every < 1:
        raise ValueError(f"eval_every = {eval_every} is outside the valid range eval_every >= 1")
    steps = len(batches)
    if steps < 1:
        raise ValueError("batches is empty: at least one step is needed")
    replay = reference is not None and reference.recorded
    if replay and len(reference.outputs) != steps:  # type: ignore[union-attr]
        raise ValueError(
            f"the recorded stock run has {len(reference.outputs)} steps, "  # type: ignore[union-attr]
            f"batches {steps}: replay a run of the same length"
        )
    inv = _names(model, invariant)
    inv_set = set(inv)
    stock_model = copy.deepcopy(model)
    tw = (twin or converted())(copy.deepcopy(model), recipe, inv, steps)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    named_w = dict(stock_model.named_parameters())
    named_e = dict(tw.model.named_parameters())
    opt_w, sch_w = recipe.stock([p for p in stock_model.parameters() if p.requires_grad])
    spread = [math.inf]
    hooks = [] if replay else normaliser_spread(stock_model, spread)
    finite = True
    param: list[float] = []
    train_out: list[float] = []
    eval_out: list[float] = []
    scales: list[float] = []
    kept: list[dict[str, torch.Tensor]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schedulers' warnings about the step order
        for t, (x, y) in enumerate(batches):
            if replay:
                out_w = reference.outputs[t]  # type: ignore[union-attr]
                w_now = reference.params[t]  # type: ignore[union-attr]
            else:
                recipe.set_step(opt_w, t)
                out_w = stock_model(x)
                opt_w.zero_grad()
                loss_w = loss_fn(out_w, y)
                finite = finite and bool(torch.isfinite(loss_w))
                loss_w.backward()
                opt_w.step()
                if sch_w is not None:
                    sch_w.step()
                w_now = named_w
                if reference is not None:
                    reference.outputs.append(out_w.detach().clone())
                    reference.params.append({n: named_w[n].detach().clone() for n in trainable})
            perm = tw.order(x.shape[0])
            tw.optimizer.zero_grad()
            if perm is not None:
                out_e = tw.model(x[perm])
                loss_fn(out_e, y[perm]).backward()
                out_e = out_e[torch.argsort(perm)]
            else:
                out_e = tw.model(x)
                loss_fn(out_e, y).backward()
            tw.step(t)
            m = tw.scale()
            train_out.append(rel_err(out_e.detach(), out_w.detach()))
            scales.append(1.0 if m is None else m)
            if m is not None:
                err = 0.0
                for n in trainable:
                    ref = w_now[n].detach() * (m if n in inv_set else 1.0)
                    err = max(err, rel_err(named_e[n].detach(), ref))
                param.append(err)
            if keep_params:
                kept.append({n: named_e[n].detach().clone() for n in trainable})
            if probe is not None and ((t + 1) % eval_every == 0 or t == steps - 1):
                if not replay:
                    stock_model.eval()
                tw.model.eval()
                with torch.no_grad():
                    if replay:
                        ref_out = reference.evals[t]  # type: ignore[union-attr]
                    else:
                        ref_out = stock_model(probe)
                        if reference is not None:
                            reference.evals[t] = ref_out
                    # the stock run's own eval output is NaN/inf (e.g. BN without running
                    # statistics on a probe that leaves a channel constant): nothing to compare
                    finite = finite and bool(torch.isfinite(ref_out).all())
                    eval_out.append(rel_err(tw.model(probe), ref_out))
                if not replay:
                    stock_model.train()
                tw.model.train()
    for h in hooks:
        h.remove()
    if replay:
        finite = finite and reference.finite  # type: ignore[union-attr]
        spread[0] = reference.spread  # type: ignore[union-attr]
    else:
        finite = finite and all(bool(torch.isfinite(p).all()) for p in stock_model.parameters())
        if reference is not None:
            reference.finite, reference.spread = finite, spread[0]
    dtype = (
        next(iter(model.parameters())).dtype
        if any(True for _ in model.parameters())
        else torch.float64
    )
    return Trace(
        tuple(param),
        tuple(train_out),
        tuple(eval_out),
        tuple(scales),
        finite,
        spread[0],
        torch.finfo(dtype).eps / 2,
        tuple(kept),
    )


def measure_floor(
    model: nn.Module,
    batches: Sequence[Batch],
    recipe: Recipe,
    *,
    loss_fn: LossFn,
    invariant: Sequence[str | torch.Tensor],
    probe: torch.Tensor | None = None,
    eval_every: int = 1,
    ulps: tuple[int, ...] = (1,),
    permute: bool = True,
    jitter_twins: int = JITTER_TWINS,
    seed: int = 0,
) -> Floor:
    """The measured noise floor of the stock run: its twins (:func:`perturbed`) against it.

    One twin per entry of ``ulps`` (initial weights one ulp away), one with every batch
    permuted (``permute``, seed ``seed + 7919``) and ``jitter_twins`` jitter twins (seeds
    ``seed + 104_729 + k``). The stock run is trained once and replayed against every twin.
    ``jitter_twins`` may be lowered to save time: fewer twins can only lower the floor, so the
    judgement only gets stricter.
    """
    if jitter_twins < 0:
        raise ValueError(
            f"jitter_twins = {jitter_twins} is outside the valid range jitter_twins >= 0"
        )
    record = StockRecord()
    factories = [perturbed(ulp=d) for d in ulps]
    if permute:
        factories.append(perturbed(permute_seed=seed + 7919))
    factories += [perturbed(jitter_seed=seed + 104_729 + k) for k in range(jitter_twins)]
    if not factories:
        raise ValueError("a noise floor needs at least one twin (ulps, permute or jitter_twins)")
    return Floor(
        tuple(
            run(
                model,
                batches,
                recipe,
                loss_fn=loss_fn,
                invariant=invariant,
                twin=f,
                probe=probe,
                eval_every=eval_every,
                reference=record,
            )
            for f in factories
        )
    )


def verify(
    model: nn.Module,
    batches: Sequence[Batch],
    recipe: Recipe,
    *,
    loss_fn: LossFn,
    invariant: Sequence[str | torch.Tensor],
    probe: torch.Tensor | None = None,
    form: str = "general",
    rescale_log2: float | None = 16.0,
    correct_norm_layers: bool = True,
    eval_every: int = 1,
    jitter_twins: int = JITTER_TWINS,
    k: float = K,
    seed: int = 0,
) -> Verdict:
    """Does the converted run equal the stock run on ``model`` and ``batches``? A :class:`Verdict`.

    Runs the stock recipe and its converted twin (:func:`converted`) in lockstep and judges
    the divergence with :func:`equivalence.verify.noise_floor.judge`: err_t ≤ max(K·u·(t+1), 3·E_t)
    before the predictability horizon, the floor E measured (:func:`measure_floor`, with
    ``jitter_twins`` jitter twins) only when an error passes the linear term. ``model`` is
    not trained (both runs start from copies).
    """
    common: dict[str, Any] = dict(
        loss_fn=loss_fn, invariant=invariant, probe=probe, eval_every=eval_every
    )
    trace = run(
        model, batches, recipe, twin=converted(form, rescale_log2, correct_norm_layers), **common
    )
    return judge(
        trace,
        lambda: measure_floor(
            model, batches, recipe, jitter_twins=jitter_twins, seed=seed, **common
        ),
        k=k,
    )
