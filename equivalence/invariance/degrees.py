r"""Which tensors can carry one common scale: the degrees of a traced forward pass.

Doubling a set T of parameter tensors doubles some intermediate tensors (degree 1), leaves
others alone (degree 0), squares the factor of some (degree 2: a product of two scaled
tensors) and changes the rest in no homogeneous way (GELU of a scaled tensor, a scaled tensor
plus an unscaled one). The loss is invariant in T when the scale dies at normalisers: every
normaliser's input is homogeneous (any degree: the normaliser removes it, eps -> 0) and the
loss has degree 0. Which of these holds follows from the kinds of the ops alone, not their
values, so one recorded forward pass answers it for every T:

- :class:`Trace` records the pass op by op (a ``TorchFunctionMode``): for each op its inputs
  (the ops that made them, the parameters, constants) and the module it ran in. A
  normaliser's output starts a fresh segment (degree 0 whatever its input: the cut), so the
  segments between normalisers are analysed independently.
- :func:`propose` starts from the candidates and removes, round by round, the tensors whose
  scale cannot pass an op: a nonlinearity (GELU, softmax, the loss) fed a scaled tensor, a sum
  of terms of different degrees (a residual path from a normaliser's output plus a scaled
  branch, a bias left out), a parameter multiplying data that is already scaled (the product
  would scale twice: of ``v_proj`` and ``o_proj`` only one can carry the scale). It stops when
  nothing breaks; the forward tests of :mod:`equivalence.invariance.search` then confirm (or
  refuse) the set.
- :func:`parts` splits an invariant set into the parts that scale independently (parts that
  meet in no sum or product before a normaliser), each of which is invariant on its own.

The op vocabulary (:data:`KINDS`) is the one of ``torch`` and ``torch.nn.functional``; an op not
in it is treated as a nonlinearity (its inputs must have degree 0), which can only make the
proposed set smaller, never wrong: the forward tests decide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["KINDS", "Proposal", "Trace", "parts", "propose"]

#: a tensor known to be zero: compatible with every degree
ZERO = "zero"
#: an input reference: ("node", index), ("param", name), ("const", zero?) or ("cut", norm name)
Ref = tuple[str, Any]
Degree = Any  # float, ZERO, or None (not homogeneous)
#: an op the scale cannot pass: (rule, the input slots to clear, tensors of T to remove)
Bad = tuple[str, set[str], list[str]]
#: an input as the rules see it: (slot, reference, degree)
Input = tuple[str, Any, Degree]

_SHAPE = """view view_as reshape reshape_as permute transpose t contiguous flatten unflatten
unsqueeze squeeze expand expand_as repeat repeat_interleave tile getitem narrow select
index_select gather take_along_dim split split_with_sizes chunk tensor_split unbind movedim
moveaxis swapaxes swapdims clone detach to float double half bfloat16 type type_as roll flip
fliplr flipud rot90 diagonal tril triu as_strided unfold fold pixel_shuffle pixel_unshuffle
channel_shuffle interpolate upsample upsample_nearest upsample_bilinear dropout dropout1d
dropout2d dropout3d alpha_dropout feature_alpha_dropout relu leaky_relu max_pool1d max_pool2d
max_pool3d max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices avg_pool1d
avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d lp_pool1d lp_pool2d mean sum
nansum cumsum neg negative abs amax amin std norm vector_norm identity get real imag conj
resolve_conj resolve_neg contiguous_format narrow_copy select_scatter_src flatten_ ravel
unsafe_view""".split()
_ADD = """add radd sub rsub cat concat concatenate stack hstack vstack dstack where maximum minimum fmax
fmin setitem""".split()
_PRODUCT = """mul multiply matmul rmatmul mm bmm einsum outer ger dot vdot tensordot kron inner mv
rmul""".split()
_DIV = "div divide true_divide truediv".split()
_RDIV = "rtruediv rdiv".split()
_POW = {"pow": None, "float_power": None, "square": 2.0, "sqrt": 0.5, "rsqrt": -0.5}
_POW.update({"reciprocal": -1.0, "var": 2.0})
_LINEAR = """linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
bilinear_not""".split()
_ADDMM = "addmm addbmm baddbmm addmv addr".split()
_NORMALISE = """normalize layer_norm group_norm batch_norm instance_norm rms_norm
local_response_norm""".split()
_ZERO_FACTORIES = "zeros zeros_like new_zeros empty empty_like new_empty zero".split()
_CONST_FACTORIES = """ones ones_like new_ones full full_like new_full arange linspace logspace eye
rand rand_like randn randn_like randint randint_like randperm tensor as_tensor new_tensor
from_numpy fill bernoulli normal""".split()

#: op name (dunders and a trailing in-place underscore stripped) -> how degrees pass it
KINDS: dict[str, str] = {}
for _names, _kind in (
    (_SHAPE, "shape"),
    (_ADD, "add"),
    (_PRODUCT, "product"),
    (_DIV, "div"),
    (_RDIV, "rdiv"),
    (list(_POW), "pow"),
    (_LINEAR, "linear"),
    (_ADDMM, "addmm"),
    (_NORMALISE, "normalise"),
    (_ZERO_FACTORIES, "zero"),
    (_CONST_FACTORIES, "const"),
    (["embedding"], "embedding"),
    (["scaled_dot_product_attention"], "sdpa"),
    (["masked_fill", "pad"], "fill"),
    (["copy"], "copy"),
    (["max", "min"], "maxmin"),
):
    for _n in _names:
        KINDS[_n] = _kind

# the slots of the python numbers that are operands of a sum (not a dim, not an alpha)
_SCALAR_OPERANDS = {
    "add": ("0", "1", "input", "other"),
    "radd": ("0", "1"),
    "sub": ("0", "1", "input", "other"),
    "rsub": ("0", "1", "input", "other"),
    "where": ("1", "2", "input", "other"),
    "setitem": ("2",),
}

# the slots (positional index or keyword) of the inputs that matter for the special kinds
_LINEAR_SLOTS = (("0", "input"), ("1", "weight"), ("2", "bias"))
_ADDMM_SLOTS = {
    "addmm": (("0", "input"), ("1", "mat1"), ("2", "mat2")),
    "addbmm": (("0", "input"), ("1", "batch1"), ("2", "batch2")),
    "baddbmm": (("0", "input"), ("1", "batch1"), ("2", "batch2")),
    "addmv": (("0", "input"), ("1", "mat"), ("2", "vec")),
    "addr": (("0", "input"), ("1", "vec1"), ("2", "vec2")),
}
_NORM_AFFINE = {  # normalised input, weight, bias
    "layer_norm": (("0", "input"), ("2", "weight"), ("3", "bias")),
    "group_norm": (("0", "input"), ("2", "weight"), ("3", "bias")),
    "batch_norm": (("0", "input"), ("3", "weight"), ("4", "bias")),
    "instance_norm": (("0", "input"), ("3", "weight"), ("4", "bias")),
    "rms_norm": (("0", "input"), ("2", "weight"), ("-", "-")),
}


def op_name(func: Any) -> str:
    """``Tensor.__radd__`` -> ``radd``, ``add_`` -> ``add``, ``__getitem__`` -> ``getitem``."""
    name = getattr(func, "__name__", "") or ""
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith("i") and name[1:] in KINDS and name not in KINDS:
            name = name[1:]  # __iadd__ -> add
    elif name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return name


@dataclass
class Node:
    """One recorded op: its name, kind, inputs by slot, the module it ran in."""

    op: str
    kind: str
    module: str
    inputs: list[tuple[str, Ref]]
    scalars: dict[str, float] = field(default_factory=dict)  # python-number operands by slot


class Trace(TorchFunctionMode):
    """Records a forward pass op by op, normalisers' outputs as cut points.

    Use as a context manager around the forward pass (and the loss), after :meth:`attach` has
    put hooks on the modules; call :meth:`detach` after, and :meth:`set_loss` with the loss.
    Tensors met in the pass are kept alive until :meth:`detach` (their ids name them).
    """

    def __init__(self, params: Mapping[str, torch.Tensor], norm_classes: tuple[type, ...]):
        super().__init__()
        self.refs: dict[int, Ref] = {id(p): ("param", n) for n, p in params.items()}
        self.norm_classes = norm_classes
        self.nodes: list[Node] = []
        self.loss: Ref | None = None
        self._alive: list[Any] = []
        self._stack: list[str] = []
        self._in_norm = 0
        self._hooks: list[Any] = []
        self.ok = True  # False when something in the pass could not be followed

    # -- module context --------------------------------------------------------------
    def attach(self, model: nn.Module) -> None:
        for name, m in model.named_modules():
            is_norm = isinstance(m, self.norm_classes)
            self._hooks.append(m.register_forward_pre_hook(self._enter(name, is_norm)))
            self._hooks.append(m.register_forward_hook(self._leave(name, is_norm)))

    def detach(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._alive.clear()

    def _enter(self, name: str, is_norm: bool) -> Any:
        def hook(mod: nn.Module, inp: Any) -> None:
            self._stack.append(name)
            if is_norm:
                self._in_norm += 1

        return hook

    def _leave(self, name: str, is_norm: bool) -> Any:
        def hook(mod: nn.Module, inp: Any, out: Any) -> None:
            if self._stack:
                self._stack.pop()
            if is_norm:
                self._in_norm -= 1
                if self._in_norm == 0:
                    for t in _tensors(out):  # the cut: a fresh segment starts here
                        self.refs[id(t)] = ("cut", name)
                        self._alive.append(t)

        return hook

    def set_loss(self, loss: torch.Tensor) -> None:
        self.loss = self._ref(loss)

    # -- recording --------------------------------------------------------------------
    def _ref(self, t: torch.Tensor) -> Ref:
        # an input, a buffer or a tensor made outside the trace: a constant
        return self.refs.get(id(t), ("const", False))

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._in_norm or not self.ok:
            return out
        try:
            self._record(func, args, kwargs, out)
        except Exception:  # noqa: BLE001 - a pass the trace cannot follow is analysed no further
            self.ok = False
        return out

    def _record(self, func: Any, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> None:
        name = op_name(func)
        outs = _tensors(out)
        if name == "setitem":
            outs = [args[0]] if args and isinstance(args[0], torch.Tensor) else []
        outs = [t for t in outs if t.is_floating_point()]
        if not outs:
            return  # only floating tensors carry a scale (a mask, an index does not)
        inputs: list[tuple[str, Ref]] = []
        scalars: dict[str, float] = {}
        items = [(str(i), a) for i, a in enumerate(args)] + list(kwargs.items())
        for slot, a in items:
            if isinstance(a, torch.Tensor):
                if a.is_floating_point():
                    inputs.append((slot, self._ref(a)))
            elif isinstance(a, (list, tuple)):
                for j, b in enumerate(a):
                    if isinstance(b, torch.Tensor) and b.is_floating_point():
                        inputs.append((f"{slot}.{j}", self._ref(b)))
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                scalars[slot] = float(a)
        kind = KINDS.get(name, "nonlinear")
        module = self._stack[-1] if self._stack else ""
        self.nodes.append(Node(name, kind, module, inputs, scalars))
        ref = ("node", len(self.nodes) - 1)
        for t in outs:
            self._alive.append(t)
            self.refs[id(t)] = ref


@dataclass(frozen=True)
class Culprit:
    """An op the scale of T cannot pass: the rule broken and the tensors of T to remove."""

    node: int
    rule: str  # "nonlinear", "mix", "product", "loss"
    remove: frozenset[str]
    other: str = ""  # "mix": what the scaled term is added to; "product": what it multiplies


@dataclass
class Proposal:
    """What :func:`propose` found: the set, and for each tensor removed the op that stopped it."""

    members: list[str]
    removed: dict[str, str]


def _slot(inputs: Sequence[tuple[str, Ref]], names: Iterable[str]) -> list[tuple[str, Ref]]:
    names = set(names)
    return [(s, r) for s, r in inputs if s in names]


class _Evaluation:
    """Degrees of every node for one set T, and the culprits at the frontier."""

    def __init__(self, trace: Trace, T: frozenset[str]) -> None:
        self.trace, self.T = trace, T
        self.deg: list[Degree] = []
        self.culprits: list[Culprit] = []
        for i, node in enumerate(trace.nodes):
            d, bad = self._node(node)
            self.deg.append(d)
            if bad is not None:
                rule, slots, direct = bad
                remove = set(direct)
                for s, r in node.inputs:
                    if s in slots:
                        remove |= self.upstream(r)
                other = ""
                if rule == "mix":  # what the scaled term is added to
                    low = [r for s, r in node.inputs if s not in slots and self.of(r) != ZERO]
                    other = self.origin(low[0]) if low else "a constant"
                elif rule == "product":  # what the tensor multiplies
                    scaled = [
                        r
                        for _, r in node.inputs
                        if r[0] != "param" and self.of(r) not in (0.0, ZERO)
                    ]
                    other = self.origin(scaled[0]) if scaled else ""
                if remove:
                    self.culprits.append(Culprit(i, rule, frozenset(remove), other))
        loss = trace.loss
        self.loss_degree = self.of(loss) if loss is not None else 0.0
        if loss is not None and self.loss_degree not in (0.0, ZERO, None):
            through = frozenset(self.upstream(loss))
            if through:
                self.culprits.append(Culprit(-1, "loss", through))

    def of(self, ref: Ref) -> Degree:
        kind, what = ref
        if kind == "node":
            return self.deg[what]
        if kind == "param":
            return 1.0 if what in self.T else 0.0
        if kind == "const":
            return ZERO if what else 0.0
        return 0.0  # a normaliser's output

    def origin(self, ref: Ref) -> str:
        """Where a tensor comes from, in words (through reshapes, copies and sums, the first
        term)."""
        for _ in range(len(self.trace.nodes) + 1):
            kind, what = ref
            if kind != "node" or self.trace.nodes[what].kind not in ("shape", "add"):
                break
            ins = self.trace.nodes[what].inputs
            if not ins:
                break
            ref = ins[0][1]
        kind, what = ref
        if kind == "cut":
            return f"the output of the normaliser {what}"
        if kind == "param":
            return what
        if kind == "const":
            return "a constant (an input or a buffer)"
        node = self.trace.nodes[what]
        weights = [r[1] for s, r in node.inputs if r[0] == "param" and s in ("1", "weight")]
        if node.kind in ("embedding", "linear") and weights:
            return f"the output of {node.module or node.op} ({weights[0]})"
        return f"the output of {node.op} in {node.module}" if node.module else node.op

    def upstream(self, ref: Ref) -> set[str]:
        """The tensors of T whose scale reaches ``ref`` (through inputs of nonzero degree)."""
        found: set[str] = set()
        stack, seen = [ref], set()
        while stack:
            r = stack.pop()
            if r in seen:
                continue
            seen.add(r)
            kind, what = r
            if kind == "param" and what in self.T:
                found.add(what)
            elif kind == "node":
                for _, inp in self.trace.nodes[what].inputs:
                    if self.of(inp) not in (0.0, ZERO):
                        stack.append(inp)
        return found

    def _node(self, node: Node) -> tuple[Degree, Bad | None]:
        """(output degree, None or (rule, offending input slots, tensors of T to remove))."""
        ins = [(s, r, self.of(r)) for s, r in node.inputs]
        if any(d is None for _, _, d in ins):
            return None, None  # downstream of a culprit: not judged this round
        kind = node.kind
        if kind == "zero":
            return ZERO, None
        if kind == "const":
            return 0.0, None
        if kind == "copy":  # x.copy_(src): src's degree
            src = [x for x in ins if x[0] in ("1", "src")]
            return (src[0][2] if src else 0.0), None
        if kind == "maxmin" and len(ins) > 1:  # torch.max(x, y): elementwise, like a sum
            return _sum_rule(ins, {})
        if kind == "fill":  # masked_fill(x, mask, value), pad(x, pad, mode, value)
            vslot = "2" if node.op == "masked_fill" else "3"
            value = node.scalars.get(vslot, node.scalars.get("value", 0.0))
            filled = [x for x in ins if x[0] in (vslot, "value")]
            main = [x for x in ins if x[0] in ("0", "input")]
            return _sum_rule(main + filled, {"value": value} if value != 0.0 else {})
        if kind in ("shape", "maxmin"):  # the first input's degree (the others: shapes, indices)
            return (ins[0][2] if ins else 0.0), None
        if kind == "add":
            operands = _SCALAR_OPERANDS.get(node.op, ())
            consts = {s: v for s, v in node.scalars.items() if v != 0.0 and s in operands}
            if node.op == "where":
                ins = [x for x in ins if x[0] not in ("0", "condition")]
            return _sum_rule(ins, consts)
        if kind == "product":
            return _product_rule(ins, self.T)
        if kind in ("div", "rdiv"):
            if not ins:
                return 0.0, None
            a = ins[0][2]
            b = ins[1][2] if len(ins) > 1 else 0.0
            if ZERO in (a, b):
                return ZERO, None
            return (a - b if kind == "div" else -a), None
        if kind == "pow":
            n = _POW.get(node.op)
            if n is None:
                n = node.scalars.get("1", node.scalars.get("exponent"))
            if n is None or len(ins) != 1:
                return _nonlinear(ins)
            d = ins[0][2]
            return (ZERO if d == ZERO and n > 0 else 0.0 if d == ZERO else n * d), None
        if kind == "embedding":
            w = _slot(node.inputs, ("1", "weight"))
            return (self.of(w[0][1]) if w else 0.0), None
        if kind in ("linear", "addmm"):
            slots = _LINEAR_SLOTS if kind == "linear" else _ADDMM_SLOTS[node.op]
            if kind == "linear":  # (input, weight, bias): input @ weight + bias
                factors = [x for x in ins if x[0] in slots[0] or x[0] in slots[1]]
                addend = [x for x in ins if x[0] in slots[2]]
            else:  # (input, m1, m2): input + m1 @ m2
                factors = [x for x in ins if x[0] in slots[1] or x[0] in slots[2]]
                addend = [x for x in ins if x[0] in slots[0]]
            prod, bad = _product_rule(factors, self.T)
            if bad is not None:
                return None, bad
            terms_: list[Input] = [("*", None, prod), *addend]
            d, mix = _sum_rule(terms_, {})
            if mix is not None:
                rule, high, _ = mix
                slots_ = {s for s, _, _ in factors} if "*" in high else set()
                slots_ |= {s for s in high if s != "*"}
                return None, (rule, slots_, [])
            return d, None
        if kind == "sdpa":
            qk = [x for x in ins if x[0] in ("0", "1", "3", "query", "key", "attn_mask")]
            offending = {s for s, _, d in qk if d not in (0.0, ZERO)}
            if offending:
                return None, ("nonlinear", offending, [])
            v = [x for x in ins if x[0] in ("2", "value")]
            return (v[0][2] if v else 0.0), None
        if kind == "normalise":
            spec = _NORM_AFFINE.get(node.op)
            if spec is None:  # F.normalize: any homogeneous input -> degree 0
                return 0.0, None
            _, wslots, bslots = spec
            scale = [x for x in ins if x[0] in wslots]
            shift = [x for x in ins if x[0] in bslots]
            others = [
                x for x in ins if x not in scale and x not in shift and x[0] not in ("0", "input")
            ]
            if any(d not in (0.0, ZERO) for _, _, d in others):  # running statistics that scale
                return _nonlinear(others)
            terms: list[Input] = [("*", None, scale[0][2] if scale else 0.0), *shift]
            d, mix = _sum_rule(terms, {})
            if mix is not None:
                rule, high, _ = mix
                return None, (rule, {s for s in high if s != "*"} | {s for s, _, _ in scale}, [])
            return d, None
        return _nonlinear(ins)


def _nonlinear(ins: Sequence[Input]) -> tuple[Degree, Bad | None]:
    offending = {s for s, _, d in ins if d not in (0.0, ZERO)}
    if offending:
        return None, ("nonlinear", offending, [])
    return 0.0, None


def _sum_rule(
    ins: Sequence[tuple[str, Any, Degree]], consts: Mapping[str, float]
) -> tuple[Degree, Any]:
    degs = [d for _, _, d in ins if d != ZERO] + [0.0] * len(consts)
    if not degs:
        return ZERO, None
    lo = min(degs)
    if all(math.isclose(d, lo) for d in degs):
        return lo, None
    high = {s for s, _, d in ins if d != ZERO and not math.isclose(d, lo)}
    return None, ("mix", high, [])


def _product_rule(ins: Sequence[Input], T: frozenset[str]) -> tuple[Degree, Bad | None]:
    """A product: degrees add; a tensor of T times anything already scaled must go."""
    if any(d == ZERO for _, _, d in ins):
        return ZERO, None
    total = float(sum(d for _, _, d in ins))
    for _, r, _ in ins:
        if r[0] == "param" and r[1] in T and total != 1.0:
            return None, ("product", set(), [r[1]])
    return total, None


def propose(trace: Trace, candidates: Sequence[str]) -> Proposal:
    """The largest set the degrees allow, removing what breaks, round by round (see the module)."""
    T = frozenset(candidates)
    removed: dict[str, str] = {}
    for _ in range(len(candidates) + 2):
        ev = _Evaluation(trace, T)
        if not ev.culprits:
            break
        drop: dict[str, str] = {}
        for c in ev.culprits:
            for name in sorted(c.remove):
                drop.setdefault(name, _why(trace, c))
        T = T - frozenset(drop)
        removed.update(drop)
    return Proposal([n for n in candidates if n in T], removed)


def parts(trace: Trace, members: Sequence[str]) -> list[list[str]]:
    """``members`` split into the parts whose scales meet (in a sum or product) before a
    normaliser; each part scales independently of the others."""
    T = frozenset(members)
    ev = _Evaluation(trace, T)
    parent: dict[Ref, Ref] = {}

    def find(r: Ref) -> Ref:
        parent.setdefault(r, r)
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    for i, node in enumerate(trace.nodes):
        d = ev.deg[i]
        if d in (0.0, ZERO):
            continue
        for _, r in node.inputs:
            if ev.of(r) not in (0.0, ZERO):
                parent[find(("node", i))] = find(r)
    groups: dict[Ref, list[str]] = {}
    for n in members:
        groups.setdefault(find(("param", n)), []).append(n)
    return list(groups.values())


def _why(trace: Trace, c: Culprit) -> str:
    if c.node < 0:
        return "its scale reaches the loss with no normaliser in between"
    node = trace.nodes[c.node]
    where = f"{node.op} in {node.module}" if node.module else node.op
    if c.rule == "product":
        return (
            f"it multiplies ({where}) {c.other or 'a tensor'}, which already scales with the "
            "set, so the product would scale twice"
        )
    if c.rule == "mix":
        return (
            f"its scale is added ({where}) to {c.other or 'a term'}, which does not scale with "
            "it, before any normaliser"
        )
    if node.kind == "sdpa":
        return (
            f"its scale enters the attention scores ({where}: query, key or mask), which the "
            "softmax does not pass"
        )
    return f"its scale enters {where}, which is not homogeneous, before any normaliser"


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, Mapping):
        return [t for x in tree.values() for t in _tensors(x)]
    if isinstance(tree, (tuple, list)):
        return [t for x in tree for t in _tensors(x)]
    return []
