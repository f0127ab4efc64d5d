r"""Conversion in place: the user's own optimizer, its own param groups, hooks on its step.

Every converter of this package (plain SGD, dampened or Nesterov SGD, AdamW) drives the
optimizer the user built, through its step hooks, and nothing else:

- **The groups stay the user's.** Between steps ``optimizer.param_groups`` is the user's list
  of the user's dicts, holding the stock ``lr``, ``weight_decay``, momentum and betas that the
  user's schedulers, GradScaler and framework wrappers read and write. For the duration of
  ``optimizer.step()`` the pre-hook puts a *step view* in its place: each group that holds
  scale-invariant parameters is split into one dict per invariant set it touches (carrying the
  converted hyper-parameters, e.g. η̃_t and no decay) and one for the rest (the user's values);
  the post-hook puts the user's list back. The optimizer's per-parameter state is keyed by
  tensor, so the split changes nothing else. Groups added later with ``add_param_group`` are
  stock unless declared invariant (:meth:`InPlaceConversion.add_param_group`).
- **Several scale sequences.** Each independently invariant set S_k has its own scale
  sequence, normalisers and rescaling; one set may span groups as long as their recurrences
  agree at every step (the converter checks it and refuses otherwise, naming the groups).
- **Stock units on the way out.** :meth:`InPlaceConversion.stock_view` gives the stock
  weights and statistics; ``export``, ``remove`` and ``averaged_model`` build on it.
- **Checked, never trusted.** At the first update the declared sets are checked: the Euler
  identity ⟨∇L, θ⟩ = 0 on each set's gradients, and with ``model=`` a probe forward pass that
  scales each set by 2 (exact in floating point) and finds every normaliser it feeds.
- **No reference cycle.** The hooks the optimizer holds are bound to the conversion, which
  holds the optimizer only weakly.
- **Stock-unit gradients, opt-in** (:meth:`InPlaceConversion.set_stock_grads`,
  ``convert_optimizer(..., stock_grads=True)``). A hook on each invariant tensor multiplies
  the gradient backward delivers by m, so between backward and step ``.grad`` holds the stock
  gradient for third-party clipping and logging (PyTorch's ``clip_grad_norm_`` in the Hugging
  Face Trainer, Accelerate and Lightning); a global step pre-hook, which runs before every
  optimizer's own hooks, evaluates a closure, hands the step g/m and puts the stock tensors
  back after it.

A map (subclass) supplies the recurrence: :meth:`InPlaceConversion._advance` (before the
step: the per-(set, group) overrides), :meth:`_commit` (after it), :meth:`_rescale_state`
(power-of-two rescaling of its buffers) and :meth:`_stock_state` (its buffers in stock units).
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.swa_utils import AveragedModel
from torch.utils._pytree import tree_leaves

from ..invariance.layer_kinds import has_running_stats
from .normalisers import NormLayers, is_normaliser

__all__ = [
    "ConversionError",
    "InPlaceConversion",
    "InvarianceCheckError",
    "ScaleSet",
    "StockAveragedModel",
    "as_sets",
    "check_finite_hyper",
    "nonnegative",
    "stock_clip_grad_norm_",
]


class ConversionError(RuntimeError):
    """The converted run would leave the stock run at this step; raised instead of diverging."""


class InvarianceCheckError(ValueError):
    """A declared invariant set or normaliser list is wrong (found by the conversion's checks)."""


#: Euler-identity threshold: |Σ⟨g, θ⟩| over a set relative to Σ‖g‖‖θ‖. An invariant set
#: gives rounding (~u) plus the eps term 2ε ∂L/∂ε (relative ε/(σ² + ε), 1e-5 for BatchNorm's
#: default eps at unit input variance); a non-invariant member gives its own ⟨g, θ⟩, of the
#: order of its ‖g‖‖θ‖. 1e-3 sits between the two for ordinary networks; ``model=`` gives the
#: exact probe instead.
EULER_RTOL = 1e-3
#: ... and it is judged without ``model=`` only when norm_layers are given and have eps at most
#: this: the eps term grows as ε/σ², unknown without a forward pass (small initial weights
#: make σ² small), so a set with real eps is checked by the probe alone.
EULER_EPS_MAX = 1e-12


def as_sets(invariant: Any) -> list[list[torch.Tensor]]:
    """``invariant`` as a list of sets: tensors (one set) or a sequence of iterables of tensors."""
    if isinstance(invariant, torch.Tensor):
        raise TypeError(
            "invariant must be an iterable of tensors (one invariant set) or a sequence of such "
            "iterables (several independently invariant sets), got a single Tensor; wrap it: [w]"
        )
    items = list(invariant)
    if not items:
        return []
    if all(isinstance(x, torch.Tensor) for x in items):
        return [items]
    sets: list[list[torch.Tensor]] = []
    for k, s in enumerate(items):
        if isinstance(s, torch.Tensor) or not isinstance(s, Iterable):
            raise TypeError(
                f"invariant[{k}] is a {type(s).__name__}: give either tensors (one set) or a "
                "sequence of iterables of tensors (one per independently invariant set), not a mix"
            )
        members = list(s)
        for p in members:
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"invariant[{k}] holds {type(p).__name__}, not a tensor")
        if not members:
            raise ValueError(f"invariant[{k}] is empty")
        sets.append(members)
    seen: dict[int, int] = {}
    for k, s in enumerate(sets):
        for p in s:
            if id(p) in seen and seen[id(p)] != k:
                raise ValueError(
                    f"a tensor of shape {tuple(p.shape)} is in invariant sets {seen[id(p)]} and {k}; "
                    "the sets must be disjoint"
                )
            seen[id(p)] = k
    return sets


class ScaleSet:
    """One independently invariant set: its tensors, its normalisers and its scale.

    ``scale`` (a float) is C with stored θ = θ_stock / C on the set (so m = 1/C); the map keeps
    its own recurrence state next to it.
    """

    def __init__(self, index: int, params: list[torch.Tensor], norms: NormLayers) -> None:
        self.index = index
        self.params = params
        self.ids = {id(p) for p in params}
        self.norms = norms
        self.checked = False


class InPlaceConversion:
    """Base of the in-place converters (see the module docstring)."""

    STATE_KEY = "equivalence_converter"

    def __init__(
        self,
        optimizer: Optimizer,
        sets: list[list[torch.Tensor]],
        norm_layers: Any = None,
        *,
        model: nn.Module | None = None,
        adjust_eps: bool = True,
        check: bool = True,
    ) -> None:
        self._opt = weakref.ref(optimizer)
        self._model = weakref.ref(model) if model is not None else None
        self.adjust_eps = adjust_eps
        self.check = bool(check)
        where = {id(p) for g in optimizer.param_groups for p in g["params"]}
        for k, s in enumerate(sets):
            outside = [p for p in s if id(p) not in where]
            if outside:
                raise ValueError(
                    f"{len(outside)} tensor(s) of invariant set {k} (first of shape "
                    f"{tuple(outside[0].shape)}) are not among the optimizer's parameters"
                )
        per_set = _norms_per_set(norm_layers, len(sets))
        self.sets = [
            ScaleSet(k, list(s), NormLayers(per_set[k] or (), adjust_eps=adjust_eps))
            for k, s in enumerate(sets)
        ]
        self._norms_given = norm_layers is not None
        self._names = _param_names(model)
        self.updates = 0
        self._layout_key: tuple[Any, ...] | None = None
        self._layout: list[tuple[dict[str, Any], list[tuple[int, list[torch.Tensor]]], list[Any]]]
        self._layout = []
        self._user_groups: list[dict[str, Any]] | None = None
        self._failed = False
        self._probe_inputs: tuple[Any, Any] | None = None
        # the probe finds the normalisers (model= without norm_layers, even with check=False)
        # and, with check, judges each set
        self._probe_handle = (
            model.register_forward_pre_hook(self._capture, with_kwargs=True)
            if (model is not None and (check or norm_layers is None))
            else None
        )
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_hook),
            optimizer.register_step_post_hook(self._post_hook),
            optimizer.register_state_dict_post_hook(self._save_hook),
            optimizer.register_load_state_dict_pre_hook(self._load_pre_hook),
            optimizer.register_load_state_dict_post_hook(self._load_post_hook),
        ]
        self._incoming: dict[str, Any] | None = None
        #: the sets without any gradient at the current step (skipped, as stock skips them)
        self.skipped: set[int] = set()
        #: the lr each user group's (first) invariant part stepped with at the last step
        self.step_lrs: dict[int, float] = {}
        # stock-unit gradients (set_stock_grads): off until asked for
        self._stock_grads = False
        self._grad_hooks: list[Any] = []
        self._grad_factors: list[float] = []
        self._stashed: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def _check_fresh_groups(
        self, check_group: Callable[[dict[str, Any], int], None], kind: str
    ) -> None:
        """Each group holding a set passes ``check_group``, and no set has stepped yet (maps
        whose state starts with the optimizer's: AdamW's moments, Nesterov's buffer)."""
        opt = self.optimizer
        for gi, (g, parts, _) in enumerate(self.layout()):
            if parts:
                check_group(g, gi)
                for k, ps in parts:
                    if any(opt.state.get(p) for p in ps):
                        raise ValueError(
                            f"invariant set {k} has already stepped in param group {gi}; convert a "
                            f"fresh {kind} (before its first step)"
                        )

    def _require_norm_info(self) -> None:
        """Refuse a conversion that cannot know the normalisers (maps call it last)."""
        if not self._norms_given and self._model is None and self.sets:
            raise ValueError(
                "norm_layers is not given and neither is model=: the converter cannot tell which "
                "normalisers the invariant set feeds (their eps and running statistics must follow "
                "its scale). Give norm_layers=[...] (norm_layers=[] if it feeds none), or model= to "
                "have them found and checked at the first update"
            )

    # -- the optimizer ----------------------------------------------------------------------
    @property
    def optimizer(self) -> Optimizer:
        opt = self._opt()
        if opt is None:
            raise ReferenceError("the converted optimizer no longer exists")
        return opt

    def name_of(self, p: torch.Tensor) -> str:
        """The parameter's name in ``model`` (when given), else its shape."""
        n = self._names.get(id(p))
        return repr(n) if n is not None else f"of shape {tuple(p.shape)}"

    # -- the layout: which user group holds which set's tensors ----------------------------
    def _groups_key(self, groups: list[dict[str, Any]]) -> tuple[Any, ...]:
        return tuple((id(g), id(g["params"]), len(g["params"])) for g in groups)

    def layout(
        self,
    ) -> list[tuple[dict[str, Any], list[tuple[int, list[torch.Tensor]]], list[Any]]]:
        """Per user group: (group, [(set index, its tensors there)], the other tensors)."""
        groups = self.optimizer.param_groups
        key = self._groups_key(groups)
        if key != self._layout_key:
            out = []
            for g in groups:
                parts: dict[int, list[torch.Tensor]] = {}
                rest: list[Any] = []
                for p in g["params"]:
                    for s in self.sets:
                        if id(p) in s.ids:
                            parts.setdefault(s.index, []).append(p)
                            break
                    else:
                        rest.append(p)
                out.append((g, sorted(parts.items()), rest))
            self._layout, self._layout_key = out, key
        return self._layout

    def add_param_group(
        self, param_group: dict[str, Any], *, invariant: bool = False, norm_layers: Any = ()
    ) -> None:
        """``optimizer.add_param_group`` for a converted run.

        With ``invariant=False`` (and for groups added with the optimizer's own
        ``add_param_group``) the new group is stock: its own lr and decay, exact as every
        non-invariant parameter is. With ``invariant=True`` its parameters form a new
        independently invariant set with its own scale sequence, starting at scale 1 now,
        and ``norm_layers`` are the normalisers it feeds.
        """
        if not isinstance(invariant, bool):
            raise TypeError(
                f"invariant must be True or False (the whole new group is one invariant set, or "
                f"stock), got {type(invariant).__name__}"
            )
        opt = self.optimizer
        opt.add_param_group(param_group)
        if invariant:
            params = list(opt.param_groups[-1]["params"])
            norms = NormLayers(norm_layers, adjust_eps=self.adjust_eps)
            s = ScaleSet(len(self.sets), params, norms)
            if self._stock_grads:
                self._check_stock_grad_set(s)
            self.sets.append(s)
            self._new_set(s)
            if self._stock_grads:
                self._refresh_grad_factors()
                self._hook_set(s)
        self._layout_key = None

    def _new_set(self, s: ScaleSet) -> None:  # pragma: no cover - maps define it
        raise NotImplementedError

    # -- hooks --------------------------------------------------------------------------------
    def _pre_hook(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        if self._user_groups is not None:
            opt.param_groups = self._user_groups
            self._user_groups = None
            self._failed = True
        if self._failed:
            raise ConversionError(
                "the previous optimizer.step() did not complete (it raised); the converted run "
                "cannot tell how far it got. Restore from a checkpoint"
            )
        layout = self.layout()
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        # a closure already evaluated (stock-unit gradients, before every hook) counts as none
        has_closure = closure is not None and not isinstance(closure, _EvaluatedClosure)
        self.skipped = set()
        if not has_closure:
            self._check_gradients()
        overrides = self._advance(opt, layout)
        view: list[dict[str, Any]] = []
        self.step_lrs = {}
        for gi, (g, parts, rest) in enumerate(layout):
            first = overrides.get((parts[0][0], gi)) if parts else None
            self.step_lrs[gi] = float(first["lr"] if first is not None else g["lr"])
            if not parts:
                view.append(g)
                continue
            for k, ps in parts:  # a skipped set (no gradients) keeps the user's values
                view.append({**g, "params": ps, **overrides.get((k, gi), {})})
            if rest:
                view.append({**g, "params": rest})
        self._user_groups = opt.param_groups
        opt.param_groups = view

    def _post_hook(self, opt: Optimizer, args: Any, kwargs: Any) -> None:
        self._restore_stock_grads()
        if self._user_groups is None:
            return
        opt.param_groups = self._user_groups
        self._user_groups = None
        self.updates += 1
        self._commit(opt)
        if self._stock_grads:
            self._refresh_grad_factors()

    def _check_gradients(self) -> None:
        """Every tensor of a set has a gradient, or none has (then the set skips this step, as
        the stock optimizer skips every tensor without one: no update, no decay, its scale
        unchanged)."""
        t = self.updates
        for s in self.sets:
            missing = [p for p in s.params if p.grad is None]
            if len(missing) == len(s.params):
                self.skipped.add(s.index)
                continue
            if missing:
                raise ConversionError(
                    f"optimizer.step() at update {t} found no gradient for the invariant "
                    f"parameter {self.name_of(missing[0])} (set {s.index}) while other tensors of "
                    f"the set have one; stock {type(self.optimizer).__name__} skips such a parameter "
                    "(no weight decay either), which the converted run cannot match: its set is "
                    "scaled as a whole. Give every tensor of the set a gradient, or none"
                )
            if (self.check or not self._norms_given) and not s.checked:
                self._check_set(s)

    # -- the checks ---------------------------------------------------------------------------
    def _capture(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        if module.training:
            self._probe_inputs = (args, kwargs)

    @torch.no_grad()
    def _check_set(self, s: ScaleSet) -> None:
        """The Euler identity on the gradients, and with ``model=`` the probe (once per set)."""
        grads = [p.grad for p in s.params if p.grad is not None]  # all present: checked before
        w = [p.detach() for p in s.params]
        dots = torch.stack([(g * x).sum().to(torch.float64) for g, x in zip(grads, w)])
        norms = torch.stack(
            [
                torch.linalg.vector_norm(g).to(torch.float64)
                * torch.linalg.vector_norm(x).to(torch.float64)
                for g, x in zip(grads, w)
            ]
        )
        vals = torch.cat([dots, norms]).cpu()  # one synchronisation, at the first update only
        n = len(s.params)
        dot, den = vals[:n], vals[n:]
        total = float(den.sum())
        if total == 0.0:
            return  # no gradient yet: checked at the next update
        model = self._model() if self._model is not None else None
        if model is not None and self._probe_inputs is not None:
            self._probe(model, s, dot, den)
        elif not self._norms_given:
            raise ConversionError(
                "model= was given without norm_layers, but the model was not called in training "
                "mode before the first update, so its normalisers could not be found: give "
                "norm_layers, or train through the model given"
            )
        elif self.check and max(s.norms.user_eps, default=0.0) <= EULER_EPS_MAX:
            # without the model the eps term 2ε ∂L/∂ε cannot be told from a wrong member, so
            # the identity is judged only where the normalisers' eps is negligible
            rel = abs(float(dot.sum())) / total
            if rel > EULER_RTOL:
                raise InvarianceCheckError(
                    f"invariant set {s.index} is not scale invariant: at update {self.updates} its "
                    f"gradients give |Σ⟨∇L, θ⟩| / Σ‖∇L‖‖θ‖ = {rel:.3g} > {EULER_RTOL:g} (a scale-"
                    f"invariant loss has ⟨∇L, θ⟩ = 0 over the set). {_culprits(self, s, dot, den)}. "
                    "Remove it from invariant (equivalence.audit(model, ...) lists the invariant "
                    "tensors), or pass model= for the exact probe"
                )
        s.checked = True
        if all(x.checked for x in self.sets) and self._probe_handle is not None:
            self._probe_handle.remove()
            self._probe_handle = None
            self._probe_inputs = None

    def _probe(self, model: nn.Module, s: ScaleSet, dot: torch.Tensor, den: torch.Tensor) -> None:
        """Scale set ``s`` by 2 in a forward pass on the captured inputs (exact in floating point).

        Finds the normalisers whose input doubles (fed by ``s``), refuses one whose input
        neither doubles nor stays (not correctable), compares them with ``norm_layers``, and
        checks that the output is unchanged with those normalisers' eps × 4 (joint invariance
        L(2θ; 4ε) = L(θ; ε)). Threshold: √u relative (u of the dtype); scaling by 2 changes no
        mantissa, so an invariant set reproduces the output to rounding of the same order as
        the reduction-order noise, while a wrong member changes it at O(1).
        """
        assert self._probe_inputs is not None
        args, kwargs = self._probe_inputs
        norms = [(n, m) for n, m in model.named_modules() if is_normaliser(m)]
        seen: dict[int, torch.Tensor] = {}

        def grab(mod: nn.Module, inp: Any, out: Any) -> None:
            if inp and isinstance(inp[0], torch.Tensor):
                seen[id(mod)] = inp[0].detach().clone()

        handles = [m.register_forward_hook(grab) for _, m in norms]
        buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
        eps0 = {id(m): getattr(m, "eps", None) for _, m in norms}
        rng = torch.random.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

        def forward() -> tuple[list[torch.Tensor], dict[int, torch.Tensor]]:
            seen.clear()
            torch.random.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
            out = model(*args, **kwargs)
            leaves = [
                x.detach()
                for x in tree_leaves(out)
                if isinstance(x, torch.Tensor) and x.is_floating_point()
            ]
            got = dict(seen)
            for k, b in model.named_buffers():
                b.copy_(buffers[k])
            return leaves, got

        def scale(f: float) -> None:
            torch._foreach_mul_([p.detach() for p in s.params], f)

        def set_eps(factor: float, which: Iterable[nn.Module]) -> None:
            for m in which:
                e = eps0[id(m)]
                if isinstance(e, float):
                    object.__setattr__(m, "eps", e * factor)

        try:
            y0, _ = forward()
            # which normalisers' inputs double: with every eps × 2^-40 (its effect on a
            # normaliser's output, ε/σ², far below rounding), so that a normaliser fed by the
            # set passes on an unchanged output whatever its eps
            set_eps(2.0**-40, (m for _, m in norms))
            _, x0 = forward()
            scale(2.0)
            try:
                _, x1 = forward()
                set_eps(1.0, (m for _, m in norms))
                fed, mixed = [], []
                for name, m in norms:
                    a, b = x0.get(id(m)), x1.get(id(m))
                    if a is None or b is None:
                        continue
                    tol = math.sqrt(torch.finfo(a.dtype).eps) * float(
                        a.abs().max().clamp_min(1e-300)
                    )
                    if float((b - 2 * a).abs().max()) <= 2 * tol:
                        fed.append((name, m))
                    elif float((b - a).abs().max()) > tol:
                        mixed.append(name)
                if mixed and self.check:
                    raise InvarianceCheckError(
                        f"invariant set {s.index}: the input of normaliser(s) {', '.join(map(repr, mixed))} "
                        "neither doubles nor stays when the set is doubled (its input is not "
                        "homogeneous of degree 1 in the set: running statistics and eps not "
                        "correctable). Remove the tensors feeding it from the set, or make the "
                        "network scale invariant there (equivalence.make_scale_invariant)"
                    )
                set_eps(4.0, (m for _, m in fed))
                y2, _ = forward()
            finally:
                scale(0.5)
                for _, m in norms:
                    if eps0[id(m)] is not None:
                        object.__setattr__(m, "eps", eps0[id(m)])
        finally:
            for h in handles:
                h.remove()
            torch.random.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        worst = 0.0
        for a, b in zip(y0, y2):
            ref = float(a.abs().max()) if a.numel() else 0.0
            if ref > 0:
                worst = max(worst, float((b - a).abs().max()) / ref)
        u = torch.finfo(y0[0].dtype).eps if y0 else 2.0**-52
        if self.check and worst > math.sqrt(u):
            raise InvarianceCheckError(
                f"invariant set {s.index} is not scale invariant: doubling it (with the eps of the "
                f"normalisers it feeds × 4) changes the model's output by {worst:.3g} relative "
                f"(rounding: below {math.sqrt(u):.2g}). {_culprits(self, s, dot, den)}. Remove it "
                "from invariant (equivalence.audit(model, ...) lists the invariant tensors)"
            )
        found = [m for _, m in fed]
        name_of = {id(m): n for n, m in norms}
        if (self._norms_given or len(s.norms)) and self.check:
            given = {id(m) for m in s.norms.modules}
            missing = [name_of[id(m)] for m in found if id(m) not in given]
            extra = [
                name_of.get(id(m), type(m).__name__)
                for m in s.norms.modules
                if id(m) not in {id(x) for x in found}
            ]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"missing {', '.join(map(repr, missing))} (fed by the set)")
                if extra:
                    parts.append(f"extra {', '.join(map(repr, extra))} (not fed by the set)")
                raise InvarianceCheckError(
                    f"norm_layers of invariant set {s.index} is wrong: " + "; ".join(parts) + ". "
                    "Omit norm_layers with model= to have them found"
                )
        elif not (self._norms_given or len(s.norms)):
            s.norms.adopt(found)

    # -- the map (subclasses) --------------------------------------------------------------------
    def _advance(
        self, opt: Optimizer, layout: Any
    ) -> dict[tuple[int, int], dict[str, Any]]:  # pragma: no cover - maps define it
        raise NotImplementedError

    def _commit(self, opt: Optimizer) -> None:  # pragma: no cover - maps define it
        raise NotImplementedError

    def set_scale(self, s: ScaleSet) -> float:  # pragma: no cover - maps define it
        """C of set ``s``: stored θ = θ_stock / C."""
        raise NotImplementedError

    def _stock_state(self, s: ScaleSet, p: torch.Tensor, state: dict[str, Any]) -> dict[str, Any]:
        """The optimizer state of ``p`` (in set ``s``) in stock units (maps override)."""
        raise NotImplementedError  # pragma: no cover

    def current_scale(self, s: int = 0) -> float:
        """m of set ``s`` (stored θ = m · θ_stock); 1.0 when there is no such set."""
        if not self.sets:
            return 1.0
        return 1.0 / self.set_scale(self.sets[s])

    # -- stock units ------------------------------------------------------------------------------
    def _module_map(self, model: nn.Module) -> tuple[dict[int, str], dict[int, str]]:
        params = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        mods = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
        return params, mods

    @torch.no_grad()
    def _to_stock(self, src: nn.Module, dst: nn.Module) -> None:
        """Write into ``dst`` (``src`` or a copy of it) the stock weights, statistics and eps."""
        pnames, mnames = self._module_map(src)
        dparams = dict(dst.named_parameters(remove_duplicate=False))
        dmods = dict(dst.named_modules(remove_duplicate=False))
        for s in self.sets:
            C = self.set_scale(s)
            targets: list[torch.Tensor] = []
            for p in s.params:
                n = pnames.get(id(p))
                if n is None:
                    raise ValueError(
                        f"invariant parameter {self.name_of(p)} is not a parameter of the model given"
                    )
                targets.append(dparams[n])
            torch._foreach_mul_(targets, C)
            for m, eps in zip(s.norms.modules, s.norms.user_eps):
                n = mnames.get(id(m))
                if n is None:
                    raise ValueError(
                        f"normaliser {type(m).__name__} is not a module of the model given"
                    )
                d = dmods[n]
                if has_running_stats(d):
                    d.running_mean.mul_(C)
                    d.running_var.mul_(C * C)
                if s.norms.adjust_eps:
                    object.__setattr__(d, "eps", eps)

    def make_compilable(self) -> list[nn.Module]:
        """Make the sets' normalisers compile once under ``torch.compile`` although their eps
        changes every step (:mod:`equivalence.optim.compile_norms`); returns the modules changed.
        Call it before ``torch.compile(model)``; ``export`` and ``remove`` undo it."""
        from .compile_norms import make_traceable

        done = make_traceable(m for s in self.sets for m in s.norms.modules)
        for s in self.sets:
            s.norms.set_scale(self.set_scale(s))  # fills the new eps tensors
        return done

    def export(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` in stock units: the stock run's model, with no hooks of ours.

        Invariant weights × C (= ÷ m), running means × C, variances × C², every normaliser's
        eps the user's. Its ``state_dict()`` loads into a freshly built model.
        """
        handle = self._probe_handle
        if handle is not None:
            handle.remove()
        try:
            out = copy.deepcopy(model)
        finally:
            if handle is not None:
                self._probe_handle = model.register_forward_pre_hook(
                    self._capture, with_kwargs=True
                )
        self._to_stock(model, out)
        from .compile_norms import make_stock

        for m in out.modules():
            make_stock(m)
        return out

    def stock_parameters(self, model: nn.Module) -> Iterator[torch.Tensor]:
        """``model.parameters()`` in stock units (invariant ones × C, as new tensors)."""
        scale = {id(p): self.set_scale(s) for s in self.sets for p in s.params}
        return _scaled(model.parameters(), scale)

    def stock_buffers(self, model: nn.Module) -> Iterator[torch.Tensor]:
        """``model.buffers()`` in stock units (running means × C, variances × C², as new
        tensors)."""
        scale: dict[int, float] = {}
        for s in self.sets:
            C = self.set_scale(s)
            for m in s.norms.modules:
                if has_running_stats(m):
                    scale[id(m.running_mean)] = C
                    scale[id(m.running_var)] = C * C
        return _scaled(model.buffers(), scale)

    def averaged_model(
        self,
        model: nn.Module,
        device: Any = None,
        avg_fn: Callable[..., torch.Tensor] | None = None,
        multi_avg_fn: Callable[..., None] | None = None,
        use_buffers: bool = False,
    ) -> StockAveragedModel:
        """``torch.optim.swa_utils.AveragedModel`` of the **stock** weights (EMA or SWA).

        Averaging the converted weights directly mixes weights of different scales
        (stored θ_t = m_t θ_t^stock with m_t growing): the average is no stock average, and
        its normalisers carry the converted eps. This one starts from :meth:`export` and
        its ``update_parameters(model)`` averages the stock weights, so it equals the stock
        run's ``AveragedModel`` (and works with ``get_ema_multi_avg_fn`` and ``update_bn``).
        """
        return StockAveragedModel(self, model, device, avg_fn, multi_avg_fn, use_buffers)

    @torch.no_grad()
    def remove(self, model: nn.Module | None = None) -> None:
        """Detach the hooks and leave the run in stock units.

        The optimizer's state is put in stock units (the maps' buffer relations); with
        ``model`` (or the ``model=`` given at conversion) the live weights, running statistics
        and eps too, so evaluating or training on with the stock optimizer equals the stock
        run. Without a model the weights are left as stored (scale m) and a ``ValueError``
        says so unless every set's scale is still 1.
        """
        opt = self.optimizer
        if model is None and self._model is not None:
            model = self._model()
        if model is None and any(self.set_scale(s) != 1.0 for s in self.sets):
            raise ValueError(
                "remove() needs the model to put its weights back in stock units (the scale is "
                f"m = {self.current_scale():.6g}): call run.remove(model)"
            )
        for s in self.sets:
            for p in s.params:
                st = opt.state.get(p)
                if st:
                    opt.state[p] = self._stock_state(s, p, st)
        if model is not None:
            self._to_stock(model, model)
        self._unhook_grads()  # gradients already in stock units stay so: right for the stock run
        for h in self._handles:
            h.remove()
        self._handles = []
        if self._probe_handle is not None:
            self._probe_handle.remove()
            self._probe_handle = None
        from .compile_norms import make_stock

        for s in self.sets:
            s.norms.restore_eps()
            for m in s.norms.modules:
                make_stock(m)
        self._removed()

    def _removed(self) -> None:
        """Hook for maps: reset their state after :meth:`remove`."""

    # -- stock-unit gradients between backward and step (opt-in) ---------------------------------
    @property
    def stock_grads(self) -> bool:
        """Whether ``.grad`` of the invariant tensors holds stock-unit gradients outside the step."""
        return self._stock_grads

    @torch.no_grad()
    def set_stock_grads(self, enabled: bool = True) -> None:
        """Keep the invariant tensors' ``.grad`` in **stock units** outside ``optimizer.step()``.

        The stored weights are θ̃ = m θ (m = :meth:`current_scale` of the set), so backward
        gives g̃ = g/m. With this mode on, a hook on each invariant tensor multiplies every
        gradient that backward delivers by m before it is accumulated: between backward and
        step, ``.grad`` holds the stock run's gradient g (sums of them under gradient
        accumulation), and third-party code that reads or edits it (``clip_grad_norm_``,
        ``clip_grad_value_`` of PyTorch, the Hugging Face Trainer, Accelerate or Lightning,
        ``GradScaler.unscale_``, gradient logging) sees what it sees in the stock run. At the
        step, before any other hook (a global step pre-hook of ours), each such ``.grad`` is
        replaced by g/m for the update and the stock tensor is put back after it. A closure
        given to ``step`` (Lightning's) is evaluated there first, so that its backward and its
        clipping happen in stock units too.

        Rounding: multiplying by m and dividing by it again rounds twice (2u relative on the
        gradient at most, u the unit roundoff), below the update's own rounding; gradients
        written to ``.grad`` directly, not by backward, are taken as stock units. ``enabled``
        can be switched at any point outside ``step()``: gradients already present are
        converted. Refused: invariant tensors that do not require grad, and sharded (DTensor)
        parameters (FSDP writes their reduced gradient outside autograd's hook); use
        :meth:`clip_grad_norm_` there.
        """
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be True or False, got {type(enabled).__name__}")
        if self._user_groups is not None or self._stashed:
            raise RuntimeError("set_stock_grads cannot be switched inside optimizer.step()")
        if enabled == self._stock_grads:
            return
        if enabled:
            for s in self.sets:
                self._check_stock_grad_set(s)
            self._refresh_grad_factors()
            self._scale_present_grads(divide=False)
            for s in self.sets:
                self._hook_set(s)
            _STOCK_GRAD_RUNS[self.optimizer] = self
            _install_stock_grads_hook()
            self._stock_grads = True
        else:
            self._scale_present_grads(divide=True)
            self._unhook_grads()

    def _check_stock_grad_set(self, s: ScaleSet) -> None:
        for p in s.params:
            if not p.requires_grad:
                raise ValueError(
                    f"stock-unit gradients: invariant parameter {self.name_of(p)} (set {s.index}) "
                    "does not require grad, so no hook can follow its gradient; remove it from "
                    "invariant or set requires_grad before converting"
                )
            if _is_dtensor(p):
                raise ValueError(
                    f"stock-unit gradients: invariant parameter {self.name_of(p)} (set {s.index}) "
                    "is sharded (a DTensor): FSDP writes its reduced gradient outside autograd's "
                    "hook on the parameter, so it cannot be kept in stock units. Leave "
                    "stock_grads off and clip with run.clip_grad_norm_ (the stock norm)"
                )

    def _refresh_grad_factors(self) -> None:
        """m of each set (the factor from stored-unit to stock-unit gradients), once per step."""
        self._grad_factors = [float(self.current_scale(s.index)) for s in self.sets]

    def _hook_set(self, s: ScaleSet) -> None:
        for p in s.params:
            self._grad_hooks.append(p.register_hook(_ToStockGrad(self, s.index)))

    def _unhook_grads(self) -> None:
        self._restore_stock_grads()
        for h in self._grad_hooks:
            h.remove()
        self._grad_hooks = []
        opt = self._opt()
        if opt is not None and _STOCK_GRAD_RUNS.get(opt) is self:
            del _STOCK_GRAD_RUNS[opt]
        self._stock_grads = False

    def _scale_present_grads(self, divide: bool) -> None:
        """Gradients already present, to stock units (× m) or back (÷ m), in place."""
        for s in self.sets:
            f = self._grad_factors[s.index] if self._grad_factors else 1.0
            grads = [p.grad for p in s.params if p.grad is not None]
            if grads and f != 1.0:
                if divide:
                    torch._foreach_div_(grads, f)
                else:
                    torch._foreach_mul_(grads, f)

    def _grads_to_converted(self, args: Any, kwargs: Any) -> tuple[Any, Any] | None:
        """The global step pre-hook's work (before every other hook): evaluate a closure, then
        give the step g/m in place of each stock-unit gradient (the stock tensor kept)."""
        self._restore_stock_grads()  # a step that raised left them swapped
        out = None
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        if closure is not None and not isinstance(closure, _EvaluatedClosure):
            with torch.enable_grad():
                done = _EvaluatedClosure(closure())
            if len(args) > 1:
                args = (args[0], done, *args[2:])
            else:
                kwargs = {**kwargs, "closure": done}
            out = (args, kwargs)
        with torch.no_grad():
            for s in self.sets:
                f = self._grad_factors[s.index]
                ps = [p for p in s.params if p.grad is not None]
                if f == 1.0 or not ps:
                    continue
                stock = [p.grad for p in ps if p.grad is not None]
                for p, g in zip(ps, torch._foreach_div(stock, f)):
                    p.grad = g
                self._stashed.append((ps, stock))
        return out

    def _restore_stock_grads(self) -> None:
        stashed, self._stashed = self._stashed, []
        for ps, grads in stashed:
            for p, g in zip(ps, grads):
                p.grad = g

    # -- gradients in stock units ---------------------------------------------------------------
    @torch.no_grad()
    def clip_grad_value_(self, clip_value: float) -> None:
        """``torch.nn.utils.clip_grad_value_`` of the stock run, applied to this run.

        The stock gradient of an invariant parameter is g = m g̃, so clamping g to ±v is
        clamping g̃ to ±v/m; the other parameters are clamped to ±v as they are.
        """
        v = float(clip_value)
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"clip_value = {clip_value!r} is outside the valid range 0 <= v < inf")
        done: set[int] = set()
        for s in self.sets:
            lim = v if self._stock_grads else v / self.current_scale(s.index)
            for p in s.params:
                done.add(id(p))
                if p.grad is not None:
                    p.grad.clamp_(-lim, lim)
        for g in self.optimizer.param_groups:
            for p in g["params"]:
                if id(p) not in done and p.grad is not None:
                    p.grad.clamp_(-v, v)

    def clip_grad_norm_(
        self, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
    ) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` of the **stock** run (:func:`stock_clip_grad_norm_`)."""
        scale = {}
        for s in self.sets:
            m = 1.0 if self._stock_grads else self.current_scale(s.index)
            scale.update({id(p): m for p in s.params})
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        return stock_clip_grad_norm_(params, scale, max_norm, norm_type, error_if_nonfinite)

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:  # pragma: no cover - maps define it
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _save_hook(self, opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        state = self.state_dict()
        # which sets passed the first-update checks: a state saved before them (e.g. the
        # state_dict/load_state_dict round trip of Accelerate's prepare) leaves them to come
        state["checked"] = [s.checked for s in self.sets]
        state_dict[self.STATE_KEY] = state
        return state_dict

    def _load_pre_hook(self, opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        if self.STATE_KEY not in state_dict:
            raise ValueError(
                f"this optimizer is driven by {type(self).__name__} and the checkpoint has no "
                f"'{self.STATE_KEY}' entry: it was saved by a stock optimizer. To continue a stock "
                "run converted, load it into the stock optimizer (and the stock weights into the "
                "model) and call equivalence.convert_optimizer on it"
            )
        state_dict = dict(state_dict)
        self._incoming = state_dict.pop(self.STATE_KEY)
        self._check_incoming(self._incoming)
        return state_dict

    def _check_incoming(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint of a different conversion (maps may add checks)."""
        sizes = [[int(p.numel()) for p in s.params] for s in self.sets]
        theirs = state.get("set_sizes")
        if theirs is not None and [list(x) for x in theirs] != sizes:
            raise ValueError(
                f"the checkpoint was saved by a different conversion: invariant set sizes "
                f"{theirs!r} (checkpoint) vs {sizes!r} (this run)"
            )

    def _load_post_hook(self, opt: Optimizer) -> None:
        if self._incoming is not None:
            state, self._incoming = self._incoming, None
            checked = state.get("checked")
            self.load_state_dict(state)
            for k, s in enumerate(self.sets):
                # a checkpoint without the flags was saved after the checks (older format)
                s.checked = s.checked or checked is None or (k < len(checked) and bool(checked[k]))
            if self._stock_grads:
                self._refresh_grad_factors()

    def _set_sizes(self) -> list[list[int]]:
        return [[int(p.numel()) for p in s.params] for s in self.sets]


#: optimizer → its conversion, for those whose gradients are kept in stock units
_STOCK_GRAD_RUNS: weakref.WeakKeyDictionary[Optimizer, InPlaceConversion] = (
    weakref.WeakKeyDictionary()
)
_STOCK_GRADS_HOOK: list[Any] = []


def _stock_grads_pre_hook(opt: Optimizer, args: Any, kwargs: Any) -> tuple[Any, Any] | None:
    """Global step pre-hook: runs before every optimizer's own hooks (a monitor's included)."""
    conv = _STOCK_GRAD_RUNS.get(opt)
    return None if conv is None else conv._grads_to_converted(args, kwargs)


def _install_stock_grads_hook() -> None:
    if not _STOCK_GRADS_HOOK:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        _STOCK_GRADS_HOOK.append(register_optimizer_step_pre_hook(_stock_grads_pre_hook))


class _ToStockGrad:
    """Tensor hook of an invariant parameter: the gradient backward delivers, × m of its set."""

    __slots__ = ("conv", "index")

    def __init__(self, conv: InPlaceConversion, index: int) -> None:
        self.conv = weakref.ref(conv)
        self.index = index

    def __call__(self, grad: torch.Tensor) -> torch.Tensor | None:
        conv = self.conv()
        if conv is None or not conv._stock_grads:
            return None
        f = conv._grad_factors[self.index]
        return None if f == 1.0 else grad * f


class _EvaluatedClosure:
    """A closure already evaluated by the stock-gradient pre-hook: returns its loss."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss

    def __call__(self) -> Any:
        return self.loss


def _is_dtensor(p: torch.Tensor) -> bool:
    if not torch.distributed.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(p, DTensor)


class StockAveragedModel(AveragedModel):
    """An ``AveragedModel`` of a converted run's **stock** weights (see ``averaged_model``)."""

    _conversion: weakref.ReferenceType[InPlaceConversion]

    def __init__(
        self,
        conversion: InPlaceConversion,
        model: nn.Module,
        device: Any = None,
        avg_fn: Callable[..., torch.Tensor] | None = None,
        multi_avg_fn: Callable[..., None] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__(
            conversion.export(model),
            device=device,
            avg_fn=avg_fn,
            multi_avg_fn=multi_avg_fn,
            use_buffers=use_buffers,
        )
        object.__setattr__(self, "_conversion", weakref.ref(conversion))

    def update_parameters(self, model: nn.Module) -> None:
        conv = self._conversion()
        if conv is None:
            raise ReferenceError("the conversion of this averaged model no longer exists")
        super().update_parameters(_StockView(conv, model))  # type: ignore[arg-type]


class _StockView:
    """Duck-typed module: ``parameters()``/``buffers()`` of ``model`` in stock units."""

    def __init__(self, conversion: InPlaceConversion, model: nn.Module) -> None:
        self._conv = conversion
        self._model = model

    def parameters(self) -> Iterator[torch.Tensor]:
        return self._conv.stock_parameters(self._model)

    def buffers(self) -> Iterator[torch.Tensor]:
        return self._conv.stock_buffers(self._model)


def _scaled(tensors: Iterable[torch.Tensor], scale: dict[int, float]) -> Iterator[torch.Tensor]:
    """Each tensor detached, multiplied by ``scale[id]`` (a new tensor) where it has one."""
    with torch.no_grad():
        for x in tensors:
            c = scale.get(id(x))
            yield x.detach() * c if c is not None else x.detach()


def _norms_per_set(norm_layers: Any, n_sets: int) -> list[list[nn.Module] | None]:
    if norm_layers is None:
        return [None] * n_sets
    if isinstance(norm_layers, nn.Module):
        raise TypeError("norm_layers must be an iterable of modules (or one iterable per set)")
    items = list(norm_layers)
    if items and all(isinstance(x, nn.Module) for x in items) or not items:
        if n_sets > 1 and items:
            raise ValueError(
                f"norm_layers is one list but there are {n_sets} invariant sets: give one list per "
                "set (norm_layers=[[...], [...]]), or pass model= and omit norm_layers to have "
                "them found"
            )
        out: list[list[nn.Module] | None] = [items]
        return out + [[] for _ in range(n_sets - 1)] if n_sets else []
    if len(items) != n_sets:
        raise ValueError(
            f"norm_layers has {len(items)} lists for {n_sets} invariant sets; give one per set"
        )
    return [list(x) for x in items]


def _param_names(model: nn.Module | None) -> dict[int, str]:
    if model is None:
        return {}
    return {id(p): n for n, p in model.named_parameters()}


def _culprits(conv: InPlaceConversion, s: ScaleSet, dot: torch.Tensor, den: torch.Tensor) -> str:
    """The set's tensors ranked by their own Euler residual |⟨g, θ⟩| / ‖g‖‖θ‖."""
    rel = [
        (abs(float(d)) / float(n) if float(n) > 0 else 0.0, i)
        for i, (d, n) in enumerate(zip(dot, den))
    ]
    rel.sort(reverse=True)
    top = [f"{conv.name_of(s.params[i])} ({r:.2g})" for r, i in rel[:3] if r > EULER_RTOL]
    if not top:
        return "No single tensor stands out by its own ⟨∇L, θ⟩ (a joint set whose whole fails)"
    return "Most likely not invariant, by |⟨∇L, θ⟩| / ‖∇L‖‖θ‖: " + ", ".join(top)


@torch.no_grad()
def stock_clip_grad_norm_(
    params: Iterable[torch.Tensor],
    scale: dict[int, float],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` of the stock run, applied to a converted run.

    ∇L(θ/c) = c ∇L(θ), so the stock gradient of an invariant parameter is g = m g̃
    (``scale[id(p)]`` = m of its set). The total norm is taken over the stock gradients
    (invariant ones × m, the others as they are) and the stock clip coefficient
    min(1, max_norm / (norm + 1e-6)) multiplies every gradient: the clipped converted run
    equals the clipped stock run. Returns the stock total norm. (PyTorch's
    ``clip_grad_norm_`` on the converted gradients measures g/m and clips at the wrong
    threshold.)
    """
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return torch.tensor(0.0)
    grads = [p.grad for p in with_grad if p.grad is not None]
    norms = torch._foreach_norm(grads, norm_type)
    stock = [n * scale[id(p)] if id(p) in scale else n for n, p in zip(norms, with_grad)]
    total = torch.linalg.vector_norm(torch.stack([n.to(stock[0].dtype) for n in stock]), norm_type)
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the stock gradients is non-finite ({float(total)})"
        )
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef.to(grads[0].device))
    return total


def nonnegative(v: float) -> bool:
    """The range of lr and weight_decay: 0 <= v (finiteness is checked apart)."""
    return v >= 0


def check_finite_hyper(
    value: Any,
    key: str,
    gi: int,
    t: int,
    lo: str,
    in_range: Callable[[float], bool] | None = None,
) -> float:
    """A group's hyper-parameter as a float: its own message when it is not finite, and the
    valid range ``lo`` when ``in_range`` rejects it."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.device.type != "cpu":
            raise TypeError(
                f"param_groups[{gi}]['{key}'] is a Tensor of shape {tuple(value.shape)} on "
                f"{value.device} at update {t}; the converter reads hyper-parameters on the host "
                "(a device tensor would cost a synchronisation every step): give a float or a "
                "one-element CPU tensor"
            )
        value = value.item()
    v = float(value)
    if not math.isfinite(v):
        raise ConversionError(
            f"param_groups[{gi}]['{key}'] = {value!r} at update {t} is not finite; valid range: {lo}"
        )
    if in_range is not None and not in_range(v):
        raise ConversionError(
            f"param_groups[{gi}]['{key}'] = {v!r} at update {t} is outside the valid range {lo}"
        )
    return v


def iter_sets_groups(
    layout: Sequence[tuple[dict[str, Any], list[tuple[int, list[torch.Tensor]]], list[Any]]],
) -> dict[int, list[int]]:
    """Set index → the user group indices holding its tensors."""
    out: dict[int, list[int]] = {}
    for gi, (_, parts, _) in enumerate(layout):
        for k, _ in parts:
            out.setdefault(k, []).append(gi)
    return out
